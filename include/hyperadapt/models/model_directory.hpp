#pragma once
// A trained multi-task model as a directory that says what it is, so that anyone can load it and predict:
//
//   DIR/hyperadapt.json               the composition: model kind and options, the tasks in task-id order with
//                                     their label names, inputs and target scale, the tokenizer's settings and
//                                     longest input, a checksum of each weight file, free-form provenance
//   DIR/config.json                   the backbone's Hugging Face BertConfig
//   DIR/model.safetensors             the backbone: the parameters a plain BERT has, under Hugging Face's names
//                                     (transformers' BertModel.from_pretrained(DIR) reads config, weights, vocab)
//   DIR/vocab.txt                     the WordPiece vocabulary
//   DIR/task_parameters.safetensors   everything else (heads, adapters, prototypes, hypernetwork, retriever,
//                                     conditional modules, task embeddings): the shareable part, as PEFT's
//                                     adapter files; hyperadapt.json says whether the backbone trained too
//                                     (then these alone do not reproduce the model)
//
// save_pretrained writes the whole directory beside the target and swaps it in at once (renameat2's
// RENAME_EXCHANGE, a pair of renames where the file system lacks it): a reader sees the old directory or the
// new one. load_pretrained<Model> checks every fact before anything is built: format and version, kind,
// options (strictly: unknown fields are refused), config.json, the tasks, the checksums, and that every
// parameter is in exactly one weight file with its shape and no tensor is left over; each refusal is an
// io_error naming the file and the fact.
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyperadapt/data/task.hpp"
#include "hyperadapt/io/atomic_file.hpp"
#include "hyperadapt/io/checksum.hpp"
#include "hyperadapt/io/hf_checkpoint.hpp"
#include "hyperadapt/io/json.hpp"
#include "hyperadapt/io/regular_file.hpp"
#include "hyperadapt/io/safetensors.hpp"
#include "hyperadapt/models/bert.hpp"
#include "hyperadapt/models/model_options_json.hpp"

namespace hyperadapt {

inline constexpr const char* model_directory_format = "hyperadapt.model";
inline constexpr std::size_t model_directory_version = 1;

/// What a user of the model needs to know about one task beyond its head.
struct task_card {
    std::string name;                      ///< the head's name; the task id is the position in the card
    std::vector<std::string> label_names;  ///< label id -> name; empty for a regression task
    std::size_t inputs = 1;                ///< texts per example: 1, or 2 for sentence pairs
    double target_scale = 1;               ///< regression: the head learned target / scale; predictions are unscaled

    [[nodiscard]] bool is_regression() const noexcept { return label_names.empty(); }
    [[nodiscard]] std::size_t num_labels() const noexcept { return is_regression() ? 1 : label_names.size(); }
};

/// The card of a registered task (data::find_task) with the head's target scale.
inline task_card task_card_of(const data::task_info& t, double target_scale = 1) {
    task_card c;
    c.name = t.name;
    if (t.kind == data::task_kind::classification) c.label_names = t.label_names;
    c.inputs = t.text_fields.size() >= 2 ? 2 : 1;
    c.target_scale = target_scale;
    return c;
}

/// How text becomes ids: BERT's basic tokenizer settings and the longest input (tokens, with specials).
struct tokenizer_card {
    bool lower_case = true;
    std::optional<bool> strip_accents;  ///< nullopt follows lower_case, as BERT does
    bool chinese_chars = true;
    std::size_t max_length = 128;
};

/// hyperadapt.json, read and checked.
struct model_card {
    std::string kind;              ///< "camtl", "pha" or "multitask_bert" (model_kind of the options)
    nlohmann::json options;        ///< the kind's options (models/model_options_json.hpp)
    bert_config backbone;          ///< from config.json
    std::vector<task_card> tasks;  ///< in task-id order
    tokenizer_card tokenizer;
    bool backbone_trained = false;  ///< some backbone parameter trained: task_parameters alone do not reproduce it
    std::size_t backbone_parameters = 0, task_parameters = 0;  ///< scalars in each weight file
    std::string backbone_checksum, task_parameters_checksum;    ///< what files.*.checksum records (io/checksum.hpp)
    nlohmann::json provenance = nlohmann::json::object();      ///< free-form: what made the model

