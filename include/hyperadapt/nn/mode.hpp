#pragma once
// How a forward pass runs: training (dropout active) or inference, and where randomness comes from.
#include <cstdint>

namespace hyperadapt {

class anomaly_detector;   // hyperadapt/nn/anomaly.hpp
class gradient_listener;  // hyperadapt/nn/gradient_listener.hpp

/// A counter-based random stream: a seed and a running offset. Each consumer takes a block of counters,
/// so the numbers depend only on the seed and the order of consumers, never on threads. A value type:
/// save and restore it to resume training bit-exactly.
class rng_stream {
public:
    rng_stream() = default;
    explicit rng_stream(std::uint64_t seed, std::uint64_t offset = 0) : seed_(seed), offset_(offset) {}

    /// Reserves n counters and returns the first.
    std::uint64_t take(std::uint64_t n) noexcept {
        const std::uint64_t first = offset_;
        offset_ += n;
        return first;
    }
    [[nodiscard]] std::uint64_t seed() const noexcept { return seed_; }
    [[nodiscard]] std::uint64_t offset() const noexcept { return offset_; }

    friend bool operator==(const rng_stream&, const rng_stream&) = default;

private:
    std::uint64_t seed_ = 0;
    std::uint64_t offset_ = 0;
};

struct run_mode {
    bool training = false;
    /// Required when training with dropout; unused at inference.
    rng_stream* rng = nullptr;
    /// Opt-in anomaly detection (hyperadapt/nn/anomaly.hpp): modules check their outputs, and keep the pointer
    /// for their backward. Null (the default) is off: one branch per check site.
    anomaly_detector* anomaly = nullptr;
    /// Opt-in: told during this pass's backward which gradients are final (nn/gradient_listener.hpp), so that
    /// their all-reduce can start before backward ends. Null (the default) is off: one branch per layer.
    gradient_listener* gradients = nullptr;

    static run_mode inference() { return {}; }
    static run_mode train(rng_stream& rng) { return {.training = true, .rng = &rng}; }
    /// This mode with `detector` watching every check site of the pass (and of its backward).
    [[nodiscard]] run_mode detecting_anomalies(anomaly_detector& detector) const {
        run_mode m = *this;
        m.anomaly = &detector;
        return m;
    }
    /// This mode with `listener` told, in the backward of this pass, which gradients are final.
    [[nodiscard]] run_mode reporting_gradients(gradient_listener& listener) const {
        run_mode m = *this;
        m.gradients = &listener;
        return m;
    }
};

}  // namespace hyperadapt
