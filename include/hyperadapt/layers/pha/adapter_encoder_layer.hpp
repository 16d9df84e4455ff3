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
//
// HyperFormer's adapters (spec §3.1) sit in series on each sub-layer's output before its dropout and
// residual, y' = y + LN_gen(W_up gelu_new(W_down y + b_down) + b_up) (layers/pha/hyperformer_adapter.hpp):
//
//   h1  = LayerNorm(x + Dropout(HF_att(W_o SelfAttention(x))))
//   out = LayerNorm(h1 + Dropout(HF_ffn(W2 gelu(W1 h1 + b1) + b2)) [+ A(h1)])
//
// with per-example generated weights for either slot passed in layer_adapters.
#include <string>

#include "hyperadapt/layers/activations.hpp"
#include "hyperadapt/layers/attention.hpp"
#include "hyperadapt/layers/dropout.hpp"
#include "hyperadapt/layers/encoder_layer.hpp"
#include "hyperadapt/layers/layer_norm.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/layers/pha/hyperformer_adapter.hpp"
#include "hyperadapt/layers/pha/task_adapter.hpp"
#include "hyperadapt/nn/anomaly.hpp"

namespace hyperadapt {

/// The per-call adapter weights of one layer; any of them may be null.
template <class B, class T>
struct layer_adapters {
    const adapter_weights<B, T>* parallel = nullptr;                     ///< PHA-style, beside the FFN
    const hyperformer_adapter_weights<B, T>* after_attention = nullptr;  ///< HyperFormer, attention output
    const hyperformer_adapter_weights<B, T>* after_ffn = nullptr;        ///< HyperFormer, FFN output
};

template <elementwise_backend B, class T = float>
class adapter_encoder_layer {
public:
    using backend_type = B;
    using value_type = T;
    struct context {
        typename self_attention<B, T>::context self;
        typename linear<B, T>::context att_dense;
        typename dropout<B, T>::context att_drop;
        typename layer_norm<B, T>::context att_norm;
        typename hyperformer_adapter<B, T>::context hf_att, hf_ffn;
        bool has_hf_att = false, has_hf_ffn = false;
        typename linear<B, T>::context up;
        typename gelu<B, T>::context act;
        typename linear<B, T>::context down;
        typename dropout<B, T>::context drop;
        typename layer_norm<B, T>::context norm;
        typename task_adapter<B, T>::context adapter;
        enum class adapter_use { none, own, generated } use = adapter_use::none;
        anomaly_detector* anomaly = nullptr;
    };
    struct gradients {
        tensor<B, T> input;
        adapter_weights<B, T> weights;  // filled when forward received generated weights
        hyperformer_adapter_weights<B, T> after_attention, after_ffn;  // likewise for the HyperFormer slots
    };

    /// `own_adapter`: the layer has its own (shared, task-agnostic) adapter parameters. `serial_bottleneck`:
    /// the width of the HyperFormer adapters it may be given (0: none).
    adapter_encoder_layer(B& backend, const encoder_layer_config& c, std::size_t bottleneck, bool own_adapter,
                          std::string name = "encoder.layer.0", std::size_t serial_bottleneck = 0)
        : backend_(&backend),
          name_(std::move(name)),
          self_(backend, c.hidden, c.heads, static_cast<T>(c.attention_dropout), join_name(name_, "attention.self")),
          att_dense_(backend, c.hidden, c.hidden, join_name(name_, "attention.output.dense")),
          att_drop_(backend, static_cast<T>(c.hidden_dropout), join_name(name_, "attention.output.dropout")),
          att_norm_(backend, c.hidden, join_name(name_, "attention.output.LayerNorm"), static_cast<T>(c.layer_norm_eps)),
          serial_(backend, c.hidden, serial_bottleneck ? serial_bottleneck : 1, join_name(name_, "hyperformer_adapter")),
          has_serial_(serial_bottleneck != 0),
          up_(backend, c.hidden, c.intermediate, join_name(name_, "intermediate.dense")),
          act_(backend, join_name(name_, "intermediate.gelu")),
          down_(backend, c.intermediate, c.hidden, join_name(name_, "output.dense")),
          drop_(backend, static_cast<T>(c.hidden_dropout), join_name(name_, "output.dropout")),
          norm_(backend, c.hidden, join_name(name_, "output.LayerNorm"), static_cast<T>(c.layer_norm_eps)),
          adapter_(backend, c.hidden, bottleneck, join_name(name_, "adapter"),
                   {.own_weights = own_adapter, .residual = false, .init_gain = 1e-4}) {}

    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        self_.initialize(rng, stddev);
        att_dense_.initialize(rng, stddev);
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
        return forward(x, mask, layer_adapters<B, T>{.parallel = generated}, ctx, mode);
    }

