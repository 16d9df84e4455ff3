#pragma once
// Task datasets as fixed-length token-id arrays (encoded_task) and mixed-task batches assembled from
// (task, example) references (make_batch). Nothing here tokenizes: train/multitask_data.hpp's encode_task
// fills an encoded_task with the WordPiece tokenizer, and programs that already hold token ids (the
// synthetic tasks, tests, benchmarks) fill it directly, so that models and the trainer build without text/
// and utf8proc. Every task is encoded to the same `seq_len`, the longest length a batch can have (CA-MTL's
// conditional attention takes its geometry from it).
//
// Batch length: GLUE sentences are far shorter than the padded length (SST-2 and CoLA average under 20
// WordPiece tokens), and every layer's cost grows with it (attention's with its square). With
// batch_padding::to_longest, make_batch cuts the padding columns that no row of the batch needs: the batch is
// as long as its longest example, rounded up to a multiple of 8 (fewer distinct GEMM shapes, whole SIMD
// rows) and at most seq_len. A batch that mixes tasks mixes lengths (RTE pairs fill 128 positions, SST-2
// sentences a fifth of it), so one long row still makes every row long: batch_padding::length_groups also
// splits the rows into groups of similar length (row_group), each padded to its own longest; the models run
// the encoder once per group and the heads and losses once over the whole batch, in the batch's row order.
// Real positions get the same outputs every way: padding keys are masked, and every pooling and loss reads
// real positions only (tests/data/test_multitask_batch.cpp, tests/support/padding_invariance.hpp).
//
// The mask is declared as tensor<B, std::uint8_t>, the type layers' attention_mask<B> names, so that the
// batch needs no layer header.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/errors.hpp"
#include "hyperadapt/core/task_rows.hpp"
#include "hyperadapt/data/example_ref.hpp"
#include "hyperadapt/data/task.hpp"
#include "hyperadapt/core/mean_weights.hpp"
#include "hyperadapt/tensor/staged_upload.hpp"
#include "hyperadapt/tensor/tensor.hpp"

namespace hyperadapt {

/// One task's examples as token ids, padded/truncated to seq_len.
struct encoded_task {
    data::task_info info;
    std::size_t seq_len = 0;
    std::vector<std::int32_t> input_ids;       // (size, seq_len)
    std::vector<std::int32_t> token_type_ids;  // (size, seq_len)
    std::vector<std::uint8_t> attention_mask;  // (size, seq_len)
    std::vector<std::int32_t> labels;          // class id, or -1 for regression tasks
    std::vector<float> scores;                 // regression target, 0 for classification

    [[nodiscard]] std::size_t size() const noexcept { return labels.size(); }
    [[nodiscard]] bool is_regression() const noexcept { return info.kind == data::task_kind::regression; }
    [[nodiscard]] std::size_t num_labels() const noexcept {
        return is_regression() ? 1 : static_cast<std::size_t>(info.num_labels());
    }
};

/// Which example of which task a batch row holds: the samplers' example_ref.
using sample_ref = example_ref;

/// How long make_batch makes a batch: the tasks' encoded length, or the batch's longest example.
enum class batch_padding {
    to_encoded_length,  ///< every batch seq_len long
    to_longest,         ///< the longest example of the batch, rounded up to a multiple of 8, at most seq_len
    length_groups,      ///< to_longest, and rows grouped by length for the encoder (row_group)
};

/// The length to_longest rounds up to a multiple of.
inline constexpr std::size_t batch_length_multiple = 8;

/// What one more group costs, in padded positions, when make_batch chooses the groups: each group is one
/// more pass through every layer with smaller GEMMs, so a split must save more than this to be made.
inline constexpr std::size_t row_group_cost = 256;

/// Rows of a batch that run through the encoder together, padded to their own longest example.
template <memory_backend B, class T>
struct row_group {
    tensor<B, std::int32_t> input_ids;       // (n, len)
    tensor<B, std::int32_t> token_type_ids;  // (n, len)
    tensor<B, std::uint8_t> mask;            // (n, len)
    tensor<B, std::int32_t> task_ids;        // (n)
    tensor<B, std::int32_t> rows;            // (n): which rows of the batch, in the group's order
    std::vector<std::size_t> host_rows;      // the same on the host
    std::vector<std::int32_t> host_task_ids;  // task_ids on the host (layer_condition::host_task_ids)
    std::vector<std::int32_t> host_input_ids, host_token_type_ids;  // the same for the embeddings' range checks
    tensor<B, std::int32_t> first_rows;        // (tasks present): the first row of each, ascending (core/task_rows.hpp)
    std::vector<std::int32_t> host_first_rows;  // the same on the host
    std::vector<std::uint8_t> host_mask;        // mask on the host (mean pooling's weights)
    tensor<B, std::int32_t> first_token_rows;   // (n): r * len, each row's first token (the pooler's rows)
    tensor<B, T> mean_weights;                  // (n, len): mean pooling's, mask / count (core/mean_weights.hpp)

