#pragma once
// One post-LayerNorm BERT encoder layer (Hugging Face's BertLayer): attention block, then feed-forward.
#include <string>
#include <vector>

#include "hyperadapt/layers/attention.hpp"
#include "hyperadapt/layers/feed_forward.hpp"

namespace hyperadapt {

struct encoder_layer_config {
    std::size_t hidden = 768;
    std::size_t heads = 12;
    std::size_t intermediate = 3072;
    double attention_dropout = 0.1;
    double hidden_dropout = 0.1;
    double layer_norm_eps = 1e-12;
};

template <elementwise_backend B, class T = float>
class encoder_layer {
public:
    using backend_type = B;
    using value_type = T;
    struct context {
        typename attention_block<B, T>::context attention;
        typename feed_forward<B, T>::context ffn;
    };

    /// `name` is the layer path, e.g. "encoder.layer.3".
    encoder_layer(B& backend, const encoder_layer_config& c, std::string name = "encoder.layer.0")
        : name_(std::move(name)),
          attention_(backend, c.hidden, c.heads, static_cast<T>(c.attention_dropout), static_cast<T>(c.hidden_dropout),
                     static_cast<T>(c.layer_norm_eps), join_name(name_, "attention")),
          ffn_(backend, c.hidden, c.intermediate, static_cast<T>(c.hidden_dropout), static_cast<T>(c.layer_norm_eps),
               name_) {}

    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        attention_.initialize(rng, stddev);
        ffn_.initialize(rng, stddev);
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    attention_block<B, T>& attention() noexcept { return attention_; }
    feed_forward<B, T>& ffn() noexcept { return ffn_; }

    /// x: (batch, seq, hidden); mask (batch, seq) or empty; score_bias (batch, seq, seq) or empty.
    tensor<B, T> forward(const tensor<B, T>& x, const attention_mask<B>& mask, const tensor<B, T>& score_bias,
                         context& ctx, run_mode mode) const {
        return ffn_.forward(attention_.forward(x, mask, score_bias, ctx.attention, mode), ctx.ffn, mode);
    }

    tensor<B, T> backward(const tensor<B, T>& dy, context& ctx, tensor<B, T>* dbias = nullptr) {
        return attention_.backward(ffn_.backward(dy, ctx.ffn), ctx.attention, dbias);
    }

    template <class F>
    void visit_parameters(F&& f) {
        attention_.visit_parameters(f);
        ffn_.visit_parameters(f);
    }

private:
    std::string name_;
    attention_block<B, T> attention_;
    feed_forward<B, T> ffn_;
};

/// A stack of encoder layers named "<prefix>.layer.<i>" (prefix "encoder" as Hugging Face).
template <elementwise_backend B, class T = float>
class encoder {
public:
    using backend_type = B;
    using value_type = T;
    struct context {
        std::vector<typename encoder_layer<B, T>::context> layers;
    };

    encoder(B& backend, const encoder_layer_config& c, std::size_t num_layers, std::string prefix = "encoder")
        : name_(std::move(prefix)) {
        layers_.reserve(num_layers);
        for (std::size_t i = 0; i < num_layers; ++i)
            layers_.emplace_back(backend, c, join_name(name_, "layer." + std::to_string(i)));
    }

    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        for (auto& l : layers_) l.initialize(rng, stddev);
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] std::size_t size() const noexcept { return layers_.size(); }
    encoder_layer<B, T>& layer(std::size_t i) { return layers_.at(i); }

    tensor<B, T> forward(const tensor<B, T>& x, const attention_mask<B>& mask, context& ctx, run_mode mode) const {
        ctx.layers.resize(layers_.size());
        tensor<B, T> h = x;
        for (std::size_t i = 0; i < layers_.size(); ++i) h = layers_[i].forward(h, mask, {}, ctx.layers[i], mode);
        return h;
    }

    tensor<B, T> backward(const tensor<B, T>& dy, context& ctx) {
        tensor<B, T> g = dy;
        for (std::size_t i = layers_.size(); i-- > 0;) g = layers_[i].backward(g, ctx.layers[i]);
        return g;
    }

    template <class F>
    void visit_parameters(F&& f) {
        for (auto& l : layers_) l.visit_parameters(f);
    }

private:
    std::string name_;
    std::vector<encoder_layer<B, T>> layers_;
};

}  // namespace hyperadapt
