#pragma once
// PHA (Zhao et al., EMNLP 2023) on a BERT-family encoder (spec §2.10), and the per-task-adapter baseline that
// differs from it only in where the adapter weights come from.
//
//   single pass (default; the CA-MTL-style split of §2.10 (b)):
//     h   = layers [0, split) of the frozen backbone, each with a shared learned adapter   (PHA's encoder)
//     e_x = retriever(h, mask)                      masked mean pool -> MLP, (batch, 64)
//     W_l = hypernet(prototype[task], l)            one set of adapter weights per example, l in [split, L)
//     h   = layers [split, L) with the generated adapters  -> pooler -> the task's head
//   two passes (§2.10 (a), HyperDecoders' "generated encoder"):
//     e_x = retriever(all layers with the shared adapters); then all layers again with generated adapters.
//     Adapters are generated from the prototype, not from e_x, so inference skips the first pass; training
//     pays it for the contrastive losses.
//
//   loss = per-task head loss (mean over the tasks in the batch) + L_ins(e_x) + L_pro(e_x, prototypes)
//          (loss/pha_contrastive.hpp: weights 0.1, temperature 0.1, positive excluded as the code)
//
// adapter_source::per_task replaces prototypes + hypernetwork by one adapter per task and drops the retriever
// and the contrastive losses: the "plain adapters" row of the PHA and HyperFormer tables.
// adapter_source::hyperformerpp generates HyperFormer++ adapters (spec §3) instead, from a learned task
// embedding ("task_embeddings.weight", N(0, 1)) through one hypernetwork shared by every layer and both
// positions, in series after the attention and the feed-forward outputs of the same upper layers (bottleneck
// hidden / hyperformer_reduction). HyperFormer also trains every LayerNorm; here the freeze rule is the same
// for all sources, so the rows differ only in the adapters.
//
// The composition (models/multitask_model.hpp): bert_embeddings -> adapter_generator (prototypes -> hypernetwork,
// per-task tables or HyperFormer++'s generator: the layers' generated adapter weights) -> pha_encoder (the lower
// layer_stack with the shared adapters, the retriever tap, the upper layer_stack with the generated adapters; or
// the two passes) -> pooler / mean -> multitask_heads, with PHA's contrastive losses as the auxiliary loss.
// pha_recipe below is all the model-specific code.
//
// Freezing (apply_freezing) follows the reference's rule (only adapters, retriever, hypernetwork, prototypes
// and the task heads train): embeddings, every backbone weight of every layer and the pooler are frozen
// (`train_pooler` unfreezes the pooler, which a BERT head arguably owns).
#include <cstdint>
#include <filesystem>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hyperadapt/backend/contrastive_losses.hpp"
#include "hyperadapt/layers/pha/adapter_encoder_layer.hpp"
#include "hyperadapt/layers/pha/adapter_generators.hpp"
#include "hyperadapt/layers/pha/pha_encoder.hpp"
#include "hyperadapt/layers/pha/retriever.hpp"
#include "hyperadapt/loss/pha_contrastive.hpp"
#include "hyperadapt/models/multitask_model.hpp"
#include "hyperadapt/tensor/staged_upload.hpp"

