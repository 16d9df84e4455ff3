#pragma once
// CA-MTL's task conditioning of a multi-task model (spec §1.1, §1.3): every row's task id picks its task
// embedding z from a learned table ("task_embedding.weight"), conditional alignment FiLMs the embedding output
// with z ("conditional_alignment.*", removable for ablations), and z goes to the encoder in the layer condition
// (the CA-MTL encoders map it to z' themselves, as the reference's do).
//
// A conditioning of models/multitask_model.hpp: forward(task_ids, embedded, condition, ctx, mode) returns the
// encoder input and fills the condition; backward(d_encoder_input, condition_gradients, ctx) returns the
// gradient of the embedding output.
#include <cstddef>
#include <cstdint>
#include <string>

#include "hyperadapt/layers/camtl/conditional_alignment.hpp"
#include "hyperadapt/layers/embedding.hpp"
#include "hyperadapt/layers/layer_condition.hpp"
#include "hyperadapt/nn/anomaly.hpp"

namespace hyperadapt {

template <elementwise_backend B, class T = float>
class camtl_task_conditioning {
public:
    using backend_type = B;
    using value_type = T;
    struct context {
        typename embedding<B, T>::context table;
        typename conditional_alignment<B, T>::context alignment;
        tensor<B, T> z;  // (batch, d): what the condition points to during the encoder's forward
        anomaly_detector* anomaly = nullptr;
    };

    camtl_task_conditioning(B& backend, std::size_t tasks, std::size_t hidden, bool alignment = true)
        : backend_(&backend),
          table_(backend, tasks, hidden, "task_embedding"),
          alignment_(backend, hidden, "conditional_alignment"),
          aligned_(alignment) {}

    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        table_.initialize(rng, stddev);
        alignment_.initialize(rng, stddev);
    }

    [[nodiscard]] std::string name() const { return table_.name(); }
    embedding<B, T>& table() noexcept { return table_; }

    tensor<B, T> forward(const tensor<B, std::int32_t>& task_ids, const tensor<B, T>& embedded,
                         layer_condition<B, T>& c, context& ctx, run_mode mode) const {
        ctx.anomaly = mode.anomaly;
        ctx.z = table_.forward(task_ids, ctx.table, mode, c.tasks.host_task_ids);
        check_output(mode.anomaly, table_.name(), "", ctx.z);
        c.task_embedding = &ctx.z;
        if (!aligned_) return embedded;
        tensor<B, T> x = alignment_.forward(embedded, ctx.z, ctx.alignment, mode);
        check_output(mode.anomaly, alignment_.name(), "", x);
        return x;
    }

    void prepare(layer_condition_gradients<B, T>&, context&) const {}
    /// The alignment's parameters train from the encoder's input gradient.
    [[nodiscard]] bool needs_input_gradient() const { return aligned_; }

    /// dc.task_embedding is dz from the encoder; adds the alignment's, then trains the table.
    tensor<B, T> backward(const tensor<B, T>& dx, layer_condition_gradients<B, T>& dc, context& ctx) {
        tensor<B, T> dz = dc.task_embedding.empty() ? tensor<B, T>::zeros(*backend_, ctx.z.shape()) : dc.task_embedding;
        tensor<B, T> d_embedded = dx;
        if (aligned_) {
            auto g = alignment_.backward(dx, ctx.alignment);
            d_embedded = std::move(g.embeddings);
            check_input_gradient(ctx.anomaly, alignment_.name(), "", d_embedded);
            check_input_gradient(ctx.anomaly, alignment_.name(), "", g.task_embedding, "task-embedding gradient");
            backend_->axpy(dz.size(), T(1), g.task_embedding.data(), dz.data());
        }
        table_.backward(dz, ctx.table);
        return d_embedded;
    }

    /// The reference's order: the task embedding, then the alignment.
    template <class F>
    void visit_parameters(F&& f) {
        table_.visit_parameters(f);
        if (aligned_) alignment_.visit_parameters(f);
    }

private:
    B* backend_;
    embedding<B, T> table_;
    conditional_alignment<B, T> alignment_;
    bool aligned_;
};

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
// camtl_task_conditioning: several inputs (task ids, embedded tokens): only parameterized + initializable.
static_assert(parameterized<camtl_task_conditioning<archetype_backend, float>>,
              "hyperadapt::camtl_task_conditioning must be parameterized (nn/layer.hpp)");
static_assert(initializable<camtl_task_conditioning<archetype_backend, float>>,
              "hyperadapt::camtl_task_conditioning must be initializable: initialize(rng)");
}  // namespace hyperadapt
