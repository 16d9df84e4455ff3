// Driver of tests/distributed/rank_stops.sh: two ranks start a data-parallel loop (all-reduces of a gradient-sized
// buffer); before its third step rank 1 stops taking part, as `mode` says:
//   dies   killed (SIGKILL, as by the OOM killer): the launcher must end the job, naming the rank;
//   hangs  alive but asleep, never reaching the collective rank 0 waits in: with a collective timeout of 3 s,
//          rank 0's watchdog must end it with a message naming the operation and both ranks.
// The survivor must never hang; the script checks that the job ends within 60 s and what it says.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "hyperadapt/distributed/mpi_communicator.hpp"

int main(int argc, char** argv) {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode != "dies" && mode != "hangs") {
        std::fprintf(stderr, "usage: rank_stops dies|hangs\n");
        return 2;
    }
    try {
        hyperadapt::mpi_session session(argc, argv);
        // A dead rank must end the job through the launcher alone: the watchdog keeps its default (minutes) there.
        hyperadapt::mpi_communicator comm(MPI_COMM_WORLD, mode == "hangs" ? std::chrono::milliseconds(std::chrono::seconds(3))
                                                                          : hyperadapt::mpi_communicator::default_collective_timeout);
        std::vector<float> gradient(1 << 20, 1.0f);
        for (int step = 0; step < 1000000; ++step) {
            if (comm.rank() == 1 && step == 2) {
                if (mode == "dies") std::raise(SIGKILL);
                std::this_thread::sleep_for(std::chrono::hours(1));
            }
            comm.allreduce_sum(std::span<float>(gradient));
            for (float& g : gradient) g = 1.0f;
        }
        std::printf("rank_stops: the loop ended although rank 1 %s\n", mode == "dies" ? "died" : "hung");
        return 3;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "rank_stops: %s\n", e.what());
        return 1;
    }
}
