#pragma once
// HyperFormer's and HyperFormer++'s adapter generators (spec §3.2; rabeehk/hyperformer
// adapters/adapter_modeling.py::AdapterLayersHyperNetController (HyperFormer, unique_hyper_net) and
// AdapterLayersOneHyperNetController (HyperFormer++, efficient_unique_hyper_net), with adapter_utils.py's
// TaskHyperNet, LayerNormHyperNet and linear_layer). For a batch of conditions z (one task embedding per
// row), layer l and block type p (feed_forward = 0, self_attention = 1):
//
//   u = [z ; e_layer(l)]                 HyperFormer                                      (batch, 2 D)
//   u = [z ; e_layer(l) ; e_block(p)]    HyperFormer++                                    (batch, 3 D)
//   e = LayerNorm(W_2 ReLU(W_1 u + b_1) + b_2)      eps 1e-6 (task_layer_norm; the authors' default)
//   down weight = H_dw e (batch, r*d), viewed (r, d)    down bias = H_db e (batch, r)
//   up weight   = H_uw e (batch, d*r), viewed (d, r)    up bias   = H_ub e (batch, d)
//   pre-norm gain/bias  = H_pg e, H_pb e (batch, d)     only with pre_layer_norm  (add_layer_norm_before_adapter)
//   post-norm gain/bias = H_qg e, H_qb e (batch, d)     only with post_layer_norm (add_layer_norm_after_adapter)
//
// The weights follow F.linear's [out, in] layout (down maps d -> r, up maps r -> d), which is what
// hyperformer_adapter reads. This differs from PHA's adapter_weights, whose down weight is (d, r) applied as
// x @ W: the two structs are kept apart so a layout cannot be mixed up silently.
//
// HyperFormer has one set of heads per block type (shared across layers) and no block-type embedding;
// HyperFormer++ has one set of heads for both block types and tells them apart through e_block. The
// authors' HyperFormer controller computes e once and feeds both head sets; here each (layer, block) call
// computes e itself, which costs one small MLP per call and gives the same values and gradients.
//
// Everything up to e is hypernet_trunk (layers/pha/hypernet_trunk.hpp), PHA's prototypical_hypernet's trunk
// too: the concatenation u is never built, W_1 being applied per column block, the embedding blocks one row
// each, broadcast to the batch.
//
// Parameters (name "" gives the authors' keys): "layer_id_embeddings.weight" (layers, D);
// "adapters_block_type.weight" (2, D) (HyperFormer++ only); "task_hypernet.task_embeding_generator.0.*"
// (h, k D) and ".2.*" (p, h) (the authors' spelling); "LayerNorm.*" (p); heads
// "<pfx>up_sampler_hyper_net.{weight,bias}_generator.0.*", "<pfx>down_sampler_hyper_net.*",
// "<pfx>pre_layernorm_hypernet.{weight,bias}_generator.*", "<pfx>post_layernorm_hypernet.*", with <pfx>
// empty for HyperFormer++ and "feed_forward_" / "self_attention_" for HyperFormer.
//
// Init (the authors'): every Linear (task hypernet and heads) ~ N(0, 0.01^2) with bias 0 (linear_layer's
// std=1e-2); embeddings N(0, 1) (nn.Embedding's default); LayerNorm ones and zeros.
#include <cstddef>
#include <array>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/layers/pha/hypernet_trunk.hpp"
#include "hyperadapt/nn/layer.hpp"

namespace hyperadapt {

/// Which adapter of a transformer block the weights are for (the authors' block_type ids).
enum class hyperformer_block : std::size_t { feed_forward = 0, self_attention = 1 };

enum class hyperformer_variant {
    hyperformer,     ///< unique_hyper_net: input [z; layer], separate heads per block type
    hyperformer_pp,  ///< efficient_unique_hyper_net: input [z; layer; block type], one set of heads
};

struct hyperformer_hypernet_config {
    hyperformer_variant variant = hyperformer_variant::hyperformer_pp;
    std::size_t task_embedding = 64;   ///< D: condition width, also the layer / block-type embedding width
    std::size_t layers = 12;           ///< rows of layer_id_embeddings
    std::size_t hidden = 128;          ///< h: task_hidden_dim
    std::size_t projection = 64;       ///< p: projected_task_embedding_dim (LayerNorm width, head input)
    std::size_t features = 768;        ///< d: input_dim
    std::size_t reduction_factor = 32; ///< r = d / reduction_factor (integer division, as the authors)
    bool pre_layer_norm = false;       ///< add_layer_norm_before_adapter: generate a pre-norm gain/bias
    bool post_layer_norm = true;       ///< add_layer_norm_after_adapter: generate a post-norm gain/bias
    bool task_layer_norm = true;       ///< unique_hyper_net_layer_norm: LayerNorm on e
    double layer_norm_eps = 1e-6;

