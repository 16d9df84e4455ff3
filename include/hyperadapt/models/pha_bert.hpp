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
// Freezing (apply_freezing) follows the reference's rule (only adapters, retriever, hypernetwork, prototypes
// and the task heads train): embeddings, every backbone weight of every layer and the pooler are frozen
// (`train_pooler` unfreezes the pooler, which a BERT head arguably owns).
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hyperadapt/io/hf_checkpoint.hpp"
#include "hyperadapt/layers/bert_embeddings.hpp"
#include "hyperadapt/layers/embedding.hpp"
#include "hyperadapt/layers/mean_pooling.hpp"
#include "hyperadapt/layers/multitask_heads.hpp"
#include "hyperadapt/layers/pha/adapter_encoder_layer.hpp"
#include "hyperadapt/layers/pha/hyperformer_hypernet.hpp"
#include "hyperadapt/layers/pha/hypernet.hpp"
#include "hyperadapt/layers/pha/retriever.hpp"
#include "hyperadapt/layers/pha/task_adapter_table.hpp"
#include "hyperadapt/layers/pooler.hpp"
#include "hyperadapt/loss/pha_contrastive.hpp"
#include "hyperadapt/models/bert.hpp"
#include "hyperadapt/nn/anomaly.hpp"
#include "hyperadapt/nn/parameters.hpp"
#include "hyperadapt/data/multitask_batch.hpp"

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

template <elementwise_backend B, class T = float>
class pha_bert {
public:
    using backend_type = B;
    using value_type = T;
    using layer_type = adapter_encoder_layer<B, T>;
    struct context {
        typename bert_embeddings<B, T>::context embeddings;
        std::vector<typename layer_type::context> first_pass, layers;
        typename instance_retriever<B, T>::context retriever;
        typename embedding<B, T>::context prototype_rows;
        std::vector<typename prototypical_hypernet<B, T>::context> hypernet;
        std::vector<typename task_adapter_table<B, T>::context> tables;
        std::vector<typename hyperformer_hypernet<B, T>::context> hf_attention, hf_ffn;
        typename pooler<B, T>::context pooler;
        typename mean_pooling<B, T>::context mean;
        typename multitask_heads<B, T>::context heads;
        typename pha_instance_loss<B, T>::context ins;
        typename pha_prototype_loss<B, T>::context pro;
        tensor<B, std::int32_t> task_ids;
        tensor<B, T> retriever_output;  // e_x (batch, prototype_dim) when with_contrastive
        std::size_t lower_layers = 0;  ///< single pass: layers run before the retriever
        bool with_contrastive = false;
        anomaly_detector* anomaly = nullptr;  // run_mode::anomaly of the forward, for backward's checks
        double task_loss = 0, instance_loss = 0, prototype_loss = 0;
    };

