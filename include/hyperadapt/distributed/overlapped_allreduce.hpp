#pragma once
// The gradient all-reduce of data-parallel training, overlapped with the backward pass (issue 16, item 2): the
// flat gradient buffer (nn/flat_parameters.hpp) is cut into buckets of whole parameters, and each bucket's
// all-reduce starts as soon as backward has reported every gradient in it final (nn/gradient_listener.hpp), so
// the top layers' gradients travel while the lower layers still compute. What no layer reports (heads, task
// embeddings, hypernetworks, the condition maps: modules shared across layers) goes when backward returns.
//
//   overlapped_allreduce reducer(flat, comm);            // once: plans the buckets
//   flat.zero_grad();  reducer.begin();                  // every step
//   model.forward_loss(batch, ctx, run_mode::train(rng).reporting_gradients(reducer));
//   model.backward(ctx);                                 // starts all-reduces as layers finish
//   reducer.finish();                                    // starts the rest, waits for all: every gradient summed
//
// The result is allreduce_gradients(flat, comm)'s: every trainable gradient summed over the ranks (or averaged),
// in place; gaps between storage blocks stay zero. Over two ranks each element is the same a + b whatever the
// bucketing, so the bits are those of one all-reduce of the whole buffer. Every rank starts the same buckets in
// the same order: the order backward reports them in, which depends on the model, never on the batch.
//
// Where it overlaps:
//   * host memory (the CPU backend), with a communicator that has nonblocking_collectives (MPI: MPI_Iallreduce,
//     advanced at each layer's end by progress()); with one that has not, each bucket is all-reduced, blocking,
//     when it is ready: the same result, no overlap;
//   * device memory, with a communicator that has nonblocking_device_collectives (NCCL: each bucket enqueued on a
//     second stream, after an event on the computing stream, so it runs while the lower layers' backward kernels
//     do; joined before anything after backward); with device_collectives only, each bucket is enqueued on the
//     computing stream when it is ready (the same result, no overlap);
//   * device memory with a communicator that reduces host memory only (MPI on a GPU): nothing starts early, and
//     finish() is allreduce_gradients(flat, comm, how), through one host copy each way.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/distributed/communicator.hpp"
#include "hyperadapt/distributed/data_parallel.hpp"
#include "hyperadapt/nn/flat_parameters.hpp"
#include "hyperadapt/nn/gradient_listener.hpp"

namespace hyperadapt {

/// Whether every rank's order digest (overlapped_allreduce::pass_statistics::order_digest, d < 2^12) is the same,
/// from their sum and the sum of their squares over `ranks` ranks: exactly when ranks · Σd² = (Σd)² (Cauchy–Schwarz;
/// the sums are exact in double up to about 23,000 ranks). Lets the trainer check the bucket order inside an
/// all-reduce it makes anyway, every rank reaching the same verdict.
[[nodiscard]] constexpr bool order_digests_agree(int ranks, double sum, double sum_of_squares) noexcept {
    return static_cast<double>(ranks) * sum_of_squares == sum * sum;
}

template <elementwise_backend B, class T, communicator C>
class overlapped_allreduce final : public gradient_listener {
public:
    /// About 1 M values (4 MB of fp32) a bucket: a MiniLM CA-MTL's 8.8 M trainable gradients in about nine
    /// messages, each large enough that its latency does not count.
    static constexpr std::size_t default_bucket_elements = std::size_t{1} << 20;

    /// What the last pass did: how many buckets, how many of them started before backward returned, and a 12-bit
    /// digest of the order they started in. Every rank must start the same buckets in the same order (an
    /// all-reduce sums whatever each rank started in that slot); the trainer compares the digests over the ranks
    /// in the collective it makes anyway (a mismatch goes unseen with probability 1/4096).
    struct pass_statistics {
        std::size_t buckets = 0;
        std::size_t started_during_backward = 0;
        std::uint32_t order_digest = 0;
    };

