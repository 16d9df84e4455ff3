#pragma once
// Hugging Face checkpoint folders: config.json (a BertConfig) and model.safetensors (or sharded
// model-0000k-of-0000n.safetensors listed in model.safetensors.index.json).
//
// Loading matches tensors to parameters by name, because the library's names are Hugging Face's
// (docs/design.md). Checkpoints saved from a task model carry the base model under a prefix
// ("bert.encoder...", from BertForSequenceClassification) plus head tensors; a model with heads may in turn
// hold the encoder under a prefix while the checkpoint is a bare BertModel. The loader tries the identity
// and every prefix the two name sets suggest, in both directions, and keeps the mapping that matches most.
// Everything that did not match is reported by name; missing and mis-shaped tensors throw unless the load
// is non-strict, and nothing is written into the model before that check has passed.
//
// Saving writes the same layout (config.json + model.safetensors with metadata format=pt), which
// transformers.BertModel.from_pretrained(dir) loads.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "hyperadapt/core/errors.hpp"
#include "hyperadapt/io/atomic_file.hpp"
#include "hyperadapt/io/json.hpp"
#include "hyperadapt/io/regular_file.hpp"
#include "hyperadapt/io/safetensors.hpp"
#include "hyperadapt/nn/bert_config.hpp"
#include "hyperadapt/nn/parameter.hpp"

