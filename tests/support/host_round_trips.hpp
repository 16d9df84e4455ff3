#pragma once
// A backend that counts its host round trips: Base (any backend policy) with copy_to_host, copy_from_host,
// sum_squares, dot and synchronize counted. On a GPU each of these waits for the device (a device-to-host copy or
// a reduction hands a value back; a host-to-device copy from pageable memory blocks too), so their number per
// training step is what issue 13 asks to bring down to a few ("one upload per batch"). Uploads queued without a
// wait (queue_copy_from_host, backend/concepts.hpp queued_uploads: pinned and asynchronous on a GPU) are counted
// apart. Counted on the CPU, the numbers are the GPU's: the layers and the trainer make the same calls on every
// backend.
#include <cstddef>
#include <span>

#include "hyperadapt/backend/adamw_segment.hpp"

namespace hyperadapt::test {

/// What a backend was asked to do that waits for the device on a GPU.
struct host_round_trips {
    std::size_t to_host = 0;     ///< copy_to_host
    std::size_t from_host = 0;   ///< copy_from_host
    std::size_t reductions = 0;  ///< sum_squares, dot (a value handed back to the host)
    std::size_t syncs = 0;       ///< synchronize
    std::size_t queued = 0;      ///< queue_copy_from_host: an upload that does not wait
    // Not waits, launches (issue 13, item 3: AdamW one fused launch, the gradient norm one reduction):
    std::size_t adamw_launches = 0;     ///< adamw_update and adamw_update_segments calls
    std::size_t norm_reductions = 0;    ///< sum_squares_accumulate calls

    /// The waits for the device: everything but the queued uploads.
    [[nodiscard]] std::size_t total() const noexcept { return to_host + from_host + reductions + syncs; }
    friend host_round_trips operator-(host_round_trips a, const host_round_trips& b) noexcept {
        a.to_host -= b.to_host, a.from_host -= b.from_host, a.reductions -= b.reductions, a.syncs -= b.syncs;
        a.queued -= b.queued;
        a.adamw_launches -= b.adamw_launches, a.norm_reductions -= b.norm_reductions;
        return a;
    }
    friend bool operator==(const host_round_trips&, const host_round_trips&) = default;
};

/// Base with every host round trip counted in `counted`.
template <class Base>
class counting_round_trips : public Base {
public:
    using Base::Base;

    host_round_trips counted;

    template <class T>
    void copy_to_host(const T* src, T* host_dst, std::size_t n) {
        ++counted.to_host;
        Base::copy_to_host(src, host_dst, n);
    }
    template <class T>
    void copy_from_host(const T* host_src, T* dst, std::size_t n) {
        ++counted.from_host;
        Base::copy_from_host(host_src, dst, n);
    }
    template <class T>
    void queue_copy_from_host(const T* host_src, T* dst, std::size_t n) {
        ++counted.queued;
        Base::queue_copy_from_host(host_src, dst, n);
    }
    template <class T>
    [[nodiscard]] double sum_squares(std::size_t n, const T* x) {
        ++counted.reductions;
        return Base::sum_squares(n, x);
    }
    template <class T>
    [[nodiscard]] double dot(std::size_t n, const T* x, const T* y) {
        ++counted.reductions;
        return Base::dot(n, x, y);
    }
    template <class T>
    void sum_squares_accumulate(std::size_t n, const T* x, double* acc) {
        ++counted.norm_reductions;
        Base::sum_squares_accumulate(n, x, acc);
    }
    template <class T>
    void adamw_update(std::size_t n, T lr, T beta1, T beta2, T eps, T weight_decay, T bias_correction1,
                      T bias_correction2, const T* grad, T* param, T* m, T* v) {
        ++counted.adamw_launches;
        Base::adamw_update(n, lr, beta1, beta2, eps, weight_decay, bias_correction1, bias_correction2, grad, param, m, v);
    }
    template <class T>
    void adamw_update_segments(std::span<const adamw_segment<T>> segments, T beta1, T beta2, T eps) {
        ++counted.adamw_launches;
        Base::adamw_update_segments(segments, beta1, beta2, eps);
    }
    void synchronize() {
        ++counted.syncs;
        Base::synchronize();
    }
};

}  // namespace hyperadapt::test
