#pragma once
// What the slots of a transformer layer (layers/encoder_layer.hpp) have in common: the sizes every layer config
// carries, where a slot is built (its layer's path, position and sub-module prefix), and the empty slot. A slot
// header of an architecture (layers/camtl/..., layers/pha/...) includes only this, not the layer.
#include <concepts>
#include <cstddef>
#include <string>

#include "hyperadapt/nn/parameter.hpp"

namespace hyperadapt {

/// BERT's sizes of one layer; architecture configs (camtl_layer_config, adapter_layer_config) add their slots'.
struct encoder_layer_config {
    std::size_t hidden = 768;
    std::size_t heads = 12;
    std::size_t intermediate = 3072;
    double attention_dropout = 0.1;
    double hidden_dropout = 0.1;
    double layer_norm_eps = 1e-12;
};

/// A config a transformer layer can be built from: BERT's sizes, plus whatever its slots read.
template <class C>
concept encoder_layer_sizes = requires(const C& c) {
    { c.hidden } -> std::convertible_to<std::size_t>;
    { c.heads } -> std::convertible_to<std::size_t>;
    { c.intermediate } -> std::convertible_to<std::size_t>;
    { c.attention_dropout } -> std::convertible_to<double>;
    { c.hidden_dropout } -> std::convertible_to<double>;
    { c.layer_norm_eps } -> std::convertible_to<double>;
};

/// Where a slot is built: the layer's path, its position in the encoder (the index of its generated weights)
/// and the prefix of the renamed sub-modules (CA-MTL's top layer: "new_").
struct slot_site {
    std::string layer;       ///< "encoder.layer.3"
    std::size_t index = 0;   ///< position in the encoder
    std::string sub_prefix;  ///< "" or "new_"
    [[nodiscard]] std::string path(const std::string& sub) const { return join_name(layer, sub_prefix + sub); }
};

/// An empty adapter slot: the layer compiles the slot's code out.
struct no_adapter {};

}  // namespace hyperadapt
