#pragma once
// Size-proportional sampling: task t is drawn with probability p_t = N_t / ΣN. With mixed batches (the
// default) every row's task is drawn separately, like CA-MTL's default path (a RandomSampler over the
// concatenation of all training sets, without --use_mt_uncertainty); single_task batches draw one task per
// batch instead.
//
// Examples within a task are drawn WITHOUT replacement: each task walks through a permutation of its
// examples that is reshuffled (drawn afresh from the sampler's stream) every time it is used up, so every
// example of a task is seen once per epoch of that task. Unlike one shuffle of the concatenated sets, the
// number of rows a task gets per ΣN rows is random (binomial around N_t), not exactly N_t.
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "hyperadapt/train/samplers/task_mixture.hpp"

namespace hyperadapt {

struct size_proportional_options {
    batch_composition composition = batch_composition::mixed;
};

class size_proportional_sampler : public detail::task_mixture_sampler {
public:
    /// sizes[t] = N_t (every N_t ≥ 1); b = rows per batch.
    size_proportional_sampler(std::vector<std::size_t> sizes, std::size_t batch_size, rng_stream rng,
                              size_proportional_options options = {})
        : task_mixture_sampler("size_proportional", sizes, batch_size, rng, log_weights(sizes), options.composition,
                               {{"composition", to_string(options.composition)}}) {}

private:
    static std::vector<double> log_weights(const std::vector<std::size_t>& sizes) {
        std::vector<double> w;
        for (auto n : sizes) w.push_back(std::log(static_cast<double>(n)));
        if (w.empty()) w.push_back(0);  // the base class reports the empty task list
        return w;
    }
};

static_assert(sampler<size_proportional_sampler>);

}  // namespace hyperadapt