    /// The task id of `name`, or an io_error listing the model's tasks.
    [[nodiscard]] std::size_t task_id(const std::string& name) const {
        for (std::size_t i = 0; i < tasks.size(); ++i)
            if (tasks[i].name == name) return i;
        std::string known;
        for (const auto& t : tasks) known += (known.empty() ? "" : ", ") + t.name;
        throw config_error("unknown task '" + name + "': this model has " + known);
    }
};

/// What save_pretrained writes besides the model's own options and weights.
struct model_description {
    std::filesystem::path vocab;   ///< the tokenizer's vocab.txt, copied into the directory
    std::vector<task_card> tasks;  ///< one per head, in task-id order (names and label counts must match)
    tokenizer_card tokenizer;
    nlohmann::json provenance = nlohmann::json::object();
};

namespace detail {

inline constexpr const char* card_file = "hyperadapt.json";
inline constexpr const char* backbone_file = "model.safetensors";
inline constexpr const char* task_file = "task_parameters.safetensors";

/// The parameter names of a plain BERT with `c`'s layers (built with one-wide shapes: the names are all
/// that is needed).
template <class B, class T>
std::set<std::string> plain_bert_names(B& backend, bert_config c) {
    c.vocab_size = 1;
    c.hidden = c.heads;
    c.intermediate = 1;
    c.max_position = 1;
    c.type_vocab_size = 1;
    c.pad_token_id = 0;
    std::set<std::string> names;
    bert_model<B, T> m(backend, c);
    m.visit_parameters([&](const std::string& n, parameter<B, T>&) { names.insert(n); });
    return names;
}

inline std::string tensors_digest(const std::filesystem::path& file) {
    const io::safetensors_reader r(file);
    io::checksum64 c;
    io::update_with_tensors(c, r);
    return io::hex64(c.digest());
}

inline nlohmann::ordered_json task_json(const task_card& t) {
    nlohmann::ordered_json j;
    j["name"] = t.name;
    j["type"] = t.is_regression() ? "regression" : "classification";
    if (!t.is_regression()) j["labels"] = t.label_names;
    j["inputs"] = t.inputs;
    j["target_scale"] = t.target_scale;
    return j;
}

inline task_card read_task(const nlohmann::json& j, const std::string& where) {
    task_card t;
    json_fields f(j, where);
    std::string type;
    f.field("name", t.name);
    f.field("type", type);
    f.field("inputs", t.inputs);
    f.field("target_scale", t.target_scale);
    if (j.contains("labels")) {
        const auto& l = j["labels"];
        f.skip("labels");
        if (!l.is_array()) throw io_error(where + ".labels: expected a list of label names");
        for (std::size_t i = 0; i < l.size(); ++i) {
            if (!l[i].is_string()) throw io_error(where + ".labels[" + std::to_string(i) + "]: expected a string");
            t.label_names.push_back(l[i].get<std::string>());
        }
    }
    f.finish();
    if (t.name.empty()) throw io_error(where + ".name: missing or empty");
    if (type != "classification" && type != "regression")
        throw io_error(where + ".type: expected \"classification\" or \"regression\", got \"" + type + "\"");
    if (type == "classification" && t.label_names.size() < 2)
        throw io_error(where + ".labels: a classification task needs at least two labels");
    if (type == "regression" && !t.label_names.empty()) throw io_error(where + ".labels: a regression task has none");
    if (t.inputs != 1 && t.inputs != 2) throw io_error(where + ".inputs: expected 1 or 2, got " + std::to_string(t.inputs));
    if (!(t.target_scale > 0)) throw io_error(where + ".target_scale: expected a number > 0");
    return t;
}

/// Moves the finished directory `fresh` to `target`: an exchange with an existing model directory (then the
/// old one is removed), or a rename where there is none.
inline void swap_in_directory(const std::filesystem::path& fresh, const std::filesystem::path& target) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::exists(target, ec)) {
        if (::rename(fresh.c_str(), target.c_str()) != 0)
            throw io_error(target.string() + ": cannot move the new model directory into place (" + std::strerror(errno) + ")");
        io::detail::sync_directory(target.parent_path().empty() ? fs::path(".") : target.parent_path());
        return;
    }
    if (::renameat2(AT_FDCWD, fresh.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) != 0) {
        // No RENAME_EXCHANGE on this file system: the old directory steps aside, the new one moves in.
        const fs::path aside = fresh.string() + ".old";
        if (::rename(target.c_str(), aside.c_str()) != 0)
            throw io_error(target.string() + ": cannot move the old model directory aside (" + std::strerror(errno) + ")");
        if (::rename(fresh.c_str(), target.c_str()) != 0) {
            const int e = errno;
            ::rename(aside.c_str(), target.c_str());
            throw io_error(target.string() + ": cannot move the new model directory into place (" + std::strerror(e) + ")");
        }
        fs::remove_all(aside, ec);
    } else {
        fs::remove_all(fresh, ec);  // now the old directory
    }
    io::detail::sync_directory(target.parent_path().empty() ? fs::path(".") : target.parent_path());
}

