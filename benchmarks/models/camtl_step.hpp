#pragma once
// One CA-MTL training step at the MiniLM shape (6 layers, hidden 384, 12 heads, FFN 1536), batch 32, L = 128,
// fp32, six tasks mixed in the batch, lower half frozen as the reference: the side of
// benchmarks/pytorch/camtl_step.py written once over the backend (bench_camtl_step.cpp on the CPU,
// bench_camtl_step_cuda.cu on the GPU; same model, same step: zero grads, forward, per-task loss, backward,
// clipping, AdamW). Weights are random; only the time matters. Synthetic batches and the six GLUE tasks' real
// lengths, padded to 128, to the batch's longest or in length groups (as models/pha_step.hpp).
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "hyperadapt/models/camtl.hpp"
#include "hyperadapt/nn/parameters.hpp"
#include "hyperadapt/optim/adamw.hpp"
#include "hyperadapt/optim/clip.hpp"
#include "models/glue_batches.hpp"

namespace hyperadapt::bench {

/// Times CA-MTL steps on `backend`; the backend is synchronized after every step, so an asynchronous (GPU)
/// backend is timed to the end of its work (free on the CPU).
template <class B>
void camtl_step(benchmark::State& state, B& backend, step_batches which = step_batches::synthetic) {
    const std::size_t batch = 32, seq = 128, tasks = 6;
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
    const auto batches = step_batches_for<B, float>(state, backend, which, all, rows, batch, seq);
    if (batches.empty()) return;  // skipped: no GLUE data
    std::size_t next = 0;
    double tokens = 0;
    rng_stream dropout(2);
    for (auto _ : state) {
        const auto& b = batches[next++ % batches.size()];
        tokens += which == step_batches::synthetic ? static_cast<double>(batch * seq) : static_cast<double>(b.real_tokens);
        typename camtl_model<B, float>::context ctx;
        zero_grad(model);
        benchmark::DoNotOptimize(model.forward_loss(b, ctx, run_mode::train(dropout)));
        model.backward(ctx);
        clip_grad_norm(model, 1.0);
        opt.step();
        backend.synchronize();
    }
    state.counters["tokens/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsRate);
    state.counters["real/computed"] = padding_efficiency(batches);
    state.counters["trainable"] = static_cast<double>(count_parameters(model).trainable);
    report_tensor_memory(state, backend);
}

}  // namespace hyperadapt::bench
