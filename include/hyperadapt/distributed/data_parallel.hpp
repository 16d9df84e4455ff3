#pragma once
// Data-parallel training over a communicator (communicator.hpp): every rank holds the whole model, trains on
// its share of the global batch, and the ranks average their gradients before each optimizer step, so that
// every rank takes the same step. These are the collective steps a trainer calls; each is collective.
//
//   check_same_parameters(model, comm);   // at start: the same parameter names, shapes and trainability
//   broadcast_parameters(model, comm);    // at start: rank 0's initial weights everywhere
//   ... forward and backward on this rank's rows, the loss a mean over them ...
//   allreduce_gradients(model, comm);     // every trainable gradient := mean over ranks, in buckets
//
// With equal shares and a loss that is a mean over rows, the averaged gradient is the gradient of the whole
// batch's mean loss (up to the order of the floating-point sums).
#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "hyperadapt/backend/concepts.hpp"
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

/// Every trainable gradient := its mean over the ranks. Gradients are packed, in visiting order, into host
/// buckets of about `bucket_elements` values, one all-reduce per bucket; frozen parameters are never sent.
template <parameterized M, communicator C>
void allreduce_gradients(M& model, C& comm, std::size_t bucket_elements = std::size_t{1} << 22) {
    using B = typename M::backend_type;
    using T = typename M::value_type;
    if (comm.size() == 1) return;
    const T inverse = T(1) / static_cast<T>(comm.size());
    std::vector<parameter<B, T>*> members;
    std::vector<T> bucket;
    auto flush = [&] {
        if (members.empty()) return;
        comm.allreduce_sum(std::span<T>(bucket));
        std::size_t at = 0;
        for (auto* p : members) {
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
