#pragma once
// Dynamic loss scaling, as torch.amp.GradScaler: for training in a half-precision format whose small gradients
// would flush to zero (fp16), the loss is multiplied by `scale` before backward and the gradients divided by it
// before clipping and the update. A step whose gradients overflow (their global norm is not finite) is skipped and
// the scale multiplied by backoff_factor; after growth_interval steps in a row without overflow it is multiplied
// by growth_factor. train_multitask runs it with trainer_options::loss_scaling (issue 13, item 4: the CPU-side
// logic of fp16 training; the CPU trains in fp32 and bf16, where it changes nothing).
//
// Every factor is a power of two, so that scaling and unscaling are exact: in fp32 (or bf16) a run with loss
// scaling has the same bits as one without, until a value leaves the format's range (tests/train/test_loss_scaling.cpp).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "hyperadapt/core/errors.hpp"

namespace hyperadapt {

/// What a training checkpoint keeps of a scaler (train/multitask_trainer.hpp writes it as JSON).
struct loss_scaler_state {
    double scale = 1;
    std::int64_t steps_without_overflow = 0;
};

struct loss_scaler_options {
    double init_scale = 65536.0;  ///< 2^16, as GradScaler
    double growth_factor = 2.0;
    double backoff_factor = 0.5;
    std::int64_t growth_interval = 2000;
};

class dynamic_loss_scaler {
public:
    static constexpr double min_scale = 0x1p-64, max_scale = 0x1p127;

    explicit dynamic_loss_scaler(loss_scaler_options o = {}) : o_(o), scale_(o.init_scale) {
        check_power_of_two("init_scale", o.init_scale, min_scale, max_scale);
        check_power_of_two("growth_factor", o.growth_factor, 2.0, 0x1p16);
        check_power_of_two("backoff_factor", o.backoff_factor, 0x1p-16, 0.5);
        if (o.growth_interval < 1)
            throw config_error("loss scaling: growth_interval must be >= 1, got " + std::to_string(o.growth_interval));
    }

    /// What the loss is multiplied by in this step's backward.
    [[nodiscard]] double scale() const noexcept { return scale_; }
    /// Steps in a row without overflow since the scale last changed.
    [[nodiscard]] std::int64_t steps_without_overflow() const noexcept { return good_steps_; }
    [[nodiscard]] const loss_scaler_options& options() const noexcept { return o_; }

    /// After a step: `overflowed` when its gradients were not finite (the update was skipped). The scale stays
    /// within [min_scale, max_scale] (GradScaler has no bound; these keep it a normal fp32 number).
    void update(bool overflowed) {
        if (overflowed) {
            scale_ = std::max(scale_ * o_.backoff_factor, min_scale);
            good_steps_ = 0;
        } else if (++good_steps_ == o_.growth_interval) {
            scale_ = std::min(scale_ * o_.growth_factor, max_scale);
            good_steps_ = 0;
        }
    }

    [[nodiscard]] loss_scaler_state state() const noexcept { return {scale_, good_steps_}; }
    /// Restores state(); an io_error naming what is wrong when it cannot have come from a scaler with these
    /// options (`where` names the checkpoint).
    void restore(const loss_scaler_state& st, const std::string& where = "loss scaler state") {
        int e = 0;
        if (!(st.scale >= min_scale && st.scale <= max_scale) || std::frexp(st.scale, &e) != 0.5)
            throw io_error(where + ": scale " + std::to_string(st.scale) + " is not a power of two in [2^-64, 2^127]");
        if (st.steps_without_overflow < 0 || st.steps_without_overflow >= o_.growth_interval)
            throw io_error(where + ": steps_without_overflow " + std::to_string(st.steps_without_overflow) +
                           " is not in [0, " + std::to_string(o_.growth_interval) + ")");
        scale_ = st.scale;
        good_steps_ = st.steps_without_overflow;
    }

private:
    static void check_power_of_two(const char* what, double v, double lo, double hi) {
        int e = 0;
        if (!(v >= lo && v <= hi) || std::frexp(v, &e) != 0.5)
            throw config_error(std::string("loss scaling: ") + what + " must be a power of two in [" + std::to_string(lo) +
                               ", " + std::to_string(hi) + "] (exact scaling), got " + std::to_string(v));
    }

    loss_scaler_options o_;
    double scale_;
    std::int64_t good_steps_ = 0;
};

}  // namespace hyperadapt