/// A sibling temporary directory, removed unless released.
class staging_directory {
public:
    explicit staging_directory(const std::filesystem::path& target)
        : path_(target.string() + ".tmp." + std::to_string(::getpid())) {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
        if (!std::filesystem::create_directory(path_, ec) || ec)
            throw io_error(path_.string() + ": cannot create the staging directory for " + target.string() + " (" +
                           (ec ? ec.message() : std::string("it exists")) + ")");
    }
    staging_directory(const staging_directory&) = delete;
    staging_directory& operator=(const staging_directory&) = delete;
    ~staging_directory() {
        std::error_code ec;
        if (!released_) std::filesystem::remove_all(path_, ec);
    }
    [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
    void release() noexcept { released_ = true; }

private:
    std::filesystem::path path_;
    bool released_ = false;
};

}  // namespace detail

/// Writes `model` into the directory `dir` (see the top of this header). An existing `dir` is replaced only
/// if it is a model directory or empty; anything else is refused and left alone.
template <class Model>
void save_pretrained(Model& model, const std::filesystem::path& dir, const model_description& d) {
    using B = typename Model::backend_type;
    using T = typename Model::value_type;
    using recipe = typename Model::recipe_type;
    namespace fs = std::filesystem;
    const auto& o = model.options();
    const std::string at = dir.string() + ": ";

    // The facts first: nothing is written when one is wrong.
    if (d.tasks.size() != o.tasks.size())
        throw config_error(at + "the description has " + std::to_string(d.tasks.size()) + " tasks, the model " +
                           std::to_string(o.tasks.size()));
    for (std::size_t i = 0; i < d.tasks.size(); ++i) {
        const auto& t = d.tasks[i];
        if (t.name != o.tasks[i].name)
            throw config_error(at + "task " + std::to_string(i) + " is '" + t.name + "' in the description, '" +
                               o.tasks[i].name + "' in the model");
        if (t.num_labels() != o.tasks[i].num_labels)
            throw config_error(at + "task '" + t.name + "' has " + std::to_string(t.num_labels()) +
                               " labels in the description, the model's head " + std::to_string(o.tasks[i].num_labels));
        if (t.inputs != 1 && t.inputs != 2) throw config_error(at + "task '" + t.name + "': inputs must be 1 or 2");
    }
    if (d.tokenizer.max_length < 4 || d.tokenizer.max_length > o.backbone.max_position)
        throw config_error(at + "tokenizer max_length " + std::to_string(d.tokenizer.max_length) +
                           " must be in [4, the backbone's max_position " + std::to_string(o.backbone.max_position) + "]");
    const std::string vocab_text = io::read_regular_file(d.vocab);
    std::error_code ec;
    if (fs::exists(dir, ec)) {
        if (!fs::is_directory(dir, ec)) throw io_error(at + "exists and is not a directory; refusing to replace it");
        if (!fs::is_empty(dir, ec) && !fs::exists(dir / detail::card_file, ec))
            throw io_error(at + "exists, is not empty and holds no " + detail::card_file +
                           "; refusing to replace a directory that is not a model directory");
    }

    // The split: a parameter goes to the backbone file when a plain BERT has it under the recipe's name.
    B* backend = nullptr;
    model.visit_parameters([&](const std::string&, parameter<B, T>& p) {
        if (!backend) backend = &p.value.backend();
    });
    if (!backend) throw config_error(at + "the model has no parameters");
    const auto plain = detail::plain_bert_names<B, T>(*backend, o.backbone);
    io::safetensors_writer backbone, task;
    std::size_t backbone_count = 0, task_count = 0;
    bool backbone_trained = false;
    model.visit_parameters([&](const std::string& name, parameter<B, T>& p) {
        const auto values = p.value.to_host();
        std::vector<std::size_t> dims;
        for (std::size_t i = 0; i < p.value.shape().rank(); ++i) dims.push_back(p.value.shape()[i]);
        const std::string as = recipe::checkpoint_name(o, name);
        std::vector<float> v(values.begin(), values.end());
        if (plain.count(as)) {
            backbone.add(as, std::move(dims), v);
            backbone_count += v.size();
            backbone_trained = backbone_trained || p.trainable();
        } else {
            task.add(name, std::move(dims), v);
            task_count += v.size();
        }
    });
    backbone.set_metadata("format", "pt");
    task.set_metadata("format", "hyperadapt");

    detail::staging_directory stage(dir);
    const fs::path s = stage.path();
    backbone.write(s / detail::backbone_file);
    task.write(s / detail::task_file);
    io::write_bert_config(o.backbone, s / "config.json");
    io::write_file_atomically(s / "vocab.txt", [&](io::file_sink& out) { out.write(vocab_text); });

    nlohmann::ordered_json card;
    card["format"] = model_directory_format;
    card["version"] = model_directory_version;
    card["model"] = {{"kind", model_kind(o)}, {"options", options_json(o)}};
    nlohmann::ordered_json tasks = nlohmann::ordered_json::array();
    for (const auto& t : d.tasks) tasks.push_back(detail::task_json(t));
    card["tasks"] = tasks;
    nlohmann::ordered_json tok;
    tok["lower_case"] = d.tokenizer.lower_case;
    if (d.tokenizer.strip_accents)
        tok["strip_accents"] = *d.tokenizer.strip_accents;
    else
        tok["strip_accents"] = nullptr;
    tok["chinese_chars"] = d.tokenizer.chinese_chars;
    tok["max_length"] = d.tokenizer.max_length;
    card["tokenizer"] = tok;
    card["files"] = {{"backbone", {{"file", detail::backbone_file},
                                   {"parameters", backbone_count},
                                   {"trained", backbone_trained},
                                   {"checksum", detail::tensors_digest(s / detail::backbone_file)}}},
                     {"task_parameters", {{"file", detail::task_file},
                                          {"parameters", task_count},
                                          {"checksum", detail::tensors_digest(s / detail::task_file)}}}};
    card["provenance"] = d.provenance;
    const std::string text = card.dump(2) + "\n";
    io::write_file_atomically(s / detail::card_file, [&](io::file_sink& out) { out.write(text); });
    io::detail::sync_directory(s);
    detail::swap_in_directory(s, dir);
    stage.release();
}

