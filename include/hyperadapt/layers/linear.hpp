#pragma once
#include <string>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/nn/layer.hpp"

namespace hyperadapt {

/// y = x W^T + b over the last dimension, W stored (out, in) as PyTorch and Hugging Face store it.
/// Input (..., in) -> output (..., out).
template <linear_backend B, class T = float>
class linear {
public:
    using backend_type = B;
    using value_type = T;
    struct context {
        tensor<B, T> input;
    };

    linear(B& backend, std::size_t in_features, std::size_t out_features, std::string name = "linear",
           bool with_bias = true)
        : backend_(&backend),
          name_(std::move(name)),
          in_(in_features),
          out_(out_features),
          weight_(backend, {out_features, in_features}),
          bias_(with_bias ? parameter<B, T>(backend, {out_features}, /*decay=*/false) : parameter<B, T>{}) {
        if (in_features == 0 || out_features == 0)
            throw config_error(name_ + ": linear needs non-zero in and out features, got " +
                               std::to_string(in_features) + " -> " + std::to_string(out_features));
        weight_.value.zero();
        if (with_bias) bias_.value.zero();
    }

    /// BERT's initialisation: weights ~ N(0, stddev), bias 0.
    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        backend_->fill_normal(weight_.size(), rng.seed(), rng.take(weight_.size()), T(0), stddev,
                              weight_.value.data());
        if (has_bias()) bias_.value.zero();
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] std::size_t in_features() const noexcept { return in_; }
    [[nodiscard]] std::size_t out_features() const noexcept { return out_; }
    [[nodiscard]] bool has_bias() const noexcept { return !bias_.value.empty(); }
    parameter<B, T>& weight() noexcept { return weight_; }
    parameter<B, T>& bias() noexcept { return bias_; }
    const parameter<B, T>& weight() const noexcept { return weight_; }
    const parameter<B, T>& bias() const noexcept { return bias_; }

    tensor<B, T> forward(const tensor<B, T>& x, context& ctx, run_mode = {}) const {
        expect_cols(name_.c_str(), "input", in_, x.shape());
        ctx.input = x;
        return apply(x);
    }

    /// Forward without saving anything for backward (inference, sampler candidate passes).
    tensor<B, T> apply(const tensor<B, T>& x) const {
        tensor<B, T> y = product(x);
        if (has_bias()) backend_->add_row_vector(x.rows(), out_, bias_.value.data(), y.data());
        return y;
    }

    /// x W^T without the bias, for a caller that adds the bias in its own pass over the output (dense_gelu);
    /// its backward is backward_without_bias.
    tensor<B, T> forward_without_bias(const tensor<B, T>& x, context& ctx) const {
        ctx.input = x;
        return product(x);
    }

    tensor<B, T> backward(const tensor<B, T>& dy, context& ctx) { return backward_impl(dy, ctx, true); }
    /// The input and weight gradients of forward_without_bias: the bias gradient is the caller's.
    tensor<B, T> backward_without_bias(const tensor<B, T>& dy, context& ctx) { return backward_impl(dy, ctx, false); }

    /// dx = dy W alone, for a caller that did not keep the input (the encoder layer's output dense, whose input
    /// the GELU makes again in backward): it adds the parameter gradients with accumulate_parameter_gradients.
    tensor<B, T> input_gradient(const tensor<B, T>& dy) const {
        expect_cols(name_.c_str(), "output gradient", out_, dy.shape());
        tensor<B, T> dx(*backend_, with_last_dim(dy.shape(), in_));
        backend_->gemm(transpose::no, transpose::no, dy.rows(), in_, out_, T(1), dy.data(), out_,
                       weight_.value.data(), in_, T(0), dx.data(), in_);
        return dx;
    }
    /// dW += dy^T x and db += the column sums of dy, for the input x of the forward that gave dy's output: the
    /// rest of backward after input_gradient.
    void accumulate_parameter_gradients(const tensor<B, T>& dy, const tensor<B, T>& x) {
        expect_shape(name_.c_str(), "output gradient", with_last_dim(x.shape(), out_), dy.shape());
        accumulate_gradients(dy, x, true);
    }

    template <class F>
    void visit_parameters(F&& f) {
        f(join_name(name_, "weight"), weight_);
        if (has_bias()) f(join_name(name_, "bias"), bias_);
    }

private:
    tensor<B, T> product(const tensor<B, T>& x) const {
        expect_cols(name_.c_str(), "input", in_, x.shape());
        tensor<B, T> y(*backend_, with_last_dim(x.shape(), out_));
        backend_->gemm(transpose::no, transpose::yes, x.rows(), out_, in_, T(1), x.data(), in_, weight_.value.data(),
                       in_, T(0), y.data(), out_);
        return y;
    }

    tensor<B, T> backward_impl(const tensor<B, T>& dy, context& ctx, bool bias_gradient) {
        const tensor<B, T>& x = ctx.input;
        if (x.empty()) throw error(name_ + ": backward called without a training forward");
        expect_shape(name_.c_str(), "output gradient", with_last_dim(x.shape(), out_), dy.shape());
        accumulate_gradients(dy, x, bias_gradient);
        return input_gradient(dy);
    }

    void accumulate_gradients(const tensor<B, T>& dy, const tensor<B, T>& x, bool bias_gradient) {
        const std::size_t rows = x.rows();
        if (weight_.trainable())  // dW (out, in) += dy^T x
            backend_->gemm(transpose::yes, transpose::no, out_, in_, rows, T(1), dy.data(), out_, x.data(), in_,
                           T(1), weight_.grad.data(), in_);
        if (bias_gradient && has_bias() && bias_.trainable())
            backend_->accumulate_column_sums(rows, out_, dy.data(), bias_.grad.data());
    }

    static hyperadapt::shape with_last_dim(const hyperadapt::shape& s, std::size_t last) {
        switch (s.rank()) {
            case 1: return {last};
            case 2: return {s[0], last};
            case 3: return {s[0], s[1], last};
            default: return {s[0], s[1], s[2], last};
        }
    }

    B* backend_;
    std::string name_;
    std::size_t in_, out_;
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
static_assert(unary_layer<linear<archetype_backend, float>>,
              "hyperadapt::linear must be a unary layer (nn/layer.hpp)");
static_assert(initializable<linear<archetype_backend, float>>,
              "hyperadapt::linear must be initializable: initialize(rng)");
}  // namespace hyperadapt
