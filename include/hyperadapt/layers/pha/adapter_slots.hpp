#pragma once
// The adapter slots of a transformer layer (layers/encoder_layer.hpp) for PHA, per-task adapters and
// HyperFormer (spec §2.1, §2.10, §3.1):
//
//   parallel_adapter   PHA's adapter beside the feed-forward sub-layer: BERT normalises after the residual, so
//                      the FFN input a is already normalised and the adapter reads it, as PHA's A(LN(h)) reads
//                      T5's normalised input:  out = LayerNorm(a + dropout(FFN(a)) + A(a)). The adapter output
//                      is not dropped out (PHA adds it after the FFN's dropout). A's weights are the layer's own
//                      ("<layer>.adapter.adapter_{down,up}_manual.*", PHA's shared encoder adapter; with
//                      config.own_adapter) or the ones a generator made for this layer and batch (the
//                      condition's generated[index].parallel), which win when given. Neither: no adapter.
//   serial_adapters    HyperFormer's generated adapters in series on each sub-layer's output before its
//                      dropout and residual, y' = y + LN_gen(W_up gelu_new(W_down y + b_down) + b_up)
//                      (layers/pha/hyperformer_adapter.hpp), with the condition's generated[index]
//                      .after_attention / .after_ffn; width config.serial_bottleneck (0: the layer takes none).
//
// Backward writes the gradients of the generated weights into the condition gradients' generated[index], from
// where the generator (hypernetwork, task tables) takes them.
#include <cstddef>
#include <string>
#include <vector>

#include "hyperadapt/layers/layer_condition.hpp"
#include "hyperadapt/layers/layer_slots.hpp"
#include "hyperadapt/layers/pha/hyperformer_adapter.hpp"
#include "hyperadapt/layers/pha/task_adapter.hpp"
#include "hyperadapt/nn/anomaly.hpp"

namespace hyperadapt {

/// The gradients of one layer's generated adapter weights (see layer_condition_gradients::generated).
template <class B, class T>
struct generated_adapter_gradients {
    adapter_weights<B, T> parallel;
    hyperformer_adapter_weights<B, T> after_attention, after_ffn;
};

namespace detail {
template <class B, class T>
generated_adapter_gradients<B, T>& generated_gradients_at(layer_condition_gradients<B, T>& dc, std::size_t index,
                                                          const std::string& layer) {
    if (!dc.generated || index >= dc.generated->size())
        throw error(layer + ": the layer was given generated adapter weights, but the condition gradients have no "
                            "entry " + std::to_string(index) + " for their gradients");
    return (*dc.generated)[index];
}
}  // namespace detail

/// PHA's parallel adapter slot; reads config.adapter_bottleneck and config.own_adapter.
struct parallel_adapter {
    template <class B, class T>
    class slot {
    public:
        struct context {
            typename task_adapter<B, T>::context adapter;
            enum class source { none, own, generated } use = source::none;
        };
        template <class C>
        slot(B& backend, const C& c, const slot_site& site)
            : backend_(&backend),
              adapter_(backend, c.hidden, c.adapter_bottleneck, join_name(site.layer, "adapter"),
                       {.own_weights = c.own_adapter, .residual = false, .init_gain = 1e-4}) {}
        template <class Rng>
        void initialize(Rng& rng, T /*stddev*/) { adapter_.initialize(rng); }