    pha_bert(B& backend, pha_bert_options o)
        : backend_(&backend),
          opts_(check(std::move(o))),
          embeddings_(backend, opts_.backbone.embeddings(), "embeddings"),
          retriever_(backend, opts_.backbone.hidden, opts_.retriever_hidden, opts_.prototype_dim, "retriever.mlp"),
          prototypes_(backend, opts_.tasks.size(), opts_.prototype_dim,
                      opts_.source == adapter_source::hyperformerpp ? "task_embeddings" : "prototypes"),
          pooler_(backend, opts_.backbone.hidden, "pooler"),
          mean_(backend, opts_.backbone.hidden, "mean_pooling"),
          heads_(backend, opts_.backbone.hidden, opts_.tasks, static_cast<T>(opts_.head_dropout), "heads"),
          ins_loss_(backend, opts_.contrastive),
          pro_loss_(backend, opts_.contrastive) {
        const std::size_t n = opts_.backbone.layers, first = first_generated();
        const bool hf = opts_.source == adapter_source::hyperformerpp;
        layers_.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
            const bool own = opts_.shared_adapters && (i < first || opts_.passes == pha_passes::two);
            layers_.emplace_back(backend,
                                 adapter_layer_config::from(opts_.backbone.layer(), opts_.bottleneck, own,
                                                            hf && i >= first ? hyperformer_config(opts_).bottleneck() : 0),
                                 "encoder.layer." + std::to_string(i), i);
        }
        if (opts_.source == adapter_source::prototype_hypernet) hypernet_.emplace(backend, hypernet_config(opts_), "hypernet");
        if (hf) hf_hypernet_.emplace(backend, hyperformer_config(opts_), "hypernet");
        if (opts_.source == adapter_source::per_task) {
            tables_.reserve(n - first);
            for (std::size_t i = first; i < n; ++i)
                tables_.emplace_back(backend, opts_.tasks.size(), opts_.backbone.hidden, opts_.bottleneck,
                                     "task_adapters." + std::to_string(i));
        }
    }

    /// Random initialisation of everything: BERT's scheme for the backbone and heads, the authors' for the
    /// adapters (near-zero), the hypernetwork (hyperfan-in) and the prototypes (N(0, 1)).
    template <class Rng>
    void initialize(Rng& rng) {
        const auto s = static_cast<T>(opts_.backbone.initializer_range);
        embeddings_.initialize(rng, s);
        for (auto& l : layers_) l.initialize(rng, s);
        retriever_.initialize(rng, s);
        prototypes_.initialize(rng, T(1));
        if (hypernet_) hypernet_->initialize(rng);
        if (hf_hypernet_) hf_hypernet_->initialize(rng);
        for (auto& t : tables_) t.initialize(rng);
        pooler_.initialize(rng, s);
        heads_.initialize(rng, s);
    }

    /// Loads a Hugging Face BERT checkpoint into the backbone by name (adapters, retriever, hypernetwork,
    /// prototypes and heads keep their values). Returns the load report.
    io::load_report load_backbone(const std::filesystem::path& checkpoint) {
        return io::load_pretrained(*this, checkpoint, {.strict = false});
    }

    void apply_freezing() {
        visit_parameters([&](const std::string& name, parameter<B, T>& p) {
            const bool pooler_trains = opts_.train_pooler && opts_.heads_read == head_input::pooler;
            if (is_backbone(name) && !(pooler_trains && name.rfind("pooler.", 0) == 0))
                p.freeze();
            else
                p.unfreeze();
        });
    }

    [[nodiscard]] pha_parameter_report parameter_report() {
        pha_parameter_report r;
        r.tasks = opts_.tasks.size();
        visit_parameters([&](const std::string& name, parameter<B, T>& p) {
            if (is_backbone(name)) r.backbone += p.size();
            if (p.trainable()) r.trainable += p.size();
            if (p.trainable() && name.rfind("heads.", 0) == 0) r.heads += p.size();
        });
        return r;
    }

    [[nodiscard]] const pha_bert_options& options() const noexcept { return opts_; }
    [[nodiscard]] std::string name() const { return ""; }
    [[nodiscard]] std::size_t first_generated() const noexcept {
        if (opts_.passes == pha_passes::two) return 0;
        return split_of(opts_);
    }
    multitask_heads<B, T>& heads() noexcept { return heads_; }
    embedding<B, T>& prototypes() noexcept { return prototypes_; }
    const embedding<B, T>& prototypes() const noexcept { return prototypes_; }
    instance_retriever<B, T>& retriever() noexcept { return retriever_; }

    /// The retriever's instance embeddings e_x (batch, prototype_dim) of a batch, without gradients.
    tensor<B, T> instance_embeddings(const multitask_batch<B, T>& b, run_mode mode = run_mode::inference()) const {
        context ctx;
        const auto x = embeddings_.forward(b.input_ids, b.token_type_ids, ctx.embeddings, mode);
        const std::size_t lower = opts_.passes == pha_passes::two ? layers_.size() : first_generated();
        ctx.first_pass.resize(lower);
        tensor<B, T> h = x;
        const layer_condition<B, T> plain{.mask = &b.mask};
        for (std::size_t i = 0; i < lower; ++i) h = layers_[i].forward(h, plain, ctx.first_pass[i], mode);
        tensor<B, T> e = retriever_.forward(h, b.mask, ctx.retriever, mode);
        check_output(mode.anomaly, retriever_.name(), "", e);
        return e;
    }

    double forward_loss(const multitask_batch<B, T>& b, context& ctx, run_mode mode) const {
        ctx = {};
        const tensor<B, T> pooled = encode(b, ctx, mode, /*training=*/true);
        ctx.task_loss = heads_.forward_loss(pooled, task_rows(b), b.labels, b.scores, ctx.heads, mode);
        check_scalar(mode.anomaly, heads_.name(), "loss", ctx.task_loss);
        double loss = ctx.task_loss;
        if (ctx.with_contrastive) {
            if (opts_.instance_loss) {
                ctx.instance_loss = ins_loss_.forward(ctx_features(ctx), b.task_ids, ctx.ins);
                check_scalar(mode.anomaly, ins_loss_.name(), "loss", ctx.instance_loss);
                loss += ctx.instance_loss;
            }
            if (use_prototype_loss()) {
                ctx.prototype_loss = pro_loss_.forward(ctx_features(ctx), b.task_ids, prototype_table(), ctx.pro);
                check_scalar(mode.anomaly, pro_loss_.name(), "loss", ctx.prototype_loss);
                loss += ctx.prototype_loss;
            }
        }
        return loss;
    }

    /// Gradients of loss_scale x the batch loss.
    void backward(context& ctx, T loss_scale = T(1)) {
        const tensor<B, T> dsentence = heads_.backward(ctx.heads, loss_scale);
        check_input_gradient(ctx.anomaly, heads_.name(), "", dsentence);
        tensor<B, T> dh = opts_.heads_read == head_input::mean ? mean_.backward(dsentence, ctx.mean)
                                                               : pooler_.backward(dsentence, ctx.pooler);
        if (opts_.heads_read == head_input::mean) check_input_gradient(ctx.anomaly, mean_.name(), "", dh);
        const std::size_t n = layers_.size(), first = first_generated();
        tensor<B, T> dcond;  // d prototype rows, summed over layers
        std::vector<generated_adapter_gradients<B, T>> generated(n);
        layer_condition_gradients<B, T> dc{.task_embedding = {}, .generated = &generated};
        for (std::size_t i = n; i-- > first;) {
            dh = layers_[i].backward(dh, ctx.layers[i], dc);
            auto& g = generated[i];
            auto add = [&](const tensor<B, T>& dk) {
                check_input_gradient(ctx.anomaly, opts_.source == adapter_source::hyperformerpp ? hf_hypernet_->name()
                                                                                               : hypernet_->name(),
                                     "", dk, "prototype gradient");
                if (dcond.empty())
                    dcond = dk;
                else
                    backend_->axpy(dk.size(), T(1), dk.data(), dcond.data());
            };
            const std::size_t j = i - first;
            switch (opts_.source) {
                case adapter_source::per_task: tables_[j].backward(g.parallel, ctx.tables[j]); break;
                case adapter_source::prototype_hypernet: add(hypernet_->backward(g.parallel, ctx.hypernet[j])); break;
                case adapter_source::hyperformerpp:
                    add(hf_hypernet_->backward(g.after_ffn, ctx.hf_ffn[j]));
                    add(hf_hypernet_->backward(g.after_attention, ctx.hf_attention[j]));
                    break;
            }
        }
        if (!dcond.empty()) prototypes_.backward(dcond, ctx.prototype_rows);
        // Two passes: the second pass's input gradient goes straight to the embeddings and the first pass
        // gets only the retriever's gradient. Single pass: both meet at the split.
        tensor<B, T> d_embeddings_second_pass;
        if (opts_.passes == pha_passes::two) d_embeddings_second_pass = std::exchange(dh, tensor<B, T>{});
        if (ctx.with_contrastive) {
            tensor<B, T> de;
            auto add = [&](const tensor<B, T>& t, const std::string& loss) {
                check_input_gradient(ctx.anomaly, loss, "", t);
                if (de.empty())
                    de = t;
                else
                    backend_->axpy(t.size(), T(1), t.data(), de.data());
            };
            if (opts_.instance_loss)
                add(ins_loss_.backward(ctx.ins, static_cast<double>(loss_scale)), ins_loss_.name());
            if (use_prototype_loss()) {
                auto gp = pro_loss_.backward(ctx.pro, static_cast<double>(loss_scale));
                add(gp.features, pro_loss_.name());
                check_input_gradient(ctx.anomaly, pro_loss_.name(), "", gp.prototypes, "prototype gradient");
                auto& P = prototypes_.weight();
                if (P.trainable()) backend_->axpy(P.size(), T(1), gp.prototypes.data(), P.grad.data());
            }
            const tensor<B, T> dr = retriever_.backward(de, ctx.retriever);
            check_input_gradient(ctx.anomaly, retriever_.name(), "", dr);
            if (!opts_.contrastive_trains_encoder) {
                // stop here: the retriever's input gradient is dropped
            } else if (dh.empty()) {
                dh = dr;
            } else {
                backend_->axpy(dh.size(), T(1), dr.data(), dh.data());
            }
        }
        const bool embeddings_train = embeddings_trainable();
        if (!dh.empty()) {
            auto& lower = opts_.passes == pha_passes::two ? ctx.first_pass : ctx.layers;
            std::size_t stop = 0;  // layers below `stop` have nothing that trains: no need to go further
            if (!embeddings_train)
                while (stop < ctx.lower_layers && !layer_trains(stop)) ++stop;
            for (std::size_t i = ctx.lower_layers; i-- > stop;) dh = layers_[i].backward(dh, lower[i], dc);
            if (stop != 0) dh = {};
        }
        if (!embeddings_train) return;
        if (!d_embeddings_second_pass.empty()) {
            if (dh.empty())
                dh = std::move(d_embeddings_second_pass);
            else
                backend_->axpy(dh.size(), T(1), d_embeddings_second_pass.data(), dh.data());
        }
        if (!dh.empty()) embeddings_.backward(dh, ctx.embeddings);
    }

    /// Per-row head outputs without gradients.
    std::vector<std::vector<T>> outputs(const multitask_batch<B, T>& b, run_mode mode) const {
        context ctx;
        return heads_.outputs(encode(b, ctx, mode, /*training=*/false), task_rows(b), mode);
    }

    template <class F>
    void visit_parameters(F&& f) {
        embeddings_.visit_parameters(f);
        for (auto& l : layers_) l.visit_parameters(f);
        if (opts_.source == adapter_source::prototype_hypernet) {
            retriever_.visit_parameters(f);
            prototypes_.visit_parameters(f);
            hypernet_->visit_parameters(f);
        }
        if (opts_.source == adapter_source::hyperformerpp) {
            prototypes_.visit_parameters(f);
            hf_hypernet_->visit_parameters(f);
        }
        for (auto& t : tables_) t.visit_parameters(f);
        pooler_.visit_parameters(f);
        heads_.visit_parameters(f);
    }