    [[nodiscard]] std::size_t bottleneck() const noexcept {
        return reduction_factor == 0 ? 0 : features / reduction_factor;
    }
};

/// HyperFormer as the authors' code builds it (unique_hyper_net; configs/hyperformer.json), T5-base sizes.
inline hyperformer_hypernet_config hyperformer_config(std::size_t features = 768, std::size_t layers = 12,
                                                      std::size_t reduction_factor = 32) {
    return {.variant = hyperformer_variant::hyperformer, .layers = layers, .features = features,
            .reduction_factor = reduction_factor};
}

/// HyperFormer++ (efficient_unique_hyper_net; configs/hyperformer++.json), T5-base sizes.
inline hyperformer_hypernet_config hyperformerpp_config(std::size_t features = 768, std::size_t layers = 12,
                                                        std::size_t reduction_factor = 32) {
    return {.variant = hyperformer_variant::hyperformer_pp, .layers = layers, .features = features,
            .reduction_factor = reduction_factor};
}

/// Per-example weights of one HyperFormer adapter, in F.linear's [out, in] layout. The norm tensors are
/// empty when the configuration does not generate them. As gradients (hyperformer_adapter::backward's
/// output, hyperformer_hypernet::backward's input) the same fields hold d loss / d weight; an empty field
/// there means a zero gradient.
template <class B, class T>
struct hyperformer_adapter_weights {
    tensor<B, T> down_weight;       // (batch, r*d), viewed (batch, r, d): maps d -> r
    tensor<B, T> down_bias;         // (batch, r)
    tensor<B, T> up_weight;         // (batch, d*r), viewed (batch, d, r): maps r -> d
    tensor<B, T> up_bias;           // (batch, d)
    tensor<B, T> pre_norm_weight;   // (batch, d) or empty
    tensor<B, T> pre_norm_bias;     // (batch, d) or empty
    tensor<B, T> post_norm_weight;  // (batch, d) or empty
    tensor<B, T> post_norm_bias;    // (batch, d) or empty
};

template <elementwise_backend B, class T = float>
class hyperformer_hypernet {
    // One set of heads: what the authors' AdapterLayersHyperNet (up and down) and LayerNormHyperNet (pre and
    // post) hold.
    struct head_set {
        head_set(B& b, const hyperformer_hypernet_config& c, const std::string& name, const std::string& pfx)
            : up_w(b, c.projection, c.features * c.bottleneck(),
                   join_name(name, pfx + "up_sampler_hyper_net.weight_generator.0")),
              up_b(b, c.projection, c.features, join_name(name, pfx + "up_sampler_hyper_net.bias_generator.0")),
              down_w(b, c.projection, c.bottleneck() * c.features,
                     join_name(name, pfx + "down_sampler_hyper_net.weight_generator.0")),
              down_b(b, c.projection, c.bottleneck(),
                     join_name(name, pfx + "down_sampler_hyper_net.bias_generator.0")) {
            // A LayerNormHyperNet: gain and bias generators, "<pfx><which>_layernorm_hypernet.*".
            auto norm_heads = [&](std::optional<linear<B, T>>& gain, std::optional<linear<B, T>>& bias,
                                  const std::string& which) {
                const std::string net = pfx + which + "_layernorm_hypernet.";
                gain.emplace(b, c.projection, c.features, join_name(name, net + "weight_generator"));
                bias.emplace(b, c.projection, c.features, join_name(name, net + "bias_generator"));
            };
            if (c.pre_layer_norm) norm_heads(pre_w, pre_b, "pre");
            if (c.post_layer_norm) norm_heads(post_w, post_b, "post");
        }
        linear<B, T> up_w, up_b, down_w, down_b;
        std::optional<linear<B, T>> pre_w, pre_b, post_w, post_b;
    };

public:
    using backend_type = B;
    using value_type = T;
    using weights_type = hyperformer_adapter_weights<B, T>;
    struct context {
        std::size_t layer = 0;
        hyperformer_block block = hyperformer_block::feed_forward;
        typename hypernet_trunk<B, T>::context trunk;  // condition, layer (and block type) -> e
        typename linear<B, T>::context up_w, up_b, down_w, down_b, pre_w, pre_b, post_w, post_b;
        bool ready = false;
    };

