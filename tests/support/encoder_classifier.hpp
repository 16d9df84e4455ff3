#pragma once
// A BERT encoder with a classification head on its pooled output, trained end to end as one parameterized
// object: the small model the training tests (loss curves, determinism, freezing, precision) train.
#include <cstddef>
#include <cstdint>
#include <string>

#include "hyperadapt/layers/heads.hpp"
#include "hyperadapt/models/bert.hpp"

namespace hyperadapt::test {

template <class B>
struct encoder_classifier {
    using backend_type = B;
    using value_type = float;
    struct context {
        typename bert_model<B, float>::context encoder;
        typename classification_head<B, float>::context head;
    };

    bert_model<B, float> encoder;
    classification_head<B, float> head;

    encoder_classifier(B& b, const bert_config& cfg, std::uint64_t seed, std::size_t labels = 2)
        : encoder(b, cfg), head(b, cfg.hidden, labels, static_cast<float>(cfg.hidden_dropout)) {
        rng_stream init(seed);
        encoder.initialize(init);
        head.initialize(init);
    }
    [[nodiscard]] std::string name() const { return ""; }
    template <class F>
    void visit_parameters(F&& f) {
        encoder.visit_parameters(f);
        head.visit_parameters(f);
    }
};

}  // namespace hyperadapt::test