/// Reads and checks DIR/hyperadapt.json and the backbone's config.json (not the weights: load_pretrained
/// does). `backbone`: a Hugging Face checkpoint folder that supplies config.json, the weights and vocab.txt
/// for a directory that holds only hyperadapt.json and task_parameters.safetensors (a shared adapter set);
/// empty: DIR holds them.
inline model_card read_model_card(const std::filesystem::path& dir, const std::filesystem::path& backbone = {}) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) throw io_error(dir.string() + ": not a directory (a model directory holds " +
                                                   detail::card_file + ", config.json, vocab.txt and the weights)");
    const fs::path file = dir / detail::card_file;
    const std::string where = file.string();
    const nlohmann::json j = io::parse_json(io::read_regular_file(file), where);
    if (!j.is_object()) throw io_error(where + ": expected a JSON object");
    model_card c;
    std::string format;
    std::size_t version = 0;
    detail::json_fields f(j, where);
    f.field("format", format);
    if (format != model_directory_format)
        throw io_error(where + ".format: expected \"" + model_directory_format + "\", got \"" + format + "\"");
    f.field("version", version);
    if (version != model_directory_version)
        throw io_error(where + ".version: " + std::to_string(version) + ", but this hyperadapt reads version " +
                       std::to_string(model_directory_version) + (version > model_directory_version ? " (a newer library wrote it)" : ""));
    f.object("model", [&](detail::json_fields& m) {
        m.field("kind", c.kind);
        if (j["model"].contains("options")) c.options = j["model"]["options"];
        m.skip("options");  // read against the kind by options_from_card
    });
    if (c.kind != "camtl" && c.kind != "pha" && c.kind != "multitask_bert")
        throw io_error(where + ".model.kind: expected \"camtl\", \"pha\" or \"multitask_bert\", got \"" + c.kind + "\"");
    if (!c.options.is_object()) throw io_error(where + ".model.options: missing");
    if (!j.contains("tasks") || !j["tasks"].is_array() || j["tasks"].empty())
        throw io_error(where + ".tasks: expected a non-empty list of tasks");
    std::set<std::string> names;
    for (std::size_t i = 0; i < j["tasks"].size(); ++i) {
        c.tasks.push_back(detail::read_task(j["tasks"][i], where + ".tasks[" + std::to_string(i) + "]"));
        if (!names.insert(c.tasks.back().name).second)
            throw io_error(where + ".tasks[" + std::to_string(i) + "]: task '" + c.tasks.back().name + "' appears twice");
    }
    f.skip("tasks");
    f.object("tokenizer", [&](detail::json_fields& t) {
        t.field("lower_case", c.tokenizer.lower_case);
        t.field("strip_accents", c.tokenizer.strip_accents);
        t.field("chinese_chars", c.tokenizer.chinese_chars);
        t.field("max_length", c.tokenizer.max_length);
    });
    std::string backbone_name, task_name;
    f.object("files", [&](detail::json_fields& files) {
        files.object("backbone", [&](detail::json_fields& b) {
            b.field("file", backbone_name);
            b.field("parameters", c.backbone_parameters);
            b.field("trained", c.backbone_trained);
            b.field("checksum", c.backbone_checksum);
        });
        files.object("task_parameters", [&](detail::json_fields& t) {
            t.field("file", task_name);
            t.field("parameters", c.task_parameters);
            t.field("checksum", c.task_parameters_checksum);
        });
    });
    if (backbone_name != detail::backbone_file || task_name != detail::task_file)
        throw io_error(where + ".files: expected the backbone in " + detail::backbone_file + " and the task parameters in " +
                       detail::task_file);
    if (j.contains("provenance")) c.provenance = j["provenance"];
    f.skip("provenance");
    f.finish();
    const fs::path from = backbone.empty() ? dir : backbone;
    if (backbone.empty() && !fs::exists(dir / "config.json", ec) && !fs::exists(dir / detail::backbone_file, ec))
        throw io_error(dir.string() + ": holds no config.json and no " + detail::backbone_file +
                       ": an adapter set (hyperadapt.json and " + detail::task_file +
                       ") loads onto its backbone, a Hugging Face checkpoint folder given as the backbone (--backbone DIR)");
    c.backbone = io::read_bert_config(from / "config.json");
    if (c.tokenizer.max_length < 4 || c.tokenizer.max_length > c.backbone.max_position)
        throw io_error(where + ".tokenizer.max_length: " + std::to_string(c.tokenizer.max_length) +
                       " is outside [4, config.json's max_position_embeddings " + std::to_string(c.backbone.max_position) + "]");
    const fs::path vocab = fs::exists(dir / "vocab.txt", ec) || backbone.empty() ? dir / "vocab.txt" : backbone / "vocab.txt";
    if (!fs::is_regular_file(vocab, ec)) throw io_error(vocab.string() + ": missing (the tokenizer's vocabulary)");
    if (!backbone.empty() && c.backbone_trained)
        throw io_error(where + ": this model trained part of its backbone (files.backbone.trained), so its task "
                       "parameters alone do not reproduce it: load the whole model directory, not an adapter set");
    return c;
}

