#pragma once
// CA-MTL's encoders (spec §1.1, §1.5, §1.6; the reference's MyBertEncoder9 and MyBertEncoder10). Both first map
// the raw task embedding z through task_transformation (Linear d -> d) once, and pass z' to every layer.
//
// camtl_base_encoder (MyBertEncoder9, "CA-MTL-base"): n layers
//   layers 0 .. p-1      plain_norm        (p = n / 2 by default: base 0-5)
//   layers p .. n-2      conditional_norm  (base 6-10)
//   layer  n-1           adapter           (base 11: conditional adapter on top; renamed sub-modules)
//   output = the last layer's output.
//
// camtl_large_encoder (MyBertEncoder10, "CA-MTL-large"): n layers and n conditional bottlenecks
//   layers 0 .. ceil(n/2)-1 plain_norm, the rest conditional_norm (large: 0-11 and 12-23), and a chain
//   f_0 = 0,  f_i = CB_i(z', h_i + f_(i-1)),  output = f_n  (the chain output replaces the last hidden state).
//
// Inputs: x (batch, L, d) (the embedding output after conditional alignment), mask (batch, L) or empty, z (batch,
// d) the RAW task embedding, task ids (batch) int32 for the CLNs. backward returns dx and dz. With
// camtl_encoder_options::task_transformation = false the encoder owns no transformation and takes z' directly
// (for a model whose task_embedding module already applies it); dz is then dz'.
//
// Names under `prefix` (default "encoder"), as the reference: "<prefix>.task_transformation.*",
// "<prefix>.layer.<i>.*" (see conditional_encoder_layer.hpp), and for the large encoder
// "<prefix>.adapter_layer.<i>.{emb_transf,hidden_modulation.gb_weights,down_proj_layer,up_proj_layer}.*".
#include <cstddef>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "hyperadapt/layers/camtl/conditional_bottleneck.hpp"
#include "hyperadapt/layers/camtl/conditional_encoder_layer.hpp"
#include "hyperadapt/layers/linear.hpp"

namespace hyperadapt {

struct camtl_encoder_options {
    /// Layers with plain LayerNorms at the bottom; npos = the reference's split (base n/2, large ceil(n/2)).
    std::size_t plain_layers = std::numeric_limits<std::size_t>::max();
    /// Own the task_transformation Linear (as the reference's encoders do) and take the raw z.
    bool task_transformation = true;
    /// Base encoder: the conditional adapter on the top layer (the reference). false makes the top layer a
    /// conditional-norm layer with the plain names (for ablations "minus the conditional bottleneck").
    bool top_adapter = true;
};

namespace detail {
/// The optional task_transformation shared by both encoders.
template <elementwise_backend B, class T>
class camtl_condition_map {
public:
    camtl_condition_map(B& backend, std::size_t hidden, const std::string& prefix, bool enabled) {
        if (enabled) map_.emplace(backend, hidden, hidden, join_name(prefix, "task_transformation"));
    }
    template <class Rng>
    void initialize(Rng& rng, T stddev) {
        if (map_) map_->initialize(rng, stddev);
    }
    tensor<B, T> forward(const tensor<B, T>& z, typename linear<B, T>::context& ctx, run_mode mode) const {
        return map_ ? map_->forward(z, ctx, mode) : z;
    }
    tensor<B, T> backward(const tensor<B, T>& dz_prime, typename linear<B, T>::context& ctx) {
        return map_ ? map_->backward(dz_prime, ctx) : dz_prime;
    }
    template <class F>
    void visit_parameters(F&& f) {
        if (map_) map_->visit_parameters(f);
    }
    linear<B, T>* get() noexcept { return map_ ? &*map_ : nullptr; }

private:
    std::optional<linear<B, T>> map_;
};

inline void check_camtl_layers(const std::string& prefix, std::size_t layers, std::size_t plain, std::size_t min_rest) {
    if (layers == 0) throw config_error(prefix + ": a CA-MTL encoder needs at least one layer");
    if (plain > layers - min_rest)
        throw config_error(prefix + ": " + std::to_string(plain) + " plain-LayerNorm layers out of " +
                           std::to_string(layers) + " leave no room for the " + std::to_string(min_rest) +
                           " conditional top layer(s)");
}

template <class B, class T>
void accumulate(B& backend, tensor<B, T>& acc, const tensor<B, T>& g) {
    if (acc.empty())
        acc = g;
    else
        backend.axpy(acc.size(), T(1), g.data(), acc.data());
}
}  // namespace detail

/// MyBertEncoder9: CBDA in every layer, CLN in the top half, the conditional adapter on the top layer.
template <elementwise_backend B, class T = float, std::size_t SeqLen = std::dynamic_extent,
          std::size_t Hidden = std::dynamic_extent>
class camtl_base_encoder {
public:
    using backend_type = B;
    using value_type = T;
    using ids_type = tensor<B, std::int32_t>;
    using plain_layer = camtl_encoder_layer<B, T, camtl_layer_kind::plain_norm, SeqLen, Hidden>;
    using conditional_layer = camtl_encoder_layer<B, T, camtl_layer_kind::conditional_norm, SeqLen, Hidden>;
    using top_layer = camtl_encoder_layer<B, T, camtl_layer_kind::adapter, SeqLen, Hidden>;
    struct context {
        typename linear<B, T>::context transformation;
        std::vector<typename plain_layer::context> plain;
        std::vector<typename conditional_layer::context> conditional;
        typename top_layer::context top;  // unused without a top adapter
    };
    struct gradients {
        tensor<B, T> input;           // (batch, L, d)
        tensor<B, T> task_embedding;  // (batch, d): dz (dz' without an own task_transformation)
    };

