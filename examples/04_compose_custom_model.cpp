// 04_compose_custom_model: a model no paper has, assembled from the layer templates in
// 04_compose_custom_model.hpp (read it first: the whole model is its ~40 lines of composition), trained on
// the built-in synthetic tasks with MT-Uncertainty sampling.
//
// What it shows: a new layer kind as a choice of slots (CA-MTL's block-diagonal attention and conditional
// layer norms, PHA's generated adapters), two conditionings combined (a task embedding and a prototype
// hypernetwork), a split encoder (plain frozen BERT below, the new layers above) as a sequential of layer
// stacks, and the same trainer, sampler and evaluation as CA-MTL and PHA use. Its gradients are checked in
// tests/models/test_custom_model.cpp.
//
//   04_compose_custom_model [--steps N] [--seed S] [--threads T]
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "04_compose_custom_model.hpp"
#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/nn/parameters.hpp"
#include "hyperadapt/optim/clip.hpp"
#include "hyperadapt/train/multitask_trainer.hpp"
#include "hyperadapt/train/samplers/mt_uncertainty.hpp"
#include "hyperadapt/train/synthetic_tasks.hpp"

using namespace hyperadapt;

// What runs every step -- the model's initialisation, forward and backward, AdamW, the gradients' zeroing and
// clipping -- is compiled in instances/hybrid.cpp (-O3), in parallel with this file, which holds what runs
// once or around the step (options, construction, the training loop) and compiles at -O1 (docs/design.md,
// "Compile time").
HYPERADAPT_EXTERN_MULTITASK_MODEL_COMPUTE(hybrid::recipe<cpu, float>);
extern template class hyperadapt::adamw<cpu, float>;
extern template void hyperadapt::zero_grad(hybrid::model<cpu>&);
extern template double hyperadapt::clip_grad_norm(hybrid::model<cpu>&, double, bool);

int main(int argc, char** argv) try {
    CLI::App app("A hybrid of CA-MTL and PHA assembled from the layer templates, on built-in synthetic tasks",
                 "04_compose_custom_model");
    std::int64_t steps = 600;
    std::uint64_t seed = 1;
    int threads = 0;
    app.add_option("--steps", steps, "training steps")->check(CLI::PositiveNumber);
    app.add_option("--seed", seed, "initialisation, sampling and dropout seed");
    app.add_option("--threads", threads, "CPU threads (0: OpenMP's default)")->check(CLI::Range(0, 1024));
    CLI11_PARSE(app, argc, argv);

    cpu::options backend_options;
    if (threads > 0) backend_options.threads = threads;
    cpu b(backend_options);
    hybrid::options o;
    o.backbone = {.vocab_size = 40, .hidden = 64, .layers = 2, .heads = 4, .intermediate = 128, .max_position = 16};
    std::vector<encoded_task> train, dev;
    std::vector<mt_uncertainty_task> sampled;
    for (int t = 0; t < 3; ++t) {
        const auto kind = static_cast<synthetic_kind>(t);
        train.push_back(synthetic_task(kind, 2000, o.seq_len, 100 + static_cast<std::uint64_t>(t)));
        dev.push_back(synthetic_task(kind, 400, o.seq_len, 200 + static_cast<std::uint64_t>(t)));
        o.tasks.push_back({train.back().info.name, train.back().num_labels()});
        sampled.push_back({train.back().info.name, train.back().size(), train.back().num_labels(), {}});
    }
    sampled[2].borrow_scores_from = sampled[0].name;  // the regression task takes a classification task's scores

    hybrid::model<cpu> m(b, o);
    rng_stream init(seed);
    m.initialize(init);
    m.apply_freezing();
    const auto counts = count_parameters(m);
    std::printf("04_compose_custom_model: CA-MTL attention + PHA generated adapters on a 2-layer encoder "
                "(hidden 64), 3 synthetic tasks, MT-Uncertainty sampling, %zu threads; %zu of %zu parameters train\n",
                static_cast<std::size_t>(b.threads()), counts.trainable, counts.total);

    trainer_options t;
    t.steps = steps;
    t.lr = 1e-3;
    t.eval_every = 200;
    t.seed = seed;
    mt_uncertainty_sampler sampler(sampled, 32, rng_stream(seed * 7919 + 17));
    const auto r = train_multitask(m, sampler, b, train, dev, t);
    std::printf("%lld steps in %.1f s\n  %-10s %12s %12s\n", static_cast<long long>(r.steps), r.seconds, "task",
                "best dev", "final dev");
    for (std::size_t i = 0; i < r.best.size(); ++i)
        std::printf("  %-10s %12.4f %12.4f\n", r.best[i].task.c_str(), r.best[i].score, r.final[i].score);
    std::printf("  %-10s %12.4f %12.4f\n", "average", r.best_average, r.final_average);
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "04_compose_custom_model: %s\n", e.what());
    return 1;
}
