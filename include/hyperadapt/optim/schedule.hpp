#pragma once
// Learning-rate schedule of BERT fine-tuning: linear warmup from 0 to the base rate, then linear decay to 0
// at the last step, as Hugging Face's get_linear_schedule_with_warmup.
//
// Step k is the k-th optimizer step counting from 0, so the first update uses multiplier(0), which is 0
// when there is warmup (Hugging Face calls scheduler.step() after optimizer.step(), with the same effect).
#include <algorithm>
#include <cstdint>
#include <string>

#include "hyperadapt/core/errors.hpp"

namespace hyperadapt {

class linear_warmup_schedule {
public:
    linear_warmup_schedule(double base_lr, std::int64_t warmup_steps, std::int64_t total_steps)
        : base_lr_(base_lr), warmup_(warmup_steps), total_(total_steps) {
        if (!(base_lr >= 0))
            throw config_error("linear_warmup_schedule: base learning rate must be >= 0, got " + std::to_string(base_lr));
        if (warmup_steps < 0 || total_steps < 0 || warmup_steps > total_steps)
            throw config_error("linear_warmup_schedule: need 0 <= warmup_steps <= total_steps, got warmup " +
                               std::to_string(warmup_steps) + ", total " + std::to_string(total_steps));
    }

    /// Warmup as a proportion of the total, rounded down (CA-MTL's warmup_proportion = 0.1).
    static linear_warmup_schedule with_warmup_proportion(double base_lr, double proportion, std::int64_t total_steps) {
        if (!(proportion >= 0 && proportion <= 1))
            throw config_error("linear_warmup_schedule: warmup proportion must be in [0, 1], got " +
                               std::to_string(proportion));
        return {base_lr, static_cast<std::int64_t>(proportion * static_cast<double>(total_steps)), total_steps};
    }

    /// The factor applied to the base rate at step k (Hugging Face's lr_lambda).
    [[nodiscard]] double multiplier(std::int64_t step) const noexcept {
        if (step < warmup_) return static_cast<double>(step) / static_cast<double>(std::max<std::int64_t>(1, warmup_));
        return std::max(0.0, static_cast<double>(total_ - step) /
                                 static_cast<double>(std::max<std::int64_t>(1, total_ - warmup_)));
    }
    [[nodiscard]] double lr(std::int64_t step) const noexcept { return base_lr_ * multiplier(step); }
    [[nodiscard]] double operator()(std::int64_t step) const noexcept { return lr(step); }

    [[nodiscard]] double base_lr() const noexcept { return base_lr_; }
    [[nodiscard]] std::int64_t warmup_steps() const noexcept { return warmup_; }
    [[nodiscard]] std::int64_t total_steps() const noexcept { return total_; }

private:
    double base_lr_;
    std::int64_t warmup_;
    std::int64_t total_;
};

}  // namespace hyperadapt
