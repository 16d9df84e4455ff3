#pragma once
// PHA's encoder (spec §2.10): BERT layers with adapter slots (layers/pha/adapter_encoder_layer.hpp) in two layer
// stacks, and the instance retriever's tap (layers/pha/retriever.hpp) between them — a conditioned layer
// (nn/conditioned_layer.hpp) whose generated adapter weights come in the layer condition.
#include <string>
#include <utility>

#include "hyperadapt/layers/layer_condition.hpp"
#include "hyperadapt/layers/pha/adapter_encoder_layer.hpp"
#include "hyperadapt/layers/pha/retriever.hpp"
#include "hyperadapt/nn/anomaly.hpp"
#include "hyperadapt/nn/compose.hpp"

namespace hyperadapt {

/// PHA's encoder: BERT layers with adapter slots, and the retriever's tap. Single pass: the lower stack (shared
/// adapters), the retriever on its output, the upper stack (generated adapters). Two passes: the whole stack
/// once without generated weights for the retriever, then again with them. The retriever runs only when the
/// contrastive losses need it (the auxiliary loss requests it in the context); the auxiliary loss
/// (pha_contrastive) puts its gradient in the context's tap_gradient before backward.
template <elementwise_backend B, class T = float>
class pha_encoder {
public:
    using backend_type = B;
    using value_type = T;
    using condition_type = layer_condition<B, T>;
    using condition_gradients = layer_condition_gradients<B, T>;
    using layer_type = adapter_encoder_layer<B, T>;
    using stack_type = layer_stack<layer_type>;
    struct context {
        typename stack_type::context lower, upper, first_pass;
        typename instance_retriever<B, T>::context retriever;
        tensor<B, T> retriever_output;  ///< e_x (batch, prototype_dim) of a tapped forward
        tensor<B, T> tap_gradient;      ///< d loss / d e_x, set by the auxiliary loss before backward
        bool tap_requested = false;     ///< set by the auxiliary loss: this forward computes the loss
        anomaly_detector* anomaly = nullptr;
    };
    struct options {
        bool two_passes = false;
        bool retriever = false;        ///< the model has PHA's retriever (its parameters are the model's)
        bool tap = false;              ///< run the retriever in the forwards that compute the loss
        bool tap_trains_encoder = true;  ///< the retriever's gradient reaches the layers below it
    };

    pha_encoder(B& backend, stack_type lower, stack_type upper, instance_retriever<B, T> retriever, options o)
        : backend_(&backend), lower_(std::move(lower)), upper_(std::move(upper)), retriever_(std::move(retriever)), o_(o) {}

    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        lower_.initialize(rng, stddev);
        upper_.initialize(rng, stddev);
        retriever_.initialize(rng, stddev);
    }
    [[nodiscard]] std::string name() const { return "encoder"; }
    [[nodiscard]] std::size_t size() const noexcept { return lower_.size() + upper_.size(); }
    stack_type& lower() noexcept { return lower_; }
    stack_type& upper() noexcept { return upper_; }
    instance_retriever<B, T>& retriever() noexcept { return retriever_; }
    const instance_retriever<B, T>& retriever() const noexcept { return retriever_; }
    [[nodiscard]] const options& encoder_options() const noexcept { return o_; }

    tensor<B, T> forward(const tensor<B, T>& x, const condition_type& c, context& ctx, run_mode mode) const {
        ctx.anomaly = mode.anomaly;
        // Two passes run the upper stack twice, so its layers' gradients are final only when both backward passes
        // are done: no layer reports them (nn/gradient_listener.hpp); they are final when backward returns.
        if (o_.two_passes) mode.gradients = nullptr;
        ctx.retriever_output = {};
        ctx.tap_gradient = {};
        const bool tapped = o_.tap && ctx.tap_requested;
        if (o_.two_passes) {
            if (tapped) ctx.retriever_output = retrieve(first_pass(x, c, ctx.first_pass, mode), c, ctx, mode);
            return upper_.forward(x, c, ctx.upper, mode);
        }
        const tensor<B, T> h = lower_.forward(x, c, ctx.lower, mode);
        if (tapped) ctx.retriever_output = retrieve(h, c, ctx, mode);
        return upper_.forward(h, c, ctx.upper, mode);
    }

