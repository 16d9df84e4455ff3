#pragma once
// Task datasets tokenized once into fixed-length id arrays: encode_task runs the WordPiece tokenizer over a
// task's examples. The encoded_task it fills and the mixed-task batches made from it are in
// data/multitask_batch.hpp, included here so that code including this header sees both; models and the
// trainer include that one, which needs neither text/ nor utf8proc.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "hyperadapt/backend/counter_rng.hpp"
#include "hyperadapt/core/errors.hpp"
#include "hyperadapt/data/multitask_batch.hpp"
#include "hyperadapt/data/task.hpp"
#include "hyperadapt/text/wordpiece.hpp"

namespace hyperadapt {

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

}  // namespace hyperadapt
