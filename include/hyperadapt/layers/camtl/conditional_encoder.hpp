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
// Both are conditioned layers (nn/conditioned_layer.hpp): x (batch, L, d) (the embedding output after conditional
// alignment) and a layer_condition with the mask, the task ids (for the CLNs) and the RAW task embedding z;
// backward returns dx and adds dz into the condition gradients. With camtl_encoder_options::task_transformation =
// false the encoder owns no transformation and takes z' directly (dz is then dz').
//
// The base encoder is a composition: sequential(layer_stack<plain_norm>, layer_stack<conditional_norm>,
// layer_stack<adapter>) under the condition map; the large one interleaves its layers with the bottleneck chain.
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
#include "hyperadapt/nn/compose.hpp"

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
/// The optional task_transformation z' = W z + b shared by both encoders, and the condition it hands the layers.
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
    /// Stores z' in `zp` and returns the condition with z' in place of z.
    layer_condition<B, T> forward(const layer_condition<B, T>& c, tensor<B, T>& zp,
                                  typename linear<B, T>::context& ctx, run_mode mode) const {
        if (!c.task_embedding) throw error("CA-MTL encoder: the condition has no task embedding");
        zp = map_ ? map_->forward(*c.task_embedding, ctx, mode) : *c.task_embedding;
        layer_condition<B, T> inner = c;
        inner.task_embedding = &zp;
        return inner;
    }
    /// Adds dz (from the layers' dz') into dc.
    void backward(B& backend, const tensor<B, T>& zp, layer_condition_gradients<B, T>& inner,
                  typename linear<B, T>::context& ctx, layer_condition_gradients<B, T>& dc) {
        // Every conditional module switched off: z' still shaped the forward's inputs, with a zero gradient.
        tensor<B, T> dzp = inner.task_embedding.empty() ? tensor<B, T>::zeros(backend, zp.shape()) : inner.task_embedding;
        accumulate_into(backend, dc.task_embedding, map_ ? map_->backward(dzp, ctx) : dzp);
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
}  // namespace detail

/// MyBertEncoder9: CBDA in every layer, CLN in the top half, the conditional adapter on the top layer.
template <elementwise_backend B, class T = float, std::size_t SeqLen = std::dynamic_extent,
          std::size_t Hidden = std::dynamic_extent>
class camtl_base_encoder {
public:
    using backend_type = B;
    using value_type = T;
    using condition_type = layer_condition<B, T>;
    using condition_gradients = layer_condition_gradients<B, T>;
    using plain_layer = bert_layer9<B, T, SeqLen, Hidden>;
    using conditional_layer = my_bert_layer9<B, T, SeqLen, Hidden>;
    using top_layer = my_bert_adapter_layer9<B, T, SeqLen, Hidden>;
    using body_type = sequential<layer_stack<plain_layer>, layer_stack<conditional_layer>, layer_stack<top_layer>>;
    struct context {
        typename linear<B, T>::context transformation;
        tensor<B, T> zp;
        typename body_type::context body;
    };

    camtl_base_encoder(B& backend, const camtl_layer_config& c, std::size_t num_layers, std::string prefix = "encoder",
                       camtl_encoder_options options = {})
        : backend_(&backend),
          name_(std::move(prefix)),
          map_(backend, c.hidden, name_, options.task_transformation),
          body_(make_body(backend, c, num_layers, name_, options)) {}

    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        map_.initialize(rng, stddev);
        body_.initialize(rng, stddev);
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] std::size_t size() const noexcept {
        return plain_stack().size() + conditional_stack().size() + top_stack().size();
    }
    [[nodiscard]] bool has_top_adapter() const noexcept { return top_stack().size() == 1; }
    [[nodiscard]] std::size_t plain_layers() const noexcept { return plain_stack().size(); }
    plain_layer& plain(std::size_t i) { return body_.template get<0>().layer(i); }
    /// The i-th conditional-norm layer (encoder layer plain_layers() + i).
    conditional_layer& conditional(std::size_t i) { return body_.template get<1>().layer(i); }
    /// The adapter top layer; config_error when built without one.
    top_layer& top() {
        if (!has_top_adapter()) throw config_error(name_ + ": this encoder was built without the top adapter layer");
        return body_.template get<2>().layer(0);
    }
    /// Null without an own task_transformation.
    linear<B, T>* task_transformation() noexcept { return map_.get(); }

    tensor<B, T> forward(const tensor<B, T>& x, const condition_type& c, context& ctx, run_mode mode) const {
        return body_.forward(x, map_.forward(c, ctx.zp, ctx.transformation, mode), ctx.body, mode);
    }

    tensor<B, T> backward(const tensor<B, T>& dy, context& ctx, condition_gradients& dc) {
        condition_gradients inner{.task_embedding = {}, .generated = dc.generated};
        tensor<B, T> dx = body_.backward(dy, ctx.body, inner);
        map_.backward(*backend_, ctx.zp, inner, ctx.transformation, dc);
        return dx;
    }

    /// The reference's order: task_transformation, then layer.0 .. layer.(n-1).
    template <class F>
    void visit_parameters(F&& f) {
        map_.visit_parameters(f);
        body_.visit_parameters(f);
    }