    camtl_base_encoder(B& backend, const camtl_layer_config& c, std::size_t num_layers, std::string prefix = "encoder",
                       camtl_encoder_options options = {})
        : backend_(&backend),
          name_(std::move(prefix)),
          map_(backend, c.hidden, name_, options.task_transformation),
          top_(options.top_adapter ? std::optional<top_layer>(make_top(backend, c, num_layers, name_, options))
                                   : std::nullopt) {
        const std::size_t p = plain_count(num_layers, options);
        const std::size_t conditional_end = options.top_adapter ? num_layers - 1 : num_layers;
        plain_.reserve(p);
        conditional_.reserve(conditional_end - p);
        for (std::size_t i = 0; i < p; ++i) plain_.emplace_back(backend, c, layer_name(i));
        for (std::size_t i = p; i < conditional_end; ++i) conditional_.emplace_back(backend, c, layer_name(i));
    }

    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        map_.initialize(rng, stddev);
        for (auto& l : plain_) l.initialize(rng, stddev);
        for (auto& l : conditional_) l.initialize(rng, stddev);
        if (top_) top_->initialize(rng, stddev);
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] std::size_t size() const noexcept { return plain_.size() + conditional_.size() + (top_ ? 1 : 0); }
    [[nodiscard]] bool has_top_adapter() const noexcept { return top_.has_value(); }
    [[nodiscard]] std::size_t plain_layers() const noexcept { return plain_.size(); }
    plain_layer& plain(std::size_t i) { return plain_.at(i); }
    /// The i-th conditional-norm layer (encoder layer plain_layers() + i).
    conditional_layer& conditional(std::size_t i) { return conditional_.at(i); }
    /// The adapter top layer; config_error when built without one.
    top_layer& top() {
        if (!top_) throw config_error(name_ + ": this encoder was built without the top adapter layer");
        return *top_;
    }
    /// Null without an own task_transformation.
    linear<B, T>* task_transformation() noexcept { return map_.get(); }

    tensor<B, T> forward(const tensor<B, T>& x, const attention_mask<B>& mask, const tensor<B, T>& z,
                         const ids_type& task_ids, context& ctx, run_mode mode) const {
        const tensor<B, T> zp = map_.forward(z, ctx.transformation, mode);
        ctx.plain.resize(plain_.size());
        ctx.conditional.resize(conditional_.size());
        tensor<B, T> h = x;
        for (std::size_t i = 0; i < plain_.size(); ++i) h = plain_[i].forward(h, mask, zp, task_ids, ctx.plain[i], mode);
        for (std::size_t i = 0; i < conditional_.size(); ++i)
            h = conditional_[i].forward(h, mask, zp, task_ids, ctx.conditional[i], mode);
        return top_ ? top_->forward(h, mask, zp, task_ids, ctx.top, mode) : h;
    }

