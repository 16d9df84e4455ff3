#pragma once
// PHA's prototypical hypernetwork (spec §2.4; PHA modeling/adapter_generators.py::ParameterGenerator and
// SimpleGenerator). For adapter layer l and a batch of conditions k (the prototype of each example's task):
//
//   u = [k ; e_l]                                   e_l = layer_embed(l)             (batch, c + e)
//   g = LayerNorm(W_2 ReLU(W_1 u + b_1) + b_2)      eps 1e-6                          (batch, p)
//   up weight   = H_up g     (batch, r*d), viewed (r, d)     down weight = H_down g  (batch, d*r), viewed (d, r)
//   up bias     = H_bu g     (batch, d)                      down bias   = H_bd g    (batch, r)
//
// i.e. exactly the adapter_weights layout that task_adapter's generated path reads. The concatenation is
// never built: W_1 is applied as two GEMMs over its column blocks (the layer-embedding half is one row,
// broadcast to the batch).
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
#include <string>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/layers/layer_norm.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/layers/pha/pha_ops.hpp"
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
        tensor<B, T> condition;  // (batch, c)
        std::size_t layer = 0;
        tensor<B, T> h1;  // pre-ReLU (batch, h)
        typename linear<B, T>::context l2, up_w, down_w, up_b, down_b;
        typename layer_norm<B, T>::context norm;
        bool ready = false;
    };

    prototypical_hypernet(B& backend, prototypical_hypernet_config cfg, std::string name = "")
        : backend_(&backend),
          name_(std::move(name)),
          cfg_(cfg),
          layer_embed_(backend, {cfg.layers, cfg.layer_embedding}),
          w1_(backend, {cfg.hidden, cfg.condition + cfg.layer_embedding}),
          b1_(backend, {cfg.hidden}, /*decay=*/false),
          l2_(backend, cfg.hidden, cfg.projection, join_name(name_, "decoder.linear2")),
          norm_(backend, cfg.projection, join_name(name_, "decoder.LayerNorm"), static_cast<T>(cfg.layer_norm_eps)),
          up_w_(backend, cfg.projection, cfg.features * cfg.bottleneck, join_name(name_, "decoder.weight_up")),
          down_w_(backend, cfg.projection, cfg.features * cfg.bottleneck, join_name(name_, "decoder.weight_down")),
          up_b_(backend, cfg.projection, cfg.features, join_name(name_, "decoder.bias_up")),
          down_b_(backend, cfg.projection, cfg.bottleneck, join_name(name_, "decoder.bias_down")) {
        if (cfg.condition == 0 || cfg.layer_embedding == 0 || cfg.layers == 0 || cfg.hidden == 0 ||
            cfg.projection == 0 || cfg.features == 0 || cfg.bottleneck == 0)
            throw config_error(name_ + ": prototypical_hypernet needs non-zero sizes");
        layer_embed_.value.zero();
        w1_.value.zero();
        b1_.value.zero();
    }

    template <class Rng>
    void initialize(Rng& rng) {
        auto uniform = [&](tensor<B, T>& t, double bound) {
            backend_->fill_uniform(t.size(), rng.seed(), rng.take(t.size()), static_cast<T>(-bound),
                                   static_cast<T>(bound), t.data());
        };
        backend_->fill_normal(layer_embed_.size(), rng.seed(), rng.take(layer_embed_.size()), T(0), T(1),
                              layer_embed_.value.data());
        const double in1 = static_cast<double>(cfg_.condition + cfg_.layer_embedding);
        uniform(w1_.value, 1 / std::sqrt(in1));
        uniform(b1_.value, 1 / std::sqrt(in1));
        uniform(l2_.weight().value, 1 / std::sqrt(static_cast<double>(cfg_.hidden)));
        uniform(l2_.bias().value, 1 / std::sqrt(static_cast<double>(cfg_.hidden)));
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
        const std::size_t c = cfg_.condition, e = cfg_.layer_embedding, h = cfg_.hidden, ce = c + e;
        if (condition.shape().rank() != 2 || condition.shape()[1] != c || condition.shape()[0] == 0)
            throw shape_error(name_ + ": condition has shape " + condition.shape().str() + ", expected (batch, " +
                              std::to_string(c) + ")");
        if (layer >= cfg_.layers)
            throw error(name_ + ": layer " + std::to_string(layer) + " out of range for " +
                        std::to_string(cfg_.layers) + " layers");
        const std::size_t nb = condition.shape()[0];
        ctx = {};
        ctx.condition = condition;
        ctx.layer = layer;
        // W_1 u + b_1 = k W_1[:, :c]^T + (e_l W_1[:, c:]^T + b_1)
        ctx.h1 = tensor<B, T>(*backend_, {nb, h});
        backend_->gemm(transpose::no, transpose::yes, nb, h, c, T(1), condition.data(), c, w1_.value.data(), ce, T(0),
                       ctx.h1.data(), h);
        tensor<B, T> row = b1_.value.clone();
        backend_->gemm(transpose::no, transpose::yes, 1, h, e, T(1), layer_embed_.value.data() + layer * e, e,
                       w1_.value.data() + c, ce, T(1), row.data(), h);
        backend_->add_row_vector(nb, h, row.data(), ctx.h1.data());
        tensor<B, T> a(*backend_, ctx.h1.shape());
        pha_ops::relu_forward(*backend_, a.size(), ctx.h1.data(), a.data());
        const tensor<B, T> g = norm_.forward(l2_.forward(a, ctx.l2, mode), ctx.norm, mode);
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
        tensor<B, T> dh1 = l2_.backward(norm_.backward(dg, ctx.norm), ctx.l2);
        pha_ops::relu_backward(*backend_, dh1.size(), ctx.h1.data(), dh1.data(), dh1.data());
        const std::size_t c = cfg_.condition, e = cfg_.layer_embedding, h = cfg_.hidden, ce = c + e;
        const std::size_t nb = ctx.condition.shape()[0];
        const T* emb = layer_embed_.value.data() + ctx.layer * e;
        tensor<B, T> colsum = tensor<B, T>::zeros(*backend_, {h});
        backend_->accumulate_column_sums(nb, h, dh1.data(), colsum.data());
        if (w1_.trainable()) {
            backend_->gemm(transpose::yes, transpose::no, h, c, nb, T(1), dh1.data(), h, ctx.condition.data(), c, T(1),
                           w1_.grad.data(), ce);
            backend_->gemm(transpose::yes, transpose::no, h, e, 1, T(1), colsum.data(), h, emb, e, T(1),
                           w1_.grad.data() + c, ce);
        }
        if (b1_.trainable()) backend_->axpy(h, T(1), colsum.data(), b1_.grad.data());
        if (layer_embed_.trainable())
            backend_->gemm(transpose::no, transpose::no, 1, e, h, T(1), colsum.data(), h, w1_.value.data() + c, ce, T(1),
                           layer_embed_.grad.data() + ctx.layer * e, e);
        tensor<B, T> dcond(*backend_, ctx.condition.shape());
        backend_->gemm(transpose::no, transpose::no, nb, c, h, T(1), dh1.data(), h, w1_.value.data(), ce, T(0),
                       dcond.data(), c);
        return dcond;
    }

    template <class F>
    void visit_parameters(F&& f) {
        f(join_name(name_, "layer_embed.weight"), layer_embed_);
        f(join_name(name_, "decoder.linear1.weight"), w1_);
        f(join_name(name_, "decoder.linear1.bias"), b1_);
        l2_.visit_parameters(f);
        norm_.visit_parameters(f);
        up_w_.visit_parameters(f);
        down_w_.visit_parameters(f);
        up_b_.visit_parameters(f);
        down_b_.visit_parameters(f);
    }

private:
    B* backend_;
    std::string name_;
    prototypical_hypernet_config cfg_;
    parameter<B, T> layer_embed_, w1_, b1_;
    linear<B, T> l2_;
    layer_norm<B, T> norm_;
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
