#pragma once
// Temperature sampling (HyperFormer, PHA): task t is drawn with probability p_t ∝ N_t^(1/T), i.e.
// (N_t / ΣN)^(1/T) normalised. T = 1 is size-proportional sampling; T → ∞ approaches uniform over tasks.
// HyperFormer uses T = 10 with single-task batches, which are the defaults here.
//
// Examples within a task are drawn WITHOUT replacement: each task walks through a permutation of its
// examples that is reshuffled (drawn afresh from the sampler's stream) every time it is used up, so every
// example of a task is seen once per epoch of that task. (HyperFormer itself draws examples with
// replacement.) A single-task batch that reaches the end of its task's epoch continues with the next
// permutation, so every batch has exactly b rows; when N_t < b a batch repeats examples.
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "hyperadapt/train/samplers/task_mixture.hpp"

namespace hyperadapt {

struct temperature_options {
    double temperature = 10.0;  ///< T > 0
    batch_composition composition = batch_composition::single_task;
};

class temperature_sampler : public detail::task_mixture_sampler {
public:
    /// sizes[t] = N_t (every N_t ≥ 1); b = rows per batch.
    temperature_sampler(std::vector<std::size_t> sizes, std::size_t batch_size, rng_stream rng,
                        temperature_options options = {})
        : task_mixture_sampler("temperature", sizes, batch_size, rng, log_weights(sizes, options.temperature),
                               options.composition,
                               {{"temperature", options.temperature}, {"composition", to_string(options.composition)}}),
          temperature_(options.temperature) {}

    [[nodiscard]] double temperature() const noexcept { return temperature_; }

private:
    static std::vector<double> log_weights(const std::vector<std::size_t>& sizes, double temperature) {
        if (!(temperature > 0) || !std::isfinite(temperature))
            throw config_error("temperature sampler: temperature must be a finite number > 0, got " +
                               std::to_string(temperature));
        std::vector<double> w;
        for (auto n : sizes) w.push_back(std::log(static_cast<double>(n)) / temperature);  // log 0 = -inf: the base refuses empty tasks
        if (w.empty()) w.push_back(0);  // the base class reports the empty task list
        return w;
    }

    double temperature_;
};

static_assert(sampler<temperature_sampler>);

}  // namespace hyperadapt