namespace hyperadapt {

enum class adapter_source {
    prototype_hypernet,  ///< PHA: generated from the task's prototype
    per_task,            ///< one adapter per task (the plain-adapter baseline)
    hyperformerpp,       ///< HyperFormer++: generated from a learned task embedding, after both sub-layers
};

enum class pha_passes { single, two };

struct pha_bert_options {
    bert_config backbone;
    std::vector<task_head_spec> tasks;  ///< one head per task, in task-id order
    adapter_source source = adapter_source::prototype_hypernet;
    pha_passes passes = pha_passes::single;
    /// First layer with task adapters (single pass: the retriever reads the output of layer split-1);
    /// max = half the layers. Two passes generate adapters for every layer and ignore this.
    std::size_t split = std::numeric_limits<std::size_t>::max();
    std::size_t bottleneck = 64;       ///< r of every adapter (PHA: 64)
    bool shared_adapters = true;       ///< PHA's task-agnostic learned adapters in the layers without task adapters
    std::size_t prototype_dim = 64;    ///< retriever output = prototype width = hypernet condition
    std::size_t retriever_hidden = 128;
    std::size_t hypernet_hidden = 128;
    std::size_t hypernet_projection = 64;
    std::size_t layer_embedding = 64;
    std::size_t hyperformer_reduction = 32;  ///< HyperFormer++ bottleneck = hidden / this (published: 32)
    pha_contrastive_options contrastive{};
    bool instance_loss = true;
    bool prototype_loss = true;  ///< needs at least two tasks (the code's denominator excludes the positive)
    /// False: the contrastive losses train the retriever and the prototypes only, not the encoder's shared
    /// adapters below it (the reference lets them through). L_ins pulls all examples of a task together; through
    /// the shared adapters that can erase what the heads need to tell those examples apart.
    bool contrastive_trains_encoder = true;
    bool train_pooler = false;
    head_input heads_read = head_input::pooler;  ///< mean: masked mean of the last layer (the pooler is unused)
    double head_dropout = 0.1;
};

/// Parameter counts the way the PHA and HyperFormer papers count them: trainable / tasks / backbone.
struct pha_parameter_report {
    std::size_t backbone = 0;        ///< embeddings + encoder weights + pooler (the pretrained model)
    std::size_t trainable = 0;
    std::size_t heads = 0;           ///< task heads (part of trainable)
    std::size_t tasks = 0;
    [[nodiscard]] double percent_per_task() const {
        return backbone && tasks ? 100.0 * static_cast<double>(trainable) / static_cast<double>(tasks) /
                                       static_cast<double>(backbone)
                                 : 0.0;
    }
};

/// The first layer with task adapters: options.split (half the layers by default), 0 with two passes.
inline std::size_t pha_first_generated(const pha_bert_options& o) {
    if (o.passes == pha_passes::two) return 0;
    return o.split == std::numeric_limits<std::size_t>::max() ? o.backbone.layers / 2 : o.split;
}

/// PHA's contrastive losses on the retriever's e_x (loss/pha_contrastive.hpp): L_ins and L_pro against the
/// prototypes, added to the heads' loss; their gradient goes to the encoder's tap and to the prototypes.
template <class Model>
class pha_contrastive {
    using B = typename Model::backend_type;
    using T = typename Model::value_type;

public:
    struct context {
        typename pha_instance_loss<B, T>::context ins;
        typename pha_prototype_loss<B, T>::context pro;
        double instance_loss = 0, prototype_loss = 0;
        bool used = false;
        /// The losses ran on the backend (contrastive_primitives): their gradients, unscaled, wait here.
        bool on_backend = false;
        tensor<B, T> feature_grad, prototype_grad;
    };

    /// The retriever runs in the forwards of a loss (training or not), never for outputs().
    void before_forward(typename Model::context& ctx) const { ctx.encoder.tap_requested = true; }

    double forward_loss(const multitask_batch<B, T>& b, const Model& m, typename Model::context& ctx, run_mode mode) const {
        auto& a = ctx.auxiliary;
        a = {};
        const tensor<B, T>& e = ctx.encoder.retriever_output;
        if (e.empty()) return 0;  // not a tapped (training) forward
        a.used = true;
        const pha_contrastive_options& co = m.options().contrastive;
        const bool with_prototypes = use_prototype_loss(m);
        // The embeddings and the prototypes come back in one copy (on a GPU one wait, not two).
        const tensor<B, T>* P = with_prototypes ? &prototypes(m).weight().value : nullptr;
        B& backend = e.backend();
        // On the backend where it can (one launch, the two loss values back in one copy); on the host in a data-
        // parallel batch (its instance loss pairs the rows of every rank) or on a backend without the primitive.
        if constexpr (contrastive_primitives<B, T>)
            if (!b.exchange) return forward_on_backend(b, m, e, P, a, mode);
        tensor<B, T> both(backend, {e.size() + (P ? P->size() : 0)});
        backend.copy(e.data(), both.data(), e.size());
        if (P) backend.copy(P->data(), both.data() + e.size(), P->size());
        const std::vector<T> host = both.to_host();
        gathered_rows g = gather(std::span<const T>(host).first(e.size()), e.shape()[1], b);
        double loss = 0;
        if (m.options().instance_loss) {
            a.instance_loss = pha_instance_loss<B, T>(backend, co).forward(g.features, g.tasks, g.dim, g.share, a.ins);
            check_scalar(mode.anomaly, "pha_instance_loss", "loss", a.instance_loss);
            loss += a.instance_loss;
        }
        if (P) {
            a.prototype_loss = pha_prototype_loss<B, T>(backend, co)
                                   .forward(g.features, g.tasks, g.dim, std::vector<double>(host.begin() + static_cast<std::ptrdiff_t>(e.size()), host.end()),
                                            P->shape(), g.share, a.pro);
            check_scalar(mode.anomaly, "pha_prototype_loss", "loss", a.prototype_loss);
            loss += a.prototype_loss;
        }
        return loss;
    }

