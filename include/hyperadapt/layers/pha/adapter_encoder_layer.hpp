#pragma once
// A post-LayerNorm BERT encoder layer with PHA's parallel adapter in the feed-forward sub-layer (spec §2.1,
// §2.10): BERT normalises after the residual, so the feed-forward input h1 is already normalised and the
// adapter reads it, as PHA's A(LN(h)) reads T5's normalised input:
//
//   h1  = AttentionBlock(x)                                   (Hugging Face's BertAttention, unchanged)
//   out = LayerNorm(h1 + Dropout(W2 gelu(W1 h1 + b1) + b2) + A(h1))
//
// The adapter output is not dropped out (PHA adds it after the FFN's dropout). A's weights are the layer's
// own ("<name>.adapter.adapter_{down,up}_manual.*": PHA's shared encoder adapter) or generated per example
// (task_adapter's batched path) and passed to forward; a layer built without an own adapter and given no
// weights is a plain BERT layer. Every backbone parameter keeps Hugging Face's name, so checkpoints load.
#include <string>

#include "hyperadapt/layers/activations.hpp"
#include "hyperadapt/layers/attention.hpp"
#include "hyperadapt/layers/dropout.hpp"
#include "hyperadapt/layers/encoder_layer.hpp"
#include "hyperadapt/layers/layer_norm.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/layers/pha/task_adapter.hpp"

namespace hyperadapt {

template <elementwise_backend B, class T = float>
class adapter_encoder_layer {
public:
    using backend_type = B;
    using value_type = T;
    struct context {
        typename attention_block<B, T>::context attention;
        typename linear<B, T>::context up;
        typename gelu<B, T>::context act;
        typename linear<B, T>::context down;
        typename dropout<B, T>::context drop;
        typename layer_norm<B, T>::context norm;
        typename task_adapter<B, T>::context adapter;
        enum class adapter_use { none, own, generated } use = adapter_use::none;
    };
    struct gradients {
        tensor<B, T> input;
        adapter_weights<B, T> weights;  // filled when forward received generated weights
    };

    /// `own_adapter`: the layer has its own (shared, task-agnostic) adapter parameters.
    adapter_encoder_layer(B& backend, const encoder_layer_config& c, std::size_t bottleneck, bool own_adapter,
                          std::string name = "encoder.layer.0")
        : backend_(&backend),
          name_(std::move(name)),
          attention_(backend, c.hidden, c.heads, static_cast<T>(c.attention_dropout), static_cast<T>(c.hidden_dropout),
                     static_cast<T>(c.layer_norm_eps), join_name(name_, "attention")),
          up_(backend, c.hidden, c.intermediate, join_name(name_, "intermediate.dense")),
          act_(backend, join_name(name_, "intermediate.gelu")),
          down_(backend, c.intermediate, c.hidden, join_name(name_, "output.dense")),
          drop_(backend, static_cast<T>(c.hidden_dropout), join_name(name_, "output.dropout")),
          norm_(backend, c.hidden, join_name(name_, "output.LayerNorm"), static_cast<T>(c.layer_norm_eps)),
          adapter_(backend, c.hidden, bottleneck, join_name(name_, "adapter"),
                   {.own_weights = own_adapter, .residual = false, .init_gain = 1e-4}) {}

    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        attention_.initialize(rng, stddev);
        up_.initialize(rng, stddev);
        down_.initialize(rng, stddev);
        adapter_.initialize(rng);
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] bool has_own_adapter() const noexcept { return adapter_.has_own_weights(); }
    task_adapter<B, T>& adapter() noexcept { return adapter_; }

    /// x (batch, seq, hidden). `generated`: per-example adapter weights (batch rows of x), or null to use the
    /// own adapter (if any).
    tensor<B, T> forward(const tensor<B, T>& x, const attention_mask<B>& mask, const adapter_weights<B, T>* generated,
                         context& ctx, run_mode mode) const {
        using use = typename context::adapter_use;
        const tensor<B, T> h1 = attention_.forward(x, mask, {}, ctx.attention, mode);
        tensor<B, T> y =
            drop_.forward(down_.forward(act_.forward(up_.forward(h1, ctx.up, mode), ctx.act, mode), ctx.down, mode),
                          ctx.drop, mode);
        ctx.use = use::none;
        if (generated) {
            const tensor<B, T> a = adapter_.forward(h1, *generated, ctx.adapter, mode);
            backend_->axpy(y.size(), T(1), a.data(), y.data());
            ctx.use = use::generated;
        } else if (adapter_.has_own_weights()) {
            const tensor<B, T> a = adapter_.forward(h1, ctx.adapter, mode);
            backend_->axpy(y.size(), T(1), a.data(), y.data());
            ctx.use = use::own;
        }
        backend_->axpy(y.size(), T(1), h1.data(), y.data());
        return norm_.forward(y, ctx.norm, mode);
    }

    gradients backward(const tensor<B, T>& dy, context& ctx) {
        using use = typename context::adapter_use;
        gradients g;
        const tensor<B, T> dsum = norm_.backward(dy, ctx.norm);
        tensor<B, T> dh1 =
            up_.backward(act_.backward(down_.backward(drop_.backward(dsum, ctx.drop), ctx.down), ctx.act), ctx.up);
        backend_->axpy(dsum.size(), T(1), dsum.data(), dh1.data());  // residual
        if (ctx.use == use::generated) {
            auto ga = adapter_.backward_generated(dsum, ctx.adapter);
            backend_->axpy(dh1.size(), T(1), ga.input.data(), dh1.data());
            g.weights = std::move(ga.weights);
        } else if (ctx.use == use::own) {
            const tensor<B, T> da = adapter_.backward(dsum, ctx.adapter);
            backend_->axpy(dh1.size(), T(1), da.data(), dh1.data());
        }
        g.input = attention_.backward(dh1, ctx.attention);
        return g;
    }

    template <class F>
    void visit_parameters(F&& f) {
        attention_.visit_parameters(f);
        up_.visit_parameters(f);
        down_.visit_parameters(f);
        norm_.visit_parameters(f);
        adapter_.visit_parameters(f);
    }

private:
    B* backend_;
    std::string name_;
    attention_block<B, T> attention_;
    linear<B, T> up_;
    gelu<B, T> act_;
    linear<B, T> down_;
    dropout<B, T> drop_;
    layer_norm<B, T> norm_;
    task_adapter<B, T> adapter_;
};

}  // namespace hyperadapt