    [[nodiscard]] std::size_t size() const noexcept { return host_rows.size(); }
    [[nodiscard]] std::size_t length() const noexcept { return input_ids.empty() ? 0 : input_ids.shape()[1]; }
};

namespace detail {
/// Splits rows of real lengths `used` into groups of consecutive rows in length order that minimise the
/// positions computed (rows x rounded longest) plus row_group_cost per group. Returns the groups' rows.
inline std::vector<std::vector<std::size_t>> group_rows_by_length(const std::vector<std::size_t>& used,
                                                                  std::size_t seq, std::size_t group_cost) {
    const std::size_t n = used.size();
    std::vector<std::size_t> order(n);
    for (std::size_t i = 0; i < n; ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return used[a] < used[b]; });
    auto rounded = [&](std::size_t len) {
        return std::min(seq, std::max<std::size_t>(1, (len + batch_length_multiple - 1) / batch_length_multiple) *
                                 batch_length_multiple);
    };
    // cost[j]: the best split of the j shortest rows; from[j]: where its last group starts.
    std::vector<std::size_t> cost(n + 1, 0), from(n + 1, 0);
    for (std::size_t j = 1; j <= n; ++j) {
        const std::size_t len = rounded(used[order[j - 1]]);  // the longest of rows [i, j)
        cost[j] = static_cast<std::size_t>(-1);
        for (std::size_t i = 0; i < j; ++i) {
            const std::size_t c = cost[i] + (j - i) * len + group_cost;
            if (c < cost[j]) cost[j] = c, from[j] = i;
        }
    }
    std::vector<std::vector<std::size_t>> groups;
    for (std::size_t j = n; j > 0; j = from[j]) groups.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(from[j]),
                                                                   order.begin() + static_cast<std::ptrdiff_t>(j));
    std::reverse(groups.begin(), groups.end());
    return groups;
}
}  // namespace detail

/// A rank's view of the other ranks' shares of a global batch (set by the data-parallel trainer). `allgather`
/// is collective: every rank calls it with its own values and gets every rank's, in rank order; the global
/// batch's rows are the ranks' shares in rank order.
struct batch_exchange {
    int rank = 0;
    std::function<std::vector<std::vector<double>>(std::span<const double>)> allgather;
    [[nodiscard]] explicit operator bool() const noexcept { return static_cast<bool>(allgather); }
};

/// One past the last real token of a row's attention mask, 0 for a row of padding only: the tokenizer pads at
/// the end, but a hand-made mask may have holes, and nothing after the last 1 may be cut.
[[nodiscard]] inline std::size_t used_length(std::span<const std::uint8_t> row_mask) noexcept {
    for (std::size_t j = row_mask.size(); j > 0; --j)
        if (row_mask[j - 1] != 0) return j;
    return 0;
}

namespace detail {
/// r * len for r < rows: where each row's first token sits in a (rows, len, ...) array (the pooler's rows).
inline std::vector<std::int32_t> first_token_rows(std::size_t rows, std::size_t len) {
    std::vector<std::int32_t> at(rows);
    for (std::size_t r = 0; r < rows; ++r) at[r] = static_cast<std::int32_t>(r * len);
    return at;
}
}  // namespace detail

