// The MiniLM CA-MTL training step of models/bench_camtl_step.cpp (6 layers, hidden 384, six GLUE tasks' real
// lengths in length groups, global batch 32, lower half frozen), data-parallel over MPI ranks: each rank runs
// forward and backward on its 32 / ranks rows of the global batch, the ranks average their gradients
// (allreduce_gradients, the trainable 8.6 M parameters), then clip and step alike. Run as one process with T
// threads, or as `mpirun -np R bench_data_parallel_step --threads 1`; benchmarks/compare_data_parallel.sh runs
// both side by side. Prints, on rank 0, global real tokens per second over the timed steps and the share of
// the step spent in the all-reduce. Each rank's loss is its share of the global batch's (loss_task_rows), so the
// summed gradients are the global batch's.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_backends.hpp"
#include "hyperadapt/distributed/data_parallel.hpp"
#include "hyperadapt/distributed/mpi_communicator.hpp"
#include "hyperadapt/models/camtl.hpp"
#include "hyperadapt/nn/parameters.hpp"
#include "hyperadapt/optim/adamw.hpp"
#include "hyperadapt/optim/clip.hpp"
#include "models/glue_batches.hpp"

using namespace hyperadapt;
#if defined(HYPERADAPT_BENCH_WITH_CBLAS)
using B = cpu_blas;
#else
using B = cpu;
#endif

int main(int argc, char** argv) try {
    mpi_session session(argc, argv);
    mpi_communicator comm;
    int threads = 1, steps = 12, warmup = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i];
        const int v = std::atoi(argv[i + 1]);
        if (k == "--threads") threads = v;
        else if (k == "--steps") steps = v;
        else if (k == "--warmup") warmup = v;
        else throw config_error("bench_data_parallel_step: unknown option " + k + " (--threads, --steps, --warmup)");
    }
    const std::size_t batch = 32, seq = 128;
    B backend(B::options{.threads = threads});
    camtl_options o;
    o.backbone = {.vocab_size = 30522, .hidden = 384, .layers = 6, .heads = 12, .intermediate = 1536};
    o.seq_len = seq;
    o.tasks = bench::glue_six();
    camtl_model<B, float> model(backend, o);
    rng_stream init(1);
    model.initialize(init);
    model.apply_freezing();
    check_same_parameters(model, comm);
    broadcast_parameters(model, comm);
    adamw<B, float> opt(model, {.lr = 2e-5});

    std::string why;
    const auto glue = bench::glue_six_tasks(seq, 2000, why);
    if (glue.empty()) throw io_error("bench_data_parallel_step: " + why);
    std::vector<multitask_batch<B, float>> local;
    std::vector<double> global_tokens;
    for (const auto& rows : bench::glue_rows(glue, batch, 24)) {
        local.push_back(make_batch<B, float>(backend, glue, balanced_share(rows, glue, comm.rank(), comm.size()), batch_padding::length_groups));
        local.back().loss_task_rows = task_row_counts(rows, glue.size());
        global_tokens.push_back(static_cast<double>(make_batch<B, float>(backend, glue, rows, batch_padding::length_groups).real_tokens));
    }
    rng_stream dropout(2 + static_cast<std::uint64_t>(comm.rank()));
    double tokens = 0, wait_seconds = 0, reduce_seconds = 0;
    std::chrono::steady_clock::time_point start;
    for (int step = 0; step < warmup + steps; ++step) {
        if (step == warmup) {
            comm.barrier();
            start = std::chrono::steady_clock::now();
        }
        const std::size_t k = static_cast<std::size_t>(step) % local.size();
        typename camtl_model<B, float>::context ctx;
        zero_grad(model);
        (void)model.forward_loss(local[k], ctx, run_mode::train(dropout));
        model.backward(ctx);
        // The all-reduce's time split in two: waiting for the slower rank (a barrier; the shares' lengths differ)
        // and the reduction itself.
        const auto w0 = std::chrono::steady_clock::now();
        comm.barrier();
        const auto r0 = std::chrono::steady_clock::now();
        allreduce_gradients(model, comm, gradient_reduction::sum);
        const auto r1 = std::chrono::steady_clock::now();
        clip_grad_norm(model, 1.0);
        opt.step();
        if (step >= warmup) {
            tokens += global_tokens[k];
            wait_seconds += std::chrono::duration<double>(r0 - w0).count();
            reduce_seconds += std::chrono::duration<double>(r1 - r0).count();
        }
    }
    comm.barrier();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (comm.rank() == 0)
        std::printf("ranks %d threads %d: %d steps, %.0f real tokens/s, %.1f ms per step, waiting for the slower rank "
                    "%.1f %% of it, all-reduce %.1f %%, %zu trainable parameters\n",
                    comm.size(), threads, steps, tokens / seconds, 1e3 * seconds / steps, 100 * wait_seconds / seconds,
                    100 * reduce_seconds / seconds, count_parameters(model).trainable);
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "bench_data_parallel_step: %s\n", e.what());
    return 1;
}
