#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/layers/dropout.hpp"
#include "hyperadapt/layers/embedding.hpp"
#include "hyperadapt/layers/layer_norm.hpp"
#include "hyperadapt/nn/anomaly.hpp"
#include "hyperadapt/nn/layer.hpp"

namespace hyperadapt {

/// The fields of a Hugging Face BertConfig that the embeddings read (defaults: bert-base-uncased).
struct bert_embeddings_config {
    std::size_t vocab_size = 30522;
    std::size_t hidden = 768;
    std::size_t max_position = 512;     ///< max_position_embeddings
    std::size_t type_vocab_size = 2;
    double dropout = 0.1;               ///< hidden_dropout_prob
    double layer_norm_eps = 1e-12;
    /// pad_token_id: that word row gets no gradient, as nn.Embedding(padding_idx=...) in BertEmbeddings.
    std::optional<std::int32_t> pad_token_id = 0;
};

/// Hugging Face's BertEmbeddings:
///   LayerNorm(word_embeddings[input_ids] + token_type_embeddings[token_type_ids] + position_embeddings[0..seq))
/// followed by dropout. Absolute positions only. Parameter names, with the default prefix:
///   embeddings.word_embeddings.weight, embeddings.position_embeddings.weight,
///   embeddings.token_type_embeddings.weight, embeddings.LayerNorm.weight, embeddings.LayerNorm.bias.
///
/// input_ids and token_type_ids are (batch, seq) tensor<B, std::int32_t> (see embedding.hpp); an empty
/// token_type_ids means all zeros, as in Hugging Face. Output (batch, seq, hidden). backward() returns
/// nothing: ids are not differentiable.
template <elementwise_backend B, class T = float>
class bert_embeddings {
public:
    using backend_type = B;
    using value_type = T;
    using ids_type = tensor<B, std::int32_t>;
    struct context {
        typename embedding<B, T>::context word;
        typename embedding<B, T>::context token_type;
        typename layer_norm<B, T>::context norm;
        typename dropout<B, T>::context drop;
        bool default_token_types = false;
        std::size_t batch = 0, seq = 0;
        bool ready = false;
    };

    bert_embeddings(B& backend, const bert_embeddings_config& cfg, std::string name = "embeddings")
        : backend_(&backend),
          name_(std::move(name)),
          cfg_(cfg),
          word_(backend, cfg.vocab_size, cfg.hidden, join_name(name_, "word_embeddings"), cfg.pad_token_id),
          position_(backend, cfg.max_position, cfg.hidden, join_name(name_, "position_embeddings")),
          token_type_(backend, cfg.type_vocab_size, cfg.hidden, join_name(name_, "token_type_embeddings")),
          norm_(backend, cfg.hidden, join_name(name_, "LayerNorm"), static_cast<T>(cfg.layer_norm_eps)),
          drop_(backend, static_cast<T>(cfg.dropout), join_name(name_, "dropout")) {}

    /// BERT's initialisation: the three tables ~ N(0, stddev) (padding row 0), LayerNorm weight 1, bias 0.
    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        word_.initialize(rng, stddev);
        position_.initialize(rng, stddev);
        token_type_.initialize(rng, stddev);
        norm_.weight().value.fill(T(1));
        norm_.bias().value.zero();
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] const bert_embeddings_config& config() const noexcept { return cfg_; }
    embedding<B, T>& word_embeddings() noexcept { return word_; }
    embedding<B, T>& position_embeddings() noexcept { return position_; }
    embedding<B, T>& token_type_embeddings() noexcept { return token_type_; }
    layer_norm<B, T>& norm() noexcept { return norm_; }

    /// The ids' host copies where the caller has them (a batch built on the host keeps them): the word and token
    /// type tables' range checks read them instead of copying the ids back (on a GPU, two waits).
    struct host_ids {
        std::span<const std::int32_t> input_ids, token_type_ids;
    };

