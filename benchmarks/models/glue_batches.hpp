#pragma once
// Training batches with the real length distribution of the six GLUE tasks the examples train on (RTE, MRPC,
// STS-B, CoLA, SST-2, WNLI): the first `per_task` training examples of each, tokenized with BERT's uncased
// vocabulary to L = 128 (longest-first truncation, as the examples do), and `count` batches of `batch` rows,
// row i of a batch from task i mod 6, its example drawn uniformly by a counter hash. Nothing about the batches
// depends on the model, so the CA-MTL and PHA steps run the same rows.
//
// The step benchmarks time these batches three ways: padded to L (what every step cost before batches
// followed their lengths), padded to the batch's longest example (batch_padding::to_longest), and in length
// groups (batch_padding::length_groups), and count real tokens (not padding) per second, so the rates compare
// the same work.
//
// Reads the shared data folder (HYPERADAPT_SHARED_DATA, else the build's default); without it the GLUE cases
// report an error and the synthetic ones still run. With HYPERADAPT_DUMP_GLUE_BATCHES=FILE the batches are
// also written to FILE as JSON (each row's real tokens, its task), for the PyTorch side of the comparison
// (benchmarks/pytorch/*_step.py --batches FILE) to run the same rows.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyperadapt/data/registry.hpp"
#include "hyperadapt/layers/multitask_heads.hpp"
#include "hyperadapt/train/multitask_data.hpp"