    tensor<B, T> forward(const tensor<B, T>& x, const attention_mask<B>& mask, const layer_adapters<B, T>& adapters,
                         context& ctx, run_mode mode) const {
        using use = typename context::adapter_use;
        if ((adapters.after_attention || adapters.after_ffn) && !has_serial_)
            throw config_error(name_ + ": given HyperFormer adapter weights but built without serial adapters "
                                       "(serial_bottleneck = 0)");
        ctx.anomaly = mode.anomaly;
        tensor<B, T> ya = att_dense_.forward(self_.forward(x, mask, {}, ctx.self, mode), ctx.att_dense, mode);
        ctx.has_hf_att = adapters.after_attention != nullptr;
        if (ctx.has_hf_att) {
            ya = serial_.forward(ya, *adapters.after_attention, ctx.hf_att, mode);
            check_output(mode.anomaly, serial_.name(), "", ya);
        }
        tensor<B, T> s1 = att_drop_.forward(ya, ctx.att_drop, mode);
        backend_->axpy(s1.size(), T(1), x.data(), s1.data());
        const tensor<B, T> h1 = att_norm_.forward(s1, ctx.att_norm, mode);
        check_output(mode.anomaly, name_, "attention.output", h1);

        const tensor<B, T> inner = act_.forward(up_.forward(h1, ctx.up, mode), ctx.act, mode);
        check_output(mode.anomaly, name_, "intermediate", inner);
        tensor<B, T> z = down_.forward(inner, ctx.down, mode);
        ctx.has_hf_ffn = adapters.after_ffn != nullptr;
        if (ctx.has_hf_ffn) {
            z = serial_.forward(z, *adapters.after_ffn, ctx.hf_ffn, mode);
            check_output(mode.anomaly, serial_.name(), "", z);
        }
        tensor<B, T> y = drop_.forward(z, ctx.drop, mode);
        ctx.use = use::none;
        if (adapters.parallel) {
            const tensor<B, T> a = adapter_.forward(h1, *adapters.parallel, ctx.adapter, mode);
            check_output(mode.anomaly, adapter_.name(), "", a);
            backend_->axpy(y.size(), T(1), a.data(), y.data());
            ctx.use = use::generated;
        } else if (adapter_.has_own_weights()) {
            const tensor<B, T> a = adapter_.forward(h1, ctx.adapter, mode);
            check_output(mode.anomaly, adapter_.name(), "", a);
            backend_->axpy(y.size(), T(1), a.data(), y.data());
            ctx.use = use::own;
        }
        backend_->axpy(y.size(), T(1), h1.data(), y.data());
        tensor<B, T> out = norm_.forward(y, ctx.norm, mode);
        check_output(mode.anomaly, name_, "output", out);
        return out;
    }

    gradients backward(const tensor<B, T>& dy, context& ctx) {
        using use = typename context::adapter_use;
        gradients g;
        const tensor<B, T> dsum = norm_.backward(dy, ctx.norm);
        check_input_gradient(ctx.anomaly, name_, "output", dsum);
        tensor<B, T> dz = drop_.backward(dsum, ctx.drop);
        if (ctx.has_hf_ffn) {
            auto gh = serial_.backward(dz, ctx.hf_ffn);
            dz = std::move(gh.input);
            check_input_gradient(ctx.anomaly, serial_.name(), "", dz);
            g.after_ffn = std::move(gh.weights);
        }
        const tensor<B, T> dinner = down_.backward(dz, ctx.down);
        check_input_gradient(ctx.anomaly, name_, "output", dinner);
        tensor<B, T> dh1 = up_.backward(act_.backward(dinner, ctx.act), ctx.up);
        check_input_gradient(ctx.anomaly, name_, "intermediate", dh1);
        backend_->axpy(dsum.size(), T(1), dsum.data(), dh1.data());  // residual
        if (ctx.use == use::generated) {
            auto ga = adapter_.backward_generated(dsum, ctx.adapter);
            check_input_gradient(ctx.anomaly, adapter_.name(), "", ga.input);
            backend_->axpy(dh1.size(), T(1), ga.input.data(), dh1.data());
            g.weights = std::move(ga.weights);
        } else if (ctx.use == use::own) {
            const tensor<B, T> da = adapter_.backward(dsum, ctx.adapter);
            check_input_gradient(ctx.anomaly, adapter_.name(), "", da);
            backend_->axpy(dh1.size(), T(1), da.data(), dh1.data());
        }
        const tensor<B, T> ds1 = att_norm_.backward(dh1, ctx.att_norm);
        check_input_gradient(ctx.anomaly, name_, "attention.output", ds1);
        tensor<B, T> dya = att_drop_.backward(ds1, ctx.att_drop);
        if (ctx.has_hf_att) {
            auto gh = serial_.backward(dya, ctx.hf_att);
            dya = std::move(gh.input);
            check_input_gradient(ctx.anomaly, serial_.name(), "", dya);
            g.after_attention = std::move(gh.weights);
        }
        const tensor<B, T> datt = att_dense_.backward(dya, ctx.att_dense);
        check_input_gradient(ctx.anomaly, name_, "attention.output", datt);
        auto gs = self_.backward(datt, ctx.self);
        backend_->axpy(ds1.size(), T(1), ds1.data(), gs.input.data());  // residual
        g.input = std::move(gs.input);
        return g;
    }

    template <class F>
    void visit_parameters(F&& f) {
        self_.visit_parameters(f);
        att_dense_.visit_parameters(f);
        att_norm_.visit_parameters(f);
        up_.visit_parameters(f);
        down_.visit_parameters(f);
        norm_.visit_parameters(f);
        adapter_.visit_parameters(f);
    }

private:
    B* backend_;
    std::string name_;
    self_attention<B, T> self_;
    linear<B, T> att_dense_;
    dropout<B, T> att_drop_;
    layer_norm<B, T> att_norm_;
    hyperformer_adapter<B, T> serial_;
    bool has_serial_;
    linear<B, T> up_;
    gelu<B, T> act_;
    linear<B, T> down_;
    dropout<B, T> drop_;
    layer_norm<B, T> norm_;
    task_adapter<B, T> adapter_;
};

}  // namespace hyperadapt
