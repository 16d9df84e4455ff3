#pragma once
// A post-LayerNorm BERT encoder layer with PHA's parallel adapter beside the feed-forward sub-layer and
// HyperFormer's serial adapters after both sub-layers (spec §2.1, §2.10, §3.1): the transformer layer of
// layers/encoder_layer.hpp with the slots of layers/pha/adapter_slots.hpp (which describes the maths):
//
//   a   = LayerNorm(x + Dropout([HF_att] W_o SelfAttention(x)))
//   out = LayerNorm(a + Dropout([HF_ffn] W2 gelu(W1 a + b1) + b2) [+ A(a)])
//
// Every backbone parameter keeps Hugging Face's name, so checkpoints load; the own adapter is
// "<name>.adapter.adapter_{down,up}_manual.*". A layer given no generated weights and built without an own
// adapter is a plain BERT layer.
#include <cstddef>

#include "hyperadapt/layers/encoder_layer.hpp"
#include "hyperadapt/layers/pha/adapter_slots.hpp"

namespace hyperadapt {

/// BERT's layer sizes plus the adapters'.
struct adapter_layer_config {
    std::size_t hidden = 768;
    std::size_t heads = 12;
    std::size_t intermediate = 3072;
    double attention_dropout = 0.1;
    double hidden_dropout = 0.1;
    double layer_norm_eps = 1e-12;
    std::size_t adapter_bottleneck = 64;  ///< r of the parallel adapter (own or generated)
    bool own_adapter = false;             ///< the layer has its own (shared, task-agnostic) adapter parameters
    std::size_t serial_bottleneck = 0;    ///< width of the HyperFormer adapters it may be given (0: none)

    static adapter_layer_config from(const encoder_layer_config& c, std::size_t bottleneck, bool own,
                                     std::size_t serial = 0) {
        return {c.hidden, c.heads, c.intermediate, c.attention_dropout, c.hidden_dropout, c.layer_norm_eps,
                bottleneck, own, serial};
    }
};

template <elementwise_backend B, class T = float>
using adapter_encoder_layer = transformer_layer<B, T, bert_attention, post_layer_norm, parallel_adapter, serial_adapters>;

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
static_assert(conditioned_layer<adapter_encoder_layer<archetype_backend, float>>,
              "hyperadapt::adapter_encoder_layer must be a conditioned layer (nn/conditioned_layer.hpp)");
static_assert(initializable<adapter_encoder_layer<archetype_backend, float>>,
              "hyperadapt::adapter_encoder_layer must be initializable: initialize(rng)");
}  // namespace hyperadapt
