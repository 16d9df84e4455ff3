#pragma once
// Data-parallel training over a communicator (communicator.hpp): every rank holds the whole model, trains on
// its share of the global batch, and the ranks average their gradients before each optimizer step, so that
// every rank takes the same step. These are the collective steps a trainer calls; each is collective.
//
//   check_same_parameters(model, comm);   // at start: the same parameter names, shapes and trainability
//   broadcast_parameters(model, comm);    // at start: rank 0's initial weights everywhere
//   rows = the global batch's rows (every rank draws the same, from the same sampler and seed)
//   auto batch = make_batch(backend, tasks, balanced_share(rows, tasks, comm.rank(), comm.size()), padding);
//   batch.loss_task_rows = task_row_counts(rows, tasks.size());   // the global batch's per-task counts
//   ... forward and backward on this rank's rows: the loss is this share of the global batch's loss ...
//   allreduce_gradients(model, comm, gradient_reduction::sum);   // in buckets
//
// The multi-task loss is the mean over the tasks present of per-task means, so a rank's share must weigh each
// task by the global counts (multitask_batch::loss_task_rows); the ranks' gradients then add up to the global
// batch's gradient, up to the order of the floating-point sums. A loss that is a plain mean over equal shares
// may instead average the gradients (gradient_reduction::mean).
#include <algorithm>
#include <concepts>
#include <cstdint>
#include <cstddef>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/errors.hpp"
#include "hyperadapt/data/multitask_batch.hpp"
#include "hyperadapt/distributed/communicator.hpp"
#include "hyperadapt/nn/flat_parameters.hpp"
#include "hyperadapt/nn/layer.hpp"
#include "hyperadapt/nn/parameter.hpp"

namespace hyperadapt {

/// One line per parameter, "name shape trainable|frozen", in visiting order: what every rank must agree on.
template <parameterized M>
[[nodiscard]] std::string parameter_layout(M& model) {
    std::string s;
    model.visit_parameters([&](const std::string& name, parameter<typename M::backend_type, typename M::value_type>& p) {
        s += name + " (" + p.value.shape().str() + ") " + (p.trainable() ? "trainable" : "frozen") + "\n";
    });
    return s;
}

/// Refuses to start when any rank's model differs from rank 0's (another config, other tasks, another freezing):
/// throws config_error on every rank, naming the first rank and the first parameter line that differ.
template <parameterized M, communicator C>
void check_same_parameters(M& model, C& comm) {
    const auto all = comm.allgather(parameter_layout(model));
    for (std::size_t r = 1; r < all.size(); ++r) {
        if (all[r] == all[0]) continue;
        auto line = [](const std::string& s, std::size_t at) {
            const auto end = s.find('\n', at);
            return s.substr(at, end == std::string::npos ? std::string::npos : end - at);
        };
        std::size_t at = 0;
        while (at < all[0].size() && at < all[r].size() && line(all[0], at) == line(all[r], at)) at = all[0].find('\n', at) + 1;
        throw config_error("data parallel: rank " + std::to_string(r) + "'s model differs from rank 0's at '" +
                           (at < all[r].size() ? line(all[r], at) : std::string("(no more parameters)")) + "' (rank 0: '" +
                           (at < all[0].size() ? line(all[0], at) : std::string("(no more parameters)")) +
                           "'): every rank must build the same model");
    }
}

/// Every parameter's value (frozen ones too) := rank `root`'s, so that all ranks start from the same weights.
template <parameterized M, communicator C>
void broadcast_parameters(M& model, C& comm, int root = 0) {
    using B = typename M::backend_type;
    using T = typename M::value_type;
    std::vector<T> host;
    model.visit_parameters([&](const std::string&, parameter<B, T>& p) {
        host.resize(p.size());
        p.value.backend().copy_to_host(p.value.data(), host.data(), p.size());
        comm.broadcast(std::as_writable_bytes(std::span<T>(host)), root);
        p.value.backend().copy_from_host(host.data(), p.value.data(), p.size());
    });
}

namespace detail {
/// Refuses a rank outside 0..size-1 (or an empty world).
inline void check_rank(int rank, int size) {
    if (size < 1 || rank < 0 || rank >= size) throw config_error("data parallel: rank " + std::to_string(rank) + " of " + std::to_string(size));
}

/// Refuses a rank outside 0..size-1 and a world size that does not divide the global batch of `rows` rows
/// (every rank must carry the same load).
inline void check_share(std::size_t rows, int rank, int size) {
    check_rank(rank, size);
    if (rows % static_cast<std::size_t>(size) != 0)
        throw config_error("data parallel: " + std::to_string(size) + " ranks do not divide the global batch of " +
                           std::to_string(rows) + " rows (choose a batch that is a multiple of the world size)");
}
}  // namespace detail

/// Rank `rank`'s rows of a global batch of `rows`: the contiguous share [rank n / size, (rank + 1) n / size).
/// A world size that does not divide the batch is refused (config_error): every rank must carry the same load.
template <class Row>
[[nodiscard]] std::vector<Row> rank_share(const std::vector<Row>& rows, int rank, int size) {
    detail::check_share(rows.size(), rank, size);
    const auto n = rows.size(), w = static_cast<std::size_t>(size), r = static_cast<std::size_t>(rank);
    return {rows.begin() + static_cast<std::ptrdiff_t>(r * n / w), rows.begin() + static_cast<std::ptrdiff_t>((r + 1) * n / w)};
}

/// Which of `rows` rank `rank` of `size` takes, balanced by length: the rows sorted by real length (used_length
/// of the attention mask; longest first, ties in batch order) are dealt in a snake (ranks 0..W-1, then W-1..0,
/// ...), so every rank gets about n / W rows and about the same number of tokens. The positions in `rows`, in
/// increasing order. Any number of rows (a rank may get none): balanced_share adds the check that W divides them.
[[nodiscard]] inline std::vector<std::size_t> balanced_positions(const std::vector<sample_ref>& rows,
                                                                 std::span<const encoded_task> tasks, int rank, int size) {
    detail::check_rank(rank, size);
    const auto w = static_cast<std::size_t>(size);
    std::vector<std::size_t> length(rows.size(), 0), order(rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) {
        if (rows[i].task >= tasks.size() || rows[i].index >= tasks[rows[i].task].size())
            throw config_error("balanced_share: row " + std::to_string(i) + " is example " + std::to_string(rows[i].index) +
                               " of task " + std::to_string(rows[i].task) + ", which the " + std::to_string(tasks.size()) +
                               " tasks do not have");
        const encoded_task& t = tasks[rows[i].task];
        length[i] = used_length(std::span<const std::uint8_t>(t.attention_mask).subspan(rows[i].index * t.seq_len, t.seq_len));
        order[i] = i;
    }
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return length[a] > length[b]; });
    std::vector<std::size_t> mine;
    for (std::size_t k = 0; k < order.size(); ++k) {
        const std::size_t round = k / w, at = k % w;
        if ((round % 2 == 0 ? at : w - 1 - at) == static_cast<std::size_t>(rank)) mine.push_back(order[k]);
    }
    std::sort(mine.begin(), mine.end());
    return mine;
}

