#pragma once
// A BERT-family encoder as a composition of layer templates: embeddings -> encoder stack -> pooler, with
// Hugging Face's parameter names ("embeddings.*", "encoder.layer.<i>.*", "pooler.dense.*") so that
// checkpoints map one to one.
#include <cstdint>
#include <string>

#include "hyperadapt/layers/bert_embeddings.hpp"
#include "hyperadapt/layers/encoder_layer.hpp"
#include "hyperadapt/layers/pooler.hpp"
#include "hyperadapt/nn/bert_config.hpp"

namespace hyperadapt {

template <elementwise_backend B, class T = float>
class bert_model {
public:
    using backend_type = B;
    using value_type = T;
    using ids_type = tensor<B, std::int32_t>;
    struct context {
        typename bert_embeddings<B, T>::context embeddings;
        typename encoder<B, T>::context encoder;
        typename pooler<B, T>::context pooler;
        anomaly_detector* anomaly = nullptr;
    };
    struct output {
        tensor<B, T> last_hidden;  // (batch, seq, hidden)
        tensor<B, T> pooled;       // (batch, hidden): tanh(W h_[CLS] + b)
    };

    bert_model(B& backend, const bert_config& c)
        : backend_(&backend),
          config_(c),
          embeddings_(backend, c.embeddings(), "embeddings"),
          encoder_(backend, c.layer(), c.layers, "encoder"),
          pooler_(backend, c.hidden, "pooler") {}

    /// BERT's initialisation: N(0, initializer_range) weights, zero biases, unit LayerNorm gains.
    template <class Rng>
    void initialize(Rng& rng) {
        const auto s = static_cast<T>(config_.initializer_range);
        embeddings_.initialize(rng, s);
        encoder_.initialize(rng, s);
        pooler_.initialize(rng, s);
    }

    [[nodiscard]] std::string name() const { return ""; }
    [[nodiscard]] const bert_config& config() const noexcept { return config_; }
    bert_embeddings<B, T>& embeddings() noexcept { return embeddings_; }
    encoder<B, T>& encoder_stack() noexcept { return encoder_; }
    pooler<B, T>& pooler_layer() noexcept { return pooler_; }

    /// input_ids, token_type_ids (or empty = zeros), attention_mask (or empty = no padding): (batch, seq).
    output forward(const ids_type& input_ids, const ids_type& token_type_ids, const attention_mask<B>& mask,
                   context& ctx, run_mode mode) const {
        ctx.anomaly = mode.anomaly;
        output out;
        const layer_condition<B, T> c{.mask = &mask};
        out.last_hidden =
            encoder_.forward(embeddings_.forward(input_ids, token_type_ids, ctx.embeddings, mode), c, ctx.encoder, mode);
        out.pooled = pooler_.forward(out.last_hidden, ctx.pooler, mode);
        return out;
    }

    /// Gradients of the two outputs; either may be empty. Accumulates every trainable parameter's gradient.
    void backward(const tensor<B, T>& d_last_hidden, const tensor<B, T>& d_pooled, context& ctx) {
        // The caller's gradients first, so that a NaN from the loss is not blamed on the top layer.
        check_input_gradient(ctx.anomaly, "last_hidden_state", "", d_last_hidden, "gradient given to backward");
        check_input_gradient(ctx.anomaly, "pooler_output", "", d_pooled, "gradient given to backward");
        tensor<B, T> g;
        if (!d_pooled.empty()) g = pooler_.backward(d_pooled, ctx.pooler);
        if (!d_last_hidden.empty()) {
            if (g.empty())
                g = d_last_hidden;
            else
                backend_->axpy(g.size(), T(1), d_last_hidden.data(), g.data());
        }
        if (g.empty()) return;
        layer_condition_gradients<B, T> none;  // BERT's layers read only the mask
        embeddings_.backward(encoder_.backward(g, ctx.encoder, none), ctx.embeddings);
    }

    template <class F>
    void visit_parameters(F&& f) {
        embeddings_.visit_parameters(f);
        encoder_.visit_parameters(f);
        pooler_.visit_parameters(f);
    }

private:
    B* backend_;
    bert_config config_;
    bert_embeddings<B, T> embeddings_;
    encoder<B, T> encoder_;
    pooler<B, T> pooler_;
};

}  // namespace hyperadapt
