#pragma once
// y = gelu(x W^T + b), the erf GELU: BERT's intermediate block (Hugging Face's BertIntermediate), whose output
// is the widest activation of a layer (4 x hidden). Where the backend fuses them (fused_primitives,
// backend/concepts.hpp), the bias add and the GELU are one pass over the product instead of two, and in
// backward GELU's derivative and the bias gradient are one pass instead of two; otherwise the plain primitives
// run in sequence. The parameters are a linear's ("<name>.weight", "<name>.bias").
#include <cstddef>
#include <string>
#include <utility>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/nn/layer.hpp"

namespace hyperadapt {

template <elementwise_backend B, class T = float>
class dense_gelu {
public:
    using backend_type = B;
    using value_type = T;
    struct context {
        typename linear<B, T>::context dense;
        tensor<B, T> pre_activation;  ///< x W^T + b, what GELU's derivative reads
    };

    dense_gelu(B& backend, std::size_t in_features, std::size_t out_features, std::string name = "intermediate.dense")
        : backend_(&backend), dense_(backend, in_features, out_features, std::move(name)) {}

    /// BERT's initialisation of the dense layer.
    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) { dense_.initialize(rng, stddev); }

    [[nodiscard]] const std::string& name() const noexcept { return dense_.name(); }
    linear<B, T>& dense() noexcept { return dense_; }

    tensor<B, T> forward(const tensor<B, T>& x, context& ctx, run_mode mode = {}) const {
        tensor<B, T> t;
        if constexpr (fused_primitives<B, T>) {
            if (dense_.has_bias()) {
                t = dense_.forward_without_bias(x, ctx.dense);
                tensor<B, T> y(*backend_, t.shape());
                backend_->bias_gelu_forward(t.rows(), dense_.out_features(), dense_.bias().value.data(), t.data(),
                                            y.data());
                ctx.pre_activation = t;
                return y;
            }
        }
        t = dense_.forward(x, ctx.dense, mode);
        tensor<B, T> y(*backend_, t.shape());
        backend_->gelu_forward(t.size(), t.data(), y.data());
        ctx.pre_activation = t;
        return y;
    }

    tensor<B, T> backward(const tensor<B, T>& dy, context& ctx) {
        const tensor<B, T>& t = ctx.pre_activation;
        if (t.empty()) throw error(dense_.name() + ": backward called without a training forward");
        expect_shape(dense_.name().c_str(), "output gradient", t.shape(), dy.shape());
        tensor<B, T> dt(*backend_, t.shape());
        if constexpr (fused_primitives<B, T>) {
            if (dense_.has_bias()) {
                parameter<B, T>& b = dense_.bias();
                backend_->bias_gelu_backward(t.rows(), dense_.out_features(), t.data(), dy.data(), dt.data(),
                                             b.trainable() ? b.grad.data() : nullptr);
                return dense_.backward_without_bias(dt, ctx.dense);
            }
        }
        backend_->gelu_backward(t.size(), t.data(), dy.data(), dt.data());
        return dense_.backward(dt, ctx.dense);
    }

    /// backward for a caller that did not keep this layer's output either (the encoder layer frees it once the
    /// output dense has read it: 4 x hidden values per token, a layer's widest activation). dy is the gradient at
    /// the output; use_output(y) is called with the forward's output made again from the pre-activation, equal to
    /// it to the bit, and y is freed when it returns. Returns the input gradient, as backward.
    template <class F>
    tensor<B, T> backward_remaking_output(const tensor<B, T>& dy, context& ctx, F&& use_output) {
        const tensor<B, T>& t = ctx.pre_activation;
        if (t.empty()) throw error(dense_.name() + ": backward called without a training forward");
        expect_shape(dense_.name().c_str(), "output gradient", t.shape(), dy.shape());
        if constexpr (fused_primitives<B, T>) {
            if (dense_.has_bias()) {  // the output and the GELU's derivative from one erf per element
                parameter<B, T>& b = dense_.bias();
                tensor<B, T> dt(*backend_, t.shape());
                {
                    tensor<B, T> y(*backend_, t.shape());
                    backend_->bias_gelu_forward_backward(t.rows(), dense_.out_features(), t.data(), dy.data(),
                                                         y.data(), dt.data(), b.trainable() ? b.grad.data() : nullptr);
                    use_output(std::as_const(y));
                }
                return dense_.backward_without_bias(dt, ctx.dense);
            }
        }
        {
            tensor<B, T> y(*backend_, t.shape());
            backend_->gelu_forward(t.size(), t.data(), y.data());  // forward's own primitive: the same values
            use_output(std::as_const(y));
        }
        tensor<B, T> dt(*backend_, t.shape());
        backend_->gelu_backward(t.size(), t.data(), dy.data(), dt.data());
        return dense_.backward(dt, ctx.dense);
    }

    template <class F>
    void visit_parameters(F&& f) { dense_.visit_parameters(f); }

private:
    B* backend_;
    linear<B, T> dense_;
};

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
static_assert(unary_layer<dense_gelu<archetype_backend, float>>,
              "hyperadapt::dense_gelu must be a unary layer (nn/layer.hpp)");
static_assert(initializable<dense_gelu<archetype_backend, float>>,
              "hyperadapt::dense_gelu must be initializable: initialize(rng)");
}  // namespace hyperadapt