/// Rank `rank`'s rows of a global batch, balanced by length (balanced_positions), in batch order: every rank gets
/// n / W rows and about the same number of tokens. Any partition gives the global batch's loss (loss_task_rows
/// weighs by the global counts); this one keeps the ranks' forward and backward about equally long. A world
/// size that does not divide the batch is refused, as by rank_share.
[[nodiscard]] inline std::vector<sample_ref> balanced_share(const std::vector<sample_ref>& rows,
                                                            std::span<const encoded_task> tasks, int rank, int size) {
    detail::check_share(rows.size(), rank, size);
    std::vector<sample_ref> out;
    for (const std::size_t i : balanced_positions(rows, tasks, rank, size)) out.push_back(rows[i]);
    return out;
}

/// Rank `rank`'s contiguous part [first, last) of n items split over `size` ranks as evenly as can be (any n;
/// a rank may get none): the shards of evaluation, whose gathered results keep the items' order.
[[nodiscard]] inline std::pair<std::size_t, std::size_t> shard_range(std::size_t n, int rank, int size) {
    detail::check_rank(rank, size);
    const auto w = static_cast<std::size_t>(size), r = static_cast<std::size_t>(rank);
    return {r * n / w, (r + 1) * n / w};
}

/// Rows per task id of `rows` (`tasks` ids): multitask_batch::loss_task_rows of a rank's share.
[[nodiscard]] inline std::vector<std::size_t> task_row_counts(const std::vector<sample_ref>& rows, std::size_t tasks) {
    std::vector<std::size_t> n(tasks, 0);
    for (const auto& r : rows) {
        if (r.task >= tasks) throw config_error("task_row_counts: a row of task " + std::to_string(r.task) + " of " + std::to_string(tasks));
        ++n[r.task];
    }
    return n;
}

/// How allreduce_gradients combines the ranks' gradients: their sum (each rank's loss a share of the global
/// batch's, as multitask_batch::loss_task_rows makes it) or their mean (each rank's loss a mean over an equal share).
enum class gradient_reduction { sum, mean };

/// Whether `c` takes device memory into its collectives: a communicator with device_collectives, unless it says at
/// run time that it does not (a communicator_ref to a communicator without them).
template <class C, class T>
[[nodiscard]] bool reduces_device_memory(const C& c) noexcept {
    if constexpr (!device_collectives<C, T>) return false;
    else if constexpr (requires { { c.carries_device_collectives() } -> std::convertible_to<bool>; })
        return c.carries_device_collectives();
    else return true;
}

