#pragma once
// The model of 04_compose_custom_model, in a header so that its gradient check (tests/models/
// test_custom_model.cpp) builds exactly this composition. A model no paper has: CA-MTL's block-diagonal
// conditional attention and conditional layer norms, with PHA's hypernetwork-generated adapters beside each
// feed-forward, on a BERT whose lower half stays plain (and frozen).
#include <string>
#include <vector>

#include "hyperadapt/layers/camtl/conditional_adapter.hpp"
#include "hyperadapt/layers/camtl/conditional_attention.hpp"
#include "hyperadapt/layers/camtl/task_conditioning.hpp"
#include "hyperadapt/layers/pha/prototype_conditioning.hpp"
#include "hyperadapt/models/multitask_model.hpp"

namespace hybrid {
using namespace hyperadapt;

// 1. The layer: slots of the transformer layer, picked from two papers.
template <class B, class T>
using layer = transformer_layer<B, T, block_diagonal_attention<>, conditional_post_layer_norm, parallel_adapter>;

// 2. What its slots read: BERT's sizes, CA-MTL's padded length and layer-norm options, PHA's adapter width.
struct layer_config : encoder_layer_config {
    std::size_t seq_len = 16;
    bool block_diagonal_bias = true;
    std::size_t adapter_bottleneck = 8;
    bool own_adapter = false;  // every adapter weight is generated
    [[nodiscard]] cln_options norm_options() const { return {.eps = layer_norm_eps}; }
};

struct options {
    bert_config backbone;
    std::vector<task_head_spec> tasks;
    std::size_t seq_len = 16;
    double head_dropout = 0.1;
    head_input heads_read = head_input::pooler;
    [[nodiscard]] std::size_t lower() const { return backbone.layers / 2; }
};

// 3. The recipe: a task embedding z for the attention and norms, prototypes -> hypernetwork for the adapters;
//    a plain BERT stack below, the hybrid layers above; the embeddings and the lower stack frozen.
template <class B, class T>
struct recipe {
    using backend_type = B;
    using value_type = T;
    using options_type = options;
    using conditioning_type = conditionings<camtl_task_conditioning<B, T>, prototype_conditioning<B, T>>;
    using encoder_type = sequential<encoder<B, T>, layer_stack<layer<B, T>>>;

    static conditioning_type make_conditioning(B& b, const options& o) {
        auto h = pha_hypernet_config(o.backbone.hidden, /*bottleneck=*/8, o.backbone.layers - o.lower());
        h.condition = h.layer_embedding = h.projection = 16;  // a small hypernetwork for a small model
        h.hidden = 32;
        return conditioning_type(camtl_task_conditioning<B, T>(b, o.tasks.size(), o.backbone.hidden, /*alignment=*/false),
                                 prototype_conditioning<B, T>(b, o.tasks.size(), h, o.lower()));
    }
    static encoder_type make_encoder(B& b, const options& o) {
        layer_config c;
        static_cast<encoder_layer_config&>(c) = o.backbone.layer();
        c.seq_len = o.seq_len;
        return encoder_type(encoder<B, T>(b, o.backbone.layer(), o.lower(), "encoder"),
                            layer_stack<layer<B, T>>(b, c, o.backbone.layers - o.lower(), "encoder", o.lower()));
    }
    static bool frozen(const options& o, const std::string& name) {
        if (name.rfind("embeddings.", 0) == 0) return true;
        for (std::size_t i = 0; i < o.lower(); ++i)
            if (name.rfind("encoder.layer." + std::to_string(i) + ".", 0) == 0) return true;
        return false;
    }
    static std::string checkpoint_name(const options&, const std::string& name) { return name; }
};

template <class B, class T = float>
using model = multitask_model<recipe<B, T>>;

}  // namespace hybrid
