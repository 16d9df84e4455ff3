#pragma once
#include <string>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/nn/layer.hpp"

namespace hyperadapt {

/// LayerNorm over the last dimension: y = (x - mean) / sqrt(var + eps) * weight + bias (biased variance,
/// as torch.nn.LayerNorm). Parameters are named "weight" and "bias" as in Hugging Face's BERT.
template <elementwise_backend B, class T = float>
class layer_norm {
public:
    using backend_type = B;
    using value_type = T;
    struct context {
        tensor<B, T> input;
        tensor<B, T> mean;
        tensor<B, T> rstd;
    };

    layer_norm(B& backend, std::size_t features, std::string name = "LayerNorm", T eps = T(1e-12))
        : backend_(&backend),
          name_(std::move(name)),
          features_(features),
          eps_(eps),
          weight_(backend, {features}, /*decay=*/false),
          bias_(backend, {features}, /*decay=*/false) {
        if (features == 0) throw config_error(name_ + ": layer_norm needs at least one feature");
        weight_.value.fill(T(1));
        bias_.value.zero();
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] std::size_t features() const noexcept { return features_; }
    [[nodiscard]] T eps() const noexcept { return eps_; }
    parameter<B, T>& weight() noexcept { return weight_; }
    parameter<B, T>& bias() noexcept { return bias_; }

    tensor<B, T> forward(const tensor<B, T>& x, context& ctx, run_mode = {}) const {
        expect_cols(name_.c_str(), "input", features_, x.shape());
        ctx.input = x;
        ctx.mean = tensor<B, T>(*backend_, {x.rows()});
        ctx.rstd = tensor<B, T>(*backend_, {x.rows()});
        tensor<B, T> y(*backend_, x.shape());
        backend_->layer_norm_forward(x.rows(), features_, eps_, x.data(), weight_.value.data(), bias_.value.data(),
                                     y.data(), ctx.mean.data(), ctx.rstd.data());
        return y;
    }

    tensor<B, T> apply(const tensor<B, T>& x) const {
        context ctx;
        return forward(x, ctx);
    }

    tensor<B, T> backward(const tensor<B, T>& dy, context& ctx) {
        if (ctx.input.empty()) throw error(name_ + ": backward called without a training forward");
        expect_shape(name_.c_str(), "output gradient", ctx.input.shape(), dy.shape());
        tensor<B, T> dx(*backend_, dy.shape());
        backend_->layer_norm_backward(dy.rows(), features_, ctx.input.data(), weight_.value.data(), ctx.mean.data(),
                                      ctx.rstd.data(), dy.data(), dx.data(), weight_.grad_data(), bias_.grad_data());
        return dx;
    }

    template <class F>
    void visit_parameters(F&& f) {
        f(join_name(name_, "weight"), weight_);
        f(join_name(name_, "bias"), bias_);
    }

private:
    B* backend_;
    std::string name_;
    std::size_t features_;
    T eps_;
    parameter<B, T> weight_;
    parameter<B, T> bias_;
};

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
// layer_norm: no initialize(rng): its parameters start at ones and zeros, as BERT's.
static_assert(unary_layer<layer_norm<archetype_backend, float>>,
              "hyperadapt::layer_norm must be a unary layer (nn/layer.hpp)");
}  // namespace hyperadapt