/// The options a model directory's card describes, for the model type `Options` belongs to.
template <class Options>
Options options_from_card(const model_card& c, const std::filesystem::path& dir) {
    Options o;
    const std::string where = (dir / detail::card_file).string() + ".model";
    if (c.kind != model_kind(o))
        throw io_error(where + ".kind: the directory holds a \"" + c.kind + "\" model, not a \"" + model_kind(o) + "\"");
    read_options_json(c.options, where + ".options", o);
    o.backbone = c.backbone;
    o.tasks.clear();
    for (const auto& t : c.tasks) o.tasks.push_back({t.name, t.num_labels(), t.target_scale});
    return o;
}

/// How load_pretrained finds the backbone.
struct model_load_options {
    /// Empty: DIR holds the whole model. A Hugging Face checkpoint folder: DIR is an adapter set (hyperadapt.json
    /// and task_parameters.safetensors; vocab.txt optional), and the backbone comes from this folder — which
    /// must hold the very backbone the set was trained on (its tensors are checked against the checksum that
    /// hyperadapt.json records), and the model must not have trained its backbone.
    std::filesystem::path backbone;
};

namespace detail {
/// The checksum save_pretrained records for the backbone file, computed from the model's parameters: the
/// plain-BERT tensors under their checkpoint names (`plain`: plain_bert_names of the model's backbone), in name
/// order, as F32.
template <class Model>
std::string backbone_digest(Model& model, const std::set<std::string>& plain) {
    using B = typename Model::backend_type;
    using T = typename Model::value_type;
    using recipe = typename Model::recipe_type;
    std::map<std::string, parameter<B, T>*> named;
    model.visit_parameters([&](const std::string& name, parameter<B, T>& p) {
        const std::string as = recipe::checkpoint_name(model.options(), name);
        if (plain.count(as)) named.emplace(as, &p);
    });
    io::checksum64 c;
    for (const auto& [name, p] : named) {
        c.update(name);
        c.update(io::dtype_name(io::dtype::f32));
        for (std::size_t i = 0; i < p->value.shape().rank(); ++i) c.update_value(static_cast<std::uint64_t>(p->value.shape()[i]));
        const auto values = p->value.to_host();
        const std::vector<float> f(values.begin(), values.end());
        c.update(std::as_bytes(std::span<const float>(f)));
    }
    return io::hex64(c.digest());
}
}  // namespace detail

