#pragma once
// PHA's prototypical hypernetwork (spec §2.4; PHA modeling/adapter_generators.py::ParameterGenerator and
// SimpleGenerator). For adapter layer l and a batch of conditions k (the prototype of each example's task):
//
//   u = [k ; e_l]                                   e_l = layer_embed(l)             (batch, c + e)
//   g = LayerNorm(W_2 ReLU(W_1 u + b_1) + b_2)      eps 1e-6                          (batch, p)
//   up weight   = H_up g     (batch, r*d), viewed (r, d)     down weight = H_down g  (batch, d*r), viewed (d, r)
//   up bias     = H_bu g     (batch, d)                      down bias   = H_bd g    (batch, r)
//
// i.e. exactly the adapter_weights layout that task_adapter's generated path reads. Everything up to g is
// hypernet_trunk (layers/pha/hypernet_trunk.hpp), which HyperFormer's generators share: the concatenation
// is never built, W_1 being applied per column block (the layer-embedding block one row, broadcast).
//
// Parameters (name "" gives the authors' keys): "layer_embed.weight" (layers, e); "decoder.linear1.{weight,
// bias}" (h, c + e); "decoder.linear2.*" (p, h); "decoder.LayerNorm.*" (p); "decoder.{weight_up,
// weight_down, bias_up, bias_down}.{weight,bias}".
//
// Init (the authors'): heads hyperfan-in, weights ~ U(+-1e-3 sqrt(3 / (p fan_in))) with fan_in = r for the
// up head and d for the down head, bias-producing heads U(+-1e-3 sqrt(3 / p)) (spec §9), head biases 0;
// layer embeddings N(0, 1); linear1/linear2 torch.nn.Linear's default U(+-1/sqrt(fan_in)) for weight and
// bias; LayerNorm ones and zeros.
//
// HyperFormer / HyperFormer++ generators (spec §3) differ in input (block-type embedding), head layout
// ([out, in] weights, separate weight/bias generators) and names: layers/pha/hyperformer_hypernet.hpp.
#include <cmath>
#include <cstddef>
#include <span>
#include <string>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/layers/pha/hypernet_trunk.hpp"
#include "hyperadapt/layers/pha/task_adapter.hpp"
#include "hyperadapt/nn/layer.hpp"

namespace hyperadapt {

struct prototypical_hypernet_config {
    std::size_t condition = 64;   ///< c: prototype (task embedding) width
    std::size_t layer_embedding = 64;  ///< e
    std::size_t layers = 12;      ///< number of adapter layers (rows of layer_embed)
    std::size_t hidden = 128;     ///< h: linear1 output
    std::size_t projection = 64;  ///< p: linear2 output, LayerNorm width, head input
    std::size_t features = 768;   ///< d: adapter width
    std::size_t bottleneck = 64;  ///< r
    double layer_norm_eps = 1e-6;
};

/// PHA's published configuration (T5-base decoder: 12 layers, d 768, r 64).
inline prototypical_hypernet_config pha_hypernet_config(std::size_t features = 768, std::size_t bottleneck = 64,
                                                        std::size_t layers = 12) {
    prototypical_hypernet_config c;
    c.features = features;
    c.bottleneck = bottleneck;
    c.layers = layers;
    return c;
}

template <elementwise_backend B, class T = float>
class prototypical_hypernet {
public:
    using backend_type = B;
    using value_type = T;
    struct context {
        std::size_t layer = 0;
        typename hypernet_trunk<B, T>::context trunk;  // condition and layer -> g
        typename linear<B, T>::context up_w, down_w, up_b, down_b;
        bool ready = false;
    };

    prototypical_hypernet(B& backend, prototypical_hypernet_config cfg, std::string name = "")
        : backend_(&backend),
          name_(std::move(name)),
          cfg_(checked(cfg, name_)),
          trunk_(backend, trunk_config(cfg, name_), name_),
          up_w_(backend, cfg.projection, cfg.features * cfg.bottleneck, join_name(name_, "decoder.weight_up")),
          down_w_(backend, cfg.projection, cfg.features * cfg.bottleneck, join_name(name_, "decoder.weight_down")),
          up_b_(backend, cfg.projection, cfg.features, join_name(name_, "decoder.bias_up")),
          down_b_(backend, cfg.projection, cfg.bottleneck, join_name(name_, "decoder.bias_down")) {}