namespace hyperadapt::io {

// ---- config.json -----------------------------------------------------------------------------------------

namespace detail {
inline std::filesystem::path config_path(const std::filesystem::path& dir_or_file) {
    return std::filesystem::is_directory(dir_or_file) ? dir_or_file / "config.json" : dir_or_file;
}

inline nlohmann::json read_json_file(const std::filesystem::path& p) {
    return parse_json(read_regular_file(p), p.string());
}
}  // namespace detail

/// Reads a Hugging Face BertConfig (a folder's config.json, or the file itself). Fields absent from the
/// file take BertConfig's defaults, which are bert_config's. Refuses what the library's BERT does not
/// compute: another model_type, an activation other than the erf GELU, relative position embeddings, a
/// decoder; every refusal and every bad value is an io_error naming the file and the field.
inline bert_config read_bert_config(const std::filesystem::path& dir_or_file) {
    const auto path = detail::config_path(dir_or_file);
    const auto j = detail::read_json_file(path);
    const std::string at = path.string() + ": ";
    if (!j.is_object()) throw io_error(at + "not a JSON object");

    auto text = [&](const char* key, std::string_view required, const char* why) {
        if (!j.contains(key)) return;
        const auto& v = j[key];
        if (!v.is_string()) throw io_error(at + "'" + key + "' is not a string (found " + json_summary(v) + ")");
        if (v.get<std::string>() != required)
            throw io_error(at + key + " '" + v.get<std::string>() + "' is not supported: " + why);
    };
    text("model_type", "bert", "hyperadapt reads BERT checkpoints (model_type \"bert\")");
    text("hidden_act", "gelu", "hyperadapt's BERT uses the exact (erf) GELU, hidden_act \"gelu\"");
    text("position_embedding_type", "absolute",
         "hyperadapt's BERT has absolute position embeddings only (position_embedding_type \"absolute\")");
    for (const char* flag : {"is_decoder", "add_cross_attention"})
        if (j.contains(flag) && !(j[flag].is_boolean() && !j[flag].get<bool>()))
            throw io_error(at + flag + " = " + json_summary(j[flag]) + " is not supported: hyperadapt's BERT is an encoder");

    bert_config c;
    auto count = [&](const char* key, std::size_t& out) {
        if (!j.contains(key)) return;
        const auto& v = j[key];
        if (!v.is_number_unsigned() || v.get<std::size_t>() == 0)
            throw io_error(at + "'" + key + "' must be a positive integer, got " + json_summary(v));
        out = v.get<std::size_t>();
    };
    count("vocab_size", c.vocab_size);
    count("hidden_size", c.hidden);
    count("num_hidden_layers", c.layers);
    count("num_attention_heads", c.heads);
    count("intermediate_size", c.intermediate);
    count("max_position_embeddings", c.max_position);
    count("type_vocab_size", c.type_vocab_size);
    auto real = [&](const char* key, double& out, double lo, double hi, bool lo_open, const char* range) {
        if (!j.contains(key)) return;
        const auto& v = j[key];
        const bool ok = v.is_number() && std::isfinite(v.get<double>()) &&
                        (lo_open ? v.get<double>() > lo : v.get<double>() >= lo) && v.get<double>() < hi;
        if (!ok) throw io_error(at + "'" + key + "' must be a number in " + range + ", got " + json_summary(v));
        out = v.get<double>();
    };
    real("hidden_dropout_prob", c.hidden_dropout, 0.0, 1.0, false, "[0, 1)");
    real("attention_probs_dropout_prob", c.attention_dropout, 0.0, 1.0, false, "[0, 1)");
    real("layer_norm_eps", c.layer_norm_eps, 0.0, 1.0, true, "(0, 1)");
    real("initializer_range", c.initializer_range, 0.0, 1e9, false, "[0, 1e9)");
    // pad_token_id: absent means BertConfig's default 0, null means no padding row; otherwise a row of the
    // word embeddings.
    if (j.contains("pad_token_id")) {
        const auto& v = j["pad_token_id"];
        if (v.is_null())
            c.pad_token_id = std::nullopt;
        else if (v.is_number_integer() && v.get<std::int64_t>() >= 0 &&
                 v.get<std::int64_t>() <= std::numeric_limits<std::int32_t>::max() &&
                 static_cast<std::uint64_t>(v.get<std::int64_t>()) < c.vocab_size)
            c.pad_token_id = static_cast<std::int32_t>(v.get<std::int64_t>());
        else
            throw io_error(at + "'pad_token_id' must be null or an integer in [0, vocab_size " +
                           std::to_string(c.vocab_size) + "), got " + json_summary(v));
    }
    if (c.hidden % c.heads != 0)
        throw io_error(at + "hidden_size " + std::to_string(c.hidden) + " is not divisible by num_attention_heads " +
                       std::to_string(c.heads));
    return c;
}

/// The config.json text save_pretrained writes: a BertConfig that transformers reads back unchanged.
inline std::string bert_config_json(const bert_config& c) {
    nlohmann::ordered_json j;
    j["architectures"] = {"BertModel"};
    j["model_type"] = "bert";
    j["attention_probs_dropout_prob"] = c.attention_dropout;
    j["hidden_act"] = "gelu";
    j["hidden_dropout_prob"] = c.hidden_dropout;
    j["hidden_size"] = c.hidden;
    j["initializer_range"] = c.initializer_range;
    j["intermediate_size"] = c.intermediate;
    j["layer_norm_eps"] = c.layer_norm_eps;
    j["max_position_embeddings"] = c.max_position;
    j["num_attention_heads"] = c.heads;
    j["num_hidden_layers"] = c.layers;
    if (c.pad_token_id)
        j["pad_token_id"] = *c.pad_token_id;
    else
        j["pad_token_id"] = nullptr;
    j["position_embedding_type"] = "absolute";
    j["torch_dtype"] = "float32";
    j["type_vocab_size"] = c.type_vocab_size;
    j["vocab_size"] = c.vocab_size;
    return j.dump(2) + "\n";
}

inline void write_bert_config(const bert_config& c, const std::filesystem::path& file) {
    const auto text = bert_config_json(c);
    write_file_atomically(file, [&](file_sink& out) { out.write(text); });
}

// ---- weights -------------------------------------------------------------------------------------------

namespace detail {
/// A named visitor rather than a lambda in the requires-expression: nvcc's front end rejects lambdas there,
/// and models must load checkpoints in CUDA translation units too.
template <class B, class T>
struct parameter_visitor_probe {
    void operator()(const std::string&, parameter<B, T>&) const {}
};
}  // namespace detail

/// A model whose parameters can be visited by name (every layer and model in the library).
template <class M>
concept named_parameter_model = requires(M& m) {
    typename M::backend_type;
    typename M::value_type;
    m.visit_parameters(detail::parameter_visitor_probe<typename M::backend_type, typename M::value_type>{});
};

struct load_options {
    /// Strict: a missing or mis-shaped tensor throws io_error and the model is left untouched. Non-strict:
    /// those parameters keep their values and the report lists them. Unexpected tensors (a task head the
    /// model does not have) never throw.
    bool strict = true;
};

struct shape_mismatch {
    std::string name;                     ///< the model's parameter name
    std::string tensor;                   ///< the checkpoint's tensor name
    std::vector<std::size_t> checkpoint;  ///< the tensor's shape in the checkpoint
    hyperadapt::shape model;              ///< the parameter's shape
};

struct load_report {
    std::vector<std::filesystem::path> files;
    /// How checkpoint names map to the model's: "" (identical), "+bert" (the checkpoint adds the prefix
    /// "bert."), "-bert" (the model's names carry "bert." and the checkpoint's do not).
    std::string mapping;
    std::vector<std::string> loaded;      ///< model parameter names that were filled
    std::vector<std::string> missing;     ///< model parameters the checkpoint lacks
    std::vector<shape_mismatch> mismatched;
    std::vector<std::string> unexpected;  ///< checkpoint tensors no parameter took (e.g. a classifier head)
    std::vector<std::string> ignored;     ///< known non-parameter buffers (embeddings.position_ids)

