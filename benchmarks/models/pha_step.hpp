#pragma once
// One PHA training step at the MiniLM shape (all-MiniLM-L6-v2: 6 layers, hidden 384, 12 heads, FFN 1536),
// batch 32, L = 128, fp32, six tasks of mixed kinds in the batch (one regression), PHA's defaults (single pass,
// split 3: shared parallel adapters in layers 0-2, retriever on layer 2's output, adapters generated from the
// task prototypes in layers 3-5; bottleneck 64, prototypes 64, contrastive losses on) and the reference's
// freezing (only adapters, retriever, hypernetwork, prototypes and heads train): the side of
// benchmarks/pytorch/pha_step.py written once over the backend (bench_pha_step.cpp on the CPU,
// bench_pha_step_cuda.cu on the GPU; same model, same step: zero grads, forward, loss, backward, clipping,
// AdamW). Weights are random; only the time matters.
//
// Two kinds of batches: synthetic ids (half the rows padded after 64 of 128 positions; every step the same
// batch, tokens/s counts all 128 positions of every row, as before) and the six GLUE tasks' real lengths
// (models/glue_batches.hpp; tokens/s counts real tokens only), padded to 128, to each batch's longest, or in
// length groups (batch_padding::length_groups).
#include <benchmark/benchmark.h>

#include <chrono>
#include <filesystem>

#include "hyperadapt/io/hf_checkpoint.hpp"
#include "hyperadapt/models/pha_bert.hpp"
#include "hyperadapt/nn/parameters.hpp"
#include "hyperadapt/optim/adamw.hpp"
#include "hyperadapt/optim/clip.hpp"
#include "models/glue_batches.hpp"

namespace hyperadapt::bench {

/// all-MiniLM-L6-v2's config.json when the model is in .deps, else the same numbers.
inline bert_config minilm_config() {
#if defined(HYPERADAPT_MINILM_DIR)
    if (std::filesystem::exists(std::filesystem::path(HYPERADAPT_MINILM_DIR) / "config.json"))
        return io::read_bert_config(HYPERADAPT_MINILM_DIR);
#endif
    return {.vocab_size = 30522, .hidden = 384, .layers = 6, .heads = 12, .intermediate = 1536};
}


/// Times PHA steps on `backend`; the backend is synchronized after every step, so an asynchronous (GPU)
/// backend is timed to the end of its work.
template <class B>
void pha_step(benchmark::State& state, B& backend, step_batches which = step_batches::synthetic) {
    const std::size_t batch = 32, seq = 128;
    // name, labels (1 = regression)
    const std::vector<task_head_spec> specs = {{"rte", 2},  {"mrpc", 2}, {"stsb", 1},
                                               {"cola", 2}, {"sst2", 2}, {"wnli", 2}};
    const std::size_t tasks = specs.size();
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
    const auto batches = step_batches_for<B, float>(state, backend, which, all, rows, batch, seq);
    if (batches.empty()) return;  // skipped: no GLUE data
    std::size_t next = 0;
    double tokens = 0;
    rng_stream dropout(2);
    // Where a step's time goes: the backend is synchronized at each phase's end (free on the CPU).
    double forward_s = 0, backward_s = 0, clip_s = 0, adamw_s = 0;
    auto lap = [&, start = std::chrono::steady_clock::now()](double* into) mutable {
        backend.synchronize();
        const auto now = std::chrono::steady_clock::now();
        if (into) *into += std::chrono::duration<double>(now - start).count();
        start = now;
    };
    for (auto _ : state) {
        const auto& b = batches[next++ % batches.size()];
        tokens += which == step_batches::synthetic ? static_cast<double>(batch * seq) : static_cast<double>(b.real_tokens);
        typename pha_bert<B, float>::context ctx;
        lap(nullptr);
        zero_grad(model);
        benchmark::DoNotOptimize(model.forward_loss(b, ctx, run_mode::train(dropout)));
        lap(&forward_s);
        model.backward(ctx);
        lap(&backward_s);
        clip_grad_norm(model, 1.0);
        lap(&clip_s);
        opt.step();
        lap(&adamw_s);
    }
    const double ms_per_step = 1e3 / static_cast<double>(state.iterations());
    state.counters["forward_ms"] = forward_s * ms_per_step;
    state.counters["backward_ms"] = backward_s * ms_per_step;
    state.counters["clip_ms"] = clip_s * ms_per_step;
    state.counters["adamw_ms"] = adamw_s * ms_per_step;
    state.counters["tokens/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsRate);
    state.counters["real/computed"] = padding_efficiency(batches);
    state.counters["trainable"] = static_cast<double>(count_parameters(model).trainable);
    report_tensor_memory(state, backend);
}

}  // namespace hyperadapt::bench