    /// `flat` and `comm` must outlive this object. Plans the buckets from the current layout; begin() plans again
    /// when the gradients were laid out anew since (freezing, unfreezing).
    overlapped_allreduce(flat_parameters<B, T>& flat, C& comm, gradient_reduction how = gradient_reduction::sum,
                         std::size_t bucket_elements = default_bucket_elements)
        : flat_(&flat), comm_(&comm), how_(how), bucket_elements_(std::max<std::size_t>(bucket_elements, 1)) {
        plan();
    }
    overlapped_allreduce(const overlapped_allreduce&) = delete;
    overlapped_allreduce& operator=(const overlapped_allreduce&) = delete;
    ~overlapped_allreduce() = default;

    /// Before the forward pass of a step (after zeroing the gradients): no gradient reported yet.
    void begin() {
        if (flat_->gradient_layouts() != planned_layout_ || flat_->gradients().data() != base_) plan();
        std::fill(reported_.begin(), reported_.end(), false);
        for (auto& b : buckets_) {
            b.waiting_for = b.members;
            b.started = false;
        }
        started_during_backward_ = 0;
        order_ = 0;
        in_pass_ = true;
    }

    /// gradient_listener: a parameter's gradient is final; its bucket starts when it was the last one missing.
    /// A range that is not one of this buffer's parameters is left to finish() (nothing is lost); the same
    /// parameter reported twice in a pass means its gradient changed after it was said final, and is refused.
    void gradient_ready(const void* data, std::size_t bytes) override {
        if (!in_pass_ || parameters_.empty()) return;
        // Addresses compared as integers: `data` need not point into this buffer.
        const auto at = reinterpret_cast<std::uintptr_t>(data), first = reinterpret_cast<std::uintptr_t>(base_);
        if (at < first || at >= first + extent_ * sizeof(T) || (at - first) % sizeof(T) != 0) return;
        const std::size_t offset = (at - first) / sizeof(T);
        const auto it = std::lower_bound(parameters_.begin(), parameters_.end(), offset,
                                         [](const planned_parameter& q, std::size_t value) { return q.offset < value; });
        if (it == parameters_.end() || it->offset != offset || it->size * sizeof(T) != bytes) return;
        const auto k = static_cast<std::size_t>(it - parameters_.begin());
        if (reported_[k])
            throw std::logic_error("overlapped_allreduce: the gradient of '" + flat_->name(it->index) +
                                   "' was reported final twice in one backward pass (a layer reports a parameter "
                                   "that another part of the model also uses)");
        reported_[k] = true;
        bucket& b = buckets_[it->bucket];
        if (--b.waiting_for == 0) {
            start(b);
            ++started_during_backward_;
        }
    }

    /// gradient_listener: lets the started all-reduces advance.
    void layer_finished() override {
        if constexpr (host_memory_backend<B> && nonblocking_collectives<C>)
            if (started_during_backward_ > 0) comm_->progress();
    }

    /// After backward: starts every bucket not started yet (in buffer order), waits for all of them, and divides
    /// by the world size for gradient_reduction::mean. Every gradient is then its sum (or mean) over the ranks.
    void finish() {
        in_pass_ = false;
        if (through_host()) {  // device memory, host collectives: one copy each way
            allreduce_gradients(*flat_, *comm_, how_);
            last_ = {};
            return;
        }
        for (auto& b : buckets_)
            if (!b.started) start(b);
        if constexpr (host_memory_backend<B>) {
            if constexpr (nonblocking_collectives<C>) comm_->wait_started();
        } else if constexpr (device_collectives<C, T>) {
            if constexpr (nonblocking_device_collectives<C, T>) comm_->join_started_device();
            comm_->finish();
        }
        if (how_ == gradient_reduction::mean && comm_->size() > 1 && extent_ > 0) {
            tensor<B, T>& grads = flat_->gradients();
            grads.backend().scale(grads.size(), T(1) / static_cast<T>(comm_->size()), grads.data());
        }
        const std::uint64_t h = order_ ^ (order_ >> 29) ^ (order_ >> 47);
        last_ = {.buckets = buckets_.size(),
                 .started_during_backward = started_during_backward_,
                 .order_digest = static_cast<std::uint32_t>(h & 0xFFFu)};
    }