private:
    const layer_stack<plain_layer>& plain_stack() const noexcept { return body_.template get<0>(); }
    const layer_stack<conditional_layer>& conditional_stack() const noexcept { return body_.template get<1>(); }
    const layer_stack<top_layer>& top_stack() const noexcept { return body_.template get<2>(); }

    static body_type make_body(B& backend, const camtl_layer_config& c, std::size_t n, const std::string& prefix,
                               const camtl_encoder_options& o) {
        const std::size_t p = o.plain_layers == std::numeric_limits<std::size_t>::max() ? n / 2 : o.plain_layers;
        const std::size_t top = o.top_adapter ? 1 : 0;
        detail::check_camtl_layers(prefix, n, p, top);
        return body_type(layer_stack<plain_layer>(backend, c, p, prefix, 0),
                         layer_stack<conditional_layer>(backend, c, n - p - top, prefix, p),
                         layer_stack<top_layer>(backend, c, top, prefix, n - top));
    }

    B* backend_;
    std::string name_;
    detail::camtl_condition_map<B, T> map_;
    body_type body_;
};

/// MyBertEncoder10: CBDA in every layer, CLN in the top half, a conditional bottleneck chained through all layers
/// whose output replaces the last hidden state.
template <elementwise_backend B, class T = float, std::size_t SeqLen = std::dynamic_extent,
          std::size_t Hidden = std::dynamic_extent>
class camtl_large_encoder {
public:
    using backend_type = B;
    using value_type = T;
    using condition_type = layer_condition<B, T>;
    using condition_gradients = layer_condition_gradients<B, T>;
    using plain_layer = bert_layer9<B, T, SeqLen, Hidden>;
    using conditional_layer = my_bert_layer9<B, T, SeqLen, Hidden>;
    struct context {
        typename linear<B, T>::context transformation;
        tensor<B, T> zp;
        std::vector<typename plain_layer::context> plain;
        std::vector<typename conditional_layer::context> conditional;
        std::vector<typename conditional_bottleneck<B, T>::context> chain;
    };