/// A mixed-task batch in backend memory.
template <memory_backend B, class T>
struct multitask_batch {
    tensor<B, std::int32_t> input_ids;       // (rows, seq)
    tensor<B, std::int32_t> token_type_ids;  // (rows, seq)
    tensor<B, std::uint8_t> mask;            // (rows, seq): an attention_mask<B>, 1 = token, 0 = padding
    tensor<B, std::int32_t> task_ids;        // (rows)
    std::vector<std::int32_t> host_task_ids;  // task_ids on the host (layer_condition::host_task_ids)
    std::vector<std::int32_t> host_input_ids, host_token_type_ids;  // the same for the embeddings' range checks
    tensor<B, std::int32_t> first_rows;        // (tasks present): the first row of each, ascending (core/task_rows.hpp)
    std::vector<std::int32_t> host_first_rows;  // the same on the host
    std::vector<std::uint8_t> host_mask;        // mask on the host (mean pooling's weights)
    tensor<B, std::int32_t> first_token_rows;   // (rows): r * length(), each row's first token (the pooler's rows)
    tensor<B, T> mean_weights;  // (rows, length()): mean pooling's, mask / count (core/mean_weights.hpp)
    /// Per task present, ascending (as host_first_rows): the batch rows of that task, their labels and, for a
    /// regression task, their targets as the data gives them (empty for a classification task), uploaded with
    /// the batch for the task heads' losses (layers/multitask_heads.hpp, staged_task_rows).
    std::vector<tensor<B, std::int32_t>> rows_of_task, labels_of_task;
    std::vector<tensor<B, T>> targets_of_task;
    std::vector<sample_ref> rows;
    std::vector<std::int32_t> labels;  // host copies for losses, metrics and samplers
    std::vector<float> scores;
    std::size_t real_tokens = 0;  // mask ones: the tokens that are not padding
    /// batch_padding::length_groups: the rows by length (every row in one group); empty: run as one.
    std::vector<row_group<B, T>> groups;
    /// Rows per task id of the batch whose loss this one's is a share of; empty: this batch's own. The task
    /// loss is the mean over the tasks present of per-task means; data-parallel training gives each rank's
    /// share the global batch's counts (distributed/data_parallel.hpp), so that the ranks' losses and gradients
    /// add up to the global batch's.
    std::vector<std::size_t> loss_task_rows;
    /// Data-parallel training: how a loss over the whole global batch (PHA's instance-instance contrastive
    /// loss pairs every row with every other) sees the other ranks' rows. Empty in a single process.
    batch_exchange exchange;

    [[nodiscard]] std::size_t size() const noexcept { return rows.size(); }
    [[nodiscard]] std::size_t length() const noexcept { return input_ids.empty() ? 0 : input_ids.shape()[1]; }
    /// Positions the encoder computes: rows x length, summed over the groups when there are groups.
    [[nodiscard]] std::size_t computed_positions() const noexcept {
        if (groups.empty()) return size() * length();
        std::size_t p = 0;
        for (const auto& g : groups) p += g.size() * g.length();
        return p;
    }
};

