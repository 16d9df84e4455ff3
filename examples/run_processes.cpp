// run_processes (run_processes.hpp): MPI only in this translation unit, and only in a build that found it.
#include "run_processes.hpp"

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#if defined(HYPERADAPT_EXAMPLE_WITH_MPI)
#include "hyperadapt/distributed/mpi_communicator.hpp"
#endif

namespace hyperadapt::examples {

int launcher_world_size() noexcept {
    // Open MPI's mpirun, MPICH's Hydra and Slurm's srun (PMI / PMIx) each set one of these in every rank.
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_NTASKS"}) {
        if (name == std::string("SLURM_NTASKS") && std::getenv("PMI_RANK") == nullptr && std::getenv("PMIX_RANK") == nullptr)
            continue;  // an sbatch script's own environment, not a rank that srun started
        if (const char* v = std::getenv(name)) {
            const int n = std::atoi(v);
            if (n > 0) return n;
        }
    }
    return 0;
}

#if defined(HYPERADAPT_EXAMPLE_WITH_MPI)
struct run_processes::mpi_state {
    std::optional<mpi_session> session;
    std::optional<mpi_communicator> comm;
};
#else
struct run_processes::mpi_state {};
#endif

run_processes::run_processes(const std::string& program) {
    const int launched = launcher_world_size();
    if (launched == 0) return;
#if defined(HYPERADAPT_EXAMPLE_WITH_MPI)
    mpi_ = std::make_unique<mpi_state>();
    int argc = 0;
    char** argv = nullptr;
    mpi_->session.emplace(argc, argv);
    mpi_->comm.emplace();
    communicator_ = communicator_ref(*mpi_->comm);
    rank_ = mpi_->comm->rank();
    size_ = mpi_->comm->size();
    for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "PMIX_LOCAL_RANK", "SLURM_LOCALID"})
        if (const char* v = std::getenv(name); v != nullptr && std::atoi(v) >= 0) {
            local_rank_ = std::atoi(v);
            break;
        }
    // Rank 0 speaks for the job; the others keep their standard error for what goes wrong on them.
    if (rank_ != 0 && std::freopen("/dev/null", "w", stdout) == nullptr)
        std::fprintf(stderr, "%s%s: could not silence standard output\n", program.c_str(), rank_label().c_str());
#else
    throw config_error(program + ": started by an MPI launcher as one of " + std::to_string(launched) +
                       " processes, but this build has no MPI (apt-get install libopenmpi-dev openmpi-bin, then "
                       "configure again); run it without mpirun");
#endif
}

run_processes::~run_processes() = default;

void run_processes::end_job_after_error(int code) noexcept {
#if defined(HYPERADAPT_EXAMPLE_WITH_MPI)
    if (size_ > 1) {
        std::fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, code);
    }
#else
    (void)code;
#endif
}

std::string run_processes::rank_label() const {
    return size_ > 1 ? " (rank " + std::to_string(rank_) + " of " + std::to_string(size_) + ")" : std::string();
}

}  // namespace hyperadapt::examples
