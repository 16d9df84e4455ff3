#pragma once
// The activations of the PHA and HyperFormer modules, each a backend primitive (backend/concepts.hpp:
// relu_primitives, gelu_new_primitives; part of the full `backend` concept):
//
//   relu_forward / relu_backward   y = max(x, 0) with NaN kept (torch.relu); dx = dy where x is not <= 0
//                                  (torch's threshold_backward: a NaN x passes dy on).
//   gelu_new_forward / _backward   HyperFormer's gelu_new (transformers 3.5.1):
//                                  0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), with the tanh saved.
//
// The modules name elementwise_backend; each helper here static_asserts the one primitive it calls, so a
// backend that lacks it fails to compile with a sentence naming that primitive. There is no fallback through
// host memory: on a GPU backend that would be a silent device-host round trip per call.
#include <cstddef>

#include "hyperadapt/backend/concepts.hpp"

namespace hyperadapt::pha_ops {

namespace detail {
template <class B, class T>
concept has_relu_forward = requires(B& b, std::size_t n, const T* x, T* y) { b.relu_forward(n, x, y); };
template <class B, class T>
concept has_relu_backward = requires(B& b, std::size_t n, const T* x, T* dx) { b.relu_backward(n, x, x, dx); };
template <class B, class T>
concept has_gelu_new_forward = requires(B& b, std::size_t n, const T* x, T* y) { b.gelu_new_forward(n, x, y, y); };
template <class B, class T>
concept has_gelu_new_backward = requires(B& b, std::size_t n, const T* x, T* dx) {
    b.gelu_new_backward(n, x, x, x, dx);
};
}  // namespace detail

/// y = max(x, 0), NaN kept. y may alias x.
template <elementwise_backend B, class T>
void relu_forward(B& b, std::size_t n, const T* x, T* y) {
    static_assert(detail::has_relu_forward<B, T>,
                  "pha_ops::relu_forward: the backend has no relu_forward(n, x, y) primitive for this scalar type "
                  "(hyperadapt/backend/concepts.hpp, relu_primitives); ReLU has no host fallback");
    if constexpr (detail::has_relu_forward<B, T>)  // false only after the static_assert failed: one error, not two
        if (n) b.relu_forward(n, x, y);
}

/// dx = dy * [x > 0] (the subgradient 0 at x = 0, as torch; a NaN x passes dy on, as torch). dx may alias dy.
template <elementwise_backend B, class T>
void relu_backward(B& b, std::size_t n, const T* x, const T* dy, T* dx) {
    static_assert(detail::has_relu_backward<B, T>,
                  "pha_ops::relu_backward: the backend has no relu_backward(n, x, dy, dx) primitive for this scalar "
                  "type (hyperadapt/backend/concepts.hpp, relu_primitives); ReLU has no host fallback");
    if constexpr (detail::has_relu_backward<B, T>)  // false only after the static_assert failed: one error, not two
        if (n) b.relu_backward(n, x, dy, dx);
}

/// y = 0.5 x (1 + t), t = tanh(c (x + a x^3)); t is written to `t` (n values, not aliasing x) for the backward.
template <elementwise_backend B, class T>
void gelu_new_forward(B& b, std::size_t n, const T* x, T* y, T* t) {
    static_assert(detail::has_gelu_new_forward<B, T>,
                  "pha_ops::gelu_new_forward: the backend has no gelu_new_forward(n, x, y, t) primitive for this "
                  "scalar type (hyperadapt/backend/concepts.hpp, gelu_new_primitives); gelu_new has no host fallback");
    if constexpr (detail::has_gelu_new_forward<B, T>)  // false only after the static_assert failed: one error, not two
        if (n) b.gelu_new_forward(n, x, y, t);
}

/// dx = dy * (0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2)), from x and the saved t. dx may alias dy.
template <elementwise_backend B, class T>
void gelu_new_backward(B& b, std::size_t n, const T* x, const T* t, const T* dy, T* dx) {
    static_assert(detail::has_gelu_new_backward<B, T>,
                  "pha_ops::gelu_new_backward: the backend has no gelu_new_backward(n, x, t, dy, dx) primitive for "
                  "this scalar type (hyperadapt/backend/concepts.hpp, gelu_new_primitives); gelu_new has no host "
                  "fallback");
    if constexpr (detail::has_gelu_new_backward<B, T>)  // false only after the static_assert failed: one error, not two
        if (n) b.gelu_new_backward(n, x, t, dy, dx);
}

}  // namespace hyperadapt::pha_ops
