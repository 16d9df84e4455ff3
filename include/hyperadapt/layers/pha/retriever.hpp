#pragma once
// PHA's instance-dense retriever (spec §2.2; PHA modeling/adapter_t5.py::mean_pooling and the `mlp` of
// T5StackWithAdapter):
//
//   pooled_b = sum_l mask[b, l] h[b, l, :] / sum_l mask[b, l]        masked mean over the sequence
//   e_b      = Linear(hidden -> out)(ReLU(Linear(d -> hidden)(pooled_b)))
//
// PHA: d = d_model (768), hidden 128, out 64 (the prototype width). An all-padding row pools to zero (the
// authors clamp the count at 1e-9). The pooling is one strided-batched GEMM: (1, L) mask weights times
// (L, d) hidden states per example.
//
// Shapes: hidden_states (batch, seq, d); mask (batch, seq) as attention_mask (1 = token, 0 = padding);
// output (batch, out). Parameters "<name>.0.{weight,bias}" and "<name>.2.{weight,bias}" (name "mlp" gives
// the authors' keys).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/layers/pha/pha_ops.hpp"
#include "hyperadapt/nn/layer.hpp"

namespace hyperadapt {

template <elementwise_backend B, class T = float>
class instance_retriever {
public:
    using backend_type = B;
    using value_type = T;
    using mask_type = tensor<B, std::uint8_t>;
    struct context {
        typename linear<B, T>::context l0, l2;
        tensor<B, T> pool_weights;  // (batch, seq): mask / count
        tensor<B, T> hidden;        // pre-ReLU (batch, hidden)
        hyperadapt::shape input_shape;
        bool ready = false;
    };

    instance_retriever(B& backend, std::size_t features, std::size_t hidden = 128, std::size_t out = 64,
                       std::string name = "mlp")
        : backend_(&backend),
          name_(std::move(name)),
          d_(features),
          l0_(backend, features, hidden, join_name(name_, "0")),
          l2_(backend, hidden, out, join_name(name_, "2")) {}

    /// torch.nn.Linear's default init is what PHA uses; here BERT's N(0, stddev), biases zero.
    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        l0_.initialize(rng, stddev);
        l2_.initialize(rng, stddev);
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] std::size_t features() const noexcept { return d_; }
    [[nodiscard]] std::size_t out_features() const noexcept { return l2_.out_features(); }

    tensor<B, T> forward(const tensor<B, T>& h, const mask_type& mask, context& ctx, run_mode mode = {}) const {
        const auto& hs = h.shape();
        if (hs.rank() != 3 || hs[2] != d_ || hs[0] == 0 || hs[1] == 0)
            throw shape_error(name_ + ": hidden states have shape " + hs.str() + ", expected (batch, seq, " +
                              std::to_string(d_) + ")");
        expect_shape(name_.c_str(), "mask", shape{hs[0], hs[1]}, mask.shape());
        const std::size_t nb = hs[0], len = hs[1];
        ctx = {};
        ctx.input_shape = hs;
        const auto m = mask.to_host();
        std::vector<T> w(nb * len, T(0));
        for (std::size_t b = 0; b < nb; ++b) {
            std::size_t count = 0;
            for (std::size_t l = 0; l < len; ++l) count += m[b * len + l] != 0;
            if (count == 0) continue;
            for (std::size_t l = 0; l < len; ++l)
                if (m[b * len + l] != 0) w[b * len + l] = T(1) / static_cast<T>(count);
        }
        ctx.pool_weights = tensor<B, T>::from_host(*backend_, {nb, len}, w);
        tensor<B, T> pooled(*backend_, {nb, d_});
        backend_->gemm_strided_batched(transpose::no, transpose::no, 1, d_, len, T(1), ctx.pool_weights.data(), len,
                                       static_cast<std::ptrdiff_t>(len), h.data(), d_,
                                       static_cast<std::ptrdiff_t>(len * d_), T(0), pooled.data(), d_,
                                       static_cast<std::ptrdiff_t>(d_), nb);
        ctx.hidden = l0_.forward(pooled, ctx.l0, mode);
        tensor<B, T> a(*backend_, ctx.hidden.shape());
        pha_ops::relu_forward(*backend_, a.size(), ctx.hidden.data(), a.data());
        ctx.ready = true;
        return l2_.forward(a, ctx.l2, mode);
    }

    /// Returns the gradient of the hidden states.
    tensor<B, T> backward(const tensor<B, T>& dy, context& ctx) {
        if (!ctx.ready) throw error(name_ + ": backward called without a forward");
        tensor<B, T> da = l2_.backward(dy, ctx.l2);
        pha_ops::relu_backward(*backend_, da.size(), ctx.hidden.data(), da.data(), da.data());
        tensor<B, T> dpooled = l0_.backward(da, ctx.l0);
        const std::size_t nb = ctx.input_shape[0], len = ctx.input_shape[1];
        tensor<B, T> dh(*backend_, ctx.input_shape);
        // dh_b (L, d) = w_b^T (L, 1) dpooled_b (1, d)
        backend_->gemm_strided_batched(transpose::yes, transpose::no, len, d_, 1, T(1), ctx.pool_weights.data(), len,
                                       static_cast<std::ptrdiff_t>(len), dpooled.data(), d_,
                                       static_cast<std::ptrdiff_t>(d_), T(0), dh.data(), d_,
                                       static_cast<std::ptrdiff_t>(len * d_), nb);
        return dh;
    }

    template <class F>
    void visit_parameters(F&& f) {
        l0_.visit_parameters(f);
        l2_.visit_parameters(f);
    }

private:
    B* backend_;
    std::string name_;
    std::size_t d_;
    linear<B, T> l0_, l2_;
};

}  // namespace hyperadapt
