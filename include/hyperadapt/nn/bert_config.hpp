#pragma once
// The shape of a BERT-family encoder: the fields of a Hugging Face BertConfig. A header of its own, below
// the layers, because io/hf_checkpoint.hpp reads and writes it (config.json) and must not pull in a model
// or a layer to do so (docs/design.md, "Folder order").
#include <cstddef>
#include <cstdint>
#include <optional>

namespace hyperadapt {

// Defined by layers/bert_embeddings.hpp and layers/encoder_layer.hpp; named here only as the return types
// of bert_config's helpers.
struct bert_embeddings_config;
struct encoder_layer_config;

/// The fields of a Hugging Face BertConfig that shape the network.
struct bert_config {
    std::size_t vocab_size = 30522;
    std::size_t hidden = 768;
    std::size_t layers = 12;
    std::size_t heads = 12;
    std::size_t intermediate = 3072;
    std::size_t max_position = 512;
    std::size_t type_vocab_size = 2;
    double hidden_dropout = 0.1;
    double attention_dropout = 0.1;
    double layer_norm_eps = 1e-12;
    double initializer_range = 0.02;
    /// pad_token_id: the word-embedding row that gets no gradient (nn.Embedding's padding_idx in
    /// BertEmbeddings); nullopt for a config whose pad_token_id is null. It does not change the forward pass.
    std::optional<std::int32_t> pad_token_id = 0;

    // The helpers are templates over their result type, defaulted to the layer's config struct, so that
    // this header needs only the declarations above: the bodies are compiled where a model calls them,
    // after it has included the layer.

    /// The embeddings' part of the config (needs layers/bert_embeddings.hpp where it is called).
    template <class EmbeddingsConfig = bert_embeddings_config>
    [[nodiscard]] EmbeddingsConfig embeddings() const {
        EmbeddingsConfig c;
        c.vocab_size = vocab_size;
        c.hidden = hidden;
        c.max_position = max_position;
        c.type_vocab_size = type_vocab_size;
        c.dropout = hidden_dropout;
        c.layer_norm_eps = layer_norm_eps;
        c.pad_token_id = pad_token_id;
        return c;
    }
    /// One encoder layer's part of the config (needs layers/encoder_layer.hpp where it is called).
    template <class LayerConfig = encoder_layer_config>
    [[nodiscard]] LayerConfig layer() const {
        return {hidden, heads, intermediate, attention_dropout, hidden_dropout, layer_norm_eps};
    }
};

}  // namespace hyperadapt
