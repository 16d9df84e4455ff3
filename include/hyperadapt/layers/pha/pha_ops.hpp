#pragma once
// Arithmetic of the PHA and HyperFormer modules that the backend concept has no primitive for yet, composed
// from what it has. Each helper uses the backend's own primitive when one exists (detected at compile
// time), so adding relu_forward / relu_backward / gelu_new_* to a backend speeds these up without any change
// here.
//
//   relu_forward / relu_backward   y = max(x, 0) (NaN stays NaN); dx = dy where x is not <= 0 (torch's
//                                  threshold_backward: a NaN x passes dy on). Without a backend primitive: a round
//                                  trip through host memory (exact; a copy on the CPU backend, a transfer
//                                  on CUDA).
//   gelu_new_forward / _backward   HyperFormer's gelu_new (transformers 3.5.1):
//                                  0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), from mul_row_vector
//                                  (one row: an element-wise product), tanh, axpy and scale.
//   mul                            out = a * b element-wise (mul_row_vector over one row).
#include <cmath>
#include <cstddef>
#include <vector>

#include "hyperadapt/backend/concepts.hpp"

namespace hyperadapt::pha_ops {

/// out[i] = a[i] * b[i] (accumulate: out += ...). out may alias a.
template <elementwise_backend B, class T>
void mul(B& b, std::size_t n, const T* a, const T* v, T* out, bool accumulate = false) {
    if (n == 0) return;
    b.mul_row_vector(1, n, a, n, v, out, n, accumulate);
}

template <elementwise_backend B, class T>
void relu_forward(B& b, std::size_t n, const T* x, T* y) {
    if (n == 0) return;
    if constexpr (requires { b.relu_forward(n, x, y); }) {
        b.relu_forward(n, x, y);
    } else {
        std::vector<T> h(n);
        b.copy_to_host(x, h.data(), n);
        for (auto& v : h) v = v > T(0) || std::isnan(v) ? v : T(0);  // torch.relu(NaN) is NaN
        b.copy_from_host(h.data(), y, n);
    }
}

/// dx = dy * [x > 0] (the subgradient 0 at x = 0, as torch; a NaN x passes dy on, as torch).
template <elementwise_backend B, class T>
void relu_backward(B& b, std::size_t n, const T* x, const T* dy, T* dx) {
    if (n == 0) return;
    if constexpr (requires { b.relu_backward(n, x, dy, dx); }) {
        b.relu_backward(n, x, dy, dx);
    } else {
        std::vector<T> hx(n), hd(n);
        b.copy_to_host(x, hx.data(), n);
        b.copy_to_host(dy, hd.data(), n);
        for (std::size_t i = 0; i < n; ++i) hd[i] = hx[i] <= T(0) ? T(0) : hd[i];
        b.copy_from_host(hd.data(), dx, n);
    }
}

namespace detail {
template <class T>
constexpr T gelu_new_c = T(0.7978845608028654);  // sqrt(2 / pi)
template <class T>
constexpr T gelu_new_a = T(0.044715);
}  // namespace detail

/// y = 0.5 x (1 + t), t = tanh(c (x + a x^3)); t is written to `t` (n values) for the backward.
template <elementwise_backend B, class T>
void gelu_new_forward(B& b, std::size_t n, const T* x, T* y, T* t) {
    if (n == 0) return;
    const T c = detail::gelu_new_c<T>, a = detail::gelu_new_a<T>;
    auto u = b.template allocate<T>(n);
    mul(b, n, x, x, u.data());                 // x^2
    mul(b, n, u.data(), x, u.data());          // x^3
    b.scale(n, a, u.data());                   // a x^3
    b.axpy(n, T(1), x, u.data());              // x + a x^3
    b.scale(n, c, u.data());
    b.tanh_forward(n, u.data(), t);
    b.copy(x, y, n);
    mul(b, n, x, t, y, /*accumulate=*/true);   // x + x t
    b.scale(n, T(0.5), y);
}

/// dx = dy * (0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2)), from x and the saved t.
template <elementwise_backend B, class T>
void gelu_new_backward(B& b, std::size_t n, const T* x, const T* t, const T* dy, T* dx) {
    if (n == 0) return;
    const T c = detail::gelu_new_c<T>, a = detail::gelu_new_a<T>;
    auto p = b.template allocate<T>(n);
    auto q = b.template allocate<T>(n);
    mul(b, n, x, x, p.data());             // x^2
    b.scale(n, T(3) * a * c, p.data());    // 3 a c x^2
    b.fill(q.data(), n, c);
    b.axpy(n, T(1), q.data(), p.data());   // c (1 + 3 a x^2)
    mul(b, n, p.data(), x, p.data());      // x c (1 + 3 a x^2)
    b.fill(q.data(), n, T(1));
    b.tanh_backward(n, t, q.data(), q.data());  // 1 - t^2
    mul(b, n, p.data(), q.data(), p.data());    // x (1 - t^2) c (1 + 3 a x^2)
    b.axpy(n, T(1), t, p.data());
    b.fill(q.data(), n, T(1));
    b.axpy(n, T(1), q.data(), p.data());        // (1 + t) + ...
    b.scale(n, T(0.5), p.data());
    mul(b, n, dy, p.data(), dx);
}

}  // namespace hyperadapt::pha_ops