    gradients backward(const tensor<B, T>& dy, context& ctx) {
        tensor<B, T> dh = dy, dzp;
        if (top_) {
            auto g = top_->backward(dy, ctx.top);
            dh = std::move(g.input);
            dzp = std::move(g.condition);
        }
        for (std::size_t i = conditional_.size(); i-- > 0;) {
            auto gi = conditional_[i].backward(dh, ctx.conditional[i]);
            dh = std::move(gi.input);
            detail::accumulate(*backend_, dzp, gi.condition);
        }
        for (std::size_t i = plain_.size(); i-- > 0;) {
            auto gi = plain_[i].backward(dh, ctx.plain[i]);
            dh = std::move(gi.input);
            detail::accumulate(*backend_, dzp, gi.condition);
        }
        return {std::move(dh), map_.backward(dzp, ctx.transformation)};
    }

    /// The reference's order: task_transformation, then layer.0 .. layer.(n-1).
    template <class F>
    void visit_parameters(F&& f) {
        map_.visit_parameters(f);
        for (auto& l : plain_) l.visit_parameters(f);
        for (auto& l : conditional_) l.visit_parameters(f);
        if (top_) top_->visit_parameters(f);
    }

private:
    static std::size_t plain_count(std::size_t n, const camtl_encoder_options& o) {
        return o.plain_layers == std::numeric_limits<std::size_t>::max() ? n / 2 : o.plain_layers;
    }
    std::string layer_name(std::size_t i) const { return join_name(name_, "layer." + std::to_string(i)); }
    static top_layer make_top(B& backend, const camtl_layer_config& c, std::size_t n, const std::string& prefix,
                              const camtl_encoder_options& o) {
        detail::check_camtl_layers(prefix, n, plain_count(n, o), 1);
        return top_layer(backend, c, join_name(prefix, "layer." + std::to_string(n - 1)));
    }

    B* backend_;
    std::string name_;
    detail::camtl_condition_map<B, T> map_;
    std::vector<plain_layer> plain_;
    std::vector<conditional_layer> conditional_;
    std::optional<top_layer> top_;
};

/// MyBertEncoder10: CBDA in every layer, CLN in the top half, a conditional bottleneck chained through all layers
/// whose output replaces the last hidden state.
template <elementwise_backend B, class T = float, std::size_t SeqLen = std::dynamic_extent,
          std::size_t Hidden = std::dynamic_extent>
class camtl_large_encoder {
public:
    using backend_type = B;
    using value_type = T;
    using ids_type = tensor<B, std::int32_t>;
    using plain_layer = camtl_encoder_layer<B, T, camtl_layer_kind::plain_norm, SeqLen, Hidden>;
    using conditional_layer = camtl_encoder_layer<B, T, camtl_layer_kind::conditional_norm, SeqLen, Hidden>;
    struct context {
        typename linear<B, T>::context transformation;
        std::vector<typename plain_layer::context> plain;
        std::vector<typename conditional_layer::context> conditional;
        std::vector<typename conditional_bottleneck<B, T>::context> chain;
    };
    using gradients = typename camtl_base_encoder<B, T, SeqLen, Hidden>::gradients;

