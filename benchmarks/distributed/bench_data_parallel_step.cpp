// The MiniLM CA-MTL training step of models/bench_camtl_step.cpp (6 layers, hidden 384, six GLUE tasks' real
// lengths in length groups, global batch 32, lower half frozen), data-parallel over MPI ranks: each rank runs
// forward and backward on its 32 / ranks rows of the global batch, the ranks sum their gradients (the trainable
// 8.6 M parameters in one flat buffer, as the trainer holds them), then clip and step alike. Run as one process
// with T threads, or as `mpirun -np R bench_data_parallel_step --threads 1`; benchmarks/compare_data_parallel.sh
// runs both side by side. `--overlap 0` all-reduces the whole buffer after backward (allreduce_gradients);
// `--overlap 1` (the trainer's way) starts each bucket's all-reduce as soon as backward has made it final
// (overlapped_allreduce). Prints, on rank 0, global real tokens per second over the timed steps and the exposed
// communication: the share of the step from backward's return to summed gradients (the wait for the slower rank
// included; with overlap, what the backward pass did not hide). Each rank's loss is its share of the global
// batch's (loss_task_rows), so the summed gradients are the global batch's.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_backends.hpp"
#include "hyperadapt/distributed/data_parallel.hpp"
#include "hyperadapt/distributed/mpi_communicator.hpp"
#include "hyperadapt/distributed/overlapped_allreduce.hpp"
#include "hyperadapt/models/camtl.hpp"
#include "hyperadapt/nn/flat_parameters.hpp"
#include "hyperadapt/nn/parameters.hpp"
#include "hyperadapt/optim/adamw.hpp"
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
    int threads = 1, steps = 12, warmup = 2, overlap = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i];
        const int v = std::atoi(argv[i + 1]);
        if (k == "--threads") threads = v;
        else if (k == "--steps") steps = v;
        else if (k == "--warmup") warmup = v;
        else if (k == "--overlap") overlap = v;
        else throw config_error("bench_data_parallel_step: unknown option " + k + " (--threads, --steps, --warmup, --overlap)");
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
    flat_parameters<B, float> flat(model);
    broadcast_parameters(flat, comm);
    adamw<B, float> opt(model, {.lr = 2e-5});
    overlapped_allreduce<B, float, mpi_communicator> reducer(flat, comm);

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
    double tokens = 0, exposed_seconds = 0;
    std::size_t buckets = 0, early = 0;
    std::chrono::steady_clock::time_point start;
    for (int step = 0; step < warmup + steps; ++step) {
        if (step == warmup) {
            comm.barrier();
            start = std::chrono::steady_clock::now();
        }
        const std::size_t k = static_cast<std::size_t>(step) % local.size();
        typename camtl_model<B, float>::context ctx;
        flat.zero_grad();
        run_mode mode = run_mode::train(dropout);
        if (overlap) {
            reducer.begin();
            mode = mode.reporting_gradients(reducer);
        }
        (void)model.forward_loss(local[k], ctx, mode);
        model.backward(ctx);
        const auto r0 = std::chrono::steady_clock::now();
        if (overlap)
            reducer.finish();
        else
            allreduce_gradients(flat, comm, gradient_reduction::sum);
        const auto r1 = std::chrono::steady_clock::now();
        (void)flat.clip_grad_norm(1.0);
        opt.step();
        if (step >= warmup) {
            tokens += global_tokens[k];
            exposed_seconds += std::chrono::duration<double>(r1 - r0).count();
            if (overlap) {
                buckets += reducer.last_pass().buckets;
                early += reducer.last_pass().started_during_backward;
            }
        }
    }
    comm.barrier();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (comm.rank() == 0)
        std::printf("ranks %d threads %d overlap %d: %d steps, %.0f real tokens/s, %.1f ms per step, exposed communication "
                    "%.1f %% of it (%zu of %zu buckets started during backward), %zu trainable parameters\n",
                    comm.size(), threads, overlap, steps, tokens / seconds, 1e3 * seconds / steps,
                    100 * exposed_seconds / seconds, early, buckets, count_parameters(model).trainable);
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "bench_data_parallel_step: %s\n", e.what());
    return 1;
}
