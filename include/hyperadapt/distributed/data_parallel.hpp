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
#include <cstdint>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/errors.hpp"
#include "hyperadapt/data/multitask_batch.hpp"
#include "hyperadapt/distributed/communicator.hpp"
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

/// Rank `rank`'s rows of a global batch of `rows`: the contiguous share [rank n / size, (rank + 1) n / size).
/// A world size that does not divide the batch is refused (config_error): every rank must carry the same load.
template <class Row>
[[nodiscard]] std::vector<Row> rank_share(const std::vector<Row>& rows, int rank, int size) {
    const auto n = rows.size(), w = static_cast<std::size_t>(size), r = static_cast<std::size_t>(rank);
    if (size < 1 || rank < 0 || rank >= size) throw config_error("rank_share: rank " + std::to_string(rank) + " of " + std::to_string(size));
    if (n % w != 0)
        throw config_error("data parallel: " + std::to_string(size) + " ranks do not divide the global batch of " +
                           std::to_string(n) + " rows (choose a batch that is a multiple of the world size)");
    return {rows.begin() + static_cast<std::ptrdiff_t>(r * n / w), rows.begin() + static_cast<std::ptrdiff_t>((r + 1) * n / w)};
}

/// Rank `rank`'s rows of a global batch, balanced by length: the rows sorted by real length (one past the last
/// token of the attention mask; longest first, ties in batch order) are dealt in a snake (ranks 0..W-1, then
/// W-1..0, ...), so every rank gets n / W rows and about the same number of tokens, and each share keeps batch
/// order. Any partition gives the global batch's loss (loss_task_rows weighs by the global counts); this one
/// keeps the ranks' forward and backward about equally long. A world size that does not divide the batch is
/// refused, as by rank_share.
[[nodiscard]] inline std::vector<sample_ref> balanced_share(const std::vector<sample_ref>& rows,
                                                            std::span<const encoded_task> tasks, int rank, int size) {
    (void)rank_share(rows, rank, size);  // the same checks
    const auto w = static_cast<std::size_t>(size);
    std::vector<std::size_t> length(rows.size(), 0), order(rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const encoded_task& t = tasks[rows[i].task];
        for (std::size_t j = t.seq_len; j > 0; --j)
            if (t.attention_mask[rows[i].index * t.seq_len + j - 1] != 0) {
                length[i] = j;
                break;
            }
        order[i] = i;
    }
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return length[a] > length[b]; });
    std::vector<std::size_t> mine;
    for (std::size_t k = 0; k < order.size(); ++k) {
        const std::size_t round = k / w, at = k % w;
        if ((round % 2 == 0 ? at : w - 1 - at) == static_cast<std::size_t>(rank)) mine.push_back(order[k]);
    }
    std::sort(mine.begin(), mine.end());
    std::vector<sample_ref> out;
    for (const std::size_t i : mine) out.push_back(rows[i]);
    return out;
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

/// Every trainable gradient := its sum or mean over the ranks. Gradients are packed, in visiting order, into host
/// buckets of about `bucket_elements` values, one all-reduce per bucket; frozen parameters are never sent.
template <parameterized M, communicator C>
void allreduce_gradients(M& model, C& comm, gradient_reduction how, std::size_t bucket_elements = std::size_t{1} << 22) {
    using B = typename M::backend_type;
    using T = typename M::value_type;
    if (comm.size() == 1) return;
    const T inverse = how == gradient_reduction::mean ? T(1) / static_cast<T>(comm.size()) : T(1);
    std::vector<parameter<B, T>*> members;
    std::vector<T> bucket;
    auto flush = [&] {
        if (members.empty()) return;
        comm.allreduce_sum(std::span<T>(bucket));
        std::size_t at = 0;
        for (auto* p : members) {
            if (inverse != T(1))
                for (std::size_t i = 0; i < p->size(); ++i) bucket[at + i] *= inverse;
            p->grad.backend().copy_from_host(bucket.data() + at, p->grad.data(), p->size());
            at += p->size();
        }
        members.clear();
        bucket.clear();
    };
    model.visit_parameters([&](const std::string&, parameter<B, T>& p) {
        if (!p.trainable()) return;
        const std::size_t at = bucket.size();
        bucket.resize(at + p.size());
        p.grad.backend().copy_to_host(p.grad.data(), bucket.data() + at, p.size());
        members.push_back(&p);
        if (bucket.size() >= bucket_elements) flush();
    });
    flush();
}

}  // namespace hyperadapt