    camtl_large_encoder(B& backend, const camtl_layer_config& c, std::size_t num_layers,
                        std::string prefix = "encoder", camtl_encoder_options options = {})
        : backend_(&backend), name_(std::move(prefix)), map_(backend, c.hidden, name_, options.task_transformation) {
        const std::size_t p = options.plain_layers == std::numeric_limits<std::size_t>::max()
                                  ? num_layers / 2 + num_layers % 2
                                  : options.plain_layers;
        detail::check_camtl_layers(name_, num_layers, p, 0);
        plain_.reserve(p);
        conditional_.reserve(num_layers - p);
        chain_.reserve(num_layers);
        for (std::size_t i = 0; i < num_layers; ++i) {
            const std::string li = join_name(name_, "layer." + std::to_string(i));
            if (i < p)
                plain_.emplace_back(backend, c, li);
            else
                conditional_.emplace_back(backend, c, li);
        }
        for (std::size_t i = 0; i < num_layers; ++i)
            chain_.emplace_back(backend, c.hidden, join_name(name_, "adapter_layer." + std::to_string(i)), c.bottleneck);
    }

    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        map_.initialize(rng, stddev);
        for (auto& l : plain_) l.initialize(rng, stddev);
        for (auto& l : conditional_) l.initialize(rng, stddev);
        for (auto& l : chain_) l.initialize(rng, stddev);
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] std::size_t size() const noexcept { return chain_.size(); }
    [[nodiscard]] std::size_t plain_layers() const noexcept { return plain_.size(); }
    plain_layer& plain(std::size_t i) { return plain_.at(i); }
    conditional_layer& conditional(std::size_t i) { return conditional_.at(i); }
    conditional_bottleneck<B, T>& bottleneck(std::size_t i) { return chain_.at(i); }
    linear<B, T>* task_transformation() noexcept { return map_.get(); }

    tensor<B, T> forward(const tensor<B, T>& x, const attention_mask<B>& mask, const tensor<B, T>& z,
                         const ids_type& task_ids, context& ctx, run_mode mode) const {
        const tensor<B, T> zp = map_.forward(z, ctx.transformation, mode);
        ctx.plain.resize(plain_.size());
        ctx.conditional.resize(conditional_.size());
        ctx.chain.resize(chain_.size());
        tensor<B, T> h = x, f;
        for (std::size_t i = 0; i < chain_.size(); ++i) {
            h = i < plain_.size() ? plain_[i].forward(h, mask, zp, task_ids, ctx.plain[i], mode)
                                  : conditional_[i - plain_.size()].forward(h, mask, zp, task_ids,
                                                                            ctx.conditional[i - plain_.size()], mode);
            tensor<B, T> s = h;  // f_0 = 0: the first bottleneck reads h_0 itself
            if (!f.empty()) {
                s = tensor<B, T>(*backend_, h.shape());
                backend_->add(h.size(), h.data(), f.data(), s.data());
            }
            f = chain_[i].forward(s, zp, ctx.chain[i], mode);
        }
        return f;
    }

    gradients backward(const tensor<B, T>& dy, context& ctx) {
        tensor<B, T> df = dy, dnext, dzp;  // dnext: gradient of layer i+1's input h_i
        for (std::size_t i = chain_.size(); i-- > 0;) {
            auto gc = chain_[i].backward(df, ctx.chain[i]);
            detail::accumulate(*backend_, dzp, gc.condition);
            // d(h_i + f_(i-1)) flows to both summands; h_i also feeds layer i+1.
            tensor<B, T> dh = gc.hidden_states;
            if (!dnext.empty()) {
                dh = tensor<B, T>(*backend_, dnext.shape());
                backend_->add(dh.size(), gc.hidden_states.data(), dnext.data(), dh.data());
            }
            if (i < plain_.size()) {
                auto gl = plain_[i].backward(dh, ctx.plain[i]);
                dnext = std::move(gl.input);
                detail::accumulate(*backend_, dzp, gl.condition);
            } else {
                auto gl = conditional_[i - plain_.size()].backward(dh, ctx.conditional[i - plain_.size()]);
                dnext = std::move(gl.input);
                detail::accumulate(*backend_, dzp, gl.condition);
            }
            df = std::move(gc.hidden_states);
        }
        return {std::move(dnext), map_.backward(dzp, ctx.transformation)};
    }

    /// The reference's order: task_transformation, layer.0 .. layer.(n-1), adapter_layer.0 .. adapter_layer.(n-1).
    template <class F>
    void visit_parameters(F&& f) {
        map_.visit_parameters(f);
        for (auto& l : plain_) l.visit_parameters(f);
        for (auto& l : conditional_) l.visit_parameters(f);
        for (auto& l : chain_) l.visit_parameters(f);
    }

private:
    B* backend_;
    std::string name_;
    detail::camtl_condition_map<B, T> map_;
    std::vector<plain_layer> plain_;
    std::vector<conditional_layer> conditional_;
    std::vector<conditional_bottleneck<B, T>> chain_;
};

}  // namespace hyperadapt