    tensor<B, T> forward(const ids_type& input_ids, const ids_type& token_type_ids, context& ctx,
                         run_mode mode = {}, host_ids known = {}) const {
        if (input_ids.shape().rank() != 2)
            throw shape_error(name_ + ": input_ids have shape " + input_ids.shape().str() +
                              ", expected (batch, seq)");
        const std::size_t batch = input_ids.shape()[0], seq = input_ids.shape()[1], hidden = cfg_.hidden;
        if (seq > cfg_.max_position)
            throw shape_error(name_ + ": sequence length " + std::to_string(seq) +
                              " exceeds max_position_embeddings " + std::to_string(cfg_.max_position));
        if (!token_type_ids.empty())
            expect_shape(name_.c_str(), "token_type_ids", input_ids.shape(), token_type_ids.shape());
        ctx = {};

        // Summed in Hugging Face's order, (word + token_type) + position, so float results match it.
        tensor<B, T> x = word_.forward(input_ids, ctx.word, {}, known.input_ids);
        if (token_type_ids.empty()) {
            ctx.default_token_types = true;
            backend_->add_row_vector(batch * seq, hidden, token_type_.weight().value.data(), x.data());
        } else {
            const tensor<B, T> t = token_type_.forward(token_type_ids, ctx.token_type, {}, known.token_type_ids);
            backend_->add(x.size(), x.data(), t.data(), x.data());
        }
        // Positions 0..seq-1 are the table's first seq rows, one (seq, hidden) block added to every sequence.
        backend_->add_row_vector(batch, seq * hidden, position_.weight().value.data(), x.data());

        tensor<B, T> y = drop_.forward(norm_.forward(x, ctx.norm), ctx.drop, mode);
        check_output(mode.anomaly, name_, "", y);
        ctx.batch = batch;
        ctx.seq = seq;
        ctx.ready = true;
        return y;
    }

    /// All-zero token types (single-segment input).
    tensor<B, T> forward(const ids_type& input_ids, context& ctx, run_mode mode = {}) const {
        return forward(input_ids, ids_type{}, ctx, mode);
    }

    /// Accumulates the gradients of all five parameters (frozen ones skipped).
    void backward(const tensor<B, T>& dy, context& ctx) {
        if (!ctx.ready) throw error(name_ + ": backward called without a training forward");
        expect_shape(name_.c_str(), "output gradient", hyperadapt::shape{ctx.batch, ctx.seq, cfg_.hidden},
                     dy.shape());
        const tensor<B, T> dsum = norm_.backward(drop_.backward(dy, ctx.drop), ctx.norm);
        word_.backward(dsum, ctx.word);
        if (position_.weight().trainable())
            backend_->accumulate_column_sums(ctx.batch, ctx.seq * cfg_.hidden, dsum.data(),
                                             position_.weight().grad.data());
        if (!ctx.default_token_types)
            token_type_.backward(dsum, ctx.token_type);
        else if (token_type_.weight().trainable())
            backend_->accumulate_column_sums(ctx.batch * ctx.seq, cfg_.hidden, dsum.data(),
                                             token_type_.weight().grad.data());
    }

    /// In Hugging Face's state-dict order.
    template <class F>
    void visit_parameters(F&& f) {
        word_.visit_parameters(f);
        position_.visit_parameters(f);
        token_type_.visit_parameters(f);
        norm_.visit_parameters(f);
    }

private:
    B* backend_;
    std::string name_;
    bert_embeddings_config cfg_;
    embedding<B, T> word_;
    embedding<B, T> position_;
    embedding<B, T> token_type_;
    layer_norm<B, T> norm_;
    dropout<B, T> drop_;
};

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
// bert_embeddings: its inputs are token and token-type ids: only parameterized + initializable.
static_assert(parameterized<bert_embeddings<archetype_backend, float>>,
              "hyperadapt::bert_embeddings must be parameterized (nn/layer.hpp)");
static_assert(initializable<bert_embeddings<archetype_backend, float>>,
              "hyperadapt::bert_embeddings must be initializable: initialize(rng)");
}  // namespace hyperadapt
