// One PHA training step at the MiniLM shape (all-MiniLM-L6-v2: 6 layers, hidden 384, 12 heads, FFN 1536),
// batch 32, L = 128, fp32, six tasks of mixed kinds in the batch (one regression), PHA's defaults (single pass,
// split 3: shared parallel adapters in layers 0-2, retriever on layer 2's output, adapters generated from the
// task prototypes in layers 3-5; bottleneck 64, prototypes 64, contrastive losses on) and the reference's
// freezing (only adapters, retriever, hypernetwork, prototypes and heads train): the C++ side of
// benchmarks/pytorch/pha_step.py (same model, same step: zero grads, forward, loss, backward, clipping, AdamW).
// Weights are random; only the time matters.
#include <benchmark/benchmark.h>

#include <filesystem>

#include "hyperadapt/backend/cpu.hpp"
#if defined(HYPERADAPT_BENCH_WITH_CBLAS)
#include "hyperadapt/backend/cpu_cblas.hpp"
#endif
#include "hyperadapt/io/hf_checkpoint.hpp"
#include "hyperadapt/models/pha_bert.hpp"
#include "hyperadapt/nn/parameters.hpp"
#include "hyperadapt/optim/adamw.hpp"
#include "hyperadapt/optim/clip.hpp"

namespace {
using namespace hyperadapt;

/// all-MiniLM-L6-v2's config.json when the model is in .deps, else the same numbers.
bert_config minilm_config() {
#if defined(HYPERADAPT_MINILM_DIR)
    if (std::filesystem::exists(std::filesystem::path(HYPERADAPT_MINILM_DIR) / "config.json"))
        return io::read_bert_config(HYPERADAPT_MINILM_DIR);
#endif
    return {.vocab_size = 30522, .hidden = 384, .layers = 6, .heads = 12, .intermediate = 1536};
}

template <class B>
void BM_pha_step(benchmark::State& state) {
    const std::size_t batch = 32, seq = 128;
    // name, labels (1 = regression)
    const std::vector<task_head_spec> specs = {{"rte", 2},  {"mrpc", 2}, {"stsb", 1},
                                               {"cola", 2}, {"sst2", 2}, {"wnli", 2}};
    const std::size_t tasks = specs.size();
    B backend(typename B::options{.threads = static_cast<int>(state.range(0))});
    pha_bert_options o;
    o.backbone = minilm_config();
    o.tasks = specs;
    o.source = adapter_source::prototype_hypernet;
    o.passes = pha_passes::single;
    o.split = 3;
    pha_bert<B, float> model(backend, o);
    rng_stream init(1);
    model.initialize(init);
    model.apply_freezing();
    adamw<B, float> opt(model, {.lr = 2e-5});

    std::vector<encoded_task> all(tasks);
    std::vector<sample_ref> rows;
    for (std::size_t t = 0; t < tasks; ++t) {
        auto& d = all[t];
        d.seq_len = seq;
        d.info.name = specs[t].name;
        d.info.kind = specs[t].num_labels == 1 ? data::task_kind::regression : data::task_kind::classification;
        for (std::size_t i = 0; i < batch; ++i) {
            for (std::size_t j = 0; j < seq; ++j) {
                d.input_ids.push_back(static_cast<std::int32_t>(1000 + detail::counter_hash(t, i * seq + j) % 29000));
                d.token_type_ids.push_back(0);
                d.attention_mask.push_back(i < batch / 2 && j >= seq / 2 ? 0 : 1);  // half the rows padded
            }
            const bool regression = specs[t].num_labels == 1;
            d.labels.push_back(regression ? -1 : static_cast<std::int32_t>(i % 2));
            d.scores.push_back(regression ? static_cast<float>(i % 6) : 0.0f);
        }
    }
    for (std::size_t i = 0; i < batch; ++i) rows.push_back({i % tasks, i});
    const auto b = make_batch<B, float>(backend, all, rows);
    rng_stream dropout(2);
    for (auto _ : state) {
        typename pha_bert<B, float>::context ctx;
        zero_grad(model);
        benchmark::DoNotOptimize(model.forward_loss(b, ctx, run_mode::train(dropout)));
        model.backward(ctx);
        clip_grad_norm(model, 1.0);
        opt.step();
    }
    state.counters["tokens/s"] =
        benchmark::Counter(static_cast<double>(batch * seq), benchmark::Counter::kIsIterationInvariantRate);
    state.counters["trainable"] = static_cast<double>(count_parameters(model).trainable);
}
BENCHMARK(BM_pha_step<cpu>)->Name("pha_step/eigen")->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);
#if defined(HYPERADAPT_BENCH_WITH_CBLAS)
BENCHMARK(BM_pha_step<cpu_blas>)->Name("pha_step/cblas")->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);
#endif
}  // namespace

BENCHMARK_MAIN();