        /// s += A(a).
        void add_forward(const tensor<B, T>& a, const layer_condition<B, T>&, const generated_adapters<B, T>& g,
                         tensor<B, T>& s, context& ctx, run_mode mode) const {
            ctx.use = context::source::none;
            tensor<B, T> y;
            if (g.parallel) {
                y = adapter_.forward(a, *g.parallel, ctx.adapter, mode);
                ctx.use = context::source::generated;
            } else if (adapter_.has_own_weights()) {
                y = adapter_.forward(a, ctx.adapter, mode);
                ctx.use = context::source::own;
            } else {
                return;
            }
            check_output(mode.anomaly, adapter_.name(), "", y);
            backend_->axpy(s.size(), T(1), y.data(), s.data());
        }
        /// da += dA/da; the generated weights' gradients go to dc.generated[index].parallel.
        void add_backward(const tensor<B, T>& ds, context& ctx, std::size_t index, layer_condition_gradients<B, T>& dc,
                          tensor<B, T>& da) {
            if (ctx.use == context::source::generated) {
                auto g = adapter_.backward_generated(ds, ctx.adapter);
                backend_->axpy(da.size(), T(1), g.input.data(), da.data());
                detail::generated_gradients_at(dc, index, adapter_.name()).parallel = std::move(g.weights);
            } else if (ctx.use == context::source::own) {
                const tensor<B, T> d = adapter_.backward(ds, ctx.adapter);
                backend_->axpy(da.size(), T(1), d.data(), da.data());
            }
        }
        template <class F>
        void visit_parameters(F&& f) { adapter_.visit_parameters(f); }
        task_adapter<B, T>& layer() noexcept { return adapter_; }
        [[nodiscard]] bool has_own_weights() const noexcept { return adapter_.has_own_weights(); }

    private:
        B* backend_;
        task_adapter<B, T> adapter_;
    };
};

/// HyperFormer's serial adapter slot; reads config.serial_bottleneck. No parameters of its own.
struct serial_adapters {
    template <class B, class T>
    class slot {
    public:
        struct context {
            typename hyperformer_adapter<B, T>::context attention, ffn;
            bool has_attention = false, has_ffn = false;
        };
        template <class C>
        slot(B& backend, const C& c, const slot_site& site)
            : adapter_(backend, c.hidden, c.serial_bottleneck ? c.serial_bottleneck : 1,
                       join_name(site.layer, "hyperformer_adapter")),
              enabled_(c.serial_bottleneck != 0) {}
        /// No parameters of its own: every weight is generated.
        template <class Rng>
        void initialize(Rng&, T) {}
        template <class F>
        void visit_parameters(F&&) {}

        tensor<B, T> forward_after_attention(const tensor<B, T>& y, const generated_adapters<B, T>& g, context& ctx,
                                             run_mode mode) const {
            ctx.has_attention = g.after_attention != nullptr;
            return ctx.has_attention ? apply(y, *g.after_attention, ctx.attention, mode) : y;
        }
        tensor<B, T> forward_after_ffn(const tensor<B, T>& y, const generated_adapters<B, T>& g, context& ctx,
                                       run_mode mode) const {
            ctx.has_ffn = g.after_ffn != nullptr;
            return ctx.has_ffn ? apply(y, *g.after_ffn, ctx.ffn, mode) : y;
        }
        tensor<B, T> backward_after_attention(const tensor<B, T>& dy, context& ctx, std::size_t index,
                                              layer_condition_gradients<B, T>& dc) {
            if (!ctx.has_attention) return dy;
            auto g = adapter_.backward(dy, ctx.attention);
            detail::generated_gradients_at(dc, index, adapter_.name()).after_attention = std::move(g.weights);
            return std::move(g.input);
        }
        tensor<B, T> backward_after_ffn(const tensor<B, T>& dy, context& ctx, std::size_t index,
                                        layer_condition_gradients<B, T>& dc) {
            if (!ctx.has_ffn) return dy;
            auto g = adapter_.backward(dy, ctx.ffn);
            detail::generated_gradients_at(dc, index, adapter_.name()).after_ffn = std::move(g.weights);
            return std::move(g.input);
        }
        hyperformer_adapter<B, T>& layer() noexcept { return adapter_; }

    private:
        tensor<B, T> apply(const tensor<B, T>& y, const hyperformer_adapter_weights<B, T>& w,
                           typename hyperformer_adapter<B, T>::context& ctx, run_mode mode) const {
            if (!enabled_)
                throw config_error(adapter_.name() + ": given HyperFormer adapter weights but built without serial "
                                                     "adapters (serial_bottleneck = 0)");
            tensor<B, T> out = adapter_.forward(y, w, ctx, mode);
            check_output(mode.anomaly, adapter_.name(), "", out);
            return out;
        }

        hyperformer_adapter<B, T> adapter_;
        bool enabled_;
    };
};

}  // namespace hyperadapt
