#pragma once
// What the library's conditioned layers receive besides their input (nn/conditioned_layer.hpp has the
// contract), built once per batch by the model, and what their backward adds into.
//
//   mask             (batch, seq) padding mask, or null: no padding
//   task_ids         (batch) int32: every row's task (conditional layer norms, per-task tables)
//   tasks            what the batch builder knows of those ids (batch_tasks, empty where the model has nothing):
//                    the ids on the host, and the tasks present with the first row of each, so that a layer
//                    reads them instead of copying task_ids back or uploading its own rows (on a GPU, a wait or
//                    a transfer per layer)
//   task_embedding   (batch, d) the task condition z' (CA-MTL's block-diagonal bias, CLN, adapters)
//   mean_weights     (batch, seq) mean pooling's weights over the mask (core/mean_weights.hpp), as the batch
//                    uploaded them, or null: a layer that pools (PHA's retriever) works them out from the mask
//   generated        per encoder layer (indexed by the layer's position in the encoder), the adapter weights a
//                    generator made for this batch (PHA's hypernetwork, HyperFormer++'s, per-task tables)
//
// The weight types are only declared here, so a CA-MTL build does not compile PHA's adapters.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/tensor/tensor.hpp"

namespace hyperadapt {

template <class B, class T>
struct adapter_weights;  // layers/pha/task_adapter.hpp
template <class B, class T>
struct hyperformer_adapter_weights;  // layers/pha/hyperformer_hypernet.hpp
template <class B, class T>
struct generated_adapter_gradients;  // layers/pha/generated_adapters.hpp

template <class B>
using attention_mask = tensor<B, std::uint8_t>;

/// The generated weights of one layer's adapter slots; null where the layer gets none this batch.
template <class B, class T>
struct generated_adapters {
    const adapter_weights<B, T>* parallel = nullptr;                     ///< PHA-style, beside the FFN
    const hyperformer_adapter_weights<B, T>* after_attention = nullptr;  ///< HyperFormer, attention output
    const hyperformer_adapter_weights<B, T>* after_ffn = nullptr;        ///< HyperFormer, FFN output
};

/// What the batch builder worked out on the host about its rows' tasks. host_task_ids: every row's task (as
/// task_ids); host_first_rows: per task present, ascending, the first row that carries it (core/task_rows.hpp);
/// first_rows: the same in backend memory, uploaded with the batch. Empty or null: a layer works out what it
/// needs from task_ids itself.
template <class B>
struct batch_tasks {
    std::span<const std::int32_t> host_task_ids{};
    std::span<const std::int32_t> host_first_rows{};
    const tensor<B, std::int32_t>* first_rows = nullptr;

    /// What a batch or row group (data/multitask_batch.hpp) keeps: its host_task_ids, host_first_rows and
    /// first_rows.
    template <class Batch>
    [[nodiscard]] static batch_tasks of(const Batch& b) {
        return {b.host_task_ids, b.host_first_rows, b.first_rows.empty() ? nullptr : &b.first_rows};
    }
};

template <class B, class T>
struct layer_condition {
    const attention_mask<B>* mask = nullptr;
    const tensor<B, std::int32_t>* task_ids = nullptr;
    batch_tasks<B> tasks{};
    const tensor<B, T>* task_embedding = nullptr;
    const std::vector<generated_adapters<B, T>>* generated = nullptr;
    const tensor<B, T>* mean_weights = nullptr;

    /// The generated weights of encoder layer `layer`, or all-null.
    [[nodiscard]] generated_adapters<B, T> generated_for(std::size_t layer) const {
        return generated && layer < generated->size() ? (*generated)[layer] : generated_adapters<B, T>{};
    }
};

/// What conditioned layers' backward adds into. task_embedding is created by the first layer that adds to it.
/// generated, when set, has one entry per encoder layer (the model sizes it before backward).
template <class B, class T>
struct layer_condition_gradients {
    tensor<B, T> task_embedding;
    std::vector<generated_adapter_gradients<B, T>>* generated = nullptr;
    /// False when nothing below the encoder trains: a stack may then stop below its lowest trainable layer
    /// and return an empty input gradient.
    bool need_input_gradient = true;
};

/// acc += g, or acc = g when acc is still empty: how condition gradients from several layers are summed.
template <class B, class T>
void accumulate_into(B& backend, tensor<B, T>& acc, const tensor<B, T>& g) {
    if (g.empty()) return;
    if (acc.empty())
        acc = g;
    else
        backend.axpy(acc.size(), T(1), g.data(), acc.data());
}

}  // namespace hyperadapt