    camtl_large_encoder(B& backend, const camtl_layer_config& c, std::size_t num_layers,
                        std::string prefix = "encoder", camtl_encoder_options options = {})
        : backend_(&backend),
          name_(std::move(prefix)),
          map_(backend, c.hidden, name_, options.task_transformation),
          plain_(backend, c, plain_count(num_layers, options, name_), name_, 0),
          conditional_(backend, c, num_layers - plain_count(num_layers, options, name_), name_,
                       plain_count(num_layers, options, name_)) {
        chain_.reserve(num_layers);
        for (std::size_t i = 0; i < num_layers; ++i)
            chain_.emplace_back(backend, c.hidden, join_name(name_, "adapter_layer." + std::to_string(i)), c.bottleneck);
    }

    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        map_.initialize(rng, stddev);
        plain_.initialize(rng, stddev);
        conditional_.initialize(rng, stddev);
        for (auto& l : chain_) l.initialize(rng, stddev);
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] std::size_t size() const noexcept { return chain_.size(); }
    [[nodiscard]] std::size_t plain_layers() const noexcept { return plain_.size(); }
    plain_layer& plain(std::size_t i) { return plain_.layer(i); }
    conditional_layer& conditional(std::size_t i) { return conditional_.layer(i); }
    conditional_bottleneck<B, T>& bottleneck(std::size_t i) { return chain_.at(i); }
    linear<B, T>* task_transformation() noexcept { return map_.get(); }

    tensor<B, T> forward(const tensor<B, T>& x, const condition_type& c, context& ctx, run_mode mode) const {
        const condition_type inner = map_.forward(c, ctx.zp, ctx.transformation, mode);
        const std::size_t p = plain_.size();
        ctx.plain.resize(p);
        ctx.conditional.resize(conditional_.size());
        ctx.chain.resize(chain_.size());
        tensor<B, T> h = x, f;
        for (std::size_t i = 0; i < chain_.size(); ++i) {
            h = i < p ? plain_.layer(i).forward(h, inner, ctx.plain[i], mode)
                      : conditional_.layer(i - p).forward(h, inner, ctx.conditional[i - p], mode);
            tensor<B, T> s = h;  // f_0 = 0: the first bottleneck reads h_0 itself
            if (!f.empty()) {
                s = tensor<B, T>(*backend_, h.shape());
                backend_->add(h.size(), h.data(), f.data(), s.data());
            }
            f = chain_[i].forward(s, ctx.zp, ctx.chain[i], mode);
        }
        return f;
    }

    tensor<B, T> backward(const tensor<B, T>& dy, context& ctx, condition_gradients& dc) {
        condition_gradients inner{.task_embedding = {}, .generated = dc.generated};
        const std::size_t p = plain_.size();
        tensor<B, T> df = dy, dnext;  // dnext: gradient of layer i+1's input h_i
        for (std::size_t i = chain_.size(); i-- > 0;) {
            auto gc = chain_[i].backward(df, ctx.chain[i]);
            accumulate_into(*backend_, inner.task_embedding, gc.condition);
            // d(h_i + f_(i-1)) flows to both summands; h_i also feeds layer i+1.
            tensor<B, T> dh = gc.hidden_states;
            if (!dnext.empty()) {
                dh = tensor<B, T>(*backend_, dnext.shape());
                backend_->add(dh.size(), gc.hidden_states.data(), dnext.data(), dh.data());
            }
            dnext = i < p ? plain_.layer(i).backward(dh, ctx.plain[i], inner)
                          : conditional_.layer(i - p).backward(dh, ctx.conditional[i - p], inner);
            df = std::move(gc.hidden_states);
        }
        map_.backward(*backend_, ctx.zp, inner, ctx.transformation, dc);
        return dnext;
    }

    /// The reference's order: task_transformation, layer.0 .. layer.(n-1), adapter_layer.0 .. adapter_layer.(n-1).
    template <class F>
    void visit_parameters(F&& f) {
        map_.visit_parameters(f);
        plain_.visit_parameters(f);
        conditional_.visit_parameters(f);
        for (auto& l : chain_) l.visit_parameters(f);
    }

private:
    static std::size_t plain_count(std::size_t n, const camtl_encoder_options& o, const std::string& prefix) {
        const std::size_t p = o.plain_layers == std::numeric_limits<std::size_t>::max() ? n / 2 + n % 2 : o.plain_layers;
        detail::check_camtl_layers(prefix, n, p, 0);
        return p;
    }

    B* backend_;
    std::string name_;
    detail::camtl_condition_map<B, T> map_;
    layer_stack<plain_layer> plain_;
    layer_stack<conditional_layer> conditional_;
    std::vector<conditional_bottleneck<B, T>> chain_;
};

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
static_assert(conditioned_layer<camtl_base_encoder<archetype_backend, float>>,
              "hyperadapt::camtl_base_encoder must be a conditioned layer (nn/conditioned_layer.hpp)");
static_assert(initializable<camtl_base_encoder<archetype_backend, float>>,
              "hyperadapt::camtl_base_encoder must be initializable: initialize(rng)");
static_assert(conditioned_layer<camtl_large_encoder<archetype_backend, float>>,
              "hyperadapt::camtl_large_encoder must be a conditioned layer (nn/conditioned_layer.hpp)");
static_assert(initializable<camtl_large_encoder<archetype_backend, float>>,
              "hyperadapt::camtl_large_encoder must be initializable: initialize(rng)");
}  // namespace hyperadapt
