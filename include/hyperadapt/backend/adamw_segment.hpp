#pragma once
// One AdamW update over many parameter tensors in one call (issue 13, item 3: "AdamW one fused launch with
// per-segment decay, learning-rate group and freeze mask"). Each segment is one parameter: its arrays, its own
// learning rate and weight decay (its group's) and its own bias corrections (its own step count, as PyTorch's);
// frozen parameters are simply not in the list.
//
// The per-segment scalars are worked out on the host, in T, exactly as the one-tensor adamw_update does, so a
// fused update and the same updates made one tensor at a time give the same bits.
#include <cmath>
#include <cstddef>
#include <span>

namespace hyperadapt {

template <class T>
struct adamw_segment {
    const T* grad = nullptr;
    T* param = nullptr;
    T* m = nullptr;
    T* v = nullptr;
    std::size_t n = 0;
    T step{};          ///< lr / (1 - beta1^t)
    T inv_sqrt_bc2{};  ///< 1 / sqrt(1 - beta2^t)
    T decay{};         ///< 1 - lr * weight_decay

    /// The segment for n values with the given rate, decay and bias corrections (1 - beta^t).
    static adamw_segment make(std::size_t n, T lr, T weight_decay, T bias_correction1, T bias_correction2,
                              const T* grad, T* param, T* m, T* v) {
        adamw_segment s;
        s.grad = grad;
        s.param = param;
        s.m = m;
        s.v = v;
        s.n = n;
        s.step = lr / bias_correction1;
        s.inv_sqrt_bc2 = T(1) / std::sqrt(bias_correction2);
        s.decay = T(1) - lr * weight_decay;
        return s;
    }
};

/// A backend that updates many tensors in one call (one launch on a GPU):
///   adamw_update_segments(segments, beta1, beta2, eps)
///     for every segment s and i < s.n:  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
///                                       param = param * s.decay - s.step * m / (sqrt(v) * s.inv_sqrt_bc2 + eps)
template <class B, class T>
concept segmented_adamw = requires(B& b, std::span<const adamw_segment<T>> s, T x) {
    b.adamw_update_segments(s, x, x, x);
};

}  // namespace hyperadapt