/// The batch of `rows` (task, example) in backend memory, `padding` long (see the top of this header).
/// `group_cost`: what one more row group costs in padded positions (length_groups only; tests lower it).
template <memory_backend B, class T>
multitask_batch<B, T> make_batch(B& backend, std::span<const encoded_task> tasks, std::span<const sample_ref> rows,
                                 batch_padding padding = batch_padding::to_encoded_length,
                                 std::size_t group_cost = row_group_cost) {
    if (rows.empty()) throw config_error("make_batch: no rows");
    if (rows[0].task >= tasks.size())
        throw config_error("make_batch: task " + std::to_string(rows[0].task) + " of " + std::to_string(tasks.size()));
    const std::size_t seq = tasks[rows[0].task].seq_len;
    std::vector<std::int32_t> ids, types, task_ids;
    std::vector<std::uint8_t> mask;
    multitask_batch<B, T> b;
    for (const auto& r : rows) {
        if (r.task >= tasks.size())
            throw config_error("make_batch: task " + std::to_string(r.task) + " of " + std::to_string(tasks.size()));
        const encoded_task& t = tasks[r.task];
        if (r.index >= t.size())
            throw config_error("make_batch: example " + std::to_string(r.index) + " of task '" + t.info.name +
                               "' which has " + std::to_string(t.size()));
        if (t.seq_len != seq)
            throw shape_error("make_batch: task '" + t.info.name + "' is encoded to length " +
                              std::to_string(t.seq_len) + ", others to " + std::to_string(seq));
        const auto first = static_cast<std::ptrdiff_t>(r.index * seq), last = first + static_cast<std::ptrdiff_t>(seq);
        ids.insert(ids.end(), t.input_ids.begin() + first, t.input_ids.begin() + last);
        types.insert(types.end(), t.token_type_ids.begin() + first, t.token_type_ids.begin() + last);
        mask.insert(mask.end(), t.attention_mask.begin() + first, t.attention_mask.begin() + last);
        task_ids.push_back(static_cast<std::int32_t>(r.task));
        b.labels.push_back(t.labels[r.index]);
        b.scores.push_back(t.scores[r.index]);
    }
    const std::size_t n = rows.size();
    std::vector<std::size_t> row_used(n, 0);
    for (std::size_t r = 0; r < n; ++r) row_used[r] = used_length(std::span<const std::uint8_t>(mask).subspan(r * seq, seq));
    const std::size_t used = *std::max_element(row_used.begin(), row_used.end());
    for (const std::uint8_t m : mask) b.real_tokens += m != 0;
    // Every array is staged first and uploaded in one copy (tensor/staged_upload.hpp); `placed` says where each
    // tensor's view starts.
    staged_upload<B> stage;
    struct group_at {
        staged_array<std::int32_t> ids, types;
        staged_array<std::uint8_t> mask;
        staged_array<std::int32_t> tasks, rows, first_rows;
        std::size_t tasks_present;
        staged_array<std::int32_t> first_tokens;
        staged_array<T> mean_weights;
        std::size_t len;
    };
    std::vector<group_at> placed;
    std::vector<std::vector<std::size_t>> groups;
    std::vector<std::vector<std::int32_t>> group_tasks, group_ids, group_types, group_first;
    std::vector<std::vector<std::uint8_t>> group_masks;
    if (padding == batch_padding::length_groups) {
        groups = detail::group_rows_by_length(row_used, seq, group_cost);
        for (const auto& g : groups) {
            std::size_t longest = 0;
            for (const std::size_t r : g) longest = std::max(longest, row_used[r]);
            const std::size_t len =
                std::min(seq, std::max<std::size_t>(1, (longest + batch_length_multiple - 1) / batch_length_multiple) *
                                  batch_length_multiple);
            std::vector<std::int32_t> gi, gt, gtask, grows;
            std::vector<std::uint8_t> gm;
            for (const std::size_t r : g) {
                const auto first = static_cast<std::ptrdiff_t>(r * seq), last = first + static_cast<std::ptrdiff_t>(len);
                gi.insert(gi.end(), ids.begin() + first, ids.begin() + last);
                gt.insert(gt.end(), types.begin() + first, types.begin() + last);
                gm.insert(gm.end(), mask.begin() + first, mask.begin() + last);
                gtask.push_back(task_ids[r]);
                grows.push_back(static_cast<std::int32_t>(r));
            }
            std::vector<std::int32_t> gfirst = tasks_in_order(gtask).first_rows;
            placed.push_back({stage.add(gi), stage.add(gt), stage.add(gm), stage.add(gtask), stage.add(grows),
                              stage.add(gfirst), gfirst.size(), stage.add(detail::first_token_rows(g.size(), len)),
                              stage.add(mean_pooling_weights<T>(gm, g.size(), len)), len});
            group_tasks.push_back(std::move(gtask));
            group_first.push_back(std::move(gfirst));
            group_masks.push_back(std::move(gm));
            group_ids.push_back(std::move(gi));
            group_types.push_back(std::move(gt));
        }
    }
    std::size_t len = seq;
    if (padding != batch_padding::to_encoded_length) {
        len = std::min(seq, std::max<std::size_t>(1, (used + batch_length_multiple - 1) / batch_length_multiple) *
                                batch_length_multiple);
        if (len < seq) {
            auto cut = [&](auto& v) {
                for (std::size_t r = 1; r < n; ++r)
                    std::copy_n(v.begin() + static_cast<std::ptrdiff_t>(r * seq), len,
                                v.begin() + static_cast<std::ptrdiff_t>(r * len));
                v.resize(n * len);
            };
            cut(ids);
            cut(types);
            cut(mask);
        }
    }
    const task_rows present = tasks_in_order(task_ids);
    const std::vector<std::int32_t>& first = present.first_rows;
    // The heads' rows, labels and (regression tasks) targets per task present (the order of present.tasks).
    std::vector<std::vector<std::int32_t>> task_members(present.tasks.size()), task_labels(present.tasks.size());
    std::vector<std::vector<T>> task_targets(present.tasks.size());
    for (std::size_t r = 0; r < n; ++r) {
        task_members[present.slot[r]].push_back(static_cast<std::int32_t>(r));
        task_labels[present.slot[r]].push_back(b.labels[r]);
        if (tasks[rows[r].task].is_regression()) task_targets[present.slot[r]].push_back(static_cast<T>(b.scores[r]));
    }
    std::vector<staged_array<std::int32_t>> members_at, labels_at;
    std::vector<staged_array<T>> targets_at;
    for (std::size_t k = 0; k < present.tasks.size(); ++k) {
        members_at.push_back(stage.add(task_members[k]));
        labels_at.push_back(stage.add(task_labels[k]));
        targets_at.push_back(stage.add(task_targets[k]));
    }
    const auto ids_at = stage.add(ids), types_at = stage.add(types), tasks_at = stage.add(task_ids),
               first_at = stage.add(first), first_tokens_at = stage.add(detail::first_token_rows(n, len));
    const auto mask_at = stage.add(mask);
    const auto mean_weights_at = stage.add(mean_pooling_weights<T>(mask, n, len));
    stage.upload(backend);
    for (std::size_t k = 0; k < groups.size(); ++k) {
        const group_at& at = placed[k];
        const std::size_t rows_in = groups[k].size();
        row_group<B, T> rg;
        rg.input_ids = stage.view(at.ids, {rows_in, at.len});
        rg.token_type_ids = stage.view(at.types, {rows_in, at.len});
        rg.mask = stage.view(at.mask, {rows_in, at.len});
        rg.task_ids = stage.view(at.tasks, {rows_in});
        rg.rows = stage.view(at.rows, {rows_in});
        rg.host_rows = std::move(groups[k]);
        rg.host_task_ids = std::move(group_tasks[k]);
        rg.first_rows = stage.view(at.first_rows, {at.tasks_present});
        rg.host_first_rows = std::move(group_first[k]);
        rg.host_mask = std::move(group_masks[k]);
        rg.first_token_rows = stage.view(at.first_tokens, {rows_in});
        rg.mean_weights = stage.view(at.mean_weights, {rows_in, at.len});
        rg.host_input_ids = std::move(group_ids[k]);
        rg.host_token_type_ids = std::move(group_types[k]);
        b.groups.push_back(std::move(rg));
    }
    b.input_ids = stage.view(ids_at, {n, len});
    b.token_type_ids = stage.view(types_at, {n, len});
    b.mask = stage.view(mask_at, {n, len});
    b.task_ids = stage.view(tasks_at, {n});
    b.host_task_ids = std::move(task_ids);
    b.first_rows = stage.view(first_at, {first.size()});
    b.host_first_rows = first;
    for (std::size_t k = 0; k < present.tasks.size(); ++k) {
        b.rows_of_task.push_back(stage.view(members_at[k], {task_members[k].size()}));
        b.labels_of_task.push_back(stage.view(labels_at[k], {task_labels[k].size()}));
        b.targets_of_task.push_back(task_targets[k].empty() ? tensor<B, T>{}
                                                            : stage.view(targets_at[k], {task_targets[k].size()}));
    }
    b.host_mask = std::move(mask);
    b.first_token_rows = stage.view(first_tokens_at, {n});
    b.mean_weights = stage.view(mean_weights_at, {n, len});
    b.host_input_ids = std::move(ids);
    b.host_token_type_ids = std::move(types);
    b.rows.assign(rows.begin(), rows.end());
    return b;
}

}  // namespace hyperadapt
