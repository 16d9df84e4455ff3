#pragma once
// What a benchmark task is, independent of where its files live: the registry of GLUE and SuperGLUE tasks
// (name, classification or regression, label map, text fields, official metrics) and the in-memory
// examples every reader produces. Nothing here touches the file system; glue.hpp, superglue.hpp and
// registry.hpp read the files.
#include <algorithm>
#include <array>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hyperadapt/core/errors.hpp"

namespace hyperadapt::data {

enum class benchmark { glue, superglue };
enum class task_kind { classification, regression };

/// Metrics as the GLUE/SuperGLUE leaderboards report them (metrics.hpp computes them).
enum class metric {
    accuracy,
    f1,        ///< binary F1 of class 1 (MRPC, QQP)
    macro_f1,  ///< unweighted mean of per-class F1 (CB)
    matthews,  ///< Matthews correlation coefficient (CoLA)
    pearson,
    spearman,
};

/// Which labelled split to read. GLUE's and SuperGLUE's test splits carry no labels and are not read.
enum class split { train, dev };

[[nodiscard]] inline std::string_view to_string(metric m) noexcept {
    switch (m) {
        case metric::accuracy: return "accuracy";
        case metric::f1: return "f1";
        case metric::macro_f1: return "macro_f1";
        case metric::matthews: return "matthews";
        case metric::pearson: return "pearson";
        case metric::spearman: return "spearman";
    }
    return "?";
}

[[nodiscard]] inline std::string_view to_string(split s) noexcept { return s == split::train ? "train" : "dev"; }

[[nodiscard]] inline std::string_view to_string(benchmark b) noexcept {
    return b == benchmark::glue ? "glue" : "superglue";
}

struct task_info {
    std::string name;       ///< canonical registry name: "rte", "mnli-mm", "superglue-rte", ...
    benchmark suite = benchmark::glue;
    std::string directory;  ///< folder under the benchmark's data directory ("RTE", "SST-2", "BoolQ")
    task_kind kind = task_kind::classification;
    /// Label id -> label as written in the files ("entailment", "0", "True"); empty for regression.
    std::vector<std::string> label_names;
    /// The one or two input texts, named as in the files (TSV header / JSON key): text_a, then text_b.
    std::vector<std::string> text_fields;
    /// Column or key holding the gold label or score.
    std::string label_field;
    /// Official metrics in leaderboard order (MRPC "F1/Accuracy", STS-B "Pearson/Spearman").
    std::vector<metric> metrics;
    /// Valid range of a regression score; a score outside it is a malformed row.
    double score_min = 0, score_max = 0;

    [[nodiscard]] int num_labels() const noexcept { return static_cast<int>(label_names.size()); }
    [[nodiscard]] bool is_pair() const noexcept { return text_fields.size() == 2; }

    /// The label id of a label as written in the files, if it is one of the task's labels.
    [[nodiscard]] std::optional<int> label_id(std::string_view label) const {
        const auto it = std::find(label_names.begin(), label_names.end(), label);
        if (it == label_names.end()) return std::nullopt;
        return static_cast<int>(it - label_names.begin());
    }

    /// "0, 1" or "entailment, not_entailment": for messages.
    [[nodiscard]] std::string label_list() const {
        std::string s;
        for (const auto& l : label_names) s += (s.empty() ? "" : ", ") + l;
        return s;
    }
};

/// One labelled example. Classification tasks fill `label`, regression tasks `score`.
struct example {
    std::string text_a{};
    std::optional<std::string> text_b{};
    int label = -1;     ///< class id, index into task_info::label_names; -1 for regression
    float score = 0;    ///< gold score (STS-B: 0..5); 0 for classification
    std::vector<std::string> choices{};  ///< COPA: choice1, choice2 (label = index of the right one)
    std::string question{};              ///< COPA: "cause" or "effect"
    std::string word{};                  ///< WiC: the word whose sense is compared
    std::size_t line = 0;              ///< 1-based line in the source file, to trace an example back
};

struct dataset {
    task_info task;
    split which = split::train;
    std::filesystem::path file;
    std::vector<example> examples;
    /// "file:line: fault" of every row dropped under read_options::skip_malformed_rows (empty otherwise).
    std::vector<std::string> skipped;

