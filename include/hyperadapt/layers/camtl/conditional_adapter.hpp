#pragma once
// CA-MTL base's top-layer adapter (spec §1.6; CA-MTL ca_mtl_base.py::BertAdapter9):
//
//   out = CLN(bottleneck(z', hidden_states) + bert_layer_input, z', task_ids)
//
// In the base encoder's layer 11, hidden_states is the layer's FFN output (after its own residual and
// conditional layer norm) and bert_layer_input is the layer's attention output, not the layer input.
//
// Shapes: bert_layer_input and hidden_states (batch, seq, d) or (batch, d); task_embedding z' (batch, d);
// task_ids (batch) int32 (see conditional_layer_norm: the CLN reads the first example of each task).
//
// Parameters: "<name>.bottleneck.*" (conditional_bottleneck) and "<name>.condlayernorm.*"
// (conditional_layer_norm, eps 1e-12 unless options say otherwise).
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/layers/camtl/conditional_bottleneck.hpp"
#include "hyperadapt/layers/camtl/conditional_layer_norm.hpp"
#include "hyperadapt/layers/layer_condition.hpp"
#include "hyperadapt/layers/layer_slots.hpp"
#include "hyperadapt/nn/layer.hpp"

namespace hyperadapt {

template <elementwise_backend B, class T = float>
class conditional_adapter {
public:
    using backend_type = B;
    using value_type = T;
    using ids_type = tensor<B, std::int32_t>;
    struct context {
        typename conditional_bottleneck<B, T>::context bottleneck;
        typename conditional_layer_norm<B, T>::context norm;
    };
    struct gradients {
        tensor<B, T> bert_layer_input;  // like bert_layer_input
        tensor<B, T> hidden_states;     // like hidden_states
        tensor<B, T> task_embedding;    // (batch, d): both paths (bottleneck and CLN) summed
    };

    conditional_adapter(B& backend, std::size_t hidden, std::string name = "adapter", cln_options norm_options = {})
        : backend_(&backend),
          name_(std::move(name)),
          hidden_(hidden),
          bottleneck_(backend, hidden, join_name(name_, "bottleneck")),
          norm_(backend, hidden, hidden, join_name(name_, "condlayernorm"), norm_options) {}

    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        bottleneck_.initialize(rng, stddev);
        norm_.initialize(rng, stddev);
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] std::size_t hidden() const noexcept { return hidden_; }
    conditional_bottleneck<B, T>& bottleneck() noexcept { return bottleneck_; }
    conditional_layer_norm<B, T>& norm() noexcept { return norm_; }

    /// The authors' argument order: (bert_layer_input, hidden_states, task_embedding, task_id).
    tensor<B, T> forward(const tensor<B, T>& bert_layer_input, const tensor<B, T>& hidden_states,
                         const tensor<B, T>& task_embedding, const ids_type& task_ids, context& ctx,
                         run_mode mode = {}, const batch_tasks<B>& known = {}) const {
        tensor<B, T> s = bottleneck_.forward(hidden_states, task_embedding, ctx.bottleneck, mode);
        expect_shape(name_.c_str(), "bert_layer_input", hidden_states.shape(), bert_layer_input.shape());
        backend_->axpy(s.size(), T(1), bert_layer_input.data(), s.data());
        return norm_.forward(s, task_embedding, task_ids, ctx.norm, mode, known);
    }

    gradients backward(const tensor<B, T>& dout, context& ctx) {
        auto gn = norm_.backward(dout, ctx.norm);
        auto gb = bottleneck_.backward(gn.input, ctx.bottleneck);
        backend_->axpy(gb.condition.size(), T(1), gn.condition.data(), gb.condition.data());
        return {gn.input, gb.hidden_states, gb.condition};
    }

    template <class F>
    void visit_parameters(F&& f) {
        bottleneck_.visit_parameters(f);
        norm_.visit_parameters(f);
    }

private:
    B* backend_;
    std::string name_;
    std::size_t hidden_;
    conditional_bottleneck<B, T> bottleneck_;
    conditional_layer_norm<B, T> norm_;
};

/// The output slot of a transformer layer (layers/encoder_layer.hpp): CA-MTL base's top-layer adapter,
/// out = conditional_adapter(a, h | z', task ids) with a the attention output and h the FFN output. A layer
/// with it renames its BERT sub-modules "new_*" as the reference does (pretrained weights do not load into them).
struct conditional_output_adapter {
    template <class B, class T>
    class slot {
    public:
        static constexpr bool renames_submodules = true;
        using layer_type = conditional_adapter<B, T>;
        using context = typename layer_type::context;
        struct gradients {
            tensor<B, T> hidden_states;  // d h
            tensor<B, T> layer_input;    // d a
        };
        template <class C>
        slot(B& backend, const C& c, const slot_site& site)
            : adapter_(backend, c.hidden, join_name(site.layer, "adapter"), c.norm_options()) {}
        template <class Rng>
        void initialize(Rng& rng, T stddev) { adapter_.initialize(rng, stddev); }
        tensor<B, T> forward(const tensor<B, T>& a, const tensor<B, T>& h, const layer_condition<B, T>& c,
                             context& ctx, run_mode mode) const {
            if (!c.task_embedding) throw error(adapter_.name() + ": the conditional adapter needs the task embedding z'");
            return adapter_.forward(a, h, *c.task_embedding, c.task_ids ? *c.task_ids : tensor<B, std::int32_t>{}, ctx,
                                    mode, c.tasks);
        }
        /// Adds dz' into dz.
        gradients backward(const tensor<B, T>& dy, context& ctx, tensor<B, T>& dz) {
            auto g = adapter_.backward(dy, ctx);
            accumulate_into(dy.backend(), dz, g.task_embedding);
            return {std::move(g.hidden_states), std::move(g.bert_layer_input)};
        }
        template <class F>
        void visit_parameters(F&& f) { adapter_.visit_parameters(f); }
        layer_type& layer() noexcept { return adapter_; }

    private:
        layer_type adapter_;
    };
};

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
// conditional_adapter: several inputs (layer input, hidden states, task embedding): only parameterized + initializable.
static_assert(parameterized<conditional_adapter<archetype_backend, float>>,
              "hyperadapt::conditional_adapter must be parameterized (nn/layer.hpp)");
static_assert(initializable<conditional_adapter<archetype_backend, float>>,
              "hyperadapt::conditional_adapter must be initializable: initialize(rng)");
}  // namespace hyperadapt
