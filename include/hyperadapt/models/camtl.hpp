#pragma once
// CA-MTL (Pilault et al., ICLR 2021) as a composition of layer templates, following the authors' code
// (spec §1): a BERT-family backbone whose embedding output is conditioned on the task (conditional
// alignment), a CA-MTL encoder (block-diagonal task bias in every layer's attention, conditional layer norms in
// the upper half, the conditional adapter on the top layer), BERT's pooler, and one head per task, with the
// batch loss averaged per task. Batches mix tasks: every row carries its own task id.
//
// Freezing follows the reference (§1.8): the embeddings and encoder layers [0, frozen_layers) are frozen, except
// the parameters whose names contain "random_weight_matrix" (A), "ln_weight_modulation.gb_weights" or
// "adapter". The reference also leaves the CBDA projection ("cond_block_diag_attn.gb_weights") frozen in those
// layers, at its random start — a by-product of its name whitelist. Here that projection trains by default;
// `freeze_cbda_projection_in_frozen_layers = true` reproduces the reference exactly.
//
// The top layer's sub-modules are renamed in the reference ("new_attention", ...), so pretrained weights do
// not load into it and it trains from scratch; `load_pretrained_top_layer = true` loads them instead.
#include <cstdint>
#include <filesystem>
#include <limits>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "hyperadapt/io/hf_checkpoint.hpp"
#include "hyperadapt/layers/bert_embeddings.hpp"
#include "hyperadapt/layers/camtl/conditional_alignment.hpp"
#include "hyperadapt/layers/camtl/conditional_encoder.hpp"
#include "hyperadapt/layers/embedding.hpp"
#include "hyperadapt/layers/mean_pooling.hpp"
#include "hyperadapt/layers/multitask_heads.hpp"
#include "hyperadapt/layers/pooler.hpp"
#include "hyperadapt/models/bert.hpp"
#include "hyperadapt/nn/anomaly.hpp"
#include "hyperadapt/train/multitask_data.hpp"

namespace hyperadapt {

struct camtl_options {
    bert_config backbone;
    std::size_t seq_len = 128;            ///< L: inputs are padded to exactly this; backbone.hidden % L == 0
    std::vector<task_head_spec> tasks;    ///< one head per task, in task-id order
    std::size_t frozen_layers = std::numeric_limits<std::size_t>::max();  ///< [0, n); max = half the layers
    bool freeze_embeddings = true;
    bool freeze_cbda_projection_in_frozen_layers = false;  ///< the reference's accidental behaviour
    bool load_pretrained_top_layer = false;                ///< the reference trains the top layer from scratch
    cln_variant layer_norm_variant = cln_variant::gain_only;  ///< the code's CLN; gain_and_bias = the paper's
    double head_dropout = 0.1;
    head_input heads_read = head_input::pooler;  ///< mean: masked mean of the last layer (the pooler is frozen, unused)
    // The conditional modules, each removable for ablations.
    bool conditional_alignment = true;
    bool block_diagonal_bias = true;
    bool conditional_layer_norm = true;  ///< false: plain LayerNorms below the top layer
    bool conditional_adapter = true;     ///< false: no conditional bottleneck; the top layer is a plain-named CLN layer
};

template <elementwise_backend B, class T = float>
class camtl_model {
public:
    using backend_type = B;
    using value_type = T;
    using ids_type = tensor<B, std::int32_t>;
    using encoder_type = camtl_base_encoder<B, T>;
    struct context {
        typename bert_embeddings<B, T>::context embeddings;
        typename embedding<B, T>::context task;
        typename conditional_alignment<B, T>::context alignment;
        typename encoder_type::context encoder;
        typename pooler<B, T>::context pooler;
        typename mean_pooling<B, T>::context mean;
        typename multitask_heads<B, T>::context heads;
        anomaly_detector* anomaly = nullptr;  // run_mode::anomaly of the forward, for backward's checks
    };

    camtl_model(B& backend, camtl_options o)
        : backend_(&backend),
          opts_(std::move(o)),
          embeddings_(backend, opts_.backbone.embeddings(), "embeddings"),
          task_table_(backend, check_tasks(opts_).size(), opts_.backbone.hidden, "task_embedding"),
          alignment_(backend, opts_.backbone.hidden, "conditional_alignment"),
          encoder_(backend, layer_config(opts_), opts_.backbone.layers, "encoder", encoder_options(opts_)),
          pooler_(backend, opts_.backbone.hidden, "pooler"),
          mean_(backend, opts_.backbone.hidden, "mean_pooling"),
          heads_(backend, opts_.backbone.hidden, opts_.tasks, static_cast<T>(opts_.head_dropout), "heads") {}

    /// Random initialisation of everything (BERT's scheme; CBDA's A and the FiLM biases start at zero).
    template <class Rng>
    void initialize(Rng& rng) {
        const auto s = static_cast<T>(opts_.backbone.initializer_range);
        embeddings_.initialize(rng, s);
        task_table_.initialize(rng, s);
        alignment_.initialize(rng, s);
        encoder_.initialize(rng, s);
        pooler_.initialize(rng, s);
        heads_.initialize(rng, s);
    }

