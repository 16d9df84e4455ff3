#pragma once
// Batches as long as their longest example (data/multitask_batch.hpp, batch_padding::to_longest), and batches
// whose rows run in length groups (batch_padding::length_groups), must give the real positions what fully
// padded batches give them: the same loss, the same gradient of every trainable parameter, the same head
// outputs. The model must have no dropout (its masks are drawn per position, so they
// differ between the two lengths); everything else is compared to a relative 1e-10 in double (the GEMMs see
// other sizes, so the sums may be ordered differently).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "hyperadapt/backend/counter_rng.hpp"
#include "hyperadapt/data/multitask_batch.hpp"
#include "hyperadapt/nn/mode.hpp"
#include "hyperadapt/nn/parameter.hpp"

namespace hyperadapt::testing {

/// `tasks` with each example cut to a real length between 2 and `longest` tokens (padding after it: id 0,
/// type 0, mask 0), varying with the example's index; labels and scores are kept.
inline std::vector<encoded_task> with_varied_lengths(std::vector<encoded_task> tasks, std::size_t longest) {
    for (auto& t : tasks)
        for (std::size_t i = 0; i < t.size(); ++i) {
            const std::size_t real = std::min(t.seq_len, 2 + (i * 5 + t.info.name.size()) % (longest - 1));
            for (std::size_t j = real; j < t.seq_len; ++j) {
                t.input_ids[i * t.seq_len + j] = 0;
                t.token_type_ids[i * t.seq_len + j] = 0;
                t.attention_mask[i * t.seq_len + j] = 0;
            }
        }
    return tasks;
}

namespace detail {
inline bool close(double a, double b) { return std::abs(a - b) <= 1e-10 * std::max({1.0, std::abs(a), std::abs(b)}); }
}  // namespace detail

/// Empty when the model gives `rows` the same loss, gradients and outputs padded to the tasks' length, padded
/// to the batch's longest example, and in length groups (every split that saves positions is made, so there are
/// several); otherwise the first difference. `expected_length` is the length the shorter batch must have (so
/// that the test really compares two lengths).
template <class Model, class B>
std::string padding_invariance_report(Model& m, B& backend, std::span<const encoded_task> tasks,
                                      std::span<const sample_ref> rows, std::size_t expected_length) {
    const auto full = make_batch<B, double>(backend, tasks, rows, batch_padding::to_encoded_length);
    const auto cut = make_batch<B, double>(backend, tasks, rows, batch_padding::to_longest);
    const auto grouped = make_batch<B, double>(backend, tasks, rows, batch_padding::length_groups, 0);
    if (cut.length() != expected_length || full.length() == cut.length())
        return "the batches are " + std::to_string(full.length()) + " and " + std::to_string(cut.length()) +
               " long; the test needs " + std::to_string(expected_length) + " for the shorter one";
    if (grouped.groups.size() < 2)
        return "the rows fall into " + std::to_string(grouped.groups.size()) + " length group(s); the test needs several";

    auto run = [&](const multitask_batch<B, double>& batch, double& loss) {
        m.visit_parameters([](const std::string&, parameter<B, double>& p) {
            if (p.trainable()) p.grad.zero();
        });
        typename Model::context ctx;
        rng_stream dropout(7);
        loss = m.forward_loss(batch, ctx, run_mode::train(dropout));
        m.backward(ctx);
        std::vector<std::pair<std::string, std::vector<double>>> grads;
        m.visit_parameters([&](const std::string& name, parameter<B, double>& p) {
            if (p.trainable()) grads.emplace_back(name, p.grad.to_host());
        });
        return grads;
    };
    double l_full = 0;
    const auto g_full = run(full, l_full);
    double largest = 0;
    for (const auto& [name, g] : g_full)
        for (const double v : g) largest = std::max(largest, std::abs(v));
    if (largest == 0) return "every gradient is zero: the comparison would prove nothing";
    const auto y_full = m.outputs(full, run_mode::inference());

    auto compare = [&](const multitask_batch<B, double>& other, const std::string& what) -> std::string {
        double l_other = 0;
        const auto g_other = run(other, l_other);
        if (!detail::close(l_full, l_other))
            return what + ": the loss is " + std::to_string(l_other) + ", padded to " + std::to_string(full.length()) +
                   " it is " + std::to_string(l_full);
        for (std::size_t i = 0; i < g_full.size(); ++i)
            for (std::size_t k = 0; k < g_full[i].second.size(); ++k)
                if (!detail::close(g_full[i].second[k], g_other[i].second[k]))
                    return what + ": the gradient of '" + g_full[i].first + "' differs at " + std::to_string(k) + ": " +
                           std::to_string(g_other[i].second[k]) + ", padded " + std::to_string(g_full[i].second[k]);
        const auto y_other = m.outputs(other, run_mode::inference());
        for (std::size_t r = 0; r < y_full.size(); ++r)
            for (std::size_t k = 0; k < y_full[r].size(); ++k)
                if (!detail::close(y_full[r][k], y_other[r][k]))
                    return what + ": output " + std::to_string(k) + " of row " + std::to_string(r) + " is " +
                           std::to_string(y_other[r][k]) + ", padded " + std::to_string(y_full[r][k]);
        return {};
    };
    if (auto r = compare(cut, "padded to " + std::to_string(cut.length())); !r.empty()) return r;
    if (auto r = compare(grouped, std::to_string(grouped.groups.size()) + " length groups"); !r.empty()) return r;
    return {};
}

}  // namespace hyperadapt::testing
