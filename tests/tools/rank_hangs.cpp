// Driver of tests/distributed/rank_hangs.sh: two ranks start a data-parallel loop (all-reduces of a gradient-sized
// buffer); before its third step rank 1 hangs -- alive, sleeping, never reaching the collective rank 0 waits in.
// With a collective timeout of 3 s, rank 0's watchdog must end it with a message naming the operation and the
// ranks, and the launcher must then end the job.
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "hyperadapt/distributed/mpi_communicator.hpp"

int main(int argc, char** argv) {
    try {
        hyperadapt::mpi_session session(argc, argv);
        hyperadapt::mpi_communicator comm(MPI_COMM_WORLD, std::chrono::seconds(3));
        std::vector<float> gradient(1 << 20, 1.0f);
        for (int step = 0; step < 1000000; ++step) {
            if (comm.rank() == 1 && step == 2) std::this_thread::sleep_for(std::chrono::hours(1));
            comm.allreduce_sum(std::span<float>(gradient));
            for (float& g : gradient) g = 1.0f;
        }
        std::puts("rank_hangs: the loop ended although a rank hung");
        return 3;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "rank_hangs: %s\n", e.what());
        return 1;
    }
}
