// Driver of tests/distributed/rank_dies.sh: two ranks start a data-parallel loop (all-reduces of a gradient-sized
// buffer); rank 1 is killed (SIGKILL, as by the OOM killer) before its third step. The survivor must not hang:
// the script checks that the job ends within 60 s with a message naming the dead rank.
#include <csignal>
#include <cstdio>
#include <vector>

#include "hyperadapt/distributed/mpi_communicator.hpp"

int main(int argc, char** argv) {
    try {
        hyperadapt::mpi_session session(argc, argv);
        hyperadapt::mpi_communicator comm;
        std::vector<float> gradient(1 << 20, 1.0f);
        for (int step = 0; step < 1000000; ++step) {
            if (comm.rank() == 1 && step == 2) std::raise(SIGKILL);
            comm.allreduce_sum(std::span<float>(gradient));
            for (float& g : gradient) g = 1.0f;
        }
        std::puts("rank_dies: the loop ended although a rank died");
        return 3;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "rank_dies: %s\n", e.what());
        return 1;
    }
}