    [[nodiscard]] pass_statistics last_pass() const noexcept { return last_; }
    /// The planned buckets, as [first, last) element ranges of the gradient buffer, in buffer order.
    [[nodiscard]] std::vector<std::pair<std::size_t, std::size_t>> bucket_ranges() const {
        std::vector<std::pair<std::size_t, std::size_t>> r;
        for (const auto& b : buckets_) r.emplace_back(b.first, b.last);
        return r;
    }

private:
    struct planned_parameter {
        std::size_t offset = 0, size = 0;  // in the gradient buffer, in elements
        std::size_t index = 0;             // in flat_parameters' visiting order
        std::size_t bucket = 0;
    };
    struct bucket {
        std::size_t first = 0, last = 0;  // elements [first, last) of the gradient buffer
        std::size_t members = 0, waiting_for = 0;
        bool started = false;
    };

    /// Whole parameters in buffer order, cut into buckets of at least bucket_elements_ values (the last may be
    /// smaller); each bucket spans from its first member's first value to its last member's last, gaps included
    /// (they are zero on every rank).
    void plan() {
        tensor<B, T>& grads = flat_->gradients();
        base_ = grads.data();
        extent_ = grads.size();
        planned_layout_ = flat_->gradient_layouts();
        parameters_.clear();
        buckets_.clear();
        reported_.clear();
        // Device memory that the communicator cannot reduce where it lies: no buckets, finish() does it all.
        if constexpr (!host_memory_backend<B>) device_reduces_ = reduces_device_memory<C, T>(*comm_);
        if (through_host()) return;
        for (std::size_t i = 0; i < flat_->size(); ++i) {
            const auto& p = flat_->at(i);
            if (!p.trainable() || p.grad.empty()) continue;
            parameters_.push_back({.offset = static_cast<std::size_t>(p.grad.data() - base_), .size = p.size(), .index = i});
        }
        std::sort(parameters_.begin(), parameters_.end(),
                  [](const planned_parameter& a, const planned_parameter& b) { return a.offset < b.offset; });
        for (auto& p : parameters_) {
            if (buckets_.empty() || buckets_.back().last - buckets_.back().first >= bucket_elements_)
                buckets_.push_back({.first = p.offset, .last = p.offset});
            bucket& b = buckets_.back();
            b.last = std::max(b.last, p.offset + p.size);
            ++b.members;
            p.bucket = buckets_.size() - 1;
        }
        reported_.assign(parameters_.size(), false);
    }

    /// Device memory the communicator cannot reduce where it lies: no buckets; finish() copies through the host.
    [[nodiscard]] bool through_host() const noexcept { return !host_memory_backend<B> && !device_reduces_; }

    void start(bucket& b) {
        b.started = true;
        // FNV-1a over the bucket indices, in the order they start.
        order_ = (order_ ^ static_cast<std::uint64_t>(&b - buckets_.data() + 1)) * 0x100000001B3u;
        T* const first = base_ + b.first;
        const std::size_t n = b.last - b.first;
        if constexpr (host_memory_backend<B>) {
            if constexpr (nonblocking_collectives<C>)
                comm_->start_allreduce_sum(std::span<T>(first, n));
            else
                comm_->allreduce_sum(std::span<T>(first, n));
        } else if constexpr (nonblocking_device_collectives<C, T>) {
            comm_->start_allreduce_device(first, n);
        } else if constexpr (device_collectives<C, T>) {
            comm_->allreduce_device(first, n, /*mean=*/false);
        }
    }

    flat_parameters<B, T>* flat_;
    C* comm_;
    gradient_reduction how_;
    std::size_t bucket_elements_;
    T* base_ = nullptr;
    std::size_t extent_ = 0;
    std::size_t planned_layout_ = 0;
    bool device_reduces_ = false;  // device memory, reduced there by the communicator (else through the host)
    std::vector<planned_parameter> parameters_;  // trainable, by offset
    std::vector<bucket> buckets_;
    std::vector<bool> reported_;  // per parameters_ entry, this pass
    std::size_t started_during_backward_ = 0;
    std::uint64_t order_ = 0;  // FNV-1a of this pass's start order
    bool in_pass_ = false;
    pass_statistics last_{};
};

}  // namespace hyperadapt