    [[nodiscard]] bool complete() const noexcept { return missing.empty() && mismatched.empty(); }

    [[nodiscard]] std::string str() const {
        std::ostringstream s;
        s << loaded.size() << " loaded";
        if (!mapping.empty()) s << " (names mapped " << mapping << ")";
        auto list = [&](const char* what, const std::vector<std::string>& v) {
            if (v.empty()) return;
            s << "; " << v.size() << ' ' << what << ": ";
            for (std::size_t i = 0; i < v.size() && i < 8; ++i) s << (i ? ", " : "") << v[i];
            if (v.size() > 8) s << ", ...";
        };
        list("missing", missing);
        if (!mismatched.empty()) {
            s << "; " << mismatched.size() << " mis-shaped: ";
            for (std::size_t i = 0; i < mismatched.size() && i < 8; ++i)
                s << (i ? ", " : "") << "'" << mismatched[i].tensor << "' is " << shape_string(mismatched[i].checkpoint)
                  << " in the checkpoint, the model's '" << mismatched[i].name << "' is " << mismatched[i].model.str();
            if (mismatched.size() > 8) s << ", ...";
        }
        list("unexpected", unexpected);
        list("ignored", ignored);
        return s.str();
    }
};

namespace detail {

/// The safetensors files of a checkpoint folder (or the one file given).
inline std::vector<std::filesystem::path> checkpoint_files(const std::filesystem::path& dir_or_file) {
    namespace fs = std::filesystem;
    if (!fs::exists(dir_or_file)) throw io_error(dir_or_file.string() + ": no such file or directory");
    if (!fs::is_directory(dir_or_file)) return {dir_or_file};
    if (fs::exists(dir_or_file / "model.safetensors")) return {dir_or_file / "model.safetensors"};
    const auto index = dir_or_file / "model.safetensors.index.json";
    if (fs::exists(index)) {
        const auto j = read_json_file(index);
        if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
            throw io_error(index.string() + ": no 'weight_map' object");
        std::set<std::string> shards;
        for (const auto& [tensor, file] : j["weight_map"].items()) {
            if (!file.is_string()) throw io_error(index.string() + ": weight_map entry '" + tensor + "' is not a file name");
            const auto name = file.get<std::string>();
            if (name.find('/') != std::string::npos || name.find('\\') != std::string::npos)
                throw io_error(index.string() + ": shard '" + name + "' is not a plain file name");
            shards.insert(name);
        }
        std::vector<fs::path> files;
        for (const auto& s : shards) files.push_back(dir_or_file / s);
        return files;
    }
    if (fs::exists(dir_or_file / "pytorch_model.bin"))
        throw io_error(dir_or_file.string() +
                       ": has only pytorch_model.bin; hyperadapt reads safetensors (re-save it with transformers: "
                       "model.save_pretrained(dir, safe_serialization=True))");
    throw io_error(dir_or_file.string() + ": no model.safetensors or model.safetensors.index.json");
}

/// Non-parameter buffers that transformers (< 4.31) saved with BertModel; they hold no learned values.
inline bool is_known_buffer(std::string_view name) {
    constexpr std::string_view suffix = "position_ids";
    return name.size() >= suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
}

inline bool ends_with_component(std::string_view s, std::string_view tail, std::string_view& head) {
    if (s.size() <= tail.size() + 1 || s.substr(s.size() - tail.size()) != tail || s[s.size() - tail.size() - 1] != '.')
        return false;
    head = s.substr(0, s.size() - tail.size() - 1);
    return true;
}

inline bool same_shape(const std::vector<std::size_t>& dims, const hyperadapt::shape& s) {
    if (dims.size() != s.rank()) return false;
    for (std::size_t i = 0; i < dims.size(); ++i)
        if (dims[i] != s[i]) return false;
    return true;
}

struct located_tensor {
    const safetensors_reader* reader;
    const tensor_entry* entry;
};

}  // namespace detail

/// Loads a checkpoint folder (config.json is not read: build the model from read_bert_config first) or a
/// single .safetensors file into `model`, matching by name. Returns what matched and what did not.
template <named_parameter_model Model>
load_report load_pretrained(Model& model, const std::filesystem::path& dir_or_file, const load_options& options = {}) {
    using B = typename Model::backend_type;
    using T = typename Model::value_type;
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "load_pretrained fills float or double models");

