#pragma once
// CA-MTL (Pilault et al., ICLR 2021) as a composition of layer templates, following the authors' code
// (spec §1): a BERT-family backbone whose embedding output is conditioned on the task (conditional
// alignment), a CA-MTL encoder (block-diagonal task bias in every layer's attention, conditional layer norms in
// the upper half, the conditional adapter on the top layer), BERT's pooler, and one head per task, with the
// batch loss averaged per task. Batches mix tasks: every row carries its own task id.
//
// Freezing follows the reference (§1.8): the embeddings and encoder layers [0, frozen_layers) are frozen, except
// the parameters whose names contain "random_weight_matrix" (A), "ln_weight_modulation.gb_weights" or
// "adapter". The reference also leaves the CBDA projection ("cond_block_diag_attn.gb_weights") frozen in those
// layers, at its random start — a by-product of its name whitelist. Here that projection trains by default;
// `freeze_cbda_projection_in_frozen_layers = true` reproduces the reference exactly.
//
// The top layer's sub-modules are renamed in the reference ("new_attention", ...), so pretrained weights do
// not load into it and it trains from scratch; `load_pretrained_top_layer = true` loads them instead.
//
// The composition (models/multitask_model.hpp): bert_embeddings -> camtl_task_conditioning (task embedding z,
// conditional alignment) -> camtl_base_encoder (layer_stack<BertLayer9>, layer_stack<MyBertLayer9>, the adapter
// layer) -> pooler / mean -> multitask_heads. camtl_recipe below is all the model-specific code: how the options
// build the parts, the freezing rule and the checkpoint names.
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "hyperadapt/layers/camtl/conditional_encoder.hpp"
#include "hyperadapt/layers/camtl/task_conditioning.hpp"
#include "hyperadapt/models/multitask_model.hpp"

namespace hyperadapt {

struct camtl_options {
    bert_config backbone;
    std::size_t seq_len = 128;            ///< L: the longest padded length (batches may be shorter); hidden % L == 0
    std::vector<task_head_spec> tasks;    ///< one head per task, in task-id order
    std::size_t frozen_layers = std::numeric_limits<std::size_t>::max();  ///< [0, n); max = half the layers
    bool freeze_embeddings = true;
    bool freeze_cbda_projection_in_frozen_layers = false;  ///< the reference's accidental behaviour
    bool load_pretrained_top_layer = false;                ///< the reference trains the top layer from scratch
    cln_variant layer_norm_variant = cln_variant::gain_only;  ///< the code's CLN; gain_and_bias = the paper's
    double head_dropout = 0.1;
    head_input heads_read = head_input::pooler;  ///< mean: masked mean of the last layer (the pooler is frozen, unused)
    // The conditional modules, each removable for ablations.
    bool conditional_alignment = true;
    bool block_diagonal_bias = true;
    bool conditional_layer_norm = true;  ///< false: plain LayerNorms below the top layer
    bool conditional_adapter = true;     ///< false: no conditional bottleneck; the top layer is a plain-named CLN layer
};

/// The frozen lower layers [0, n) of a CA-MTL model with these options.
inline std::size_t camtl_frozen_layers(const camtl_options& o) {
    return o.frozen_layers == std::numeric_limits<std::size_t>::max() ? o.backbone.layers / 2 : o.frozen_layers;
}

template <elementwise_backend B, class T = float>
struct camtl_recipe {
    using backend_type = B;
    using value_type = T;
    using options_type = camtl_options;
    using conditioning_type = camtl_task_conditioning<B, T>;
    using encoder_type = camtl_base_encoder<B, T>;

    static conditioning_type make_conditioning(B& b, const camtl_options& o) {
        return conditioning_type(b, o.tasks.size(), o.backbone.hidden, o.conditional_alignment);
    }
    static encoder_type make_encoder(B& b, const camtl_options& o) {
        camtl_layer_config c;
        c.seq_len = o.seq_len;
        c.hidden = o.backbone.hidden;
        c.heads = o.backbone.heads;
        c.intermediate = o.backbone.intermediate;
        c.attention_dropout = o.backbone.attention_dropout;
        c.hidden_dropout = o.backbone.hidden_dropout;
        c.layer_norm_eps = o.backbone.layer_norm_eps;
        c.norm_variant = o.layer_norm_variant;
        c.block_diagonal_bias = o.block_diagonal_bias;
        camtl_encoder_options e;
        e.top_adapter = o.conditional_adapter;
        if (!o.conditional_layer_norm) e.plain_layers = o.backbone.layers - (o.conditional_adapter ? 1 : 0);
        return encoder_type(b, c, o.backbone.layers, "encoder", e);
    }

    /// The reference's rule (see the file comment).
    static bool frozen(const camtl_options& o, const std::string& name) {
        bool freeze = false;
        if (o.freeze_embeddings && name.rfind("embeddings.", 0) == 0) freeze = true;
        const auto layer = encoder_layer_index(name);
        if (layer && *layer < camtl_frozen_layers(o)) {
            const bool whitelisted = name.find("random_weight_matrix") != std::string::npos ||
                                     name.find("ln_weight_modulation.gb_weights") != std::string::npos ||
                                     name.find("adapter") != std::string::npos ||
                                     (!o.freeze_cbda_projection_in_frozen_layers &&
                                      name.find("cond_block_diag_attn.gb_weights") != std::string::npos);
            freeze = !whitelisted;
        }
        if (!o.block_diagonal_bias &&
            (name.find("random_weight_matrix") != std::string::npos || name.find("cond_block_diag_attn") != std::string::npos))
            freeze = true;  // unused when the bias is off
        if (o.heads_read == head_input::mean && name.rfind("pooler.", 0) == 0) freeze = true;  // unused
        return freeze;
    }

        /// i of a name "encoder.layer.<i>.*".
    static std::optional<std::size_t> encoder_layer_index(const std::string& name) {
        const std::string prefix = "encoder.layer.";
        if (name.rfind(prefix, 0) != 0) return std::nullopt;
        std::size_t i = prefix.size(), value = 0;
        const std::size_t first = i;
        for (; i < name.size() && name[i] >= '0' && name[i] <= '9' && i - first < 9; ++i)
            value = value * 10 + static_cast<std::size_t>(name[i] - '0');
        if (i == first || i >= name.size() || name[i] != '.') return std::nullopt;
        return value;
    }

    /// The top layer's renamed sub-modules load BERT's weights only with load_pretrained_top_layer.
    static std::string checkpoint_name(const camtl_options& o, const std::string& name) {
        if (!o.load_pretrained_top_layer) return name;
        const std::string top = "encoder.layer." + std::to_string(o.backbone.layers - 1) + ".new_";
        return name.rfind(top, 0) == 0 ? top.substr(0, top.size() - 4) + name.substr(top.size()) : name;
    }
};

/// CA-MTL-base on a BERT-family backbone.
template <elementwise_backend B, class T = float>
using camtl_model = multitask_model<camtl_recipe<B, T>>;

}  // namespace hyperadapt
