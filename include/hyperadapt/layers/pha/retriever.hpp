#pragma once
// PHA's instance-dense retriever (spec §2.2; PHA modeling/adapter_t5.py::mean_pooling and the `mlp` of
// T5StackWithAdapter):
//
//   pooled_b = sum_l mask[b, l] h[b, l, :] / sum_l mask[b, l]        masked mean over the sequence
//   e_b      = Linear(hidden -> out)(ReLU(Linear(d -> hidden)(pooled_b)))
//
// PHA: d = d_model (768), hidden 128, out 64 (the prototype width). The pooling is layers/mean_pooling.hpp.
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
#include "hyperadapt/layers/mean_pooling.hpp"
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
        typename mean_pooling<B, T>::context pool;
        typename linear<B, T>::context l0, l2;
        tensor<B, T> hidden;  // pre-ReLU (batch, hidden)
        bool ready = false;
    };

    instance_retriever(B& backend, std::size_t features, std::size_t hidden = 128, std::size_t out = 64,
                       std::string name = "mlp")
        : backend_(&backend),
          name_(std::move(name)),
          d_(features),
          pool_(backend, features, join_name(name_, "pool")),
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

    /// `mean_weights`: the pooling weights of `mask` as the batch uploaded them (layers/layer_condition.hpp), or
    /// null: worked out from the mask here (a copy back and an upload).
    tensor<B, T> forward(const tensor<B, T>& h, const mask_type& mask, context& ctx, run_mode mode = {},
                         const tensor<B, T>* mean_weights = nullptr) const {
        const auto& hs = h.shape();
        if (hs.rank() != 3 || hs[2] != d_ || hs[0] == 0 || hs[1] == 0)
            throw shape_error(name_ + ": hidden states have shape " + hs.str() + ", expected (batch, seq, " +
                              std::to_string(d_) + ")");
        if (mask.empty()) throw shape_error(name_ + ": the retriever needs the padding mask");
        ctx = {};
        const tensor<B, T> pooled =
            mean_weights ? pool_.forward(h, *mean_weights, ctx.pool, mode) : pool_.forward(h, mask, ctx.pool, mode);
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
        return pool_.backward(l0_.backward(da, ctx.l0), ctx.pool);
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
    mean_pooling<B, T> pool_;
    linear<B, T> l0_, l2_;
};

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
// instance_retriever: several inputs (hidden states, padding mask): only parameterized + initializable.
static_assert(parameterized<instance_retriever<archetype_backend, float>>,
              "hyperadapt::instance_retriever must be parameterized (nn/layer.hpp)");
static_assert(initializable<instance_retriever<archetype_backend, float>>,
              "hyperadapt::instance_retriever must be initializable: initialize(rng)");
}  // namespace hyperadapt
