// One CA-MTL training step at the MiniLM shape (6 layers, hidden 384, 12 heads, FFN 1536), batch 32, L = 128,
// fp32, six tasks mixed in the batch, lower half frozen as the reference: the C++ side of
// benchmarks/pytorch/camtl_step.py (same model, same step: zero grads, forward, per-task loss, backward,
// clipping, AdamW). Weights are random; only the time matters. Synthetic batches and the six GLUE tasks'
// real lengths, padded to 128, to the batch's longest or in length groups (as models/pha_step.hpp; Args:
// threads, batches).
#include <benchmark/benchmark.h>

#include "bench_backends.hpp"
#include "hyperadapt/models/camtl.hpp"
#include "hyperadapt/nn/parameters.hpp"
#include "hyperadapt/optim/adamw.hpp"
#include "hyperadapt/optim/clip.hpp"
#include "models/glue_batches.hpp"

namespace {
using namespace hyperadapt;

template <class B, class... Provider>
void BM_camtl_step(benchmark::State& state, Provider... provider) {
    const std::size_t batch = 32, seq = 128, tasks = 6;
    B backend(typename B::options{.threads = static_cast<int>(state.range(0))}, provider...);
    camtl_options o;
    o.backbone = {.vocab_size = 30522, .hidden = 384, .layers = 6, .heads = 12, .intermediate = 1536};
    o.seq_len = seq;
    for (std::size_t t = 0; t < tasks; ++t) o.tasks.push_back({"task" + std::to_string(t), 2});
    camtl_model<B, float> model(backend, o);
    rng_stream init(1);
    model.initialize(init);
    model.apply_freezing();
    adamw<B, float> opt(model, {.lr = 2e-5});

    encoded_task data;
    data.seq_len = seq;
    std::vector<encoded_task> all(tasks, data);
    std::vector<sample_ref> rows;
    for (std::size_t t = 0; t < tasks; ++t) {
        auto& d = all[t];
        d.info.name = "task" + std::to_string(t);
        for (std::size_t i = 0; i < batch; ++i) {
            for (std::size_t j = 0; j < seq; ++j) {
                d.input_ids.push_back(static_cast<std::int32_t>(1000 + detail::counter_hash(t, i * seq + j) % 29000));
                d.token_type_ids.push_back(0);
                d.attention_mask.push_back(i < batch / 2 && j >= seq / 2 ? 0 : 1);  // half the rows padded
            }
            d.labels.push_back(static_cast<std::int32_t>(i % 2));
            d.scores.push_back(0);
        }
    }
    for (std::size_t i = 0; i < batch; ++i) rows.push_back({i % tasks, i});
    // 0 synthetic, 1 GLUE lengths padded to 128, 2 to the batch's longest, 3 in length groups
    const int which = static_cast<int>(state.range(1));
    std::vector<multitask_batch<B, float>> batches;
    if (which == 0) {
        batches.push_back(make_batch<B, float>(backend, all, rows));
    } else {
        std::string why;
        const auto glue = bench::glue_six_tasks(seq, 2000, why);
        if (glue.empty()) {
            state.SkipWithError(why.c_str());
            return;
        }
        const auto padding = which == 2   ? batch_padding::to_longest
                             : which == 3 ? batch_padding::length_groups
                                          : batch_padding::to_encoded_length;
        for (const auto& r : bench::glue_rows(glue, batch, 24))
            batches.push_back(make_batch<B, float>(backend, glue, r, padding));
    }
    std::size_t next = 0;
    double tokens = 0;
    rng_stream dropout(2);
    for (auto _ : state) {
        const auto& b = batches[next++ % batches.size()];
        tokens += which == 0 ? static_cast<double>(batch * seq) : static_cast<double>(b.real_tokens);
        typename camtl_model<B, float>::context ctx;
        zero_grad(model);
        benchmark::DoNotOptimize(model.forward_loss(b, ctx, run_mode::train(dropout)));
        model.backward(ctx);
        clip_grad_norm(model, 1.0);
        opt.step();
    }
    state.counters["tokens/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsRate);
    state.counters["real/computed"] = bench::padding_efficiency(batches);
    state.counters["trainable"] = static_cast<double>(count_parameters(model).trainable);
    bench::report_tensor_memory(state, backend);
}
BENCHMARK(BM_camtl_step<cpu>)->Name("camtl_step/eigen")->Apply(bench::step_cases);
#if defined(HYPERADAPT_BENCH_WITH_CBLAS)
BENCHMARK(BM_camtl_step<cpu_blas>)->Name("camtl_step/cblas")->Apply(bench::step_cases);
#endif
#if defined(HYPERADAPT_BENCH_WITH_ONEDNN)
void BM_camtl_step_bf16(benchmark::State& s) { BM_camtl_step<bench::bf16_cpu>(s, bench::bf16()); }
BENCHMARK(BM_camtl_step_bf16)->Name("camtl_step/bf16")->Apply(bench::step_cases);
#endif
}  // namespace

BENCHMARK_MAIN();