namespace hyperadapt::bench {

inline const std::vector<task_head_spec>& glue_six() {
    static const std::vector<task_head_spec> specs = {{"rte", 2},  {"mrpc", 2}, {"stsb", 1},
                                                      {"cola", 2}, {"sst2", 2}, {"wnli", 2}};
    return specs;
}

inline std::filesystem::path shared_data_dir() {
    const char* env = std::getenv("HYPERADAPT_SHARED_DATA");
#if defined(HYPERADAPT_SHARED_DATA_DEFAULT)
    return env ? std::filesystem::path(env) : std::filesystem::path(HYPERADAPT_SHARED_DATA_DEFAULT);
#else
    return env ? std::filesystem::path(env) : std::filesystem::path("../shared/data");
#endif
}

/// The six tasks, tokenized (empty when the shared data is missing; `why` says what was not found).
inline std::vector<encoded_task> glue_six_tasks(std::size_t seq, std::size_t per_task, std::string& why) {
    const auto data = shared_data_dir();
    const auto vocab = data / "vocab" / "bert-base-uncased-vocab.txt";
    if (!std::filesystem::exists(vocab)) {
        why = "no " + vocab.string() + " (set HYPERADAPT_SHARED_DATA to the shared data folder)";
        return {};
    }
    const auto tok = text::bert_tokenizer::from_file(vocab);
    std::vector<encoded_task> tasks;
    for (const auto& spec : glue_six()) {
        data::dataset ds = data::load_task(spec.name, data, data::split::train);
        if (ds.examples.size() > per_task) ds.examples.resize(per_task);
        tasks.push_back(encode_task(ds, tok, seq));
    }
    return tasks;
}

/// Writes the batches to $HYPERADAPT_DUMP_GLUE_BATCHES, if set: {"batches": [{"ids": [[...]], "types": [[...]],
/// "task": [...], "label": [...], "score": [...]}]}, each row cut to its real tokens.
inline void dump_glue_batches(const std::vector<encoded_task>& tasks, const std::vector<std::vector<sample_ref>>& all) {
    const char* file = std::getenv("HYPERADAPT_DUMP_GLUE_BATCHES");
    if (!file || !*file) return;
    nlohmann::json out{{"batches", nlohmann::json::array()}};
    for (const auto& rows : all) {
        nlohmann::json b{{"ids", nlohmann::json::array()}, {"types", nlohmann::json::array()},
                         {"task", nlohmann::json::array()}, {"label", nlohmann::json::array()},
                         {"score", nlohmann::json::array()}};
        for (const auto& r : rows) {
            const encoded_task& t = tasks[r.task];
            std::vector<std::int32_t> ids, types;
            for (std::size_t j = 0; j < t.seq_len; ++j)
                if (t.attention_mask[r.index * t.seq_len + j] != 0) {
                    ids.push_back(t.input_ids[r.index * t.seq_len + j]);
                    types.push_back(t.token_type_ids[r.index * t.seq_len + j]);
                }
            b["ids"].push_back(ids);
            b["types"].push_back(types);
            b["task"].push_back(r.task);
            b["label"].push_back(std::max(0, t.labels[r.index]));
            b["score"].push_back(t.scores[r.index]);
        }
        out["batches"].push_back(std::move(b));
    }
    std::ofstream(file) << out.dump();
}

/// Which batches a step benchmark runs (models/camtl_step.hpp, models/pha_step.hpp).
enum class step_batches { synthetic, glue_padded, glue_longest, glue_groups };

/// `count` batches of `batch` rows over `tasks` (see the top of this header).
inline std::vector<std::vector<sample_ref>> glue_rows(const std::vector<encoded_task>& tasks, std::size_t batch,
                                                      std::size_t count) {
    std::vector<std::vector<sample_ref>> out(count);
    std::uint64_t c = 0;
    for (auto& rows : out)
        for (std::size_t i = 0; i < batch; ++i) {
            const std::size_t t = i % tasks.size();
            rows.push_back({t, static_cast<std::size_t>(detail::counter_hash(2026, c++) % tasks[t].size())});
        }
    dump_glue_batches(tasks, out);
    return out;
}

/// The batches a step benchmark runs: `synthetic`'s `rows` as one batch, or the six GLUE tasks' real lengths
/// (glue_rows: 24 batches of `batch` rows) padded as `which` says. Empty after SkipWithError when the GLUE data
/// is not there.
template <class B, class T, class State>
std::vector<multitask_batch<B, T>> step_batches_for(State& state, B& backend, step_batches which,
                                                    const std::vector<encoded_task>& synthetic,
                                                    const std::vector<sample_ref>& rows, std::size_t batch,
                                                    std::size_t seq) {
    std::vector<multitask_batch<B, T>> batches;
    if (which == step_batches::synthetic) {
        batches.push_back(make_batch<B, T>(backend, synthetic, rows));
        return batches;
    }
    std::string why;
    const auto glue = glue_six_tasks(seq, 2000, why);
    if (glue.empty()) {
        state.SkipWithError(why.c_str());
        return batches;
    }
    const auto padding = which == step_batches::glue_longest  ? batch_padding::to_longest
                         : which == step_batches::glue_groups ? batch_padding::length_groups
                                                              : batch_padding::to_encoded_length;
    for (const auto& r : glue_rows(glue, batch, 24)) batches.push_back(make_batch<B, T>(backend, glue, r, padding));
    return batches;
}

/// Real tokens over positions the encoder computes, for the benchmark's counters.
template <class Batch>
double padding_efficiency(const std::vector<Batch>& batches) {
    double real = 0, computed = 0;
    for (const auto& b : batches) {
        real += static_cast<double>(b.real_tokens);
        computed += static_cast<double>(b.computed_positions());
    }
    return computed > 0 ? real / computed : 0;
}

/// The backend's tensors at their peak, and what stays between steps (weights, gradients, moments, batches), as
/// the step benchmarks' counters tensors_peak_MiB and tensors_kept_MiB; nothing for a backend that does not count.
template <class State, class Backend>
void report_tensor_memory(State& state, Backend& backend) {
    if constexpr (requires { backend.memory().peak_in_use; }) {
        const auto memory = backend.memory();
        state.counters["tensors_peak_MiB"] = static_cast<double>(memory.peak_in_use) / (1 << 20);
        state.counters["tensors_kept_MiB"] = static_cast<double>(memory.in_use) / (1 << 20);
    }
}

}  // namespace hyperadapt::bench
