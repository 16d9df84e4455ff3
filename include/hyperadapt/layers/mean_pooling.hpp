#pragma once
// Masked mean pooling over the sequence: pooled_b = sum_l mask[b, l] h[b, l, :] / sum_l mask[b, l]. It is
// the sentence embedding of sentence-transformers models (all-MiniLM-L6-v2 was trained through it, so its
// [CLS] pooler was never trained) and the first step of PHA's retriever. An all-padding row pools to zero
// (PHA clamps the count at 1e-9). One strided-batched GEMM each way: (1, L) weights times (L, d) per example.
//
// Shapes: h (batch, seq, d); mask (batch, seq) as attention_mask (1 = token); output (batch, d). No parameters.
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/mean_weights.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/nn/layer.hpp"
#include "hyperadapt/tensor/tensor.hpp"

namespace hyperadapt {

/// What a model's task heads read: BERT's pooler (tanh(W h_[CLS] + b)) or the masked mean of the last
/// hidden states (for checkpoints trained that way, such as sentence-transformers' all-MiniLM-L6-v2).
enum class head_input { pooler, mean };

template <elementwise_backend B, class T = float>
class mean_pooling {
public:
    using backend_type = B;
    using value_type = T;
    using mask_type = tensor<B, std::uint8_t>;
    struct context {
        tensor<B, T> weights;  // (batch, seq): mask / count
        hyperadapt::shape input_shape;
    };

    mean_pooling(B& backend, std::size_t features, std::string name = "mean_pooling")
        : backend_(&backend), name_(std::move(name)), d_(features) {}

    [[nodiscard]] const std::string& name() const noexcept { return name_; }

    /// `host_mask`: the mask's host copy where the caller has it (a batch built on the host keeps it); empty: the
    /// layer copies the mask back (on a GPU, a wait). Either way the weights are uploaded; a batch's own are
    /// taken by the overload below.
    tensor<B, T> forward(const tensor<B, T>& h, const mask_type& mask, context& ctx, run_mode mode = {},
                         std::span<const std::uint8_t> host_mask = {}) const {
        const auto [nb, len] = check_input(h);
        if (mask.empty()) return forward(h, tensor<B, T>::filled(*backend_, {nb, len}, T(1) / static_cast<T>(len)), ctx, mode);
        expect_shape(name_.c_str(), "mask", shape{nb, len}, mask.shape());
        std::vector<std::uint8_t> copied;
        const std::span<const std::uint8_t> m = mask.host_values(host_mask, copied, name_);
        return forward(h, tensor<B, T>::from_host(*backend_, {nb, len}, mean_pooling_weights<T>(m, nb, len)), ctx, mode);
    }

    /// The same with the weights given: (batch, seq), mask / count per row (core/mean_weights.hpp), as a batch
    /// uploads them with its ids (data/multitask_batch.hpp); nothing is copied either way.
    tensor<B, T> forward(const tensor<B, T>& h, const tensor<B, T>& weights, context& ctx, run_mode = {}) const {
        const auto [nb, len] = check_input(h);
        expect_shape(name_.c_str(), "weights", shape{nb, len}, weights.shape());
        ctx.input_shape = h.shape();
        ctx.weights = weights;
        tensor<B, T> pooled(*backend_, {nb, d_});
        backend_->gemm_strided_batched(transpose::no, transpose::no, 1, d_, len, T(1), ctx.weights.data(), len,
                                       static_cast<std::ptrdiff_t>(len), h.data(), d_,
                                       static_cast<std::ptrdiff_t>(len * d_), T(0), pooled.data(), d_,
                                       static_cast<std::ptrdiff_t>(d_), nb);
        return pooled;
    }

    /// dh_b (L, d) = w_b^T (L, 1) dy_b (1, d).
    tensor<B, T> backward(const tensor<B, T>& dy, context& ctx) const {
        if (ctx.input_shape.rank() != 3) throw error(name_ + ": backward called without a forward");
        const std::size_t nb = ctx.input_shape[0], len = ctx.input_shape[1];
        expect_shape(name_.c_str(), "output gradient", shape{nb, d_}, dy.shape());
        tensor<B, T> dh(*backend_, ctx.input_shape);
        backend_->gemm_strided_batched(transpose::yes, transpose::no, len, d_, 1, T(1), ctx.weights.data(), len,
                                       static_cast<std::ptrdiff_t>(len), dy.data(), d_, static_cast<std::ptrdiff_t>(d_),
                                       T(0), dh.data(), d_, static_cast<std::ptrdiff_t>(len * d_), nb);
        return dh;
    }

    template <class F>
    void visit_parameters(F&&) {}

private:
    /// (batch, seq) of hidden states (batch, seq, d), or a shape_error naming the layer.
    std::pair<std::size_t, std::size_t> check_input(const tensor<B, T>& h) const {
        const auto& hs = h.shape();
        if (hs.rank() != 3 || hs[2] != d_ || hs[0] == 0 || hs[1] == 0)
            throw shape_error(name_ + ": hidden states have shape " + hs.str() + ", expected (batch, seq, " +
                              std::to_string(d_) + ")");
        return {hs[0], hs[1]};
    }

    B* backend_;
    std::string name_;
    std::size_t d_;
};

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
// mean_pooling: several inputs (hidden states, padding mask) and nothing to draw: only parameterized.
static_assert(parameterized<mean_pooling<archetype_backend, float>>,
              "hyperadapt::mean_pooling must be parameterized (nn/layer.hpp)");
}  // namespace hyperadapt
