#pragma once
// Task datasets tokenized once into fixed-length id arrays, and mixed-task batches assembled from
// (task, example) references. CA-MTL's conditional attention fixes the padded length, so every task is
// encoded to the same `seq_len`.
#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "hyperadapt/backend/counter_rng.hpp"
#include "hyperadapt/data/task.hpp"
#include "hyperadapt/layers/attention.hpp"
#include "hyperadapt/text/wordpiece.hpp"
#include "hyperadapt/train/sampler.hpp"

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

/// Tokenizes `ds` (single sentences or pairs) to seq_len with longest-first truncation. `max_examples` > 0
/// keeps a subsample of that many examples, drawn without replacement by `subsample_seed` (the same
/// examples for every run that uses the seed).
inline encoded_task encode_task(const data::dataset& ds, const text::bert_tokenizer& tok, std::size_t seq_len,
                                std::size_t max_examples = 0, std::uint64_t subsample_seed = 0) {
    if (seq_len < 4) throw config_error("encode_task: seq_len must be at least 4, got " + std::to_string(seq_len));
    std::vector<std::size_t> keep(ds.examples.size());
    for (std::size_t i = 0; i < keep.size(); ++i) keep[i] = i;
    if (max_examples > 0 && max_examples < keep.size()) {
        // Partial Fisher-Yates with counter-based draws, then restore file order for readability.
        for (std::size_t i = 0; i < max_examples; ++i) {
            const std::size_t j = i + detail::counter_hash(subsample_seed, i) % (keep.size() - i);
            std::swap(keep[i], keep[j]);
        }
        keep.resize(max_examples);
        std::sort(keep.begin(), keep.end());
    }
    encoded_task out;
    out.info = ds.task;
    out.seq_len = seq_len;
    const text::encode_options opts{seq_len, text::truncation_strategy::longest_first,
                                    text::padding_strategy::max_length};
    out.input_ids.reserve(keep.size() * seq_len);
    for (const std::size_t i : keep) {
        const data::example& e = ds.examples[i];
        const text::encoding enc = e.text_b ? tok.encode_pair(e.text_a, *e.text_b, opts) : tok.encode(e.text_a, opts);
        out.input_ids.insert(out.input_ids.end(), enc.input_ids.begin(), enc.input_ids.end());
        out.token_type_ids.insert(out.token_type_ids.end(), enc.token_type_ids.begin(), enc.token_type_ids.end());
        out.attention_mask.insert(out.attention_mask.end(), enc.attention_mask.begin(), enc.attention_mask.end());
        out.labels.push_back(out.is_regression() ? -1 : e.label);
        out.scores.push_back(e.score);
    }
    return out;
}

/// Which example of which task a batch row holds: the samplers' example_ref.
using sample_ref = example_ref;

/// A mixed-task batch in backend memory.
template <memory_backend B, class T>
struct multitask_batch {
    tensor<B, std::int32_t> input_ids;       // (rows, seq)
    tensor<B, std::int32_t> token_type_ids;  // (rows, seq)
    attention_mask<B> mask;                  // (rows, seq)
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
    b.mask = attention_mask<B>::from_host(backend, {n, seq}, mask);
    b.task_ids = tensor<B, std::int32_t>::from_host(backend, {n}, task_ids);
    b.rows.assign(rows.begin(), rows.end());
    return b;
}

}  // namespace hyperadapt
