#pragma once
// Readers for the GLUE TSV files exactly as GLUE's download_glue_data.py lays them out:
//
//   <glue_dir>/CoLA/{train,dev}.tsv    no header: source, label (0/1), original mark, sentence
//   <glue_dir>/SST-2/{train,dev}.tsv   sentence, label (0/1)
//   <glue_dir>/MRPC/{train,dev}.tsv    UTF-8 BOM, then Quality (= label), #1 ID, #2 ID, #1 String, #2 String
//   <glue_dir>/STS-B/{train,dev}.tsv   10 columns: index genre filename year old_index source1 source2
//                                      sentence1 sentence2 score (0..5, regression)
//   <glue_dir>/QQP/{train,dev}.tsv     id, qid1, qid2, question1, question2, is_duplicate (0/1)
//   <glue_dir>/MNLI/train.tsv, dev_matched.tsv, dev_mismatched.tsv
//                                      index promptID pairID genre, four parse columns, sentence1 sentence2,
//                                      label1 (train) or label1..label5 (dev), gold_label (last)
//   <glue_dir>/QNLI/{train,dev}.tsv    index, question, sentence, label (entailment / not_entailment)
//   <glue_dir>/RTE/{train,dev}.tsv     index, sentence1, sentence2, label (entailment / not_entailment)
//   <glue_dir>/WNLI/{train,dev}.tsv    index, sentence1, sentence2, label (0/1)
//
// Columns are found by their header names (task_info::text_fields and label_field), not by position,
// which covers MNLI's train and dev files having different column counts and makes a file of the wrong
// task fail at its header. Every row must have as many columns as the header. Quoting is disabled.
#include <charconv>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "hyperadapt/core/errors.hpp"
#include "hyperadapt/data/task.hpp"
#include "hyperadapt/data/text_file.hpp"

namespace hyperadapt::data {

/// train.tsv or dev.tsv; MNLI's dev sets are dev_matched.tsv ("mnli") and dev_mismatched.tsv ("mnli-mm").
[[nodiscard]] inline std::string glue_file_name(const task_info& task, split which) {
    if (task.suite != benchmark::glue)
        throw config_error("glue_file_name: '" + task.name + "' is not a GLUE task");
    if (which == split::train) {
        // Reading MNLI's training set twice under two names would double it in multi-task sampling.
        if (task.name == "mnli-mm")
            throw config_error("mnli-mm has no training split of its own: train on 'mnli' (the same train.tsv)");
        return "train.tsv";
    }
    if (task.name == "mnli") return "dev_matched.tsv";
    if (task.name == "mnli-mm") return "dev_mismatched.tsv";
    return "dev.tsv";
}

namespace detail {

inline void parse_glue_score(const task_info& task, std::string_view field, example& e,
                             const std::filesystem::path& file, std::size_t line) {
    double v = 0;
    const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), v);
    if (ec != std::errc{} || end != field.data() + field.size() || !std::isfinite(v))
        fail_at(file, line, task.label_field + " " + quote_field(field) + " is not a number");
    if (v < task.score_min || v > task.score_max)
        fail_at(file, line, task.label_field + " " + std::string(field) + " is outside [" +
                                format_number(task.score_min) + ", " + format_number(task.score_max) + "]");
    e.score = static_cast<float>(v);
}

inline std::size_t glue_column(const std::vector<std::string>& header, const std::string& name,
                               const std::filesystem::path& file, std::size_t line) {
    for (std::size_t i = 0; i < header.size(); ++i)
        if (header[i] == name) return i;
    std::string cols;
    for (const auto& h : header) cols += (cols.empty() ? "" : ", ") + quote_field(h);
    fail_at(file, line, "header has no column '" + name + "' (columns: " + cols + "); is this the right task's file?");
}

}  // namespace detail

/// Reads one GLUE TSV file of `task` (whatever its name or location). Throws io_error "file:line: fault"
/// for a missing or malformed header, a row with the wrong number of columns, a label not in the task's
/// label map or a score that is not a number in range.
[[nodiscard]] inline dataset read_glue_file(const task_info& task, const std::filesystem::path& file, split which,
                                            const read_options& options = {}) {
    if (task.suite != benchmark::glue)
        throw config_error("read_glue_file: '" + task.name + "' is not a GLUE task");
    const std::string text = detail::read_whole_file(file);
    dataset d{task, which, file, {}, {}};

    // CoLA is the one GLUE file without a header; its column names come from GLUE's CoLA description.
    const bool has_header = task.name != "cola";
    std::vector<std::string> header;
    if (!has_header) header = {"source", "label", "mark", "sentence"};
    std::vector<std::size_t> text_cols;
    std::size_t label_col = 0;
    auto resolve_columns = [&](std::size_t line) {
        for (const auto& f : task.text_fields) text_cols.push_back(detail::glue_column(header, f, file, line));
        label_col = detail::glue_column(header, task.label_field, file, line);
    };
    if (!has_header) resolve_columns(0);
    bool header_seen = !has_header;

    detail::for_each_line(text, [&](std::size_t n, std::string_view line) {
        const auto fields = detail::split_tabs(line);
        if (!header_seen) {
            header.assign(fields.begin(), fields.end());
            resolve_columns(n);
            header_seen = true;
            return;
        }
        try {
            if (fields.size() != header.size())
                detail::fail_at(file, n, "expected " + std::to_string(header.size()) +
                                             " tab-separated columns, found " + std::to_string(fields.size()));
            for (std::size_t k = 0; k < text_cols.size(); ++k)
                detail::check_utf8_field(fields[text_cols[k]], task.text_fields[k], file, n);
            example e;
            e.line = n;
            e.text_a = fields[text_cols[0]];
            if (text_cols.size() > 1) e.text_b = std::string(fields[text_cols[1]]);
            const std::string_view label = fields[label_col];
            if (task.kind == task_kind::regression) {
                detail::parse_glue_score(task, label, e, file, n);
            } else {
                const auto id = task.label_id(label);
                if (!id)
                    detail::fail_at(file, n, task.label_field + " " + detail::quote_field(label) +
                                                 " is not one of the task's labels (" + task.label_list() + ")");
                e.label = *id;
            }
            d.examples.push_back(std::move(e));
        } catch (const io_error& err) {
            if (!options.skip_malformed_rows) throw;
            d.skipped.emplace_back(err.what());
        }
    });
    if (!header_seen) throw io_error(file.string() + ": empty file, expected a header line");
    return d;
}

/// Reads split `which` of GLUE task `name` ("rte", "SST-2", "mnli-mm", ...) from `glue_dir`, the folder
/// that holds CoLA/, SST-2/, ... (as download_glue_data.py writes it).
[[nodiscard]] inline dataset load_glue(std::string_view name, const std::filesystem::path& glue_dir, split which,
                                       const read_options& options = {}) {
    const task_info task = find_task(name);
    if (task.suite != benchmark::glue)
        throw config_error("load_glue: '" + std::string(name) + "' is a SuperGLUE task (use load_superglue or load_task)");
    return read_glue_file(task, glue_dir / task.directory / glue_file_name(task, which), which, options);
}

}  // namespace hyperadapt::data
