#pragma once
// The options of every model kind as JSON, for the model directory's hyperadapt.json (models/model_directory.hpp):
// written field by field, read strictly — an unknown field, a value of the wrong type or an unknown enum name
// is an io_error naming the file and the field path ("hyperadapt.json: model.options.bottleneck: ..."), so a
// directory written by another version of the library is refused, not misread. The backbone (config.json)
// and the tasks (the card's task list) are not part of these objects.
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyperadapt/core/errors.hpp"
#include "hyperadapt/models/camtl.hpp"
#include "hyperadapt/models/multitask_bert.hpp"
#include "hyperadapt/models/pha_bert.hpp"

namespace hyperadapt {

namespace detail {

/// Reads the fields of one JSON object; fields absent keep the value they had (the options' defaults).
class json_fields {
public:
    json_fields(const nlohmann::json& j, std::string where) : j_(j), where_(std::move(where)) {
        if (!j_.is_object()) throw io_error(where_ + ": expected a JSON object");
    }

    void field(const char* key, bool& out) {
        if (const auto* v = take(key)) {
            if (!v->is_boolean()) fail(key, "expected true or false");
            out = v->get<bool>();
        }
    }
    void field(const char* key, std::size_t& out) {
        if (const auto* v = take(key)) {
            if (!v->is_number_unsigned()) fail(key, "expected a whole number >= 0, got " + v->dump());
            out = static_cast<std::size_t>(v->get<std::uint64_t>());
        }
    }
    void field(const char* key, double& out) {
        if (const auto* v = take(key)) {
            if (!v->is_number() || !std::isfinite(v->get<double>())) fail(key, "expected a finite number, got " + v->dump());
            out = v->get<double>();
        }
    }
    void field(const char* key, std::string& out) {
        if (const auto* v = take(key)) {
            if (!v->is_string()) fail(key, "expected a string, got " + v->dump());
            out = v->get<std::string>();
        }
    }
    void field(const char* key, std::optional<bool>& out) {
        if (const auto* v = take(key)) {
            if (v->is_null()) {
                out.reset();
                return;
            }
            if (!v->is_boolean()) fail(key, "expected true, false or null");
            out = v->get<bool>();
        }
    }
    /// An enum written as one of `names` ({name, value} pairs).
    template <class E, std::size_t N>
    void field(const char* key, E& out, const std::pair<const char*, E> (&names)[N]) {
        const auto* v = take(key);
        if (!v) return;
        if (v->is_string())
            for (const auto& [n, e] : names)
                if (v->get<std::string>() == n) {
                    out = e;
                    return;
                }
        std::string known;
        for (const auto& [n, e] : names) known += (known.empty() ? "" : ", ") + std::string(n);
        fail(key, "expected one of " + known + ", got " + v->dump());
    }
    /// A nested object, read by `read(json_fields&)`.
    template <class Read>
    void object(const char* key, Read&& read) {
        if (const auto* v = take(key)) {
            json_fields inner(*v, where_ + "." + key);
            read(inner);
            inner.finish();
        }
    }
    /// Takes a field as it is (a list or a free-form object the caller reads itself).
    const nlohmann::json* skip(const char* key) { return take(key); }
    /// Refuses the fields nobody asked for.
    void finish() const {
        for (const auto& [k, v] : j_.items())
            if (!seen_.count(k)) throw io_error(where_ + ": unknown field '" + k + "'");
    }
    [[nodiscard]] const std::string& where() const noexcept { return where_; }

private:
    const nlohmann::json* take(const char* key) {
        seen_.insert(key);
        const auto it = j_.find(key);
        return it == j_.end() ? nullptr : &*it;
    }
    [[noreturn]] void fail(const char* key, const std::string& why) const { throw io_error(where_ + "." + key + ": " + why); }

