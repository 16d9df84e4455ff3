#pragma once
// Whole-model runs written once over the backend, so the GPU test (test_cuda_models.cu, nvcc) and its CPU
// reference (model_parity_cpu.cpp, the host compiler: nvcc never sees Eigen) execute the same code: one
// double-precision training step (loss and every gradient) and a short float training run (the loss curve)
// of each multi-task model, from parameter values the CPU side chooses and both sides load.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "hyperadapt/data/multitask_batch.hpp"
#include "hyperadapt/models/camtl.hpp"
#include "hyperadapt/models/pha_bert.hpp"
#include "hyperadapt/nn/parameters.hpp"
#include "hyperadapt/optim/adamw.hpp"
#include "hyperadapt/optim/clip.hpp"
#include "hyperadapt/train/synthetic_tasks.hpp"

namespace hyperadapt::parity {

enum class model_kind { pha_single_pass, pha_two_passes, per_task_adapters, hyperformerpp, pha_mean_heads, camtl };
inline constexpr model_kind all_models[] = {model_kind::pha_single_pass, model_kind::pha_two_passes,
                                            model_kind::per_task_adapters, model_kind::hyperformerpp,
                                            model_kind::pha_mean_heads,  model_kind::camtl};

inline const char* name_of(model_kind k) {
    switch (k) {
        case model_kind::pha_single_pass: return "PHA single pass";
        case model_kind::pha_two_passes: return "PHA two passes";
        case model_kind::per_task_adapters: return "per-task adapters";
        case model_kind::hyperformerpp: return "HyperFormer++";
        case model_kind::pha_mean_heads: return "PHA, heads on the masked mean";
        case model_kind::camtl: return "CA-MTL";
    }
    return "?";
}

/// Parameter values by name, in the model's visiting order.
using named_values = std::vector<std::pair<std::string, std::vector<double>>>;

struct step_result {
    double loss = 0;
    named_values gradients;  ///< trainable parameters only
};

inline const bert_config tiny_bert{.vocab_size = 40, .hidden = 8, .layers = 2, .heads = 2, .intermediate = 12,
                                   .max_position = 8};
inline const std::vector<task_head_spec> tiny_heads{{"order", 2}, {"majority", 2}, {"count", 1}};

inline pha_bert_options pha_options(model_kind k) {
    pha_bert_options o;
    o.backbone = tiny_bert;
    o.tasks = tiny_heads;
    o.bottleneck = 3;
    o.prototype_dim = 5;
    o.retriever_hidden = 6;
    o.hypernet_hidden = 7;
    o.hypernet_projection = 4;
    o.layer_embedding = 3;
    if (k == model_kind::pha_two_passes) o.passes = pha_passes::two;
    if (k == model_kind::per_task_adapters) o.source = adapter_source::per_task;
    if (k == model_kind::hyperformerpp) {
        o.source = adapter_source::hyperformerpp;
        o.hyperformer_reduction = 2;
    }
    if (k == model_kind::pha_mean_heads) o.heads_read = head_input::mean;
    return o;
}

inline camtl_options camtl_tiny() {
    camtl_options o;
    o.backbone = tiny_bert;
    o.seq_len = 8;
    o.tasks = tiny_heads;
    return o;
}

/// Calls f(model) with the model of kind k, built on backend b in precision T.
template <class T, class B, class F>
void with_model(B& b, model_kind k, F&& f) {
    if (k == model_kind::camtl) {
        camtl_model<B, T> m(b, camtl_tiny());
        f(m);
    } else {
        pha_bert<B, T> m(b, pha_options(k));
        f(m);
    }
}

inline std::vector<encoded_task> tiny_tasks() {
    return {synthetic_task(synthetic_kind::order, 24, 8, 3), synthetic_task(synthetic_kind::majority, 24, 8, 4),
            synthetic_task(synthetic_kind::count, 24, 8, 5)};
}

/// Step s's batch: six rows, two of each task, walking through the 24 examples.
inline std::vector<sample_ref> rows_of_step(std::size_t s) {
    std::vector<sample_ref> rows;
    for (std::size_t i = 0; i < 6; ++i) rows.push_back({i % 3, (s * 6 + i) % 24});
    return rows;
}

template <class M, class B>
void load_values(M& m, B& b, const named_values& values) {
    using T = typename M::value_type;
    std::size_t next = 0;
    m.visit_parameters([&](const std::string& name, auto& p) {
        if (next >= values.size() || values[next].first != name || values[next].second.size() != p.size())
            throw std::runtime_error("parity: parameter " + name + " does not match the values given");
        const std::vector<T> v(values[next].second.begin(), values[next].second.end());
        b.copy_from_host(v.data(), p.value.data(), v.size());
        ++next;
    });
    if (next != values.size()) throw std::runtime_error("parity: more values than parameters");
}

template <class M, class B>
named_values read_values(M& m, B& b, bool gradients) {
    using T = typename M::value_type;
    named_values out;
    m.visit_parameters([&](const std::string& name, auto& p) {
        if (gradients && !p.trainable()) return;
        std::vector<T> v(p.size());
        b.copy_to_host(gradients ? p.grad.data() : p.value.data(), v.data(), v.size());
        out.emplace_back(name, std::vector<double>(v.begin(), v.end()));
    });
    return out;
}

/// The values every backend starts from: the model's initialisation, then every parameter moved to a
/// random value of a useful size (the hypernetwork's heads and the adapters start near zero by design, and
/// a zero path would compare nothing).
template <class B>
named_values initial_values(B& b, model_kind k) {
    named_values out;
    with_model<double>(b, k, [&](auto& m) {
        rng_stream init(1);
        m.initialize(init);
        std::uint64_t seed = 77;
        m.visit_parameters([&](const std::string& name, auto& p) {
            const bool gain = name.find("LayerNorm.weight") != std::string::npos;
            b.fill_uniform(p.size(), seed++, 0, gain ? 0.7 : -0.4, gain ? 1.3 : 0.4, p.value.data());
        });
        out = read_values(m, b, false);
    });
    return out;
}

/// One training-mode forward and backward in double (dropout on: its masks are the same counter RNG on
/// every backend), every parameter trainable.
template <class B>
step_result double_step(B& b, model_kind k, const named_values& values) {
    step_result r;
    const auto tasks = tiny_tasks();
    with_model<double>(b, k, [&](auto& m) {
        m.visit_parameters([](const std::string&, auto& p) { p.unfreeze(); });
        load_values(m, b, values);
        const auto batch = make_batch<B, double>(b, tasks, rows_of_step(0));
        typename std::remove_reference_t<decltype(m)>::context ctx;
        rng_stream dropout(4);
        zero_grad(m);
        r.loss = m.forward_loss(batch, ctx, run_mode::train(dropout));
        m.backward(ctx);
        r.gradients = read_values(m, b, true);
    });
    return r;
}

/// `steps` float AdamW steps (the model's own freezing, clipping at 1, dropout on); the loss of each.
template <class B>
std::vector<double> float_training(B& b, model_kind k, const named_values& values, std::size_t steps) {
    std::vector<double> losses;
    const auto tasks = tiny_tasks();
    with_model<float>(b, k, [&](auto& m) {
        load_values(m, b, values);
        m.apply_freezing();
        adamw<B, float> opt(m, {.lr = 1e-2});
        rng_stream dropout(4);
        for (std::size_t s = 0; s < steps; ++s) {
            const auto batch = make_batch<B, float>(b, tasks, rows_of_step(s));
            typename std::remove_reference_t<decltype(m)>::context ctx;
            zero_grad(m);
            losses.push_back(m.forward_loss(batch, ctx, run_mode::train(dropout)));
            m.backward(ctx);
            clip_grad_norm(m, 1.0);
            opt.step();
        }
    });
    return losses;
}

// The CPU side, compiled by the host compiler (model_parity_cpu.cpp).
named_values cpu_initial_values(model_kind k);
step_result cpu_double_step(model_kind k, const named_values& values);
std::vector<double> cpu_float_training(model_kind k, const named_values& values, std::size_t steps);

}  // namespace hyperadapt::parity