    load_report report;
    report.files = detail::checkpoint_files(dir_or_file);
    std::vector<std::unique_ptr<safetensors_reader>> readers;
    std::map<std::string, detail::located_tensor, std::less<>> tensors;
    for (const auto& f : report.files) {
        readers.push_back(std::make_unique<safetensors_reader>(f));
        for (const auto& e : readers.back()->entries()) {
            if (!tensors.emplace(e.name, detail::located_tensor{readers.back().get(), &e}).second)
                throw io_error(f.string() + ": tensor '" + e.name + "' also appears in another shard");
        }
    }
    const std::string where = report.files.size() == 1 ? report.files.front().string() : dir_or_file.string();

    std::vector<std::pair<std::string, parameter<B, T>*>> params;
    model.visit_parameters([&](const std::string& n, parameter<B, T>& p) { params.emplace_back(n, &p); });

    // Candidate mappings: identity, checkpoint adds a prefix, model adds a prefix. Prefixes are read off
    // names where one name is the other with leading components.
    std::set<std::string> add_prefixes, strip_prefixes;
    for (const auto& [pname, p] : params) {
        for (const auto& [tname, t] : tensors) {
            std::string_view head;
            if (detail::ends_with_component(tname, pname, head)) add_prefixes.emplace(head);
            if (detail::ends_with_component(pname, tname, head)) strip_prefixes.emplace(head);
        }
    }
    auto checkpoint_name = [](const std::string& pname, char kind, const std::string& prefix) -> std::string {
        if (kind == '+') return prefix + "." + pname;
        if (kind == '-') {
            if (pname.size() > prefix.size() && pname.compare(0, prefix.size(), prefix) == 0 && pname[prefix.size()] == '.')
                return pname.substr(prefix.size() + 1);
            return pname;  // parameters outside the prefix (a head) keep their names
        }
        return pname;
    };
    auto matches = [&](char kind, const std::string& prefix) {
        std::size_t n = 0;
        for (const auto& [pname, p] : params) n += tensors.count(checkpoint_name(pname, kind, prefix));
        return n;
    };
    char best_kind = '=';
    std::string best_prefix;
    std::size_t best = matches('=', "");
    for (const auto& pre : add_prefixes)
        if (auto n = matches('+', pre); n > best) best = n, best_kind = '+', best_prefix = pre;
    for (const auto& pre : strip_prefixes)
        if (auto n = matches('-', pre); n > best) best = n, best_kind = '-', best_prefix = pre;
    if (best_kind != '=') report.mapping = std::string(1, best_kind) + best_prefix;

