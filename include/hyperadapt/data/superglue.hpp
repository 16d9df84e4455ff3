#pragma once
// Readers for the SuperGLUE jsonl files (one JSON object per line) as the SuperGLUE release lays them out:
//
//   <superglue_dir>/CB/{train,val}.jsonl     premise, hypothesis, label "entailment"/"contradiction"/"neutral"
//   <superglue_dir>/COPA/{train,val}.jsonl   premise, choice1, choice2, question "cause"/"effect", label 0/1
//   <superglue_dir>/RTE/{train,val}.jsonl    premise, hypothesis, label "entailment"/"not_entailment"
//   <superglue_dir>/BoolQ/{train,val}.jsonl  question, passage, label true/false (JSON booleans)
//   <superglue_dir>/WiC/{train,val}.jsonl    word, sentence1, sentence2, label true/false (+ offsets)
//
// split::dev reads val.jsonl. Other keys (idx, start1, ...) are ignored. Blank lines are skipped, as JSON
// Lines readers do. Needs nlohmann/json (link hyperadapt::io, or nlohmann_json::nlohmann_json).
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "hyperadapt/core/errors.hpp"
#include "hyperadapt/data/task.hpp"
#include "hyperadapt/data/text_file.hpp"
#include "hyperadapt/io/json.hpp"

namespace hyperadapt::data {

/// train.jsonl or val.jsonl.
[[nodiscard]] inline std::string superglue_file_name(const task_info& task, split which) {
    if (task.suite != benchmark::superglue)
        throw config_error("superglue_file_name: '" + task.name + "' is not a SuperGLUE task");
    return which == split::train ? "train.jsonl" : "val.jsonl";
}

namespace detail {

inline std::string_view json_type(const nlohmann::json& v) {
    if (v.is_string()) return "a string";
    if (v.is_boolean()) return "a boolean";
    if (v.is_number()) return "a number";
    if (v.is_null()) return "null";
    if (v.is_array()) return "an array";
    return "an object";
}

/// A parser callback that refuses rows nested deeper than io::max_json_depth (io/json.hpp says why), naming
/// the file and line. No SuperGLUE row nests more than two levels.
inline auto json_depth_limit(const std::filesystem::path& file, std::size_t line) {
    return [&file, line](int depth, nlohmann::json::parse_event_t ev, nlohmann::json&) {
        using event = nlohmann::json::parse_event_t;
        if ((ev == event::object_start || ev == event::array_start) && depth >= io::max_json_depth)
            fail_at(file, line, "JSON nested deeper than " + std::to_string(io::max_json_depth) + " levels");
        return true;
    };
}

inline std::string json_string(const nlohmann::json& row, const std::string& key, const std::filesystem::path& file,
                               std::size_t line) {
    const auto it = row.find(key);
    if (it == row.end()) fail_at(file, line, "missing field '" + key + "'");
    if (!it->is_string())
        fail_at(file, line, "field '" + key + "' is " + std::string(json_type(*it)) + ", expected a string");
    return it->get<std::string>();
}

/// Each task writes its label in one JSON type: names (CB, RTE), booleans (BoolQ, WiC) or the index of the
/// right choice (COPA). Any other type is a malformed row rather than something to coerce.
inline int json_label(const task_info& task, const nlohmann::json& row, const std::filesystem::path& file,
                      std::size_t line) {
    const auto it = row.find(task.label_field);
    if (it == row.end()) fail_at(file, line, "missing field '" + task.label_field + "'");
    const nlohmann::json& v = *it;
    // Arrays and objects are not printed: json_summary would repeat what json_type says.
    const std::string where = v.is_primitive() ? "label " + io::json_summary(v) : std::string("label");
    if (task.name == "boolq" || task.name == "wic") {
        if (!v.is_boolean()) fail_at(file, line, where + " is " + std::string(json_type(v)) + ", expected true or false");
        return v.get<bool>() ? 1 : 0;
    }
    if (task.name == "copa") {
        if (!v.is_number_integer())
            fail_at(file, line, where + " is " + std::string(json_type(v)) + ", expected 0 or 1");
        const auto k = v.get<long long>();
        if (k < 0 || k >= task.num_labels()) fail_at(file, line, where + " is not 0 or 1");
        return static_cast<int>(k);
    }
    if (!v.is_string())
        fail_at(file, line, where + " is " + std::string(json_type(v)) + ", expected one of: " + task.label_list());
    const auto id = task.label_id(v.get_ref<const std::string&>());
    if (!id) fail_at(file, line, where + " is not one of the task's labels (" + task.label_list() + ")");
    return *id;
}

}  // namespace detail

/// Reads one SuperGLUE jsonl file of `task`. Throws io_error "file:line: fault" for invalid JSON, a line
/// that is not an object, a missing or mistyped field, or a label outside the task's label map.
[[nodiscard]] inline dataset read_superglue_file(const task_info& task, const std::filesystem::path& file,
                                                 split which, const read_options& options = {}) {
    if (task.suite != benchmark::superglue)
        throw config_error("read_superglue_file: '" + task.name + "' is not a SuperGLUE task");
    const std::string text = detail::read_whole_file(file);
    dataset d{task, which, file, {}, {}};
    detail::for_each_line(text, [&](std::size_t n, std::string_view line) {
        if (line.find_first_not_of(" \t") == std::string_view::npos) return;
        try {
            nlohmann::json row;
            try {
                row = nlohmann::json::parse(line, detail::json_depth_limit(file, n));
            } catch (const nlohmann::json::parse_error& e) {
                detail::fail_at(file, n, "invalid JSON at byte " + std::to_string(e.byte) + ": " +
                                             io::json_parse_reason(e.what()));
            } catch (const nlohmann::json::exception& e) {  // out_of_range 406: a number beyond double
                detail::fail_at(file, n, std::string("invalid JSON: ") + e.what());
            }
            if (!row.is_object())
                detail::fail_at(file, n, "expected a JSON object, found " + std::string(detail::json_type(row)));
            example e;
            e.line = n;
            e.text_a = detail::json_string(row, task.text_fields[0], file, n);
            if (task.text_fields.size() > 1) e.text_b = detail::json_string(row, task.text_fields[1], file, n);
            if (task.name == "copa") {
                e.choices = {detail::json_string(row, "choice1", file, n), detail::json_string(row, "choice2", file, n)};
                e.question = detail::json_string(row, "question", file, n);
            }
            if (task.name == "wic") e.word = detail::json_string(row, "word", file, n);
            e.label = detail::json_label(task, row, file, n);
            d.examples.push_back(std::move(e));
        } catch (const io_error& err) {
            if (!options.skip_malformed_rows) throw;
            d.skipped.emplace_back(err.what());
        }
    });
    return d;
}

/// Reads split `which` of SuperGLUE task `name` ("cb", "copa", "superglue-rte", "boolq", "wic") from
/// `superglue_dir`, the folder that holds CB/, COPA/, ... A bare "rte" is taken as SuperGLUE's RTE here.
[[nodiscard]] inline dataset load_superglue(std::string_view name, const std::filesystem::path& superglue_dir,
                                            split which, const read_options& options = {}) {
    auto canonical = canonical_task_name("superglue-" + std::string(name));
    if (!canonical) canonical = canonical_task_name(name);
    const task_info task = find_task(canonical ? *canonical : name);
    if (task.suite != benchmark::superglue)
        throw config_error("load_superglue: '" + std::string(name) + "' is a GLUE task (use load_glue or load_task)");
    return read_superglue_file(task, superglue_dir / task.directory / superglue_file_name(task, which), which,
                               options);
}

}  // namespace hyperadapt::data
