#pragma once
// What the data-parallel tests share (test_data_parallel_mpi.cpp on the CPU, test_nccl_training.cu on a GPU):
// a small CA-MTL and a small PHA over three synthetic tasks, their data, and a six-step run with
// MT-Uncertainty or size-proportional sampling.
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "hyperadapt/models/camtl.hpp"
#include "hyperadapt/models/pha_bert.hpp"
#include "hyperadapt/train/multitask_trainer.hpp"
#include "hyperadapt/train/samplers/mt_uncertainty.hpp"
#include "hyperadapt/train/samplers/size_proportional.hpp"
#include "hyperadapt/train/synthetic_tasks.hpp"

namespace hyperadapt::test {

inline const std::vector<task_head_spec> small_heads{{"order", 2}, {"majority", 2}, {"count", 1}};

inline bert_config small_backbone(double dropout) {
    return {.vocab_size = 40, .hidden = 16, .layers = 2, .heads = 2, .intermediate = 12, .max_position = 16,
            .hidden_dropout = dropout, .attention_dropout = dropout};
}

/// A small CA-MTL; every dropout at `dropout` (0: off, as the multi-rank equalities need: the ranks' dropout
/// streams are their own).
inline camtl_options small_camtl(double dropout = 0) {
    camtl_options o;
    o.backbone = small_backbone(dropout);
    o.seq_len = 16;
    o.head_dropout = dropout;
    o.tasks = small_heads;
    return o;
}

/// A small PHA: prototypes, hypernetwork, retriever, both contrastive losses.
inline pha_bert_options small_pha(double dropout = 0) {
    pha_bert_options o;
    o.backbone = small_backbone(dropout);
    o.tasks = small_heads;
    o.bottleneck = 4;
    o.prototype_dim = 6;
    o.retriever_hidden = 8;
    o.hypernet_hidden = 8;
    o.hypernet_projection = 4;
    o.layer_embedding = 3;
    o.head_dropout = dropout;
    return o;
}

/// The options of `Model` (a camtl_model or a pha_bert over any backend).
template <class Model>
typename Model::options_type small_options(double dropout = 0) {
    if constexpr (std::is_same_v<typename Model::options_type, pha_bert_options>) return small_pha(dropout);
    else return small_camtl(dropout);
}

/// The three tasks' training (60 examples each) and dev (20 each) sets, 16 tokens long.
inline std::vector<encoded_task> small_train_tasks() {
    return {synthetic_task(synthetic_kind::order, 60, 16, 3), synthetic_task(synthetic_kind::majority, 60, 16, 4),
            synthetic_task(synthetic_kind::count, 60, 16, 5)};
}
inline std::vector<encoded_task> small_dev_tasks() {
    return {synthetic_task(synthetic_kind::order, 20, 16, 6), synthetic_task(synthetic_kind::majority, 20, 16, 7),
            synthetic_task(synthetic_kind::count, 20, 16, 8)};
}

/// Six steps, peak rate 3e-3, evaluations at steps 3 and 6, seed 5, quiet.
inline trainer_options six_steps() {
    trainer_options o;
    o.steps = 6;
    o.lr = 3e-3;
    o.eval_every = 3;
    o.show_progress = false;
    o.seed = 5;
    return o;
}

/// `run(sampler)` with a fresh MT-Uncertainty sampler (STS-B-style borrowing: the regression task takes the
/// first task's scores) or a size-proportional one over `train`, `batch` rows per step, seeded 9.
template <class Run>
training_result with_sampler(bool mtu, const std::vector<encoded_task>& train, std::size_t batch, Run&& run) {
    if (mtu) {
        std::vector<mt_uncertainty_task> tasks;
        for (const auto& t : train) tasks.push_back({t.info.name, t.size(), t.num_labels(), {}});
        tasks[2].borrow_scores_from = tasks[0].name;
        mt_uncertainty_sampler s(tasks, batch, rng_stream(9));
        return run(s);
    }
    std::vector<std::size_t> sizes;
    for (const auto& t : train) sizes.push_back(t.size());
    size_proportional_sampler s(sizes, batch, rng_stream(9));
    return run(s);
}

/// A fresh `Model` on `backend` (dropout 0.1, initialised from seed 11, its freezing applied) trained six steps
/// (six_steps(), the three small tasks, batch 12) by `run(model, sampler, train, dev, options)`, which calls
/// train_multitask with the communicator of its choice; returns the result and every parameter's values.
template <class Model, class Run>
std::pair<training_result, std::vector<std::vector<typename Model::value_type>>> train_six_steps(
    typename Model::backend_type& backend, bool mtu, Run&& run) {
    Model m(backend, small_options<Model>(0.1));
    rng_stream init(11);
    m.initialize(init);
    m.apply_freezing();
    const auto train = small_train_tasks();
    const auto dev = small_dev_tasks();
    const trainer_options o = six_steps();
    const training_result r =
        with_sampler(mtu, train, 12, [&](auto& sampler) { return run(m, sampler, train, dev, o); });
    std::vector<std::vector<typename Model::value_type>> values;
    m.visit_parameters([&](const std::string&, auto& p) { values.push_back(p.value.to_host()); });
    return {r, values};
}

}  // namespace hyperadapt::test