    void backward(Model& m, typename Model::context& ctx, T loss_scale) {
        auto& a = ctx.auxiliary;
        if (!a.used) return;
        B& b = ctx.encoder.retriever_output.backend();
        if (a.on_backend) {
            // The losses' gradients of 1 x loss, scaled here: by a power of two (the loss scaler's), so the same
            // bits as the host path's, which scales before rounding to T. Scaled into a copy: the context keeps
            // the unscaled gradients, so a second backward of the same forward scales them once too.
            tensor<B, T> de = a.feature_grad;
            if (loss_scale != T(1)) {
                de = tensor<B, T>(b, a.feature_grad.shape());
                b.copy(a.feature_grad.data(), de.data(), de.size());
                b.scale(de.size(), loss_scale, de.data());
            }
            check_input_gradient(ctx.anomaly, "pha_contrastive", "", de);
            if (!a.prototype_grad.empty()) {
                auto& P = m.conditioning().template get<prototype_conditioning<B, T>>()->prototypes().weight();
                check_input_gradient(ctx.anomaly, "pha_prototype_loss", "", a.prototype_grad, "prototype gradient");
                if (P.trainable()) b.axpy(P.size(), loss_scale, a.prototype_grad.data(), P.grad.data());
            }
            ctx.encoder.tap_gradient = std::move(de);
            return;
        }
        const pha_contrastive_options& co = m.options().contrastive;
        // Both losses' gradients for the tap, each rounded to T and added in T as the backend would add them
        // (the same bits), and the prototypes' gradient, uploaded in one copy (on a GPU one transfer, not three).
        std::vector<T> de, dk;
        hyperadapt::shape de_shape, dk_shape;
        if (m.options().instance_loss) {
            const std::vector<double> d = pha_instance_loss<B, T>(b, co).backward_values(a.ins, static_cast<double>(loss_scale));
            de.assign(d.begin(), d.end());
            de_shape = {a.ins.share.count, a.ins.dim};
            check_input_gradient_values(ctx.anomaly, "pha_instance_loss", "", de_shape, std::span<const T>(de));
        }
        if (use_prototype_loss(m)) {
            const auto g = pha_prototype_loss<B, T>(b, co).backward_values(a.pro, static_cast<double>(loss_scale));
            const std::vector<T> df(g.features.begin(), g.features.end());
            check_input_gradient_values(ctx.anomaly, "pha_prototype_loss", "", a.pro.fshape, std::span<const T>(df));
            if (de.empty()) {
                de = df;
                de_shape = a.pro.fshape;
            } else {
                if (df.size() != de.size())
                    throw shape_error("pha_contrastive: the two losses' gradients have " + std::to_string(de.size()) +
                                      " and " + std::to_string(df.size()) + " values");
                for (std::size_t i = 0; i < de.size(); ++i) de[i] = de[i] + df[i];
            }
            dk.assign(g.prototypes.begin(), g.prototypes.end());
            dk_shape = a.pro.kshape;
            check_input_gradient_values(ctx.anomaly, "pha_prototype_loss", "", dk_shape, std::span<const T>(dk),
                                        "prototype gradient");
        }
        staged_upload<B> stage;
        const auto de_at = stage.add(de);
        const auto dk_at = stage.add(dk);
        stage.upload(b);
        if (!dk.empty()) {
            auto& P = m.conditioning().template get<prototype_conditioning<B, T>>()->prototypes().weight();
            if (P.trainable()) b.axpy(P.size(), T(1), stage.view(dk_at, dk_shape).data(), P.grad.data());
        }
        ctx.encoder.tap_gradient = de.empty() ? tensor<B, T>{} : stage.view(de_at, de_shape);
    }

private:
    /// Both losses in one backend call (backend/contrastive_losses.hpp): the embeddings and prototypes stay where
    /// they are, and only the two loss values come back (one copy). The same values as the host path's.
    double forward_on_backend(const multitask_batch<B, T>& b, const Model& m, const tensor<B, T>& e,
                              const tensor<B, T>* P, context& a, run_mode mode) const
        requires contrastive_primitives<B, T>
    {
        pha_detail::check_embeddings("pha_contrastive", "retriever embeddings", e.shape());
        const std::size_t rows = e.shape()[0], dim = e.shape()[1], tasks = P ? P->shape()[0] : 0;
        expect_shape("pha_contrastive", "task ids", shape{rows}, b.task_ids.shape());
        if (b.host_task_ids.size() != rows)
            throw shape_error("pha_contrastive: the batch holds " + std::to_string(b.host_task_ids.size()) +
                              " host task ids for " + std::to_string(rows) + " rows");
        if (P) {
            expect_shape("pha_prototype_loss", "prototypes", shape{tasks, dim}, P->shape());
            for (std::size_t i = 0; i < rows; ++i)  // the batch's host copy: no copy back
                if (b.host_task_ids[i] < 0 || static_cast<std::size_t>(b.host_task_ids[i]) >= tasks)
                    throw error("pro_ins_loss: task id " + std::to_string(b.host_task_ids[i]) + " at row " +
                                std::to_string(i) + " is out of range for " + std::to_string(tasks) + " prototypes");
        }
        const pha_contrastive_options& co = m.options().contrastive;
        contrastive_settings settings = pha_detail::settings_of(co);
        settings.instance = m.options().instance_loss;
        settings.prototype = P != nullptr;
        B& backend = e.backend();
        a.feature_grad = tensor<B, T>(backend, {rows, dim});
        if (P) a.prototype_grad = tensor<B, T>(backend, P->shape());
        tensor<B, double> losses(backend, {2});
        backend.contrastive_losses(rows, dim, tasks, e.data(), b.task_ids.data(), P ? P->data() : nullptr, settings,
                                   losses.data(), a.feature_grad.data(), P ? a.prototype_grad.data() : nullptr);
        const std::vector<double> values = losses.to_host();
        a.on_backend = true;
        double loss = 0;
        if (settings.instance) {
            a.instance_loss = values[0];
            check_scalar(mode.anomaly, "pha_instance_loss", "loss", a.instance_loss);
            loss += a.instance_loss;
        }
        if (P) {
            a.prototype_loss = values[1];
            check_scalar(mode.anomaly, "pha_prototype_loss", "loss", a.prototype_loss);
            loss += a.prototype_loss;
        }
        return loss;
    }

