#pragma once
// Few-shot transfer with PHA (the paper's §3.4 protocol; absent from the released code, spec §2.8): a model
// trained on source tasks meets a new task with k labelled examples.
//
//   1. nearest_prototype: the retriever embeds the k examples; each prototype's score is the mean cosine
//      similarity between it and the examples' embeddings; the best-scoring source prototype is retrieved.
//   2. start_transfer: a model for the new task(s) takes every source parameter whose name and shape match
//      (backbone, shared adapters, retriever, hypernetwork), its prototype starts as the retrieved one, and
//      its head starts fresh (BERT has no shared output layer, spec §2.10).
//   3. tuning continues with the ordinary trainer on the k examples: every transferred part that the
//      model's freezing rule leaves trainable, or (tune_only_prototype_and_head) just the new task's
//      prototype and head, so that the hypernetwork generates the new task's adapters from a prototype that
//      moves while everything the source tasks learned stays as it was.
//
// The target model is an ordinary pha_bert, so freezing, checkpoints and evaluation work unchanged.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "hyperadapt/models/pha_bert.hpp"
#include "hyperadapt/data/multitask_batch.hpp"
#include "hyperadapt/nn/parameters.hpp"

namespace hyperadapt {

struct prototype_match {
    std::size_t task = 0;             ///< index of the retrieved source prototype
    std::vector<double> similarity;   ///< mean cosine similarity of the examples to each prototype
    std::size_t examples = 0;
};

/// Scores every prototype of `model` against the retriever embeddings of `examples` (any task id: the
/// retriever does not read it). Batches of `batch_size` rows.
template <elementwise_backend B, class T>
prototype_match nearest_prototype(const pha_bert<B, T>& model, B& backend, std::span<const encoded_task> tasks,
                                  std::span<const sample_ref> examples, std::size_t batch_size = 32) {
    if (model.options().source != adapter_source::prototype_hypernet)
        throw config_error("nearest_prototype: only PHA models (adapter_source::prototype_hypernet) have prototypes "
                           "and a retriever");
    if (examples.empty()) throw config_error("nearest_prototype: no examples");
    const auto prototypes = model.prototypes().weight().value.to_host();
    const std::size_t nt = model.prototypes().num_embeddings(), dim = model.prototypes().dim();
    std::vector<double> kn(nt * dim);
    for (std::size_t t = 0; t < nt; ++t) {
        double s = 0;
        for (std::size_t c = 0; c < dim; ++c) s += static_cast<double>(prototypes[t * dim + c]) * prototypes[t * dim + c];
        const double n = std::max(std::sqrt(s), 1e-12);
        for (std::size_t c = 0; c < dim; ++c) kn[t * dim + c] = static_cast<double>(prototypes[t * dim + c]) / n;
    }
    prototype_match m;
    m.similarity.assign(nt, 0.0);
    for (std::size_t first = 0; first < examples.size(); first += batch_size) {
        const auto rows = examples.subspan(first, std::min(batch_size, examples.size() - first));
        const auto batch = make_batch<B, T>(backend, tasks, rows, batch_padding::to_longest);
        const auto e = model.instance_embeddings(batch).to_host();
        for (std::size_t r = 0; r < rows.size(); ++r) {
            double s = 0;
            for (std::size_t c = 0; c < dim; ++c) s += static_cast<double>(e[r * dim + c]) * e[r * dim + c];
            const double n = std::max(std::sqrt(s), 1e-12);
            for (std::size_t t = 0; t < nt; ++t) {
                double dot = 0;
                for (std::size_t c = 0; c < dim; ++c) dot += static_cast<double>(e[r * dim + c]) * kn[t * dim + c];
                m.similarity[t] += dot / n;
            }
        }
    }
    m.examples = examples.size();
    for (auto& s : m.similarity) s /= static_cast<double>(examples.size());
    // std::max_element would pass over a NaN and retrieve some other prototype as if nothing were wrong.
    for (std::size_t t = 0; t < nt; ++t)
        if (!std::isfinite(m.similarity[t]))
            throw error("nearest_prototype: the similarity to prototype " + std::to_string(t) + " is " +
                        std::to_string(m.similarity[t]) + ": prototype " + std::to_string(t) +
                        " or the retriever's embeddings of the examples are not finite (an anomaly_detector in "
                        "the run_mode of pha_bert::instance_embeddings names the module)");
    m.task = static_cast<std::size_t>(std::max_element(m.similarity.begin(), m.similarity.end()) -
                                      m.similarity.begin());
    return m;
}

/// Copies every parameter of `source` into `target` whose name and shape match, except the prototypes and
/// the task heads; then sets target prototype `target_task` to source prototype `source_task`. Returns the
/// number of tensors copied.
template <elementwise_backend B, class T>
std::size_t start_transfer(pha_bert<B, T>& source, pha_bert<B, T>& target, std::size_t source_task,
                           std::size_t target_task = 0) {
    if (source.options().source != adapter_source::prototype_hypernet ||
        target.options().source != adapter_source::prototype_hypernet)
        throw config_error("start_transfer: both models must be PHA models (adapter_source::prototype_hypernet)");
    if (source_task >= source.prototypes().num_embeddings())
        throw config_error("start_transfer: source prototype " + std::to_string(source_task) + " of " +
                           std::to_string(source.prototypes().num_embeddings()));
    if (target_task >= target.prototypes().num_embeddings())
        throw config_error("start_transfer: target prototype " + std::to_string(target_task) + " of " +
                           std::to_string(target.prototypes().num_embeddings()));
    std::map<std::string, parameter<B, T>*> from;
    source.visit_parameters([&](const std::string& n, parameter<B, T>& p) { from[n] = &p; });
    std::size_t copied = 0;
    target.visit_parameters([&](const std::string& n, parameter<B, T>& p) {
        if (n.rfind("heads.", 0) == 0 || n == "prototypes.weight") return;
        const auto it = from.find(n);
        if (it == from.end() || it->second->value.shape() != p.value.shape()) return;
        p.value.backend().copy(it->second->value.data(), p.value.data(), p.size());
        ++copied;
    });
    const std::size_t dim = target.prototypes().dim();
    if (source.prototypes().dim() != dim)
        throw shape_error("start_transfer: prototype widths differ: " + std::to_string(source.prototypes().dim()) +
                          " vs " + std::to_string(dim));
    auto& dst = target.prototypes().weight().value;
    dst.backend().copy(source.prototypes().weight().value.data() + source_task * dim, dst.data() + target_task * dim,
                       dim);
    return copied;
}

/// Freezes every parameter of a transfer target except its prototypes ("prototypes.weight") and its task
/// heads ("heads.*"): the cheapest PHA transfer, in which the source's retriever, hypernetwork, adapters and
/// backbone stay fixed and only the new task's prototype (and so the adapters generated from it) and its
/// head move. Call it after start_transfer (and after apply_freezing, which it overrides). Returns the
/// number of trainable scalars left.
template <elementwise_backend B, class T>
std::size_t tune_only_prototype_and_head(pha_bert<B, T>& target) {
    if (target.options().source != adapter_source::prototype_hypernet)
        throw config_error("tune_only_prototype_and_head: only PHA models (adapter_source::prototype_hypernet) have "
                           "prototypes");
    freeze_all(target);
    unfreeze(target, R"(^prototypes\.weight$|^heads\.)");
    return count_parameters(target).trainable;
}

}  // namespace hyperadapt