private:
    /// The first layer with task adapters in a single pass: options.split, or half the layers.
    static std::size_t split_of(const pha_bert_options& o) {
        return o.split == std::numeric_limits<std::size_t>::max() ? o.backbone.layers / 2 : o.split;
    }
    static pha_bert_options check(pha_bert_options o) {
        if (o.tasks.empty()) throw config_error("pha_bert: at least one task is needed");
        if (o.source != adapter_source::prototype_hypernet && o.passes == pha_passes::two)
            throw config_error("pha_bert: two passes exist to feed PHA's retriever, which per-task and HyperFormer++ "
                               "adapters do not have; use pha_passes::single with them");
        if (o.source == adapter_source::hyperformerpp &&
            (o.hyperformer_reduction == 0 || o.backbone.hidden % o.hyperformer_reduction != 0))
            throw config_error("pha_bert: hyperformer_reduction " + std::to_string(o.hyperformer_reduction) +
                               " must divide the hidden size " + std::to_string(o.backbone.hidden));
        const std::size_t split = split_of(o);
        if (o.passes == pha_passes::single && (split == 0 || split >= o.backbone.layers))
            throw config_error("pha_bert: the single-pass split must leave layers on both sides, got split " +
                               std::to_string(split) + " of " + std::to_string(o.backbone.layers) +
                               " layers (use pha_passes::two to adapt every layer)");
        return o;
    }
    static prototypical_hypernet_config hypernet_config(const pha_bert_options& o) {
        prototypical_hypernet_config c;
        c.condition = o.prototype_dim;
        c.layer_embedding = o.layer_embedding;
        const std::size_t split = split_of(o);
        c.layers = o.passes == pha_passes::two ? o.backbone.layers : o.backbone.layers - split;
        c.hidden = o.hypernet_hidden;
        c.projection = o.hypernet_projection;
        c.features = o.backbone.hidden;
        c.bottleneck = o.bottleneck;
        return c;
    }
    static hyperformer_hypernet_config hyperformer_config(const pha_bert_options& o) {
        const std::size_t split = split_of(o);
        auto c = hyperformerpp_config(o.backbone.hidden, o.backbone.layers - split, o.hyperformer_reduction);
        c.task_embedding = o.prototype_dim;
        return c;
    }
    static bool is_backbone(const std::string& name) {
        if (name.rfind("embeddings.", 0) == 0 || name.rfind("pooler.", 0) == 0) return true;
        return name.rfind("encoder.layer.", 0) == 0 && name.find(".adapter.") == std::string::npos;
    }
    [[nodiscard]] bool use_prototype_loss() const noexcept {
        return opts_.prototype_loss && opts_.tasks.size() >= 2;
    }
    static const tensor<B, T>& ctx_features(const context& ctx) { return ctx.retriever_output; }
    [[nodiscard]] const tensor<B, T>& prototype_table() const { return prototypes_.weight().value; }

    bool layer_trains(std::size_t i) {
        bool any = false;
        layers_[i].visit_parameters([&](const std::string&, parameter<B, T>& p) { any = any || p.trainable(); });
        return any;
    }
    bool embeddings_trainable() {
        bool any = false;
        embeddings_.visit_parameters([&](const std::string&, parameter<B, T>& p) { any = any || p.trainable(); });
        return any;
    }

    /// Runs the encoder and the pooler. `training` adds the retriever pass the losses need.
    tensor<B, T> encode(const multitask_batch<B, T>& b, context& ctx, run_mode mode, bool training) const {
        const std::size_t n = layers_.size(), first = first_generated();
        const bool pha = opts_.source == adapter_source::prototype_hypernet;
        ctx.with_contrastive = training && pha && (opts_.instance_loss || use_prototype_loss());
        ctx.task_ids = b.task_ids;
        ctx.anomaly = mode.anomaly;
        const tensor<B, T> x = embeddings_.forward(b.input_ids, b.token_type_ids, ctx.embeddings, mode);
        ctx.layers.resize(n);
        const layer_condition<B, T> plain{.mask = &b.mask};
        std::vector<generated_adapters<B, T>> generated(n);  // pointers to this batch's weights, layer by layer
        const layer_condition<B, T> with_generated{.mask = &b.mask, .generated = &generated};
        tensor<B, T> h = x;
        if (opts_.passes == pha_passes::two) {
            ctx.lower_layers = ctx.with_contrastive ? n : 0;
            if (ctx.with_contrastive) {
                ctx.first_pass.resize(n);
                tensor<B, T> h0 = x;
                for (std::size_t i = 0; i < n; ++i)
                    h0 = layers_[i].forward(h0, plain, ctx.first_pass[i], mode);
                ctx.retriever_output = retriever_.forward(h0, b.mask, ctx.retriever, mode);
                check_output(mode.anomaly, retriever_.name(), "", ctx.retriever_output);
            }
        } else {
            ctx.lower_layers = first;
            for (std::size_t i = 0; i < first; ++i) h = layers_[i].forward(h, plain, ctx.layers[i], mode);
            if (ctx.with_contrastive) {
                ctx.retriever_output = retriever_.forward(h, b.mask, ctx.retriever, mode);
                check_output(mode.anomaly, retriever_.name(), "", ctx.retriever_output);
            }
        }
        tensor<B, T> k;
        switch (opts_.source) {
            case adapter_source::prototype_hypernet: ctx.hypernet.resize(n - first); break;
            case adapter_source::per_task: ctx.tables.resize(n - first); break;
            case adapter_source::hyperformerpp:
                ctx.hf_attention.resize(n - first);
                ctx.hf_ffn.resize(n - first);
                break;
        }
        if (opts_.source != adapter_source::per_task) k = prototypes_.forward(b.task_ids, ctx.prototype_rows, mode);
        for (std::size_t i = first; i < n; ++i) {
            const std::size_t j = i - first;
            if (opts_.source == adapter_source::hyperformerpp) {
                const auto ws = hf_hypernet_->forward(k, j, hyperformer_block::self_attention, ctx.hf_attention[j], mode);
                const auto wf = hf_hypernet_->forward(k, j, hyperformer_block::feed_forward, ctx.hf_ffn[j], mode);
                generated[i].after_attention = &ws;
                generated[i].after_ffn = &wf;
                h = layers_[i].forward(h, with_generated, ctx.layers[i], mode);
                continue;
            }
            const adapter_weights<B, T> w = pha ? hypernet_->forward(k, j, ctx.hypernet[j], mode)
                                                : tables_[j].forward(b.task_ids, ctx.tables[j], mode);
            generated[i].parallel = &w;
            h = layers_[i].forward(h, with_generated, ctx.layers[i], mode);
        }
        if (opts_.heads_read == head_input::pooler) return pooler_.forward(h, ctx.pooler, mode);
        tensor<B, T> pooled = mean_.forward(h, b.mask, ctx.mean, mode);
        check_output(mode.anomaly, mean_.name(), "", pooled);
        return pooled;
    }

    static std::vector<std::int32_t> task_rows(const multitask_batch<B, T>& b) {
        std::vector<std::int32_t> t;
        t.reserve(b.rows.size());
        for (const auto& r : b.rows) t.push_back(static_cast<std::int32_t>(r.task));
        return t;
    }

    B* backend_;
    pha_bert_options opts_;
    bert_embeddings<B, T> embeddings_;
    std::vector<layer_type> layers_;
    instance_retriever<B, T> retriever_;
    embedding<B, T> prototypes_;
    std::optional<prototypical_hypernet<B, T>> hypernet_;
    std::optional<hyperformer_hypernet<B, T>> hf_hypernet_;
    std::vector<task_adapter_table<B, T>> tables_;
    pooler<B, T> pooler_;
    mean_pooling<B, T> mean_;
    multitask_heads<B, T> heads_;
    pha_instance_loss<B, T> ins_loss_;
    pha_prototype_loss<B, T> pro_loss_;
};

}  // namespace hyperadapt
