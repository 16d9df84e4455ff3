#pragma once
// The communicator policy: what data-parallel training needs from a group of processes, beside the backend
// policy. `single_process` is the default and needs nothing; `mpi_communicator` (mpi_communicator.hpp, target
// hyperadapt::mpi) runs the same operations over MPI. Every operation is collective: all ranks call it, in the
// same order, with the same sizes.
#include <concepts>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "hyperadapt/core/errors.hpp"

namespace hyperadapt {

/// A collective operation failed or could not start (a rank died, the sizes disagreed): the message names the
/// operation and the rank that saw it.
class communication_error : public error {
public:
    using error::error;
};

template <class C>
concept communicator = requires(C& c, const C& cc, std::span<float> f, std::span<double> d,
                                std::span<const double> cd, std::span<std::byte> bytes, const std::string& s, int root) {
    { cc.rank() } -> std::convertible_to<int>;
    { cc.size() } -> std::convertible_to<int>;
    c.allreduce_sum(f);            // in place: every rank ends with the elementwise sum over ranks
    c.allreduce_sum(d);
    c.broadcast(bytes, root);      // in place: every rank ends with root's bytes
    { c.allgather(s) } -> std::same_as<std::vector<std::string>>;  // every rank's string, in rank order
    { c.allgather(cd) } -> std::same_as<std::vector<std::vector<double>>>;  // every rank's values (any sizes)
    c.barrier();
};

/// A communicator that can start an all-reduce and finish it later, so that the gradients of the top layers
/// travel while the lower layers run backward (overlapped_allreduce.hpp). start_allreduce_sum begins an in-place
/// sum over ranks of `v`, which must stay untouched until wait_started() returns; progress() lets the started
/// ones advance without blocking (MPI advances non-blocking collectives only inside its calls); wait_started()
/// waits for every one started. Started all-reduces are collectives too: every rank starts the same ones, in the
/// same order. A communicator without these is driven through blocking all-reduces instead.
template <class C>
concept nonblocking_collectives = requires(C& c, std::span<float> f, std::span<double> d) {
    c.start_allreduce_sum(f);
    c.start_allreduce_sum(d);
    c.progress();
    c.wait_started();
};

/// A communicator that reduces device memory where it lies (nccl_communicator): allreduce_device enqueues an
/// in-place all-reduce (sum, or mean when asked) and finish() waits for all of them.
template <class C, class T>
concept device_collectives = requires(C& c, T* p, std::size_t n) {
    c.allreduce_device(p, n, true);
    c.finish();
};

/// A communicator whose device all-reduces can run beside the backend's computation (nccl_communicator, on a
/// stream of its own), so that the top layers' gradients travel while the lower layers run backward
/// (overlapped_allreduce.hpp). start_allreduce_device enqueues an in-place sum over ranks of `n` device values,
/// ordered after every operation enqueued so far on the backend's stream (which wrote them) and before none that
/// follows; join_started_device makes what is enqueued on the backend's stream from then on wait for every started
/// one, without waiting on the host (finish() does that). Between the two, nothing may touch the started values.
template <class C, class T>
concept nonblocking_device_collectives = device_collectives<C, T> && requires(C& c, T* p, std::size_t n) {
    c.start_allreduce_device(p, n);
    c.join_started_device();
};

/// One process: rank 0 of 1; every collective is the identity.
class single_process {
public:
    [[nodiscard]] int rank() const noexcept { return 0; }
    [[nodiscard]] int size() const noexcept { return 1; }
    void allreduce_sum(std::span<float>) noexcept {}
    void allreduce_sum(std::span<double>) noexcept {}
    void start_allreduce_sum(std::span<float>) noexcept {}
    void start_allreduce_sum(std::span<double>) noexcept {}
    void progress() noexcept {}
    void wait_started() noexcept {}
    void broadcast(std::span<std::byte>, int root) const {
        if (root != 0) throw communication_error("broadcast: root " + std::to_string(root) + " of a single process");
    }
    [[nodiscard]] std::vector<std::string> allgather(const std::string& s) const { return {s}; }
    [[nodiscard]] std::vector<std::vector<double>> allgather(std::span<const double> v) const {
        return {std::vector<double>(v.begin(), v.end())};
    }
    void barrier() noexcept {}
};
static_assert(communicator<single_process> && nonblocking_collectives<single_process>);

/// Whether `c` stands for one process on its own (the trainer's plain path) rather than for a group of ranks,
/// a group of one included: true for single_process, and for a communicator that says so itself
/// (communicator_ref over a single_process).
template <communicator C>
[[nodiscard]] constexpr bool is_single_process(const C& c) noexcept {
    if constexpr (std::same_as<C, single_process>) return true;
    else if constexpr (requires { { c.is_single_process() } -> std::convertible_to<bool>; }) return c.is_single_process();
    else return false;
}

}  // namespace hyperadapt