    /// Loads a Hugging Face BERT checkpoint into the backbone by name; every conditional parameter keeps its
    /// initial value. The backbone is what a plain BERT of this config would also hold (embeddings, encoder
    /// layers, pooler; the top layer's renamed sub-modules only with load_pretrained_top_layer). Strict by
    /// default: a backbone tensor missing from the checkpoint, or of another shape, throws io_error naming it
    /// and both shapes, and nothing is loaded. `allow_partial` loads whatever matches instead (the report says
    /// what did not). Checkpoint tensors no parameter takes (the renamed top layer's) are reported, not errors.
    io::load_report load_backbone(const std::filesystem::path& checkpoint, bool allow_partial = false) {
        std::set<std::string> plain;
        {
            bert_model<B, T> bert(*backend_, opts_.backbone);
            bert.visit_parameters([&](const std::string& n, parameter<B, T>&) { plain.insert(n); });
        }
        backbone_view view{*this, plain};
        return io::load_pretrained(view, checkpoint, {.strict = !allow_partial});
    }

    /// Freezes as the options say (see the file comment); call after loading. Returns nothing; see counts().
    void apply_freezing() {
        const std::size_t frozen = frozen_layers();
        const std::regex layer_re("^encoder\\.layer\\.([0-9]+)\\.");
        visit_parameters([&](const std::string& name, parameter<B, T>& p) {
            bool freeze = false;
            if (opts_.freeze_embeddings && name.rfind("embeddings.", 0) == 0) freeze = true;
            std::smatch m;
            if (std::regex_search(name, m, layer_re) && std::stoul(m[1].str()) < frozen) {
                const bool whitelisted =
                    name.find("random_weight_matrix") != std::string::npos ||
                    name.find("ln_weight_modulation.gb_weights") != std::string::npos ||
                    name.find("adapter") != std::string::npos ||
                    (!opts_.freeze_cbda_projection_in_frozen_layers &&
                     name.find("cond_block_diag_attn.gb_weights") != std::string::npos);
                freeze = !whitelisted;
            }
            if (!opts_.block_diagonal_bias && (name.find("random_weight_matrix") != std::string::npos ||
                                               name.find("cond_block_diag_attn") != std::string::npos))
                freeze = true;  // unused when the bias is off
            if (opts_.heads_read == head_input::mean && name.rfind("pooler.", 0) == 0) freeze = true;  // unused
            if (freeze)
                p.freeze();
            else
                p.unfreeze();
        });
    }

    [[nodiscard]] std::size_t frozen_layers() const noexcept {
        return opts_.frozen_layers == std::numeric_limits<std::size_t>::max() ? opts_.backbone.layers / 2
                                                                               : opts_.frozen_layers;
    }
    [[nodiscard]] const camtl_options& options() const noexcept { return opts_; }
    [[nodiscard]] std::string name() const { return ""; }
    multitask_heads<B, T>& heads() noexcept { return heads_; }
    encoder_type& encoder() noexcept { return encoder_; }

    /// Pooled output (rows, hidden) of a batch.
    tensor<B, T> pooled(const multitask_batch<B, T>& b, context& ctx, run_mode mode) const {
        ctx.anomaly = mode.anomaly;
        const auto x = embeddings_.forward(b.input_ids, b.token_type_ids, ctx.embeddings, mode);
        const auto z = task_table_.forward(b.task_ids, ctx.task, mode);
        check_output(mode.anomaly, task_table_.name(), "", z);
        const auto aligned = opts_.conditional_alignment ? alignment_.forward(x, z, ctx.alignment, mode) : x;
        if (opts_.conditional_alignment) check_output(mode.anomaly, alignment_.name(), "", aligned);
        const auto h = encoder_.forward(aligned, b.mask, z, b.task_ids, ctx.encoder, mode);
        if (opts_.heads_read == head_input::pooler) return pooler_.forward(h, ctx.pooler, mode);
        auto pooled = mean_.forward(h, b.mask, ctx.mean, mode);
        check_output(mode.anomaly, mean_.name(), "", pooled);
        return pooled;
    }

    double forward_loss(const multitask_batch<B, T>& b, context& ctx, run_mode mode) const {
        const double loss =
            heads_.forward_loss(pooled(b, ctx, mode), task_rows(b), b.labels, b.scores, ctx.heads, mode);
        check_scalar(mode.anomaly, heads_.name(), "loss", loss);
        return loss;
    }

