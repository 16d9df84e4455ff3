#pragma once
// The processes a recipe's run trains on. Started by an MPI launcher (`mpirun -np 2 02_camtl_glue ...`; Open MPI,
// MPICH and Slurm's PMI announce themselves in the environment), a build with MPI joins the launcher's ranks:
// data-parallel training over them (train/multitask_trainer.hpp), --batch the global batch, which the world size
// must divide. Started on its own, the run is one process and nothing of MPI is touched. Rank 0 speaks for the
// job: the other ranks' standard output goes to /dev/null, and only rank 0 writes --json, --out, --save-model and
// --save; errors are written by every rank, naming it, and an error on any rank ends the job (MPI_Abort) rather
// than leave the others waiting.
#include <memory>
#include <string>

#include "hyperadapt/distributed/communicator_ref.hpp"

namespace hyperadapt::examples {

class run_processes {
public:
    /// Joins the launcher's ranks when there is one (communication_error when MPI cannot start; config_error when
    /// a launcher started this process and the build has no MPI, since every rank would then train alone and
    /// write the same files). `program` names the run in its messages.
    explicit run_processes(const std::string& program);
    run_processes(const run_processes&) = delete;
    run_processes& operator=(const run_processes&) = delete;
    ~run_processes();

    /// The ranks' communicator (a default communicator_ref, the single process, when there is no launcher).
    [[nodiscard]] communicator_ref communicator() const noexcept { return communicator_; }
    [[nodiscard]] bool leader() const noexcept { return rank_ == 0; }
    /// This rank's index among the ranks on its machine, as the launcher announced it (0 for a single process):
    /// the GPU a rank takes when --gpu does not say.
    [[nodiscard]] int local_rank() const noexcept { return local_rank_; }
    /// "" for a single process, " (rank 1 of 2)" otherwise: what error messages add to the program's name.
    [[nodiscard]] std::string rank_label() const;
    /// After an error on this rank (already reported): ends the whole job with `code` when there are other ranks,
    /// which would otherwise wait for this one in their next collective for ever. Returns only for one process.
    void end_job_after_error(int code) noexcept;

private:
    struct mpi_state;
    std::unique_ptr<mpi_state> mpi_;
    communicator_ref communicator_;
    int rank_ = 0, size_ = 1, local_rank_ = 0;
};

/// The world size an MPI launcher announced in this process's environment, 0 when none did.
int launcher_world_size() noexcept;

}  // namespace hyperadapt::examples