    [[nodiscard]] std::size_t size() const noexcept { return examples.size(); }

    [[nodiscard]] std::vector<int> labels() const {
        std::vector<int> v;
        v.reserve(examples.size());
        for (const auto& e : examples) v.push_back(e.label);
        return v;
    }
    [[nodiscard]] std::vector<double> scores() const {
        std::vector<double> v;
        v.reserve(examples.size());
        for (const auto& e : examples) v.push_back(e.score);
        return v;
    }
    /// Examples per label id (classification).
    [[nodiscard]] std::vector<std::size_t> label_counts() const {
        std::vector<std::size_t> c(task.label_names.size(), 0);
        for (const auto& e : examples)
            if (e.label >= 0 && static_cast<std::size_t>(e.label) < c.size()) ++c[static_cast<std::size_t>(e.label)];
        return c;
    }
};

/// How the readers treat a malformed row.
struct read_options {
    /// false (default): the first malformed row throws io_error naming file and line. true: such rows are
    /// dropped and listed in dataset::skipped; for files known to carry a few broken rows (Hugging Face's
    /// GLUE processor skips short QQP rows). A malformed header or file always throws.
    bool skip_malformed_rows = false;
};

namespace detail {

inline task_info make_task(std::string name, benchmark suite, std::string directory, task_kind kind,
                           std::vector<std::string> labels, std::vector<std::string> text, std::string label_field,
                           std::vector<metric> metrics, double score_min = 0, double score_max = 0) {
    return task_info{std::move(name), suite,           std::move(directory), kind,     std::move(labels),
                     std::move(text), std::move(label_field), std::move(metrics), score_min, score_max};
}

/// Lower-case letters and digits only, so "SST-2", "sst_2" and "sst2" name the same task.
inline std::string name_key(std::string_view name) {
    std::string k;
    for (char c : name) {
        if (c >= 'A' && c <= 'Z') k.push_back(static_cast<char>(c - 'A' + 'a'));
        else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) k.push_back(c);
    }
    return k;
}

}  // namespace detail

/// Every task hyperadapt can read, GLUE first. Label orders follow the processors the CA-MTL and
/// HyperFormer/PHA code bases use (Hugging Face transformers' GLUE processors, Hugging Face datasets'
/// super_glue), so class ids match checkpoints trained there.
[[nodiscard]] inline std::vector<task_info> all_tasks() {
    using enum metric;
    const auto g = benchmark::glue;
    const auto s = benchmark::superglue;
    const auto c = task_kind::classification;
    const std::vector<std::string> binary{"0", "1"};
    const std::vector<std::string> nli2{"entailment", "not_entailment"};
    return {
        detail::make_task("cola", g, "CoLA", c, binary, {"sentence"}, "label", {matthews}),
        detail::make_task("sst2", g, "SST-2", c, binary, {"sentence"}, "label", {accuracy}),
        detail::make_task("mrpc", g, "MRPC", c, binary, {"#1 String", "#2 String"}, "Quality", {f1, accuracy}),
        detail::make_task("stsb", g, "STS-B", task_kind::regression, {}, {"sentence1", "sentence2"}, "score",
                          {pearson, spearman}, 0.0, 5.0),
        detail::make_task("qqp", g, "QQP", c, binary, {"question1", "question2"}, "is_duplicate", {f1, accuracy}),
        detail::make_task("mnli", g, "MNLI", c, {"contradiction", "entailment", "neutral"}, {"sentence1", "sentence2"},
                          "gold_label", {accuracy}),
        detail::make_task("mnli-mm", g, "MNLI", c, {"contradiction", "entailment", "neutral"},
                          {"sentence1", "sentence2"}, "gold_label", {accuracy}),
        detail::make_task("qnli", g, "QNLI", c, nli2, {"question", "sentence"}, "label", {accuracy}),
        detail::make_task("rte", g, "RTE", c, nli2, {"sentence1", "sentence2"}, "label", {accuracy}),
        detail::make_task("wnli", g, "WNLI", c, binary, {"sentence1", "sentence2"}, "label", {accuracy}),
        detail::make_task("cb", s, "CB", c, {"entailment", "contradiction", "neutral"}, {"premise", "hypothesis"},
                          "label", {macro_f1, accuracy}),
        // COPA is a two-way choice: text_a is the premise, the choices sit in example::choices.
        detail::make_task("copa", s, "COPA", c, binary, {"premise"}, "label", {accuracy}),
        detail::make_task("superglue-rte", s, "RTE", c, nli2, {"premise", "hypothesis"}, "label", {accuracy}),
        detail::make_task("boolq", s, "BoolQ", c, {"False", "True"}, {"question", "passage"}, "label", {accuracy}),
        detail::make_task("wic", s, "WiC", c, {"False", "True"}, {"sentence1", "sentence2"}, "label", {accuracy}),
    };
}

