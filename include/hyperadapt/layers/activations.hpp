#pragma once
// Parameter-free element-wise layers: GELU (erf form, as BERT) and tanh.
#include <string>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/nn/layer.hpp"

namespace hyperadapt {

namespace detail {
/// Shared shell of a parameter-free element-wise layer; `Op` supplies forward(b, n, x, y) and
/// backward(b, n, x, y, dy, dx).
template <elementwise_backend B, class T, class Op>
class elementwise_layer {
public:
    using backend_type = B;
    using value_type = T;
    struct context {
        tensor<B, T> input;
        tensor<B, T> output;
    };

    explicit elementwise_layer(B& backend, std::string name) : backend_(&backend), name_(std::move(name)) {}

    [[nodiscard]] const std::string& name() const noexcept { return name_; }

    tensor<B, T> forward(const tensor<B, T>& x, context& ctx, run_mode = {}) const {
        tensor<B, T> y(*backend_, x.shape());
        Op::forward(*backend_, x.size(), x.data(), y.data());
        ctx.input = x;
        ctx.output = y;
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
        Op::backward(*backend_, dy.size(), ctx.input.data(), ctx.output.data(), dy.data(), dx.data());
        return dx;
    }
    template <class F>
    void visit_parameters(F&&) {}

private:
    B* backend_;
    std::string name_;
};

struct gelu_op {
    template <class B, class T>
    static void forward(B& b, std::size_t n, const T* x, T* y) { b.gelu_forward(n, x, y); }
    template <class B, class T>
    static void backward(B& b, std::size_t n, const T* x, const T*, const T* dy, T* dx) { b.gelu_backward(n, x, dy, dx); }
};
struct tanh_op {
    template <class B, class T>
    static void forward(B& b, std::size_t n, const T* x, T* y) { b.tanh_forward(n, x, y); }
    template <class B, class T>
    static void backward(B& b, std::size_t n, const T*, const T* y, const T* dy, T* dx) { b.tanh_backward(n, y, dy, dx); }
};
}  // namespace detail

/// GELU, erf form: x * Phi(x).
template <elementwise_backend B, class T = float>
class gelu : public detail::elementwise_layer<B, T, detail::gelu_op> {
public:
    explicit gelu(B& backend, std::string name = "gelu")
        : detail::elementwise_layer<B, T, detail::gelu_op>(backend, std::move(name)) {}
};

/// Hyperbolic tangent (BERT's pooler activation).
template <elementwise_backend B, class T = float>
class tanh_activation : public detail::elementwise_layer<B, T, detail::tanh_op> {
public:
    explicit tanh_activation(B& backend, std::string name = "tanh")
        : detail::elementwise_layer<B, T, detail::tanh_op>(backend, std::move(name)) {}
};

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
static_assert(unary_layer<gelu<archetype_backend, float>>,
              "hyperadapt::gelu must be a unary layer (nn/layer.hpp)");
static_assert(unary_layer<tanh_activation<archetype_backend, float>>,
              "hyperadapt::tanh_activation must be a unary layer (nn/layer.hpp)");
}  // namespace hyperadapt