    hyperformer_hypernet(B& backend, hyperformer_hypernet_config cfg, std::string name = "")
        : backend_(&backend),
          name_(std::move(name)),
          cfg_(checked(cfg, name_)),
          trunk_(backend, trunk_config(cfg_, name_), name_) {
        heads_.reserve(2);
        if (cfg_.variant == hyperformer_variant::hyperformer_pp) {
            heads_.emplace_back(backend, cfg_, name_, "");
        } else {
            heads_.emplace_back(backend, cfg_, name_, "feed_forward_");
            heads_.emplace_back(backend, cfg_, name_, "self_attention_");
        }
    }

    template <class Rng>
    void initialize(Rng& rng) {
        auto normal = [&](parameter<B, T>& p, double stddev) {
            backend_->fill_normal(p.size(), rng.seed(), rng.take(p.size()), T(0), static_cast<T>(stddev),
                                  p.value.data());
        };
        normal(trunk_.embedding(0), 1);  // layer_id_embeddings
        if (has_block_embedding()) normal(trunk_.embedding(1), 1);  // adapters_block_type
        normal(trunk_.linear1_weight(), 1e-2);
        trunk_.linear1_bias().value.zero();
        trunk_.linear2().initialize(rng, T(1e-2));
        if (auto* norm = trunk_.norm()) {
            norm->weight().value.fill(T(1));
            norm->bias().value.zero();
        }
        for (auto& hs : heads_)
            for (auto* l : head_linears(hs)) l->initialize(rng, T(1e-2));
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] const hyperformer_hypernet_config& config() const noexcept { return cfg_; }
    [[nodiscard]] std::size_t features() const noexcept { return cfg_.features; }
    [[nodiscard]] std::size_t bottleneck() const noexcept { return cfg_.bottleneck(); }
    [[nodiscard]] bool has_block_embedding() const noexcept {
        return cfg_.variant == hyperformer_variant::hyperformer_pp;
    }

    /// The adapter weights of (layer, block) for every row of `condition` (batch, D).
    weights_type forward(const tensor<B, T>& condition, std::size_t layer, hyperformer_block block, context& ctx,
                         run_mode mode = {}) const {
        if (layer >= cfg_.layers)
            throw error(name_ + ": layer " + std::to_string(layer) + " out of range for " +
                        std::to_string(cfg_.layers) + " layers");
        const auto p = static_cast<std::size_t>(block);
        if (p > 1)
            throw error(name_ + ": block type " + std::to_string(p) + " is neither feed_forward nor self_attention");
        ctx = {};
        ctx.layer = layer;
        ctx.block = block;
        const std::array<std::size_t, 2> rows{layer, p};
        const tensor<B, T> e =
            trunk_.forward(condition, std::span(rows).first(has_block_embedding() ? 2 : 1), ctx.trunk, mode);
        const head_set& hs = heads_for(block);
        weights_type w;
        w.down_weight = hs.down_w.forward(e, ctx.down_w, mode);
        w.down_bias = hs.down_b.forward(e, ctx.down_b, mode);
        w.up_weight = hs.up_w.forward(e, ctx.up_w, mode);
        w.up_bias = hs.up_b.forward(e, ctx.up_b, mode);
        if (hs.pre_w) {
            w.pre_norm_weight = hs.pre_w->forward(e, ctx.pre_w, mode);
            w.pre_norm_bias = hs.pre_b->forward(e, ctx.pre_b, mode);
        }
        if (hs.post_w) {
            w.post_norm_weight = hs.post_w->forward(e, ctx.post_w, mode);
            w.post_norm_bias = hs.post_b->forward(e, ctx.post_b, mode);
        }
        ctx.ready = true;
        return w;
    }

    /// Adds the parameter gradients (the used rows of the layer and block-type embeddings included) and
    /// returns d condition. An empty field of `dw` is a zero gradient.
    tensor<B, T> backward(const weights_type& dw, context& ctx) {
        if (!ctx.ready) throw error(name_ + ": backward called without a forward");
        head_set& hs = heads_for(ctx.block);
        const std::size_t nb = ctx.trunk.condition.shape()[0];
        tensor<B, T> de = tensor<B, T>::zeros(*backend_, {nb, cfg_.projection});
        auto head = [&](linear<B, T>* l, const tensor<B, T>& g, typename linear<B, T>::context& c, const char* what) {
            if (g.empty()) return;
            if (l == nullptr)
                throw error(name_ + ": gradient of the " + what + " given, but this generator does not produce it");
            const tensor<B, T> d = l->backward(g, c);
            backend_->axpy(de.size(), T(1), d.data(), de.data());
        };
        head(&hs.down_w, dw.down_weight, ctx.down_w, "down weight");
        head(&hs.down_b, dw.down_bias, ctx.down_b, "down bias");
        head(&hs.up_w, dw.up_weight, ctx.up_w, "up weight");
        head(&hs.up_b, dw.up_bias, ctx.up_b, "up bias");
        head(hs.pre_w ? &*hs.pre_w : nullptr, dw.pre_norm_weight, ctx.pre_w, "pre-norm weight");
        head(hs.pre_b ? &*hs.pre_b : nullptr, dw.pre_norm_bias, ctx.pre_b, "pre-norm bias");
        head(hs.post_w ? &*hs.post_w : nullptr, dw.post_norm_weight, ctx.post_w, "post-norm weight");
        head(hs.post_b ? &*hs.post_b : nullptr, dw.post_norm_bias, ctx.post_b, "post-norm bias");
        return trunk_.backward(de, ctx.trunk);
    }