    template <class Rng>
    void initialize(Rng& rng) {
        auto uniform = [&](tensor<B, T>& t, double bound) {
            backend_->fill_uniform(t.size(), rng.seed(), rng.take(t.size()), static_cast<T>(-bound),
                                   static_cast<T>(bound), t.data());
        };
        auto& layer_embed = trunk_.embedding(0);
        backend_->fill_normal(layer_embed.size(), rng.seed(), rng.take(layer_embed.size()), T(0), T(1),
                              layer_embed.value.data());
        const double in1 = static_cast<double>(cfg_.condition + cfg_.layer_embedding);
        uniform(trunk_.linear1_weight().value, 1 / std::sqrt(in1));
        uniform(trunk_.linear1_bias().value, 1 / std::sqrt(in1));
        uniform(trunk_.linear2().weight().value, 1 / std::sqrt(static_cast<double>(cfg_.hidden)));
        uniform(trunk_.linear2().bias().value, 1 / std::sqrt(static_cast<double>(cfg_.hidden)));
        const double p = static_cast<double>(cfg_.projection);
        uniform(up_w_.weight().value, 1e-3 * std::sqrt(3 / (p * static_cast<double>(cfg_.bottleneck))));
        uniform(down_w_.weight().value, 1e-3 * std::sqrt(3 / (p * static_cast<double>(cfg_.features))));
        uniform(up_b_.weight().value, 1e-3 * std::sqrt(3 / p));
        uniform(down_b_.weight().value, 1e-3 * std::sqrt(3 / p));
        for (auto* l : {&up_w_, &down_w_, &up_b_, &down_b_}) l->bias().value.zero();
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] const prototypical_hypernet_config& config() const noexcept { return cfg_; }

    /// The adapter weights of layer `layer` for every row of `condition` (batch, c).
    adapter_weights<B, T> forward(const tensor<B, T>& condition, std::size_t layer, context& ctx,
                                  run_mode mode = {}) const {
        if (layer >= cfg_.layers)
            throw error(name_ + ": layer " + std::to_string(layer) + " out of range for " +
                        std::to_string(cfg_.layers) + " layers");
        ctx = {};
        ctx.layer = layer;
        const tensor<B, T> g = trunk_.forward(condition, std::span(&layer, 1), ctx.trunk, mode);
        adapter_weights<B, T> w;
        w.up_weight = up_w_.forward(g, ctx.up_w, mode);
        w.down_weight = down_w_.forward(g, ctx.down_w, mode);
        w.up_bias = up_b_.forward(g, ctx.up_b, mode);
        w.down_bias = down_b_.forward(g, ctx.down_b, mode);
        ctx.ready = true;
        return w;
    }

    /// Adds the parameter gradients (layer_embed's row `layer` included) and returns d condition.
    tensor<B, T> backward(const adapter_weights<B, T>& dw, context& ctx) {
        if (!ctx.ready) throw error(name_ + ": backward called without a forward");
        tensor<B, T> dg = up_w_.backward(dw.up_weight, ctx.up_w);
        auto acc = [&](const tensor<B, T>& t) { backend_->axpy(dg.size(), T(1), t.data(), dg.data()); };
        acc(down_w_.backward(dw.down_weight, ctx.down_w));
        acc(up_b_.backward(dw.up_bias, ctx.up_b));
        acc(down_b_.backward(dw.down_bias, ctx.down_b));
        return trunk_.backward(dg, ctx.trunk);
    }

    template <class F>
    void visit_parameters(F&& f) {
        trunk_.visit_parameters(f);
        up_w_.visit_parameters(f);
        down_w_.visit_parameters(f);
        up_b_.visit_parameters(f);
        down_b_.visit_parameters(f);
    }

private:
    static const prototypical_hypernet_config& checked(const prototypical_hypernet_config& c,
                                                       const std::string& name) {
        if (c.condition == 0 || c.layer_embedding == 0 || c.layers == 0 || c.hidden == 0 || c.projection == 0 ||
            c.features == 0 || c.bottleneck == 0)
            throw config_error(name + ": prototypical_hypernet needs non-zero sizes");
        return c;
    }
    /// The authors' names: "layer_embed.weight", "decoder.linear1.*", "decoder.linear2.*", "decoder.LayerNorm.*".
    static hypernet_trunk_config trunk_config(const prototypical_hypernet_config& c, const std::string& name) {
        return {.condition = c.condition,
                .embeddings = {{join_name(name, "layer_embed.weight"), c.layers, c.layer_embedding}},
                .hidden = c.hidden,
                .projection = c.projection,
                .layer_norm = true,
                .layer_norm_eps = c.layer_norm_eps,
                .linear1 = join_name(name, "decoder.linear1"),
                .linear2 = join_name(name, "decoder.linear2"),
                .norm = join_name(name, "decoder.LayerNorm")};
    }

    B* backend_;
    std::string name_;
    prototypical_hypernet_config cfg_;
    hypernet_trunk<B, T> trunk_;
    linear<B, T> up_w_, down_w_, up_b_, down_b_;
};

/// PHA's generator under its paper name.
template <elementwise_backend B, class T = float>
using pha_hypernet = prototypical_hypernet<B, T>;

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
// prototypical_hypernet: several inputs (condition, layer): only parameterized + initializable.
static_assert(parameterized<prototypical_hypernet<archetype_backend, float>>,
              "hyperadapt::prototypical_hypernet must be parameterized (nn/layer.hpp)");
static_assert(initializable<prototypical_hypernet<archetype_backend, float>>,
              "hyperadapt::prototypical_hypernet must be initializable: initialize(rng)");
}  // namespace hyperadapt
