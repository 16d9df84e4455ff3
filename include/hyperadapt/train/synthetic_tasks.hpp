#pragma once
// Small built-in multi-task problems that need no download: for the default run of the examples, for tests of
// the multi-task trainer, and for trying samplers. Token ids: 0 [PAD], 1 [CLS], 2 [SEP], 3..39 words (a model
// needs vocab_size >= 40). Each task needs attention over the whole sequence:
//   order     (2 classes): does marker 5 come before marker 6?
//   majority  (2 classes): are there more words below 24 than from 24 up?
//   count     (regression, 0..1): how often word 7 occurs (0..5 times), divided by 5.
// The same (kind, n, seq, seed) always gives the same examples.
#include <string>
#include <vector>

#include "hyperadapt/backend/counter_rng.hpp"
#include "hyperadapt/data/multitask_batch.hpp"

namespace hyperadapt {

enum class synthetic_kind { order = 0, majority = 1, count = 2 };

// Tokens: 0 [PAD], 1 [CLS], 2 [SEP], 3..39 words. Every task needs attention over the whole sequence.
inline encoded_task synthetic_task(synthetic_kind kind, std::size_t n, std::size_t seq, std::uint64_t seed) {
    if (seq < 8) throw config_error("synthetic_task: seq must be at least 8, got " + std::to_string(seq));
    const int which = static_cast<int>(kind);
    encoded_task t;
    t.seq_len = seq;
    const auto classification = data::task_kind::classification;
    if (which == 0)
        t.info = {"order", data::benchmark::glue, "", classification, {"after", "before"}, {"text"}, "label",
                  {data::metric::accuracy}};
    else if (which == 1)
        t.info = {"majority", data::benchmark::glue, "", classification, {"high", "low"}, {"text"}, "label",
                  {data::metric::accuracy}};
    else
        t.info = {"count", data::benchmark::glue, "", data::task_kind::regression, {}, {"text"}, "score",
                  {data::metric::pearson, data::metric::spearman}, 0, 1};
    std::uint64_t c = 0;
    auto draw = [&](std::uint64_t m) { return detail::counter_hash(seed, c++) % m; };
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t len = 6 + draw(seq - 7);  // real tokens, [CLS] and [SEP] included
        std::vector<std::int32_t> ids(seq, 0);
        ids[0] = 1;
        for (std::size_t j = 1; j + 1 < len; ++j) ids[j] = static_cast<std::int32_t>(8 + draw(32));
        ids[len - 1] = 2;
        int label = -1;
        float score = 0;
        if (which == 0) {  // does marker 5 come before marker 6?
            const std::size_t p = 1 + draw(len - 2), q = 1 + (p - 1 + 1 + draw(len - 3)) % (len - 2);
            ids[p] = 5;
            ids[q] = 6;
            label = p < q ? 1 : 0;
        } else if (which == 1) {  // more words below 24 than above?
            int low = 0, high = 0;
            for (std::size_t j = 1; j + 1 < len; ++j) (ids[j] < 24 ? low : high)++;
            label = low > high ? 1 : 0;
        } else {  // how often does word 7 occur (0..5 times, scaled to 0..1)?
            const std::size_t k = draw(6);
            for (std::size_t m = 0; m < k; ++m) ids[1 + draw(len - 2)] = 7;
            int count = 0;
            for (std::size_t j = 1; j + 1 < len; ++j) count += ids[j] == 7;
            score = static_cast<float>(count) / 5.0f;  // in [0, 1], so its MSE does not drown the other losses
        }
        for (std::size_t j = 0; j < seq; ++j) {
            t.input_ids.push_back(ids[j]);
            t.token_type_ids.push_back(0);
            t.attention_mask.push_back(j < len ? 1 : 0);
        }
        t.labels.push_back(label);
        t.scores.push_back(score);
    }
    return t;
}

}  // namespace hyperadapt