/// The canonical name of a task name or alias, or nothing. Case, '-', '_' and '.' are ignored;
/// "mnli-m"/"mnli_matched" mean MNLI matched, "mnli-mm"/"mnli_mismatched" mismatched; a "glue-" or
/// "superglue-" prefix picks the benchmark ("rte" alone is GLUE's RTE, "superglue-rte" SuperGLUE's).
[[nodiscard]] inline std::optional<std::string> canonical_task_name(std::string_view name) {
    struct alias {
        std::string_view key, canonical;
        benchmark suite;
    };
    static constexpr std::array aliases{
        alias{"cola", "cola", benchmark::glue},       alias{"sst2", "sst2", benchmark::glue},
        alias{"sst", "sst2", benchmark::glue},        alias{"mrpc", "mrpc", benchmark::glue},
        alias{"stsb", "stsb", benchmark::glue},       alias{"sts", "stsb", benchmark::glue},
        alias{"qqp", "qqp", benchmark::glue},         alias{"mnli", "mnli", benchmark::glue},
        alias{"mnlim", "mnli", benchmark::glue},      alias{"mnlimatched", "mnli", benchmark::glue},
        alias{"mnlimm", "mnli-mm", benchmark::glue},  alias{"mnlimismatched", "mnli-mm", benchmark::glue},
        alias{"qnli", "qnli", benchmark::glue},       alias{"rte", "rte", benchmark::glue},
        alias{"wnli", "wnli", benchmark::glue},       alias{"cb", "cb", benchmark::superglue},
        alias{"copa", "copa", benchmark::superglue},  alias{"rte", "superglue-rte", benchmark::superglue},
        alias{"boolq", "boolq", benchmark::superglue}, alias{"wic", "wic", benchmark::superglue},
    };
    const std::string key = detail::name_key(name);
    std::optional<benchmark> want;
    std::string_view rest = key;
    if (rest.starts_with("superglue")) {
        want = benchmark::superglue;
        rest.remove_prefix(9);
    } else if (rest.starts_with("glue")) {
        want = benchmark::glue;
        rest.remove_prefix(4);
    }
    for (const auto& a : aliases)  // GLUE entries come first, so a bare "rte" is GLUE's
        if (a.key == rest && (!want || *want == a.suite)) return std::string(a.canonical);
    return std::nullopt;
}

/// The task of a name or alias; config_error listing the known names if there is none.
[[nodiscard]] inline task_info find_task(std::string_view name) {
    if (const auto canonical = canonical_task_name(name)) {
        for (auto& t : all_tasks())
            if (t.name == *canonical) return t;
    }
    std::string known;
    for (const auto& t : all_tasks()) known += (known.empty() ? "" : ", ") + t.name;
    throw config_error("unknown task '" + std::string(name) + "' (known: " + known + ")");
}

}  // namespace hyperadapt::data
