#pragma once
// 04_compose_custom_model's training, over a backend policy: the same code on the CPU
// (04_compose_custom_model.cpp) and, in a build with CUDA, on the GPU (04_compose_custom_model_cuda.cu, nvcc).
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "04_compose_custom_model.hpp"
#include "hyperadapt/nn/parameters.hpp"
#include "hyperadapt/optim/clip.hpp"
#include "hyperadapt/train/multitask_trainer.hpp"
#include "hyperadapt/train/samplers/mt_uncertainty.hpp"
#include "hyperadapt/train/synthetic_tasks.hpp"

namespace hybrid {

/// Builds the hybrid on backend `b`, trains it `steps` steps on the three synthetic tasks with MT-Uncertainty
/// sampling and prints each task's best and final dev score. `where`: the device, for the first line.
template <class B>
void train_on_synthetic_tasks(B& b, std::int64_t steps, std::uint64_t seed, const std::string& where) {
    using namespace hyperadapt;
    options o;
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

    model<B> m(b, o);
    rng_stream init(seed);
    m.initialize(init);
    m.apply_freezing();
    const auto counts = count_parameters(m);
    std::printf("04_compose_custom_model: CA-MTL attention + PHA generated adapters on a 2-layer encoder "
                "(hidden 64), 3 synthetic tasks, MT-Uncertainty sampling, %s; %zu of %zu parameters train\n",
                where.c_str(), counts.trainable, counts.total);

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
}

/// The same on GPU `gpu` (04_compose_custom_model_cuda.cu); without CUDA in the build, a config_error saying so.
void train_on_synthetic_tasks_cuda(int gpu, std::int64_t steps, std::uint64_t seed);

}  // namespace hybrid