    // Pass 1: decide everything without touching the model.
    std::vector<std::pair<parameter<B, T>*, detail::located_tensor>> plan;
    std::set<std::string, std::less<>> taken;
    for (const auto& [pname, p] : params) {
        const auto tname = checkpoint_name(pname, best_kind, best_prefix);
        const auto it = tensors.find(tname);
        if (it == tensors.end()) {
            report.missing.push_back(pname);
            continue;
        }
        taken.insert(tname);
        const auto& e = *it->second.entry;
        if (!is_floating(e.type))
            throw io_error(it->second.reader->path().string() + ": tensor '" + tname + "' has dtype " +
                           std::string(dtype_name(e.type)) + ", but parameter '" + pname + "' needs a floating dtype");
        if (!detail::same_shape(e.shape, p->value.shape())) {
            report.mismatched.push_back({pname, tname, e.shape, p->value.shape()});
            continue;
        }
        plan.emplace_back(p, it->second);
        report.loaded.push_back(pname);
    }
    for (const auto& [tname, t] : tensors) {
        if (taken.count(tname)) continue;
        (detail::is_known_buffer(tname) ? report.ignored : report.unexpected).push_back(tname);
    }
    if (options.strict && !report.complete())
        throw io_error(where + ": checkpoint does not fit the model (nothing was loaded): " + report.str());

    // Pass 2: convert into the parameters. Writing through value.data() also fills parameters that are
    // views into a shared buffer (attention's fused query/key/value).
    std::vector<T> host;
    for (auto& [p, t] : plan) {
        host.resize(t.entry->elements());
        t.reader->read_into(*t.entry, std::span<T>(host));
        p->value.backend().copy_from_host(host.data(), p->value.data(), host.size());
    }
    if (!plan.empty()) plan.front().first->value.backend().synchronize();
    return report;
}

struct save_options {
    /// F32 by default: Hugging Face models are float32, and a double model saved as F64 doubles the file.
    dtype scalar = dtype::f32;
};

/// Writes every parameter of `model` under its own name into one safetensors file (atomically), with the
/// metadata transformers requires ({"format": "pt"}).
template <named_parameter_model Model>
void save_safetensors(Model& model, const std::filesystem::path& file, const save_options& options = {}) {
    using B = typename Model::backend_type;
    using T = typename Model::value_type;
    if (options.scalar != dtype::f32 && options.scalar != dtype::f64)
        throw io_error(file.string() + ": save_safetensors writes F32 or F64, not " + std::string(dtype_name(options.scalar)));
    safetensors_writer w;
    model.visit_parameters([&](const std::string& name, parameter<B, T>& p) {
        const auto values = p.value.to_host();
        std::vector<std::size_t> dims;
        for (std::size_t i = 0; i < p.value.shape().rank(); ++i) dims.push_back(p.value.shape()[i]);
        if (options.scalar == dtype::f32)
            w.add(name, std::move(dims), std::vector<float>(values.begin(), values.end()));
        else
            w.add(name, std::move(dims), std::vector<double>(values.begin(), values.end()));
    });
    w.set_metadata("format", "pt");
    w.write(file);
}

/// Writes `dir`/config.json and `dir`/model.safetensors, the layout transformers.BertModel.from_pretrained
/// reads. Creates `dir` if needed. Model: bert_model, or any model with config() returning bert_config.
template <named_parameter_model Model>
    requires requires(const Model& m) {
        { m.config() } -> std::convertible_to<const bert_config&>;
    }
void save_pretrained(Model& model, const std::filesystem::path& dir, const save_options& options = {}) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw io_error(dir.string() + ": cannot create directory (" + ec.message() + ")");
    save_safetensors(model, dir / "model.safetensors", options);
    write_bert_config(model.config(), dir / "config.json");
}

}  // namespace hyperadapt::io
