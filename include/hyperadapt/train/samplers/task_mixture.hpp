#pragma once
// The machinery behind size_proportional_sampler and temperature_sampler: tasks drawn from a fixed
// categorical distribution, examples within a task without replacement (a fresh permutation per epoch of
// that task; see train/sampler.hpp). Not meant to be used directly.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hyperadapt/train/sampler.hpp"

namespace hyperadapt::detail {

class task_mixture_sampler : public sampler_base {
public:
    static constexpr bool needs_scores = false;

    /// The probability of drawing each task.
    [[nodiscard]] const std::vector<double>& probabilities() const noexcept { return p_; }
    [[nodiscard]] batch_composition composition() const noexcept { return composition_; }

    /// The next batch's rows: single_task: one task drawn, then b of its examples (an epoch boundary inside
    /// the batch continues with the task's next permutation); mixed: a task drawn for every row.
    std::vector<example_ref> candidates() {
        begin_candidates();
        std::vector<example_ref> out;
        out.reserve(batch_size());
        if (composition_ == batch_composition::single_task) {
            take(draw_task(), batch_size(), true, out);
        } else {
            for (std::size_t r = 0; r < batch_size(); ++r) take(draw_task(), 1, true, out);
        }
        return set_pending(std::move(out));
    }
    /// Without a scoring phase the candidates are the batch.
    std::vector<example_ref> select() { return finish(pending_candidates()); }
    std::vector<example_ref> next_batch() {
        candidates();
        return select();
    }

    [[nodiscard]] std::string state() const { return to_json(config_).dump(); }
    void restore(std::string_view text) {
        auto copy = *this;
        copy.restore_json(text, config_);
        *this = std::move(copy);
    }

protected:
    /// weights[t] = log of task t's unnormalised probability (so that N_t^(1/T) cannot overflow).
    task_mixture_sampler(std::string kind, std::vector<std::size_t> sizes, std::size_t batch_size, rng_stream rng,
                         const std::vector<double>& log_weights, batch_composition composition, nlohmann::json config)
        : sampler_base(std::move(kind), std::move(sizes), batch_size, rng),
          composition_(composition),
          config_(std::move(config)) {
        double top = log_weights.front();
        for (double w : log_weights) top = std::max(top, w);
        double total = 0;
        for (double w : log_weights) {
            p_.push_back(std::exp(w - top));
            total += p_.back();
        }
        double run = 0;
        for (auto& p : p_) {
            p /= total;
            run += p;
            cumulative_.push_back(run);
        }
        cumulative_.back() = 1.0;  // u < 1 always lands on a task despite rounding in the running sum
    }

private:
    std::size_t draw_task() {
        const std::uint64_t c = stream().take(1);
        const double u = uniform_double(stream().seed(), c);
        std::size_t t = 0;
        while (t + 1 < cumulative_.size() && !(u < cumulative_[t])) ++t;
        return t;
    }

    batch_composition composition_;
    nlohmann::json config_;
    std::vector<double> p_, cumulative_;
};

}  // namespace hyperadapt::detail
