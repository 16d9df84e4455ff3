#pragma once
// A trainable tensor with its gradient and the flags the generic machinery reads. Layers own their
// parameters and expose them through visit_parameters(visitor, prefix); everything else (counting,
// freezing, zeroing, optimizers, checkpoints, all-reduce) is written once against that visitor.
#include <string>
#include <string_view>

#include "hyperadapt/tensor/tensor.hpp"

namespace hyperadapt {

template <memory_backend B, class T>
struct parameter {
    tensor<B, T> value;
    /// Empty when frozen: frozen parameters own no gradient memory and get no optimizer state.
    tensor<B, T> grad;
    /// False for biases and LayerNorm weights: BERT fine-tuning applies no weight decay to them.
    bool decay = true;

    parameter() = default;
    parameter(B& backend, hyperadapt::shape s, bool decay_ = true)
        : value(backend, s), grad(tensor<B, T>::zeros(backend, s)), decay(decay_) {}

    [[nodiscard]] bool trainable() const noexcept { return !grad.empty(); }
    [[nodiscard]] std::size_t size() const noexcept { return value.size(); }

    void freeze() noexcept { grad = {}; }
    void unfreeze() {
        if (grad.empty()) grad = tensor<B, T>::zeros(value.backend(), value.shape());
    }
    void zero_grad() {
        if (!grad.empty()) grad.zero();
    }
    /// Gradient pointer for kernels that accumulate into it; null when frozen.
    [[nodiscard]] T* grad_data() noexcept { return grad.empty() ? nullptr : grad.data(); }
};

/// Joins a prefix and a name with a dot, as Hugging Face's state-dict keys.
inline std::string join_name(std::string_view prefix, std::string_view name) {
    if (prefix.empty()) return std::string(name);
    std::string s(prefix);
    s += '.';
    s += name;
    return s;
}

}  // namespace hyperadapt
