#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/layers/activations.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/nn/anomaly.hpp"
#include "hyperadapt/nn/layer.hpp"

namespace hyperadapt {

/// Hugging Face's BertPooler: tanh(dense(hidden_states[:, 0])), the [CLS] position of each sequence.
/// Input (batch, seq, hidden) -> output (batch, hidden). Parameters "<name>.dense.weight" and
/// "<name>.dense.bias" (default name "pooler"). backward returns a (batch, seq, hidden) gradient that is
/// zero everywhere but position 0.
template <elementwise_backend B, class T = float>
class pooler {
public:
    using backend_type = B;
    using value_type = T;
    struct context {
        typename linear<B, T>::context dense;
        typename tanh_activation<B, T>::context activation;
        /// Row index of each sequence's [CLS] token in the input seen as (batch * seq, hidden).
        tensor<B, std::int32_t> cls_rows;
        hyperadapt::shape input_shape;
        anomaly_detector* anomaly = nullptr;
    };

    pooler(B& backend, std::size_t hidden, std::string name = "pooler")
        : backend_(&backend),
          name_(std::move(name)),
          hidden_(hidden),
          dense_(backend, hidden, hidden, join_name(name_, "dense")),
          activation_(backend, join_name(name_, "activation")) {}

    /// BERT's initialisation: weight ~ N(0, stddev), bias 0.
    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        dense_.initialize(rng, stddev);
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] std::size_t hidden() const noexcept { return hidden_; }
    linear<B, T>& dense() noexcept { return dense_; }

    /// `first_token_rows`: (batch) the rows b * seq of x's first tokens, where the caller uploaded them with its
    /// batch (data/multitask_batch.hpp); null or empty: the layer uploads them itself (on a GPU, a transfer).
    tensor<B, T> forward(const tensor<B, T>& x, context& ctx, run_mode mode = {},
                         const tensor<B, std::int32_t>* first_token_rows = nullptr) const {
        const tensor<B, T> cls = first_tokens(x, ctx, first_token_rows);
        ctx.anomaly = mode.anomaly;
        tensor<B, T> y = activation_.forward(dense_.forward(cls, ctx.dense, mode), ctx.activation, mode);
        check_output(mode.anomaly, name_, "", y);
        return y;
    }

    /// Forward without saving anything for backward.
    tensor<B, T> apply(const tensor<B, T>& x) const {
        context ctx;
        return activation_.apply(dense_.apply(first_tokens(x, ctx)));
    }

    tensor<B, T> backward(const tensor<B, T>& dy, context& ctx) {
        if (ctx.input_shape.rank() != 3) throw error(name_ + ": backward called without a training forward");
        const std::size_t batch = ctx.input_shape[0];
        expect_shape(name_.c_str(), "output gradient", hyperadapt::shape{batch, hidden_}, dy.shape());
        const tensor<B, T> dcls = dense_.backward(activation_.backward(dy, ctx.activation), ctx.dense);
        auto dx = tensor<B, T>::zeros(*backend_, ctx.input_shape);
        backend_->scatter_add_rows(batch, hidden_, dcls.data(), ctx.cls_rows.data(), dx.data());
        check_input_gradient(ctx.anomaly, name_, "", dx);
        return dx;
    }

    template <class F>
    void visit_parameters(F&& f) {
        dense_.visit_parameters(f);
    }

private:
    /// Gathers x[:, 0, :] into (batch, hidden); records what backward needs in ctx.
    tensor<B, T> first_tokens(const tensor<B, T>& x, context& ctx,
                              const tensor<B, std::int32_t>* first_token_rows = nullptr) const {
        if (x.shape().rank() != 3 || x.shape()[1] == 0 || x.shape()[2] != hidden_)
            throw shape_error(name_ + ": input has shape " + x.shape().str() + ", expected (batch, seq >= 1, " +
                              std::to_string(hidden_) + ")");
        const std::size_t batch = x.shape()[0], seq = x.shape()[1];
        if (first_token_rows && !first_token_rows->empty()) {
            expect_shape(name_.c_str(), "first token rows", hyperadapt::shape{batch}, first_token_rows->shape());
            ctx.cls_rows = *first_token_rows;
        } else {
            std::vector<std::int32_t> rows(batch);
            for (std::size_t b = 0; b < batch; ++b) rows[b] = static_cast<std::int32_t>(b * seq);
            ctx.cls_rows = tensor<B, std::int32_t>::from_host(*backend_, {batch}, rows);
        }
        ctx.input_shape = x.shape();
        tensor<B, T> cls(*backend_, {batch, hidden_});
        backend_->gather_rows(batch, hidden_, x.data(), ctx.cls_rows.data(), cls.data());
        return cls;
    }

    B* backend_;
    std::string name_;
    std::size_t hidden_;
    linear<B, T> dense_;
    tanh_activation<B, T> activation_;
};

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
static_assert(unary_layer<pooler<archetype_backend, float>>,
              "hyperadapt::pooler must be a unary layer (nn/layer.hpp)");
static_assert(initializable<pooler<archetype_backend, float>>,
              "hyperadapt::pooler must be initializable: initialize(rng)");
}  // namespace hyperadapt
