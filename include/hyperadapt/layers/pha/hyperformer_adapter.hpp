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
// Every product is one strided-batched GEMM over the G groups (the biases as rank-1 products with a ones
// column, as task_adapter). The layer norms with per-group gains run one backend LayerNorm call per group.
// backward returns d y and the gradient of every generated tensor, in the same struct, so that
// hyperformer_hypernet::backward(gradients.weights, ...) chains.
//
// Shapes: y (batch, seq, d) or (batch, d). No parameters of its own.
#include <cstddef>
#include <string>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/layers/pha/hyperformer_hypernet.hpp"
#include "hyperadapt/layers/pha/pha_ops.hpp"
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
    struct context {
        tensor<B, T> input;       // y
        tensor<B, T> z;           // the adapter's input: pre-LN output, or y
        tensor<B, T> pre_mean, pre_rstd;    // (rows)
        tensor<B, T> hidden;      // pre-activation (G, rows per group, r)
        tensor<B, T> tanh;        // gelu_new's saved tanh
        tensor<B, T> act;         // gelu_new output
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
        : backend_(&backend), name_(std::move(name)), d_(features), r_(bottleneck), options_(options) {
        if (features == 0 || bottleneck == 0)
            throw config_error(name_ + ": hyperformer_adapter needs non-zero features and bottleneck, got " +
                               std::to_string(features) + " and " + std::to_string(bottleneck));
        if (!(options_.layer_norm_eps > 0)) throw config_error(name_ + ": layer_norm_eps must be positive");
    }

    /// The adapter that consumes what `cfg`'s generator produces (d, r and which norms).
    hyperformer_adapter(B& backend, const hyperformer_hypernet_config& cfg, std::string name = "")
        : hyperformer_adapter(backend, cfg.features, cfg.bottleneck(), std::move(name),
                              {.pre_layer_norm = cfg.pre_layer_norm, .post_layer_norm = cfg.post_layer_norm}) {}

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] std::size_t features() const noexcept { return d_; }
    [[nodiscard]] std::size_t bottleneck() const noexcept { return r_; }
    [[nodiscard]] const hyperformer_adapter_options& options() const noexcept { return options_; }

    tensor<B, T> forward(const tensor<B, T>& y, const weights_type& w, context& ctx, run_mode = {}) const {
        const std::size_t groups = check(y, w);
        const std::size_t d = d_, r = r_, len = y.rows() / groups;
        const auto ld = static_cast<std::ptrdiff_t>(len * d), lr = static_cast<std::ptrdiff_t>(len * r),
                   dr = static_cast<std::ptrdiff_t>(d * r);
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
        const tensor<B, T> ones = tensor<B, T>::filled(*backend_, {len}, T(1));
        // h_g = z_g (len, d) W_down_g^T (d, r) + 1 b_down_g
        ctx.hidden = tensor<B, T>(*backend_, {groups, len, r});
        backend_->gemm_strided_batched(transpose::no, transpose::yes, len, r, d, T(1), ctx.z.data(), d, ld,
                                       w.down_weight.data(), d, dr, T(0), ctx.hidden.data(), r, lr, groups);
        backend_->gemm_strided_batched(transpose::no, transpose::no, len, r, 1, T(1), ones.data(), 1, 0,
                                       w.down_bias.data(), r, static_cast<std::ptrdiff_t>(r), T(1), ctx.hidden.data(),
                                       r, lr, groups);
        ctx.act = tensor<B, T>(*backend_, ctx.hidden.shape());
        ctx.tanh = tensor<B, T>(*backend_, ctx.hidden.shape());
        pha_ops::gelu_new_forward(*backend_, ctx.act.size(), ctx.hidden.data(), ctx.act.data(), ctx.tanh.data());
        // o_g = a_g (len, r) W_up_g^T (r, d) + 1 b_up_g
        ctx.out = tensor<B, T>(*backend_, y.shape());
        backend_->gemm_strided_batched(transpose::no, transpose::yes, len, d, r, T(1), ctx.act.data(), r, lr,
                                       w.up_weight.data(), r, dr, T(0), ctx.out.data(), d, ld, groups);
        backend_->gemm_strided_batched(transpose::no, transpose::no, len, d, 1, T(1), ones.data(), 1, 0,
                                       w.up_bias.data(), d, static_cast<std::ptrdiff_t>(d), T(1), ctx.out.data(), d,
                                       ld, groups);
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
        const std::size_t groups = ctx.groups, d = d_, r = r_, len = ctx.input.rows() / groups;
        const auto ld = static_cast<std::ptrdiff_t>(len * d), lr = static_cast<std::ptrdiff_t>(len * r),
                   dr = static_cast<std::ptrdiff_t>(d * r);
        const tensor<B, T> ones = tensor<B, T>::filled(*backend_, {len}, T(1));
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
        g.weights.up_bias = tensor<B, T>(*backend_, w.up_bias.shape());
        g.weights.up_weight = tensor<B, T>(*backend_, w.up_weight.shape());
        g.weights.down_bias = tensor<B, T>(*backend_, w.down_bias.shape());
        g.weights.down_weight = tensor<B, T>(*backend_, w.down_weight.shape());
        // d b_up_g = 1^T do_g;  d W_up_g (d, r) = do_g^T a_g;  da_g = do_g W_up_g
        backend_->gemm_strided_batched(transpose::no, transpose::no, 1, d, len, T(1), ones.data(), len, 0, dout.data(),
                                       d, ld, T(0), g.weights.up_bias.data(), d, static_cast<std::ptrdiff_t>(d),
                                       groups);
        backend_->gemm_strided_batched(transpose::yes, transpose::no, d, r, len, T(1), dout.data(), d, ld,
                                       ctx.act.data(), r, lr, T(0), g.weights.up_weight.data(), r, dr, groups);
        tensor<B, T> dh(*backend_, ctx.hidden.shape());
        backend_->gemm_strided_batched(transpose::no, transpose::no, len, r, d, T(1), dout.data(), d, ld,
                                       w.up_weight.data(), r, dr, T(0), dh.data(), r, lr, groups);
        pha_ops::gelu_new_backward(*backend_, dh.size(), ctx.hidden.data(), ctx.tanh.data(), dh.data(), dh.data());
        // d b_down_g = 1^T dh_g;  d W_down_g (r, d) = dh_g^T z_g;  dz_g = dh_g W_down_g
        backend_->gemm_strided_batched(transpose::no, transpose::no, 1, r, len, T(1), ones.data(), len, 0, dh.data(), r,
                                       lr, T(0), g.weights.down_bias.data(), r, static_cast<std::ptrdiff_t>(r), groups);
        backend_->gemm_strided_batched(transpose::yes, transpose::no, r, d, len, T(1), dh.data(), r, lr, ctx.z.data(),
                                       d, ld, T(0), g.weights.down_weight.data(), d, dr, groups);
        tensor<B, T> dz(*backend_, dy.shape());
        backend_->gemm_strided_batched(transpose::no, transpose::no, len, d, r, T(1), dh.data(), r, lr,
                                       w.down_weight.data(), d, dr, T(0), dz.data(), d, ld, groups);
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
        const auto& ys = y.shape();
        if (ys.rank() < 2 || ys.rank() > 3 || ys.cols() != d_ || ys[0] == 0 || ys.size() == 0)
            throw shape_error(name_ + ": input has shape " + ys.str() + ", expected (batch, seq, " +
                              std::to_string(d_) + ") or (batch, " + std::to_string(d_) + ")");
        const std::size_t nb = ys[0];
        const std::size_t groups = !w.down_weight.empty() && w.down_weight.shape()[0] == 1 ? 1 : nb;
        auto expect = [&](const char* what, const tensor<B, T>& t, std::size_t per_group) {
            if (t.empty() || t.shape()[0] != groups || t.size() != groups * per_group)
                throw shape_error(name_ + ": generated " + what + " has shape " + t.shape().str() + ", expected (" +
                                  std::to_string(groups) + ", " + std::to_string(per_group) + ") for input " +
                                  ys.str() + (groups == 1 ? " (one set for the whole batch)" : ""));
        };
        expect("down weight", w.down_weight, r_ * d_);
        expect("down bias", w.down_bias, r_);
        expect("up weight", w.up_weight, d_ * r_);
        expect("up bias", w.up_bias, d_);
        if (options_.pre_layer_norm) {
            expect("pre-norm weight", w.pre_norm_weight, d_);
            expect("pre-norm bias", w.pre_norm_bias, d_);
        }
        if (options_.post_layer_norm) {
            expect("post-norm weight", w.post_norm_weight, d_);
            expect("post-norm bias", w.post_norm_bias, d_);
        }
        return groups;
    }

    /// LayerNorm over d with group g's gain and bias on its rows.
    void norm_forward(const tensor<B, T>& x, const tensor<B, T>& gain, const tensor<B, T>& bias, std::size_t groups,
                      tensor<B, T>& y, tensor<B, T>& mean, tensor<B, T>& rstd) const {
        const std::size_t rows = x.rows(), len = rows / groups, d = d_;
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
        const std::size_t len = x.rows() / groups, d = d_;
        for (std::size_t g = 0; g < groups; ++g)
            backend_->layer_norm_backward(len, d, x.data() + g * len * d, gain.data() + g * d, mean.data() + g * len,
                                          rstd.data() + g * len, dy.data() + g * len * d, dx.data() + g * len * d,
                                          dgain.data() + g * d, dbias.data() + g * d);
    }

    B* backend_;
    std::string name_;
    std::size_t d_, r_;
    hyperformer_adapter_options options_;
};

}  // namespace hyperadapt
