#pragma once
// HyperFormer's adapter with generated weights (spec §3.1; rabeehk/hyperformer
// adapters/adapter_controller.py::MetaLayersAdapterController, as modeling_t5.py wires it into T5LayerFF and
// T5LayerSelfAttention). For a sub-layer output y:
//
//   z  = LN(y; g_pre, b_pre)             only with pre_layer_norm (add_layer_norm_before_adapter)
//   o  = gelu_new(z W_down^T + b_down) W_up^T + b_up
//   y' = y + LN(o; g_post, b_post)       the LN only with post_layer_norm (add_layer_norm_after_adapter)
//
// with F.layer_norm's eps 1e-5 and the generated gains used as they come (no 1 + g). gelu_new is
// transformers 3.5.1's tanh form. The caller adds h + Dropout(y') as T5 does.
//
// Weights: hyperformer_adapter_weights (hyperformer_hypernet's output) in F.linear's [out, in] layout:
// down weight (G, r*d) viewed (G, r, d), up weight (G, d*r) viewed (G, d, r), biases and gains per row. G is
// either the batch (one set per example) or 1: HyperFormer's batches are single-task, so the generator can
// run on the one task embedding and the same weights serve the whole batch (the input is then treated as
// one group of batch * seq rows, which also makes every product a single GEMM).
//
// The bottleneck is batched_adapter (layers/pha/batched_adapter.hpp), the one PHA's generated adapter uses
// too, with gelu_new and the [out, in] layout: every product one strided-batched GEMM over the G groups. The
// layer norms with per-group gains run one backend LayerNorm call per group.
// backward returns d y and the gradient of every generated tensor, in the same struct, so that
// hyperformer_hypernet::backward(gradients.weights, ...) chains.
//
// Shapes: y (batch, seq, d) or (batch, d). No parameters of its own.
#include <cstddef>
#include <string>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/layers/pha/batched_adapter.hpp"
#include "hyperadapt/layers/pha/hyperformer_hypernet.hpp"
#include "hyperadapt/nn/layer.hpp"

namespace hyperadapt {

struct hyperformer_adapter_options {
    bool pre_layer_norm = false;  ///< add_layer_norm_before_adapter
    bool post_layer_norm = true;  ///< add_layer_norm_after_adapter (the published configs)
    double layer_norm_eps = 1e-5; ///< F.layer_norm's default, which the authors' code uses
};

template <elementwise_backend B, class T = float>
class hyperformer_adapter {
public:
    using backend_type = B;
    using value_type = T;
    using weights_type = hyperformer_adapter_weights<B, T>;
    /// The bottleneck between the optional norms: gelu_new in F.linear's [out, in] layout.
    using bottleneck_type = batched_adapter<B, T, adapter_activation::gelu_new, weight_layout::out_in>;
    struct context {
        tensor<B, T> input;       // y
        tensor<B, T> z;           // the adapter's input: pre-LN output, or y
        tensor<B, T> pre_mean, pre_rstd;    // (rows)
        typename bottleneck_type::context bottleneck;  // z -> up projection (gelu_new in between)
        tensor<B, T> out;         // up projection, the post-LN input
        tensor<B, T> post_mean, post_rstd;  // (rows)
        weights_type weights;
        std::size_t groups = 0;
    };
    /// d y and d of every generated tensor (shaped like the weights given to forward).
    struct gradients {
        tensor<B, T> input;
        weights_type weights;
    };

    hyperformer_adapter(B& backend, std::size_t features, std::size_t bottleneck, std::string name = "",
                        hyperformer_adapter_options options = {})
        : backend_(&backend),
          name_(std::move(name)),
          options_(options),
          bottleneck_(backend, features, bottleneck, name_, "hyperformer_adapter") {
        if (!(options_.layer_norm_eps > 0)) throw config_error(name_ + ": layer_norm_eps must be positive");
    }

    /// The adapter that consumes what `cfg`'s generator produces (d, r and which norms).
    hyperformer_adapter(B& backend, const hyperformer_hypernet_config& cfg, std::string name = "")
        : hyperformer_adapter(backend, cfg.features, cfg.bottleneck(), std::move(name),
                              {.pre_layer_norm = cfg.pre_layer_norm, .post_layer_norm = cfg.post_layer_norm}) {}

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] std::size_t features() const noexcept { return bottleneck_.features(); }
    [[nodiscard]] std::size_t bottleneck() const noexcept { return bottleneck_.bottleneck(); }
    [[nodiscard]] const hyperformer_adapter_options& options() const noexcept { return options_; }

    tensor<B, T> forward(const tensor<B, T>& y, const weights_type& w, context& ctx, run_mode = {}) const {
        const std::size_t groups = check(y, w);
        ctx = {};
        ctx.input = y;
        ctx.weights = w;
        ctx.groups = groups;
        if (options_.pre_layer_norm) {
            ctx.z = tensor<B, T>(*backend_, y.shape());
            norm_forward(y, w.pre_norm_weight, w.pre_norm_bias, groups, ctx.z, ctx.pre_mean, ctx.pre_rstd);
        } else {
            ctx.z = y;
        }
        // o_g = gelu_new(z_g (len, d) W_down_g^T (d, r) + 1 b_down_g) W_up_g^T (r, d) + 1 b_up_g
        ctx.out = bottleneck_.forward(ctx.z, w, groups, ctx.bottleneck);
        tensor<B, T> out(*backend_, y.shape());
        if (options_.post_layer_norm)
            norm_forward(ctx.out, w.post_norm_weight, w.post_norm_bias, groups, out, ctx.post_mean, ctx.post_rstd);
        else
            backend_->copy(ctx.out.data(), out.data(), out.size());
        backend_->axpy(out.size(), T(1), y.data(), out.data());
        return out;
    }

