#pragma once
// CA-MTL's encoder layers (spec §1.4-§1.6; the reference's ca_mtl_base.py / ca_mtl_large.py). Every kind uses
// the conditional self-attention (CBDA bias in every layer); they differ in the layer norms and the adapter:
//
//   kind              reference                      attention LN / FFN LN        after the FFN
//   plain_norm        BertLayer9, BertLayer10        LayerNorm                    -
//   conditional_norm  MyBertLayer9, MyBertLayer10    conditional LayerNorm (CLN)  -
//   adapter           MyBertAdapterLayer9            CLN                          conditional adapter
//
//   a   = LN_1(dropout(dense(conditional_self_attention(x, mask, z'))) + x)        ("attention output")
//   h   = LN_2(dropout(dense(gelu(dense(a)))) + a)
//   out = h, or for the adapter kind CLN_a(bottleneck(z', h) + a)                  (BertAdapter9: the residual
//                                                                                   is a, not the layer input)
//
// Inputs: x (batch, n, d) padded to n <= L positions (block_diagonal_bias.hpp: shorter batches); mask (batch, n)
// or empty; z' (batch, d) the transformed task embedding; task ids (batch) int32, read by the CLNs (may be
// empty for plain_norm, or with per-sample CLN rows).
// backward returns dx and adds dz' (the CBDA, CLN and adapter paths summed) into the condition gradients.
//
// Each kind is the transformer layer of layers/encoder_layer.hpp with CA-MTL's slots: block_diagonal_attention,
// conditional_post_layer_norm (or BERT's post_layer_norm) and conditional_output_adapter.
//
// Names, under the layer path P ("encoder.layer.3"), as the reference's named_parameters():
//   P.attention.self.*  P.attention.output.{dense,LayerNorm}.*  P.intermediate.dense.*  P.output.{dense,LayerNorm}.*
// and for the adapter kind (the reference renames its sub-modules so that pretrained weights do not load):
//   P.new_attention.*   P.new_intermediate.*   P.new_output.*   P.adapter.{bottleneck,condlayernorm}.*
#include <cstddef>
#include <span>
#include <type_traits>

#include "hyperadapt/layers/camtl/conditional_adapter.hpp"
#include "hyperadapt/layers/camtl/conditional_attention.hpp"
#include "hyperadapt/layers/camtl/conditional_layer_norm.hpp"
#include "hyperadapt/layers/encoder_layer.hpp"

namespace hyperadapt {

/// The sizes and options of a CA-MTL encoder layer (BERT's plus the padded length L that CBDA fixes).
struct camtl_layer_config {
    std::size_t seq_len = 128;  ///< L: the longest padded length (CBDA's geometry); hidden % seq_len == 0
    std::size_t hidden = 768;
    std::size_t heads = 12;
    std::size_t intermediate = 3072;
    double attention_dropout = 0.1;
    double hidden_dropout = 0.1;
    double layer_norm_eps = 1e-12;  ///< plain and conditional layer norms alike (CA-MTL passes 1e-12 to both)
    cln_variant norm_variant = cln_variant::gain_only;                        ///< the code's CLN (gain only)
    cln_condition_rows condition_rows = cln_condition_rows::first_of_task;  ///< the code's CLN rows
    /// Width of the large encoder's chained conditional bottlenecks; 0 = hidden / 3 as the reference. (The base
    /// encoder's adapter always uses hidden / 3: conditional_adapter takes no width.)
    std::size_t bottleneck = 0;
    /// Add the conditional block-diagonal bias to the attention scores (false: plain attention, for ablations;
    /// the CBDA parameters then stay in the model, unused).
    bool block_diagonal_bias = true;

    [[nodiscard]] cln_options norm_options() const {
        return {.variant = norm_variant, .condition_rows = condition_rows, .eps = layer_norm_eps};
    }
};

enum class camtl_layer_kind {
    plain_norm,        ///< BertLayer9/10: CBDA attention, plain LayerNorms
    conditional_norm,  ///< MyBertLayer9/10: CBDA attention, conditional LayerNorms
    adapter,           ///< MyBertAdapterLayer9: conditional_norm + the conditional adapter, sub-modules renamed
};

/// The CA-MTL layer of a kind: its slots of the transformer layer.
template <elementwise_backend B, class T, camtl_layer_kind Kind, std::size_t SeqLen = std::dynamic_extent,
          std::size_t Hidden = std::dynamic_extent>
using camtl_encoder_layer =
    transformer_layer<B, T, block_diagonal_attention<SeqLen, Hidden>,
                      std::conditional_t<Kind == camtl_layer_kind::plain_norm, post_layer_norm,
                                         conditional_post_layer_norm>,
                      no_adapter, no_adapter,
                      std::conditional_t<Kind == camtl_layer_kind::adapter, conditional_output_adapter, no_adapter>>;

/// The reference's class names (the 9 and 10 variants are the same maths; 10 has no adapter layer).
template <elementwise_backend B, class T = float, std::size_t SeqLen = std::dynamic_extent,
          std::size_t Hidden = std::dynamic_extent>
using bert_layer9 = camtl_encoder_layer<B, T, camtl_layer_kind::plain_norm, SeqLen, Hidden>;
template <elementwise_backend B, class T = float, std::size_t SeqLen = std::dynamic_extent,
          std::size_t Hidden = std::dynamic_extent>
using my_bert_layer9 = camtl_encoder_layer<B, T, camtl_layer_kind::conditional_norm, SeqLen, Hidden>;
template <elementwise_backend B, class T = float, std::size_t SeqLen = std::dynamic_extent,
          std::size_t Hidden = std::dynamic_extent>
using my_bert_adapter_layer9 = camtl_encoder_layer<B, T, camtl_layer_kind::adapter, SeqLen, Hidden>;

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
static_assert(conditioned_layer<bert_layer9<archetype_backend, float>>,
              "hyperadapt::bert_layer9 must be a conditioned layer (nn/conditioned_layer.hpp)");
static_assert(initializable<bert_layer9<archetype_backend, float>>,
              "hyperadapt::bert_layer9 must be initializable: initialize(rng)");
static_assert(conditioned_layer<my_bert_layer9<archetype_backend, float>>,
              "hyperadapt::my_bert_layer9 must be a conditioned layer (nn/conditioned_layer.hpp)");
static_assert(initializable<my_bert_layer9<archetype_backend, float>>,
              "hyperadapt::my_bert_layer9 must be initializable: initialize(rng)");
static_assert(conditioned_layer<my_bert_adapter_layer9<archetype_backend, float>>,
              "hyperadapt::my_bert_adapter_layer9 must be a conditioned layer (nn/conditioned_layer.hpp)");
static_assert(initializable<my_bert_adapter_layer9<archetype_backend, float>>,
              "hyperadapt::my_bert_adapter_layer9 must be initializable: initialize(rng)");
}  // namespace hyperadapt