/// Every trainable gradient := its sum or mean over the ranks; frozen parameters are never sent. Where the
/// gradients lie:
///   * device memory, with a communicator that has device_collectives (NCCL): every gradient in place there;
///   * host memory (host_memory_backend: the CPU): a gradient of at least `in_place_elements` values in place;
///   * the rest (small host gradients; every device gradient over a host-only communicator such as MPI) packed,
///     in visiting order, into host buckets of about `bucket_elements` values, one all-reduce per bucket, so that
///     small gradients share one message.
template <parameterized M, communicator C>
void allreduce_gradients(M& model, C& comm, gradient_reduction how, std::size_t bucket_elements = std::size_t{1} << 22,
                         std::size_t in_place_elements = std::size_t{1} << 15) {
    using B = typename M::backend_type;
    using T = typename M::value_type;
    if constexpr (std::is_same_v<C, single_process>) return;
    if constexpr (!host_memory_backend<B> && device_collectives<C, T>) {
        if (reduces_device_memory<C, T>(comm)) {
            model.visit_parameters([&](const std::string&, parameter<B, T>& p) {
                if (p.trainable()) comm.allreduce_device(p.grad.data(), p.size(), how == gradient_reduction::mean);
            });
            comm.finish();
            return;
        }
    }
    const T inverse = how == gradient_reduction::mean ? T(1) / static_cast<T>(comm.size()) : T(1);
    auto scale = [&](T* v, std::size_t n) {
        if (inverse != T(1))
            for (std::size_t i = 0; i < n; ++i) v[i] *= inverse;
    };
    std::vector<parameter<B, T>*> members;
    std::vector<T> bucket;
    auto flush = [&] {
        if (members.empty()) return;
        comm.allreduce_sum(std::span<T>(bucket));
        scale(bucket.data(), bucket.size());
        std::size_t at = 0;
        for (auto* p : members) {
            p->grad.backend().copy_from_host(bucket.data() + at, p->grad.data(), p->size());
            at += p->size();
        }
        members.clear();
        bucket.clear();
    };
    model.visit_parameters([&](const std::string&, parameter<B, T>& p) {
        if (!p.trainable()) return;
        if constexpr (host_memory_backend<B>) {
            if (p.size() >= in_place_elements) {
                comm.allreduce_sum(std::span<T>(p.grad.data(), p.size()));
                scale(p.grad.data(), p.size());
                return;
            }
        }
        const std::size_t at = bucket.size();
        bucket.resize(at + p.size());
        p.grad.backend().copy_to_host(p.grad.data(), bucket.data() + at, p.size());
        members.push_back(&p);
        if (bucket.size() >= bucket_elements) flush();
    });
    flush();
}

/// The same over a model whose parameters lie in flat buffers (nn/flat_parameters.hpp): every value in one
/// broadcast; every gradient in one all-reduce (in place on the device with device_collectives, in place in host
/// memory, or through one host copy each way otherwise). The gaps between storage blocks hold zeros on every
/// rank and stay zero.
template <elementwise_backend B, class T, communicator C>
void broadcast_parameters(flat_parameters<B, T>& flat, C& comm, int root = 0) {
    tensor<B, T>& values = flat.values();
    if (values.empty()) return;
    if constexpr (host_memory_backend<B>) {
        comm.broadcast(std::as_writable_bytes(std::span<T>(values.data(), values.size())), root);
    } else {
        std::vector<T> host = values.to_host();
        comm.broadcast(std::as_writable_bytes(std::span<T>(host)), root);
        values.backend().copy_from_host(host.data(), values.data(), host.size());
    }
}

template <elementwise_backend B, class T, communicator C>
void allreduce_gradients(flat_parameters<B, T>& flat, C& comm, gradient_reduction how) {
    if constexpr (std::is_same_v<C, single_process>) return;
    tensor<B, T>& grads = flat.gradients();
    if (grads.empty()) return;
    const bool mean = how == gradient_reduction::mean;
    if constexpr (!host_memory_backend<B> && device_collectives<C, T>) {
        if (reduces_device_memory<C, T>(comm)) {
            comm.allreduce_device(grads.data(), grads.size(), mean);
            comm.finish();
            return;
        }
    }
    if constexpr (host_memory_backend<B>) {
        comm.allreduce_sum(std::span<T>(grads.data(), grads.size()));
    } else {
        std::vector<T> host = grads.to_host();
        comm.allreduce_sum(std::span<T>(host));
        grads.backend().copy_from_host(host.data(), grads.data(), host.size());
    }
    if (mean && comm.size() > 1) grads.backend().scale(grads.size(), T(1) / static_cast<T>(comm.size()), grads.data());
}

}  // namespace hyperadapt
