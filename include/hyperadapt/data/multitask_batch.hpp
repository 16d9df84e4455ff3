#pragma once
// Task datasets as fixed-length token-id arrays (encoded_task) and mixed-task batches assembled from
// (task, example) references (make_batch). Nothing here tokenizes: train/multitask_data.hpp's encode_task
// fills an encoded_task with the WordPiece tokenizer, and programs that already hold token ids (the
// synthetic tasks, tests, benchmarks) fill it directly, so that models and the trainer build without text/
// and utf8proc. CA-MTL's conditional attention fixes the padded length, so every task is encoded to the
// same `seq_len`.
//
// The mask is declared as tensor<B, std::uint8_t>, the type layers' attention_mask<B> names, so that the
// batch needs no layer header.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/errors.hpp"
#include "hyperadapt/data/example_ref.hpp"
#include "hyperadapt/data/task.hpp"
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

/// A mixed-task batch in backend memory.
template <memory_backend B, class T>
struct multitask_batch {
    tensor<B, std::int32_t> input_ids;       // (rows, seq)
    tensor<B, std::int32_t> token_type_ids;  // (rows, seq)
    tensor<B, std::uint8_t> mask;            // (rows, seq): an attention_mask<B>, 1 = token, 0 = padding
    tensor<B, std::int32_t> task_ids;        // (rows)
    std::vector<sample_ref> rows;
    std::vector<std::int32_t> labels;  // host copies for losses, metrics and samplers
    std::vector<float> scores;

    [[nodiscard]] std::size_t size() const noexcept { return rows.size(); }
};

template <memory_backend B, class T>
multitask_batch<B, T> make_batch(B& backend, std::span<const encoded_task> tasks, std::span<const sample_ref> rows) {
    if (rows.empty()) throw config_error("make_batch: no rows");
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
    b.input_ids = tensor<B, std::int32_t>::from_host(backend, {n, seq}, ids);
    b.token_type_ids = tensor<B, std::int32_t>::from_host(backend, {n, seq}, types);
    b.mask = tensor<B, std::uint8_t>::from_host(backend, {n, seq}, mask);
    b.task_ids = tensor<B, std::int32_t>::from_host(backend, {n}, task_ids);
    b.rows.assign(rows.begin(), rows.end());
    return b;
}

}  // namespace hyperadapt