    /// The embeddings and task ids the losses see: this batch's, or in data-parallel training (the batch's
    /// exchange set) the global batch's, gathered from every rank, with this rank's rows as the share.
    struct gathered_rows {
        std::vector<double> features;
        std::vector<std::int32_t> tasks;
        std::size_t dim = 0;
        loss_row_share share;
    };
    static gathered_rows gather(std::span<const T> e, std::size_t dim, const multitask_batch<B, T>& b) {
        gathered_rows g;
        g.dim = dim;
        g.features.assign(e.begin(), e.end());
        g.tasks = b.host_task_ids;  // kept by make_batch: no copy back
        if (!b.exchange) return g;
        // One message per rank: its rows' features, then their task ids.
        std::vector<double> mine = g.features;
        mine.insert(mine.end(), g.tasks.begin(), g.tasks.end());
        const auto all = b.exchange.allgather(mine);
        g.features.clear();
        g.tasks.clear();
        for (std::size_t r = 0; r < all.size(); ++r) {
            const std::size_t rows = all[r].size() / (g.dim + 1);
            if (rows * (g.dim + 1) != all[r].size())
                throw shape_error("pha_contrastive: rank " + std::to_string(r) + " sent " + std::to_string(all[r].size()) +
                                  " values, not rows of " + std::to_string(g.dim) + " features and a task id");
            if (static_cast<int>(r) == b.exchange.rank) g.share = {g.tasks.size(), rows};
            g.features.insert(g.features.end(), all[r].begin(), all[r].begin() + static_cast<std::ptrdiff_t>(rows * g.dim));
            for (std::size_t i = 0; i < rows; ++i) g.tasks.push_back(static_cast<std::int32_t>(all[r][rows * g.dim + i]));
        }
        if (b.exchange.rank < 0 || static_cast<std::size_t>(b.exchange.rank) >= all.size())
            throw config_error("pha_contrastive: rank " + std::to_string(b.exchange.rank) + " of a gather over " +
                               std::to_string(all.size()) + " ranks");
        return g;
    }
    static bool use_prototype_loss(const Model& m) {
        return m.options().prototype_loss && m.options().tasks.size() >= 2;
    }
    static const embedding<B, T>& prototypes(const Model& m) {
        const auto* g = m.conditioning().template get<prototype_conditioning<B, T>>();
        if (!g) throw config_error("pha_bert: the contrastive losses need PHA's prototypes (adapter_source::prototype_hypernet)");
        return g->prototypes();
    }
};

template <elementwise_backend B, class T = float>
struct pha_recipe {
    using backend_type = B;
    using value_type = T;
    using options_type = pha_bert_options;
    using conditioning_type = adapter_generator<B, T>;
    using encoder_type = pha_encoder<B, T>;
    template <class Model>
    using auxiliary_type = pha_contrastive<Model>;
    static constexpr bool strict_backbone = false;  ///< adapters, retriever, generator and heads are not in it