    /// In the order of the authors' named_parameters().
    template <class F>
    void visit_parameters(F&& f) {
        trunk_.visit_parameters(f);
        for (auto& hs : heads_) {
            hs.up_w.visit_parameters(f);
            hs.up_b.visit_parameters(f);
            hs.down_w.visit_parameters(f);
            hs.down_b.visit_parameters(f);
        }
        for (auto& hs : heads_)
            if (hs.pre_w) {
                hs.pre_w->visit_parameters(f);
                hs.pre_b->visit_parameters(f);
            }
        for (auto& hs : heads_)
            if (hs.post_w) {
                hs.post_w->visit_parameters(f);
                hs.post_b->visit_parameters(f);
            }
    }

private:
    /// The authors' names: "layer_id_embeddings.weight", "adapters_block_type.weight",
    /// "task_hypernet.task_embeding_generator.{0,2}.*", "LayerNorm.*".
    static hypernet_trunk_config trunk_config(const hyperformer_hypernet_config& c, const std::string& name) {
        hypernet_trunk_config t{.condition = c.task_embedding,
                                .embeddings = {{join_name(name, "layer_id_embeddings.weight"), c.layers,
                                                c.task_embedding}},
                                .hidden = c.hidden,
                                .projection = c.projection,
                                .layer_norm = c.task_layer_norm,
                                .layer_norm_eps = c.layer_norm_eps,
                                .linear1 = join_name(name, "task_hypernet.task_embeding_generator.0"),
                                .linear2 = join_name(name, "task_hypernet.task_embeding_generator.2"),
                                .norm = join_name(name, "LayerNorm")};
        if (c.variant == hyperformer_variant::hyperformer_pp)
            t.embeddings.push_back({join_name(name, "adapters_block_type.weight"), 2, c.task_embedding});
        return t;
    }
    static const hyperformer_hypernet_config& checked(const hyperformer_hypernet_config& c, const std::string& name) {
        if (c.task_embedding == 0 || c.layers == 0 || c.hidden == 0 || c.projection == 0 || c.features == 0)
            throw config_error(name + ": hyperformer_hypernet needs non-zero sizes");
        if (c.bottleneck() == 0)
            throw config_error(name + ": reduction factor " + std::to_string(c.reduction_factor) +
                               " leaves no bottleneck for " + std::to_string(c.features) + " features");
        if (!(c.layer_norm_eps > 0)) throw config_error(name + ": layer_norm_eps must be positive");
        return c;
    }
    static std::vector<linear<B, T>*> head_linears(head_set& hs) {
        std::vector<linear<B, T>*> v{&hs.up_w, &hs.up_b, &hs.down_w, &hs.down_b};
        for (auto* o : {&hs.pre_w, &hs.pre_b, &hs.post_w, &hs.post_b})
            if (*o) v.push_back(&**o);
        return v;
    }
    const head_set& heads_for(hyperformer_block block) const {
        return heads_[heads_.size() == 1 ? 0 : static_cast<std::size_t>(block)];
    }
    head_set& heads_for(hyperformer_block block) {
        return heads_[heads_.size() == 1 ? 0 : static_cast<std::size_t>(block)];
    }

    B* backend_;
    std::string name_;
    hyperformer_hypernet_config cfg_;
    hypernet_trunk<B, T> trunk_;
    std::vector<head_set> heads_;
};

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
// hyperformer_hypernet: several inputs (condition, layer, block): only parameterized + initializable.
static_assert(parameterized<hyperformer_hypernet<archetype_backend, float>>,
              "hyperadapt::hyperformer_hypernet must be parameterized (nn/layer.hpp)");
static_assert(initializable<hyperformer_hypernet<archetype_backend, float>>,
              "hyperadapt::hyperformer_hypernet must be initializable: initialize(rng)");
}  // namespace hyperadapt