    const nlohmann::json& j_;
    std::string where_;
    std::set<std::string> seen_;
};

inline constexpr std::pair<const char*, head_input> head_input_names[] = {{"pooler", head_input::pooler},
                                                                          {"mean", head_input::mean}};
inline constexpr std::pair<const char*, cln_variant> cln_variant_names[] = {
    {"gain_only", cln_variant::gain_only}, {"gain_and_bias", cln_variant::gain_and_bias}};
inline constexpr std::pair<const char*, adapter_source> adapter_source_names[] = {
    {"prototype_hypernet", adapter_source::prototype_hypernet},
    {"per_task", adapter_source::per_task},
    {"hyperformerpp", adapter_source::hyperformerpp}};
inline constexpr std::pair<const char*, pha_passes> pha_passes_names[] = {{"single", pha_passes::single},
                                                                          {"two", pha_passes::two}};
inline constexpr std::pair<const char*, pha_denominator> pha_denominator_names[] = {
    {"exclude_positive", pha_denominator::exclude_positive}, {"standard", pha_denominator::standard}};

template <class E, std::size_t N>
std::string name_of(E e, const std::pair<const char*, E> (&names)[N]) {
    for (const auto& [n, v] : names)
        if (v == e) return n;
    return "?";
}

/// "max" stands for std::numeric_limits<std::size_t>::max() (the options' "half the layers" default), which
/// JSON readers in other languages would round.
inline nlohmann::json size_or_max(std::size_t v) {
    return v == std::numeric_limits<std::size_t>::max() ? nlohmann::json("max") : nlohmann::json(v);
}
inline void read_size_or_max(json_fields& f, const nlohmann::json& j, const char* key, std::size_t& out) {
    if (j.contains(key) && j[key].is_string() && j[key].get<std::string>() == "max") {
        std::string ignored;
        f.field(key, ignored);
        out = std::numeric_limits<std::size_t>::max();
    } else {
        f.field(key, out);
    }
}

}  // namespace detail

// ---- the kinds -------------------------------------------------------------------------------------------

/// The name hyperadapt.json gives a model kind.
inline const char* model_kind(const camtl_options&) { return "camtl"; }
inline const char* model_kind(const pha_bert_options&) { return "pha"; }
inline const char* model_kind(const multitask_bert_options&) { return "multitask_bert"; }

inline nlohmann::ordered_json options_json(const camtl_options& o) {
    using namespace detail;
    nlohmann::ordered_json j;
    j["seq_len"] = o.seq_len;
    j["frozen_layers"] = size_or_max(o.frozen_layers);
    j["freeze_embeddings"] = o.freeze_embeddings;
    j["freeze_cbda_projection_in_frozen_layers"] = o.freeze_cbda_projection_in_frozen_layers;
    j["load_pretrained_top_layer"] = o.load_pretrained_top_layer;
    j["layer_norm_variant"] = name_of(o.layer_norm_variant, cln_variant_names);
    j["head_dropout"] = o.head_dropout;
    j["heads_read"] = name_of(o.heads_read, head_input_names);
    j["conditional_alignment"] = o.conditional_alignment;
    j["block_diagonal_bias"] = o.block_diagonal_bias;
    j["conditional_layer_norm"] = o.conditional_layer_norm;
    j["conditional_adapter"] = o.conditional_adapter;
    return j;
}

inline void read_options_json(const nlohmann::json& j, const std::string& where, camtl_options& o) {
    using namespace detail;
    json_fields f(j, where);
    f.field("seq_len", o.seq_len);
    read_size_or_max(f, j, "frozen_layers", o.frozen_layers);
    f.field("freeze_embeddings", o.freeze_embeddings);
    f.field("freeze_cbda_projection_in_frozen_layers", o.freeze_cbda_projection_in_frozen_layers);
    f.field("load_pretrained_top_layer", o.load_pretrained_top_layer);
    f.field("layer_norm_variant", o.layer_norm_variant, cln_variant_names);
    f.field("head_dropout", o.head_dropout);
    f.field("heads_read", o.heads_read, head_input_names);
    f.field("conditional_alignment", o.conditional_alignment);
    f.field("block_diagonal_bias", o.block_diagonal_bias);
    f.field("conditional_layer_norm", o.conditional_layer_norm);
    f.field("conditional_adapter", o.conditional_adapter);
    f.finish();
}

inline nlohmann::ordered_json options_json(const pha_bert_options& o) {
    using namespace detail;
    nlohmann::ordered_json j;
    j["source"] = name_of(o.source, adapter_source_names);
    j["passes"] = name_of(o.passes, pha_passes_names);
    j["split"] = size_or_max(o.split);
    j["bottleneck"] = o.bottleneck;
    j["shared_adapters"] = o.shared_adapters;
    j["prototype_dim"] = o.prototype_dim;
    j["retriever_hidden"] = o.retriever_hidden;
    j["hypernet_hidden"] = o.hypernet_hidden;
    j["hypernet_projection"] = o.hypernet_projection;
    j["layer_embedding"] = o.layer_embedding;
    j["hyperformer_reduction"] = o.hyperformer_reduction;
    j["contrastive"] = {{"temperature", o.contrastive.temperature},
                        {"weight", o.contrastive.weight},
                        {"denominator", name_of(o.contrastive.denominator, pha_denominator_names)}};
    j["instance_loss"] = o.instance_loss;
    j["prototype_loss"] = o.prototype_loss;
    j["contrastive_trains_encoder"] = o.contrastive_trains_encoder;
    j["train_pooler"] = o.train_pooler;
    j["heads_read"] = name_of(o.heads_read, head_input_names);
    j["head_dropout"] = o.head_dropout;
    return j;
}

inline void read_options_json(const nlohmann::json& j, const std::string& where, pha_bert_options& o) {
    using namespace detail;
    json_fields f(j, where);
    f.field("source", o.source, adapter_source_names);
    f.field("passes", o.passes, pha_passes_names);
    read_size_or_max(f, j, "split", o.split);
    f.field("bottleneck", o.bottleneck);
    f.field("shared_adapters", o.shared_adapters);
    f.field("prototype_dim", o.prototype_dim);
    f.field("retriever_hidden", o.retriever_hidden);
    f.field("hypernet_hidden", o.hypernet_hidden);
    f.field("hypernet_projection", o.hypernet_projection);
    f.field("layer_embedding", o.layer_embedding);
    f.field("hyperformer_reduction", o.hyperformer_reduction);
    f.object("contrastive", [&](json_fields& c) {
        c.field("temperature", o.contrastive.temperature);
        c.field("weight", o.contrastive.weight);
        c.field("denominator", o.contrastive.denominator, pha_denominator_names);
    });
    f.field("instance_loss", o.instance_loss);
    f.field("prototype_loss", o.prototype_loss);
    f.field("contrastive_trains_encoder", o.contrastive_trains_encoder);
    f.field("train_pooler", o.train_pooler);
    f.field("heads_read", o.heads_read, head_input_names);
    f.field("head_dropout", o.head_dropout);
    f.finish();
}

inline nlohmann::ordered_json options_json(const multitask_bert_options& o) {
    using namespace detail;
    nlohmann::ordered_json j;
    j["head_dropout"] = o.head_dropout;
    j["heads_read"] = name_of(o.heads_read, head_input_names);
    return j;
}

inline void read_options_json(const nlohmann::json& j, const std::string& where, multitask_bert_options& o) {
    using namespace detail;
    json_fields f(j, where);
    f.field("head_dropout", o.head_dropout);
    f.field("heads_read", o.heads_read, head_input_names);
    f.finish();
}

}  // namespace hyperadapt