    /// Gradients of loss_scale x the batch loss.
    void backward(context& ctx, T loss_scale = T(1)) {
        const auto dpooled = heads_.backward(ctx.heads, loss_scale);
        check_input_gradient(ctx.anomaly, heads_.name(), "", dpooled);
        const auto dh = opts_.heads_read == head_input::mean ? mean_.backward(dpooled, ctx.mean)
                                                             : pooler_.backward(dpooled, ctx.pooler);
        if (opts_.heads_read == head_input::mean) check_input_gradient(ctx.anomaly, mean_.name(), "", dh);
        auto g = encoder_.backward(dh, ctx.encoder);
        tensor<B, T> dz = std::move(g.task_embedding);
        tensor<B, T> dx = std::move(g.input);
        if (opts_.conditional_alignment) {
            auto ga = alignment_.backward(dx, ctx.alignment);
            dx = std::move(ga.embeddings);
            check_input_gradient(ctx.anomaly, alignment_.name(), "", dx);
            check_input_gradient(ctx.anomaly, alignment_.name(), "", ga.task_embedding, "task-embedding gradient");
            backend_->axpy(dz.size(), T(1), ga.task_embedding.data(), dz.data());
        }
        task_table_.backward(dz, ctx.task);
        if (embeddings_trainable()) embeddings_.backward(dx, ctx.embeddings);
    }

    /// Per-row head outputs without gradients: logits (or the regression score) per row.
    std::vector<std::vector<T>> outputs(const multitask_batch<B, T>& b, run_mode mode) const {
        context ctx;
        return heads_.outputs(pooled(b, ctx, mode), task_rows(b), mode);
    }

    /// The reference's named_parameters() order: embeddings, task embedding, alignment, encoder, pooler, heads.
    template <class F>
    void visit_parameters(F&& f) {
        embeddings_.visit_parameters(f);
        task_table_.visit_parameters(f);
        if (opts_.conditional_alignment) alignment_.visit_parameters(f);
        encoder_.visit_parameters(f);
        pooler_.visit_parameters(f);
        heads_.visit_parameters(f);
    }

private:
    /// The model seen with the top layer's renamed sub-modules under their BERT names, for loading.
    struct renamed_top_view {
        using backend_type = B;
        using value_type = T;
        camtl_model& m;
        template <class F>
        void visit_parameters(F&& f) {
            const std::string top = "encoder.layer." + std::to_string(m.opts_.backbone.layers - 1) + ".new_";
            m.visit_parameters([&](const std::string& name, parameter<B, T>& p) {
                if (m.opts_.load_pretrained_top_layer && name.rfind(top, 0) == 0)
                    f(top.substr(0, top.size() - 4) + name.substr(top.size()), p);
                else
                    f(name, p);
            });
        }
    };

    /// renamed_top_view restricted to the names a plain BERT of the same config has: what load_backbone fills.
    struct backbone_view {
        using backend_type = B;
        using value_type = T;
        camtl_model& m;
        const std::set<std::string>& plain;
        template <class F>
        void visit_parameters(F&& f) {
            renamed_top_view{m}.visit_parameters([&](const std::string& name, parameter<B, T>& p) {
                if (plain.count(name)) f(name, p);
            });
        }
    };

    static const std::vector<task_head_spec>& check_tasks(const camtl_options& o) {
        if (o.tasks.empty()) throw config_error("camtl_model: at least one task is needed");
        return o.tasks;
    }
    static camtl_layer_config layer_config(const camtl_options& o) {
        camtl_layer_config c;
        c.seq_len = o.seq_len;
        c.hidden = o.backbone.hidden;
        c.heads = o.backbone.heads;
        c.intermediate = o.backbone.intermediate;
        c.attention_dropout = o.backbone.attention_dropout;
        c.hidden_dropout = o.backbone.hidden_dropout;
        c.layer_norm_eps = o.backbone.layer_norm_eps;
        c.norm_variant = o.layer_norm_variant;
        c.block_diagonal_bias = o.block_diagonal_bias;
        return c;
    }
    static camtl_encoder_options encoder_options(const camtl_options& o) {
        camtl_encoder_options e;
        e.top_adapter = o.conditional_adapter;
        if (!o.conditional_layer_norm) e.plain_layers = o.backbone.layers - (o.conditional_adapter ? 1 : 0);
        return e;
    }
    static std::vector<std::int32_t> task_rows(const multitask_batch<B, T>& b) {
        std::vector<std::int32_t> t;
        t.reserve(b.rows.size());
        for (const auto& r : b.rows) t.push_back(static_cast<std::int32_t>(r.task));
        return t;
    }
    bool embeddings_trainable() {
        bool any = false;
        embeddings_.visit_parameters([&](const std::string&, parameter<B, T>& p) { any = any || p.trainable(); });
        return any;
    }

    B* backend_;
    camtl_options opts_;
    bert_embeddings<B, T> embeddings_;
    embedding<B, T> task_table_;
    conditional_alignment<B, T> alignment_;
    encoder_type encoder_;
    pooler<B, T> pooler_;
    mean_pooling<B, T> mean_;
    multitask_heads<B, T> heads_;
};

}  // namespace hyperadapt