    static conditioning_type make_conditioning(B& b, const pha_bert_options& o) {
        check(o);
        const std::size_t first = pha_first_generated(o), generated = o.backbone.layers - first;
        switch (o.source) {
            case adapter_source::per_task:
                return conditioning_type(task_table_conditioning<B, T>(b, o.tasks.size(), o.backbone.hidden,
                                                                       o.bottleneck, first, generated));
            case adapter_source::hyperformerpp:
                return conditioning_type(hyperformer_conditioning<B, T>(b, o.tasks.size(), hyperformer_config(o), first));
            case adapter_source::prototype_hypernet: break;
        }
        prototypical_hypernet_config c;
        c.condition = o.prototype_dim;
        c.layer_embedding = o.layer_embedding;
        c.layers = generated;
        c.hidden = o.hypernet_hidden;
        c.projection = o.hypernet_projection;
        c.features = o.backbone.hidden;
        c.bottleneck = o.bottleneck;
        return conditioning_type(prototype_conditioning<B, T>(b, o.tasks.size(), c, first));
    }

    static encoder_type make_encoder(B& b, const pha_bert_options& o) {
        const std::size_t first = pha_first_generated(o), n = o.backbone.layers;
        const bool two = o.passes == pha_passes::two, hf = o.source == adapter_source::hyperformerpp;
        const auto layer = o.backbone.layer();
        const auto lower = adapter_layer_config::from(layer, o.bottleneck, o.shared_adapters);
        const auto upper = adapter_layer_config::from(layer, o.bottleneck, o.shared_adapters && two,
                                                      hf ? hyperformer_config(o).bottleneck() : 0);
        const bool pha = o.source == adapter_source::prototype_hypernet;
        return encoder_type(b, layer_stack<adapter_encoder_layer<B, T>>(b, lower, first, "encoder", 0),
                            layer_stack<adapter_encoder_layer<B, T>>(b, upper, n - first, "encoder", first),
                            instance_retriever<B, T>(b, o.backbone.hidden, o.retriever_hidden, o.prototype_dim, "retriever.mlp"),
                            {.two_passes = two,
                             .retriever = pha,
                             .tap = pha && (o.instance_loss || (o.prototype_loss && o.tasks.size() >= 2)),
                             .tap_trains_encoder = o.contrastive_trains_encoder});
    }

    /// The reference's rule: only adapters, retriever, generator, prototypes and the task heads train.
    static bool frozen(const pha_bert_options& o, const std::string& name) {
        const bool pooler_trains = o.train_pooler && o.heads_read == head_input::pooler;
        return is_backbone(name) && !(pooler_trains && name.rfind("pooler.", 0) == 0);
    }
    static std::string checkpoint_name(const pha_bert_options&, const std::string& name) { return name; }