    /// e_x of a batch: the layers up to the tap (all of them without generated weights, with two passes).
    tensor<B, T> instance_embeddings(const tensor<B, T>& x, const condition_type& c, context& ctx, run_mode mode) const {
        const tensor<B, T> h = o_.two_passes ? first_pass(x, c, ctx.first_pass, mode) : lower_.forward(x, c, ctx.lower, mode);
        return retrieve(h, c, ctx, mode);
    }

    tensor<B, T> backward(const tensor<B, T>& dy, context& ctx, condition_gradients& dc) {
        tensor<B, T> dh = upper_.backward(dy, ctx.upper, dc);
        // Two passes: the second pass's input gradient goes straight to the embeddings and the first pass gets
        // only the retriever's gradient. Single pass: both meet at the tap.
        tensor<B, T> d_second_pass;
        if (o_.two_passes) d_second_pass = std::exchange(dh, tensor<B, T>{});
        if (!ctx.tap_gradient.empty()) {
            const tensor<B, T> dr = retriever_.backward(ctx.tap_gradient, ctx.retriever);
            check_input_gradient(ctx.anomaly, retriever_.name(), "", dr);
            if (o_.tap_trains_encoder) accumulate_into(*backend_, dh, dr);
        }
        if (!dh.empty()) dh = backward_to_lowest_trainable(o_.two_passes ? upper_ : lower_,
                                                           o_.two_passes ? ctx.first_pass : ctx.lower, dh, dc);
        if (!dc.need_input_gradient) return {};
        if (!d_second_pass.empty()) accumulate_into(*backend_, dh, d_second_pass);
        return dh;
    }

    /// The layers, then the retriever (PHA's own parameters follow the backbone's).
    template <class F>
    void visit_parameters(F&& f) {
        lower_.visit_parameters(f);
        upper_.visit_parameters(f);
        if (o_.retriever) retriever_.visit_parameters(f);
    }

private:
    tensor<B, T> first_pass(const tensor<B, T>& x, const condition_type& c, typename stack_type::context& ctx,
                            run_mode mode) const {
        condition_type own_adapters = c;
        own_adapters.generated = nullptr;
        return upper_.forward(x, own_adapters, ctx, mode);
    }
    tensor<B, T> retrieve(const tensor<B, T>& h, const condition_type& c, context& ctx, run_mode mode) const {
        tensor<B, T> e = retriever_.forward(h, c.mask ? *c.mask : attention_mask<B>{}, ctx.retriever, mode, c.mean_weights);
        check_output(mode.anomaly, retriever_.name(), "", e);
        return e;
    }
    /// Backward through `stack` down to its lowest layer with a trainable parameter when nothing below needs the
    /// input gradient (PHA's frozen backbone without shared adapters: no work in the layers below the tap).
    tensor<B, T> backward_to_lowest_trainable(stack_type& stack, typename stack_type::context& ctx, tensor<B, T> d,
                                              condition_gradients& dc) {
        std::size_t stop = 0;
        if (!dc.need_input_gradient)
            while (stop < stack.size() && !trains(stack.layer(stop))) ++stop;
        d = stack.backward_down_to(stop, d, ctx, dc);
        return stop == 0 ? d : tensor<B, T>{};
    }
    static bool trains(layer_type& l) {
        bool any = false;
        l.visit_parameters([&](const std::string&, parameter<B, T>& p) { any = any || p.trainable(); });
        return any;
    }

    B* backend_;
    stack_type lower_, upper_;
    instance_retriever<B, T> retriever_;
    options o_;
};

}  // namespace hyperadapt

// The layer contract, checked where the layer is defined (backend/archetype.hpp: a backend that only declares).
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
static_assert(conditioned_layer<pha_encoder<archetype_backend, float>>,
              "hyperadapt::pha_encoder must be a conditioned layer (nn/conditioned_layer.hpp)");
static_assert(initializable<pha_encoder<archetype_backend, float>>,
              "hyperadapt::pha_encoder must be initializable: initialize(rng)");
}  // namespace hyperadapt
