#pragma once
// PHA's adapter generation as the conditioning of a multi-task model (spec §2.4, §2.10): every row's task picks
// its prototype k ("prototypes.weight", N(0, 1)), and the prototypical hypernetwork ("hypernet.*") generates the
// weights of the parallel adapter of each encoder layer in [first, first + layers) from k and the layer's
// embedding. The weights go to the layers in the layer condition (generated[i].parallel); their gradients come
// back in the condition gradients and train the hypernetwork and the prototypes.
//
// A conditioning of models/multitask_model.hpp (see camtl_task_conditioning for the protocol). The contrastive
// retriever that shapes the prototypes in PHA proper is models/pha_bert.hpp's; this part only generates.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "hyperadapt/layers/embedding.hpp"
#include "hyperadapt/layers/layer_condition.hpp"
#include "hyperadapt/layers/pha/adapter_slots.hpp"
#include "hyperadapt/layers/pha/hypernet.hpp"
#include "hyperadapt/nn/anomaly.hpp"

namespace hyperadapt {

template <elementwise_backend B, class T = float>
class prototype_conditioning {
public:
    using backend_type = B;
    using value_type = T;
    struct context {
        typename embedding<B, T>::context prototype_rows;
        std::vector<typename prototypical_hypernet<B, T>::context> hypernet;  // one per generated layer
        std::vector<adapter_weights<B, T>> weights;
        std::vector<generated_adapters<B, T>> generated;       // per encoder layer, for the condition
        std::vector<generated_adapter_gradients<B, T>> grads;  // per encoder layer, filled by backward
        anomaly_detector* anomaly = nullptr;
    };

    /// `hypernet.layers` layers get generated adapters, starting at encoder layer `first`.
    prototype_conditioning(B& backend, std::size_t tasks, const prototypical_hypernet_config& hypernet,
                           std::size_t first)
        : backend_(&backend),
          first_(first),
          layers_(hypernet.layers),
          prototypes_(backend, tasks, hypernet.condition, "prototypes"),
          hypernet_(backend, hypernet, "hypernet") {}

    /// Prototypes N(0, 1), the hypernetwork its authors' init (hyperfan-in heads).
    template <class Rng>
    void initialize(Rng& rng, T /*stddev*/ = T(0.02)) {
        prototypes_.initialize(rng, T(1));
        hypernet_.initialize(rng);
    }

    [[nodiscard]] std::string name() const { return hypernet_.name(); }
    embedding<B, T>& prototypes() noexcept { return prototypes_; }
    const embedding<B, T>& prototypes() const noexcept { return prototypes_; }
    prototypical_hypernet<B, T>& hypernet() noexcept { return hypernet_; }

    tensor<B, T> forward(const tensor<B, std::int32_t>& task_ids, const tensor<B, T>& x, layer_condition<B, T>& c,
                         context& ctx, run_mode mode) const {
        ctx.anomaly = mode.anomaly;
        // The range check reads the batch's host ids (layer_condition::tasks) instead of copying them back.
        const tensor<B, T> k = prototypes_.forward(task_ids, ctx.prototype_rows, mode, c.tasks.host_task_ids);
        ctx.hypernet.resize(layers_);
        ctx.weights.resize(layers_);
        ctx.generated.assign(first_ + layers_, {});
        for (std::size_t j = 0; j < layers_; ++j) {
            ctx.weights[j] = hypernet_.forward(k, j, ctx.hypernet[j], mode);
            ctx.generated[first_ + j].parallel = &ctx.weights[j];
        }
        c.generated = &ctx.generated;
        return x;
    }

    [[nodiscard]] bool needs_input_gradient() const { return false; }
    void prepare(layer_condition_gradients<B, T>& dc, context& ctx) const {
        ctx.grads.assign(first_ + layers_, {});
        dc.generated = &ctx.grads;
    }

    /// The generated weights' gradients (top layer first, as the layers produced them) train the hypernetwork;
    /// their sum over layers trains the prototypes.
    tensor<B, T> backward(const tensor<B, T>& dx, layer_condition_gradients<B, T>&, context& ctx) {
        tensor<B, T> dk;
        for (std::size_t j = layers_; j-- > 0;) {
            const auto& g = ctx.grads[first_ + j].parallel;
            if (g.down_weight.empty()) continue;  // the layer did not use its weights (no training forward)
            const tensor<B, T> d = hypernet_.backward(g, ctx.hypernet[j]);
            check_input_gradient(ctx.anomaly, hypernet_.name(), "", d, "prototype gradient");
            accumulate_into(*backend_, dk, d);
        }
        if (!dk.empty()) prototypes_.backward(dk, ctx.prototype_rows);
        return dx;
    }

    template <class F>
    void visit_parameters(F&& f) {
        prototypes_.visit_parameters(f);
        hypernet_.visit_parameters(f);
    }

private:
    B* backend_;
    std::size_t first_, layers_;
    embedding<B, T> prototypes_;
    prototypical_hypernet<B, T> hypernet_;
};

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
// prototype_conditioning: several inputs (task ids, x, the condition it fills): only parameterized + initializable.
static_assert(parameterized<prototype_conditioning<archetype_backend, float>>,
              "hyperadapt::prototype_conditioning must be parameterized (nn/layer.hpp)");
static_assert(initializable<prototype_conditioning<archetype_backend, float>>,
              "hyperadapt::prototype_conditioning must be initializable: initialize(rng)");
}  // namespace hyperadapt