    static bool is_backbone(const std::string& name) {
        if (name.rfind("embeddings.", 0) == 0 || name.rfind("pooler.", 0) == 0) return true;
        return name.rfind("encoder.layer.", 0) == 0 && name.find(".adapter.") == std::string::npos;
    }
    static hyperformer_hypernet_config hyperformer_config(const pha_bert_options& o) {
        auto c = hyperformerpp_config(o.backbone.hidden, o.backbone.layers - pha_first_generated(o), o.hyperformer_reduction);
        c.task_embedding = o.prototype_dim;
        return c;
    }
    static void check(const pha_bert_options& o) {
        if (o.tasks.empty()) throw config_error("pha_bert: at least one task is needed");
        if (o.source != adapter_source::prototype_hypernet && o.passes == pha_passes::two)
            throw config_error("pha_bert: two passes exist to feed PHA's retriever, which per-task and HyperFormer++ "
                               "adapters do not have; use pha_passes::single with them");
        if (o.source == adapter_source::hyperformerpp &&
            (o.hyperformer_reduction == 0 || o.backbone.hidden % o.hyperformer_reduction != 0))
            throw config_error("pha_bert: hyperformer_reduction " + std::to_string(o.hyperformer_reduction) +
                               " must divide the hidden size " + std::to_string(o.backbone.hidden));
        const std::size_t split = pha_first_generated(o);
        if (o.passes == pha_passes::single && (split == 0 || split >= o.backbone.layers))
            throw config_error("pha_bert: the single-pass split must leave layers on both sides, got split " +
                               std::to_string(split) + " of " + std::to_string(o.backbone.layers) +
                               " layers (use pha_passes::two to adapt every layer)");
    }
};

/// PHA, per-task adapters or HyperFormer++ on a BERT-family encoder: the composition of pha_recipe, plus the
/// queries the papers' analyses need.
template <elementwise_backend B, class T = float>
class pha_bert : public multitask_model<pha_recipe<B, T>> {
    using base = multitask_model<pha_recipe<B, T>>;

public:
    using typename base::context;
    using base::base;

    [[nodiscard]] std::size_t first_generated() const noexcept { return pha_first_generated(this->options()); }

    /// Parameter counts the way the PHA and HyperFormer papers count them.
    [[nodiscard]] pha_parameter_report parameter_report() {
        pha_parameter_report r;
        r.tasks = this->options().tasks.size();
        this->visit_parameters([&](const std::string& name, parameter<B, T>& p) {
            if (pha_recipe<B, T>::is_backbone(name)) r.backbone += p.size();
            if (p.trainable()) r.trainable += p.size();
            if (p.trainable() && name.rfind("heads.", 0) == 0) r.heads += p.size();
        });
        return r;
    }

    /// PHA's prototypes (config_error for the other adapter sources).
    embedding<B, T>& prototypes() {
        auto* g = this->conditioning().template get<prototype_conditioning<B, T>>();
        if (!g) throw config_error("pha_bert: only adapter_source::prototype_hypernet has prototypes");
        return g->prototypes();
    }
    const embedding<B, T>& prototypes() const {
        const auto* g = this->conditioning().template get<prototype_conditioning<B, T>>();
        if (!g) throw config_error("pha_bert: only adapter_source::prototype_hypernet has prototypes");
        return g->prototypes();
    }
    instance_retriever<B, T>& retriever() noexcept { return this->encoder().retriever(); }

    /// The retriever's instance embeddings e_x (batch, prototype_dim) of a batch, without gradients.
    tensor<B, T> instance_embeddings(const multitask_batch<B, T>& b, run_mode mode = run_mode::inference()) const;
};

// Out of the class body, as multitask_model's members: `extern template class pha_bert<B, T>;` keeps it out
// of the translation units that only use the model.
template <elementwise_backend B, class T>
tensor<B, T> pha_bert<B, T>::instance_embeddings(const multitask_batch<B, T>& b, run_mode mode) const {
    context ctx;
    const tensor<B, T> x = this->embeddings().forward(b.input_ids, b.token_type_ids, ctx.embeddings, mode,
                                                      {b.host_input_ids, b.host_token_type_ids});
    const layer_condition<B, T> c{.mask = &b.mask, .task_ids = &b.task_ids, .tasks = batch_tasks<B>::of(b),
                                  .mean_weights = b.mean_weights.empty() ? nullptr : &b.mean_weights};
    return this->encoder().instance_embeddings(x, c, ctx.encoder, mode);
}

}  // namespace hyperadapt