/// Builds a `Model` (camtl_model, pha_bert, multitask_bert, over any backend) from the model directory `dir`
/// and loads its weights; the model is frozen as its recipe says, ready to predict or to train on.
template <class Model>
Model load_pretrained(typename Model::backend_type& backend, const std::filesystem::path& dir,
                      model_card* card_out = nullptr, const model_load_options& lo = {}) {
    using B = typename Model::backend_type;
    using T = typename Model::value_type;
    using recipe = typename Model::recipe_type;
    const model_card card = read_model_card(dir, lo.backbone);
    auto options = options_from_card<typename Model::options_type>(card, dir);
    if (!lo.backbone.empty()) {
        // An adapter set: the task parameters from DIR (checksum first), the backbone from the checkpoint.
        const std::filesystem::path file = dir / detail::task_file;
        const std::string& recorded = card.task_parameters_checksum;
        if (detail::tensors_digest(file) != recorded)
            throw io_error(file.string() + ": its tensors do not match the checksum " + recorded +
                           " that hyperadapt.json records (the file is corrupted, or comes from another model)");
        Model model(backend, std::move(options));
        const auto plain = detail::plain_bert_names<B, T>(backend, model.options().backbone);
        const io::safetensors_reader reader(file);
        std::set<std::string> taken;
        model.visit_parameters([&](const std::string& name, parameter<B, T>& p) {
            if (plain.count(recipe::checkpoint_name(model.options(), name))) return;
            const io::tensor_entry* e = reader.find(name);
            if (!e) throw io_error(file.string() + ": parameter '" + name + "' is missing");
            if (!io::is_floating(e->type) || !io::detail::same_shape(e->shape, p.value.shape()))
                throw io_error(file.string() + ": tensor '" + name + "' is " + io::shape_string(e->shape) + " " +
                               std::string(io::dtype_name(e->type)) + ", not what the model hyperadapt.json describes has there");
            std::vector<T> host(e->elements());
            reader.read_into(*e, std::span<T>(host));
            p.value.backend().copy_from_host(host.data(), p.value.data(), host.size());
            taken.insert(name);
        });
        for (const auto& e : reader.entries())
            if (!taken.count(e.name))
                throw io_error(file.string() + ": tensor '" + e.name + "' belongs to no parameter of the model that "
                               "hyperadapt.json describes");
        (void)model.load_backbone(lo.backbone);
        const std::string& expected = card.backbone_checksum;
        if (detail::backbone_digest(model, plain) != expected)
            throw io_error(lo.backbone.string() + ": not the backbone this adapter set was trained on (its tensors do "
                           "not match the checksum " + expected + " that " + (dir / detail::card_file).string() + " records)");
        model.apply_freezing();
        if (card_out) *card_out = card;
        return model;
    }

    // The weights: checksums first, then every parameter in exactly one file with its shape.
    const std::filesystem::path files[2] = {dir / detail::backbone_file, dir / detail::task_file};
    const std::string* recorded_checksums[2] = {&card.backbone_checksum, &card.task_parameters_checksum};
    for (int i = 0; i < 2; ++i) {
        const std::string& recorded = *recorded_checksums[i];
        if (detail::tensors_digest(files[i]) != recorded)
            throw io_error(files[i].string() + ": its tensors do not match the checksum " + recorded +
                           " that hyperadapt.json records (the file is corrupted, or comes from another model)");
    }
    Model model(backend, std::move(options));
    const io::safetensors_reader readers[2] = {io::safetensors_reader(files[0]), io::safetensors_reader(files[1])};
    std::set<std::string> taken[2];
    std::vector<std::pair<parameter<B, T>*, const io::tensor_entry*>> plan;
    std::vector<int> plan_file;
    model.visit_parameters([&](const std::string& name, parameter<B, T>& p) {
        const std::string as = recipe::checkpoint_name(model.options(), name);
        const io::tensor_entry* e = readers[0].find(as);
        int which = 0;
        if (!e) {
            e = readers[1].find(name);
            which = 1;
        }
        if (!e)
            throw io_error(dir.string() + ": parameter '" + name + "' is in neither " + detail::backbone_file + " nor " +
                           detail::task_file + " (the directory does not hold this model)");
        const std::string tname = which == 0 ? as : name;
        if (!io::is_floating(e->type))
            throw io_error(files[which].string() + ": tensor '" + tname + "' has dtype " + std::string(io::dtype_name(e->type)));
        if (!io::detail::same_shape(e->shape, p.value.shape())) {
            std::vector<std::size_t> dims;
            for (std::size_t i = 0; i < p.value.shape().rank(); ++i) dims.push_back(p.value.shape()[i]);
            throw io_error(files[which].string() + ": tensor '" + tname + "' is " + io::shape_string(e->shape) +
                           ", but the model hyperadapt.json describes has " + io::shape_string(dims) + " there");
        }
        taken[which].insert(tname);
        plan.emplace_back(&p, e);
        plan_file.push_back(which);
    });
    for (int i = 0; i < 2; ++i)
        for (const auto& e : readers[i].entries())
            if (!taken[i].count(e.name))
                throw io_error(files[i].string() + ": tensor '" + e.name + "' belongs to no parameter of the model that "
                               "hyperadapt.json describes");
    std::vector<T> host;
    for (std::size_t k = 0; k < plan.size(); ++k) {
        auto [p, e] = plan[k];
        host.resize(e->elements());
        readers[plan_file[k]].read_into(*e, std::span<T>(host));
        p->value.backend().copy_from_host(host.data(), p->value.data(), host.size());
    }
    if (!plan.empty()) plan.front().first->value.backend().synchronize();
    model.apply_freezing();
    if (card_out) *card_out = card;
    return model;
}

}  // namespace hyperadapt