    gradients backward(const tensor<B, T>& dy, context& ctx) {
        if (ctx.input.empty()) throw error(name_ + ": backward called without a forward");
        expect_shape(name_.c_str(), "output gradient", ctx.input.shape(), dy.shape());
        const auto& w = ctx.weights;
        const std::size_t groups = ctx.groups;
        gradients g;
        // The residual passes dy straight through; the adapter branch is added below.
        g.input = dy.clone();
        tensor<B, T> dout;
        if (options_.post_layer_norm) {
            dout = tensor<B, T>(*backend_, dy.shape());
            g.weights.post_norm_weight = tensor<B, T>::zeros(*backend_, w.post_norm_weight.shape());
            g.weights.post_norm_bias = tensor<B, T>::zeros(*backend_, w.post_norm_bias.shape());
            norm_backward(ctx.out, w.post_norm_weight, ctx.post_mean, ctx.post_rstd, dy, groups, dout,
                          g.weights.post_norm_weight, g.weights.post_norm_bias);
        } else {
            dout = dy;
        }
        const tensor<B, T> dz = bottleneck_.backward(dout, w, ctx.bottleneck, g.weights);
        if (options_.pre_layer_norm) {
            tensor<B, T> dpre(*backend_, dy.shape());
            g.weights.pre_norm_weight = tensor<B, T>::zeros(*backend_, w.pre_norm_weight.shape());
            g.weights.pre_norm_bias = tensor<B, T>::zeros(*backend_, w.pre_norm_bias.shape());
            norm_backward(ctx.input, w.pre_norm_weight, ctx.pre_mean, ctx.pre_rstd, dz, groups, dpre,
                          g.weights.pre_norm_weight, g.weights.pre_norm_bias);
            backend_->axpy(g.input.size(), T(1), dpre.data(), g.input.data());
        } else {
            backend_->axpy(g.input.size(), T(1), dz.data(), g.input.data());
        }
        return g;
    }

    /// No parameters: every weight is generated.
    template <class F>
    void visit_parameters(F&&) {}

private:
    /// Checks y and w and returns the number of weight groups (the batch, or 1).
    std::size_t check(const tensor<B, T>& y, const weights_type& w) const {
        const std::size_t nb = bottleneck_.check_input(name_, y);
        const std::size_t groups = !w.down_weight.empty() && w.down_weight.shape()[0] == 1 ? 1 : nb;
        bottleneck_.check_weights(name_, y, w, groups);
        auto expect = [&](const char* what, const tensor<B, T>& t) {
            bottleneck_.check_generated(name_, y, what, t, groups, features());
        };
        if (options_.pre_layer_norm) {
            expect("pre-norm weight", w.pre_norm_weight);
            expect("pre-norm bias", w.pre_norm_bias);
        }
        if (options_.post_layer_norm) {
            expect("post-norm weight", w.post_norm_weight);
            expect("post-norm bias", w.post_norm_bias);
        }
        return groups;
    }

    /// LayerNorm over d with group g's gain and bias on its rows.
    void norm_forward(const tensor<B, T>& x, const tensor<B, T>& gain, const tensor<B, T>& bias, std::size_t groups,
                      tensor<B, T>& y, tensor<B, T>& mean, tensor<B, T>& rstd) const {
        const std::size_t rows = x.rows(), len = rows / groups, d = features();
        mean = tensor<B, T>(*backend_, {rows});
        rstd = tensor<B, T>(*backend_, {rows});
        const T eps = static_cast<T>(options_.layer_norm_eps);
        for (std::size_t g = 0; g < groups; ++g)
            backend_->layer_norm_forward(len, d, eps, x.data() + g * len * d, gain.data() + g * d, bias.data() + g * d,
                                         y.data() + g * len * d, mean.data() + g * len, rstd.data() + g * len);
    }

    /// dx overwritten; dgain and dbias (zeroed by the caller) accumulated per group.
    void norm_backward(const tensor<B, T>& x, const tensor<B, T>& gain, const tensor<B, T>& mean,
                       const tensor<B, T>& rstd, const tensor<B, T>& dy, std::size_t groups, tensor<B, T>& dx,
                       tensor<B, T>& dgain, tensor<B, T>& dbias) const {
        const std::size_t len = x.rows() / groups, d = features();
        for (std::size_t g = 0; g < groups; ++g)
            backend_->layer_norm_backward(len, d, x.data() + g * len * d, gain.data() + g * d, mean.data() + g * len,
                                          rstd.data() + g * len, dy.data() + g * len * d, dx.data() + g * len * d,
                                          dgain.data() + g * d, dbias.data() + g * d);
    }

    B* backend_;
    std::string name_;
    hyperformer_adapter_options options_;
    bottleneck_type bottleneck_;
};

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
// hyperformer_adapter: several inputs (y, generated weights) and no weights of its own to draw: only parameterized.
static_assert(parameterized<hyperformer_adapter<archetype_backend, float>>,
              "hyperadapt::hyperformer_adapter must be parameterized (nn/layer.hpp)");
}  // namespace hyperadapt
