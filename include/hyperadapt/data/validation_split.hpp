#pragma once
// A validation split carved out of a task's training examples, for model selection.
//
// Choosing a checkpoint, a learning rate or a number of epochs by the score on the set one reports measures
// the selection as much as the model (CA-MTL's "best dev score over evaluations" does that). The protocol of
// docs/results.md selects on examples carved from the training data instead and reports the untouched dev
// set once, on the selected model.
//
// The split is stratified so that a small validation set keeps the task's label balance: classification
// tasks by label, regression tasks by quintile of the target (ranks, so ties do not empty a stratum). Each
// stratum gives its share of `count` (largest remainder, so the shares add up to `count` exactly), drawn by
// `seed` with the same counter-based Fisher-Yates as encode_task's subsample; both parts keep the task's
// row order.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "hyperadapt/backend/counter_rng.hpp"
#include "hyperadapt/core/errors.hpp"
#include "hyperadapt/data/multitask_batch.hpp"

namespace hyperadapt {

/// The rows `rows` of `t`, in the given order.
inline encoded_task select_rows(const encoded_task& t, std::span<const std::size_t> rows) {
    encoded_task out;
    out.info = t.info;
    out.seq_len = t.seq_len;
    const std::size_t L = t.seq_len;
    for (const std::size_t r : rows) {
        if (r >= t.size())
            throw config_error("select_rows: task '" + t.info.name + "' has " + std::to_string(t.size()) +
                               " examples, no row " + std::to_string(r));
        const auto first = static_cast<std::ptrdiff_t>(r * L), last = static_cast<std::ptrdiff_t>((r + 1) * L);
        out.input_ids.insert(out.input_ids.end(), t.input_ids.begin() + first, t.input_ids.begin() + last);
        out.token_type_ids.insert(out.token_type_ids.end(), t.token_type_ids.begin() + first, t.token_type_ids.begin() + last);
        out.attention_mask.insert(out.attention_mask.end(), t.attention_mask.begin() + first, t.attention_mask.begin() + last);
        out.labels.push_back(t.labels[r]);
        out.scores.push_back(t.scores[r]);
    }
    return out;
}

struct train_validation_split {
    encoded_task train;
    encoded_task validation;
    std::vector<std::size_t> validation_rows;  ///< which rows of the original task went to validation
};

/// Which stratum each example of `t` is in (see the top of this header) and how many strata there are.
inline std::vector<std::size_t> validation_strata(const encoded_task& t, std::size_t* count = nullptr) {
    std::vector<std::size_t> stratum(t.size(), 0);
    std::size_t n = 1;
    if (t.is_regression()) {
        constexpr std::size_t bins = 5;
        std::vector<std::size_t> order(t.size());
        std::iota(order.begin(), order.end(), std::size_t{0});
        std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return t.scores[a] < t.scores[b]; });
        for (std::size_t rank = 0; rank < order.size(); ++rank) stratum[order[rank]] = rank * bins / order.size();
        n = bins;  // a task of fewer than five examples leaves some quintiles empty: they give nothing
    } else {
        for (std::size_t i = 0; i < t.size(); ++i) {
            if (t.labels[i] < 0)
                throw config_error("carve_validation: task '" + t.info.name + "', example " + std::to_string(i) +
                                   " has no label");
            stratum[i] = static_cast<std::size_t>(t.labels[i]);
            n = std::max(n, stratum[i] + 1);
        }
    }
    if (count) *count = n;
    return stratum;
}

/// Splits `t` into training and validation examples, `count` of them for validation (see the top of this
/// header). Throws config_error when `count` would leave no training example.
inline train_validation_split carve_validation(const encoded_task& t, std::size_t count, std::uint64_t seed) {
    if (count >= t.size() && count > 0)
        throw config_error("carve_validation: task '" + t.info.name + "' has " + std::to_string(t.size()) +
                           " training examples; a validation split of " + std::to_string(count) +
                           " would leave none to train on");
    std::size_t strata = 1;
    const std::vector<std::size_t> stratum = validation_strata(t, &strata);
    std::vector<std::vector<std::size_t>> members(strata);
    for (std::size_t i = 0; i < t.size(); ++i) members[stratum[i]].push_back(i);

    // Each stratum's share: the floor of its exact share, then one more for the largest remainders.
    std::vector<std::size_t> share(strata);
    std::vector<std::pair<double, std::size_t>> remainder;
    std::size_t given = 0;
    for (std::size_t s = 0; s < strata; ++s) {
        const double exact = static_cast<double>(count) * static_cast<double>(members[s].size()) / static_cast<double>(t.size());
        share[s] = static_cast<std::size_t>(exact);
        given += share[s];
        remainder.emplace_back(exact - static_cast<double>(share[s]), s);
    }
    std::stable_sort(remainder.begin(), remainder.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    for (std::size_t k = 0; given < count && k < remainder.size(); ++k)
        if (share[remainder[k].second] < members[remainder[k].second].size()) ++share[remainder[k].second], ++given;

    std::vector<std::size_t> validation;
    for (std::size_t s = 0; s < strata; ++s) {
        auto& m = members[s];
        const std::uint64_t stream = detail::counter_hash(seed, 0x57a7a000 + s);
        for (std::size_t i = 0; i < share[s]; ++i) {
            const std::size_t j = i + detail::counter_hash(stream, i) % (m.size() - i);
            std::swap(m[i], m[j]);
        }
        validation.insert(validation.end(), m.begin(), m.begin() + static_cast<std::ptrdiff_t>(share[s]));
    }
    std::sort(validation.begin(), validation.end());
    std::vector<std::size_t> training;
    for (std::size_t i = 0, v = 0; i < t.size(); ++i) {
        if (v < validation.size() && validation[v] == i) {
            ++v;
            continue;
        }
        training.push_back(i);
    }
    return {select_rows(t, training), select_rows(t, validation), validation};
}

}  // namespace hyperadapt
