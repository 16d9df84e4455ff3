#pragma once
// Round-robin sampling: tasks take turns in task order, 0, 1, ..., T-1, 0, 1, ... With single_task
// batches (the default) batch k comes from task k mod T; with mixed batches row r of the whole stream
// (r = k·b + row) comes from task r mod T.
//
// Examples within a task are drawn WITHOUT replacement: each task walks through a permutation of its
// examples that is reshuffled (drawn afresh from the sampler's stream) every time it is used up, so every
// example of a task is seen once per epoch of that task. A batch that reaches the end of its task's epoch
// continues with the next permutation, so every batch has exactly b rows.
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hyperadapt/train/sampler.hpp"

namespace hyperadapt {

struct round_robin_options {
    batch_composition composition = batch_composition::single_task;
};

class round_robin_sampler : public detail::sampler_base {
public:
    static constexpr bool needs_scores = false;

    /// sizes[t] = N_t (every N_t ≥ 1); b = rows per batch.
    round_robin_sampler(std::vector<std::size_t> sizes, std::size_t batch_size, rng_stream rng,
                        round_robin_options options = {})
        : sampler_base("round_robin", std::move(sizes), batch_size, rng),
          composition_(options.composition),
          config_({{"composition", to_string(options.composition)}}) {}

    [[nodiscard]] batch_composition composition() const noexcept { return composition_; }

    std::vector<example_ref> candidates() {
        begin_candidates();
        std::vector<example_ref> out;
        out.reserve(batch_size());
        const std::uint64_t step = steps();
        if (composition_ == batch_composition::single_task) {
            take(static_cast<std::size_t>(step % num_tasks()), batch_size(), true, out);
        } else {
            for (std::size_t r = 0; r < batch_size(); ++r)
                take(static_cast<std::size_t>((step * batch_size() + r) % num_tasks()), 1, true, out);
        }
        return set_pending(std::move(out));
    }
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

private:
    batch_composition composition_;
    nlohmann::json config_;
};

static_assert(sampler<round_robin_sampler>);

}  // namespace hyperadapt
