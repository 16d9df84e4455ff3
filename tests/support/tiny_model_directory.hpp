#pragma once
// What the model-directory and predictor tests share: a tiny backbone whose 40 token ids are the synthetic
// tasks' (0 [PAD], 1 [CLS], 2 [SEP], words from 3) with a vocabulary that names them, two tasks (a
// classification and a scaled regression), small PHA options, and the description save_pretrained takes.
#include <filesystem>
#include <fstream>
#include <vector>

#include "hyperadapt/models/model_directory.hpp"
#include "hyperadapt/models/pha_bert.hpp"

namespace hyperadapt::test {

inline constexpr std::size_t tiny_length = 16;
inline const bert_config tiny_backbone{.vocab_size = 40, .hidden = 16, .layers = 2, .heads = 2, .intermediate = 24,
                                       .max_position = 16};

/// "majority" (two labels) and "count" (regression, targets scaled by 2).
inline std::vector<task_head_spec> tiny_heads() { return {{"majority", 2}, {"count", 1, 2.0}}; }

/// PHA with small generator widths on the tiny backbone.
inline pha_bert_options tiny_pha_options(adapter_source source = adapter_source::prototype_hypernet) {
    pha_bert_options o;
    o.backbone = tiny_backbone;
    o.tasks = tiny_heads();
    o.source = source;
    o.bottleneck = 4;
    o.prototype_dim = 8;
    o.retriever_hidden = 8;
    o.hypernet_hidden = 8;
    o.hypernet_projection = 8;
    o.layer_embedding = 8;
    o.hyperformer_reduction = 4;
    return o;
}

/// DIR/vocab.txt: the special tokens, then w5 ... w39.
inline std::filesystem::path write_tiny_vocab(const std::filesystem::path& dir) {
    const auto p = dir / "vocab.txt";
    std::ofstream f(p);
    f << "[PAD]\n[CLS]\n[SEP]\n[UNK]\n[MASK]\n";
    for (int i = 5; i < 40; ++i) f << 'w' << i << '\n';
    return p;
}

/// The description of a model with tiny_heads(), its vocabulary at `vocab`.
inline model_description tiny_description(const std::filesystem::path& vocab) {
    model_description d;
    d.vocab = vocab;
    d.tasks = {{"majority", {"few", "many"}, 1, 1.0}, {"count", {}, 1, 2.0}};
    d.tokenizer.max_length = tiny_length;
    d.provenance = {{"test", "models_model_directory"}};
    return d;
}

}  // namespace hyperadapt::test
