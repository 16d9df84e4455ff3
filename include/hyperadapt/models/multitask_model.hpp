#pragma once
// A multi-task model as a composition: one BERT-family backbone and one head per task, with the parts that make
// an architecture chosen as types by a recipe:
//
//   x   = bert_embeddings(input ids, token types)                      "embeddings.*"
//   x'  = Conditioning(task ids, x | condition)                         fills the layer condition: z (CA-MTL),
//                                                                       generated adapter weights (PHA), nothing
//   h   = Encoder(x' | condition)                                        a conditioned composition (nn/compose.hpp)
//   s   = pooler(h[CLS]) or the masked mean of h                        "pooler.*" (options.heads_read)
//   loss = mean over the batch's tasks of each task's head loss         "heads.<task>.*"
//
// The recipe (models/camtl.hpp, models/multitask_bert.hpp, examples/04_compose_custom_model.cpp) is a struct:
//
//   struct my_recipe {
//       using backend_type = B; using value_type = T;
//       using options_type = ...;                    // has .backbone (bert_config), .tasks, .head_dropout,
//                                                    // .heads_read
//       using conditioning_type = ...;               // e.g. camtl_task_conditioning<B, T>, no_conditioning<B, T>
//       using encoder_type = ...;                    // e.g. camtl_base_encoder<B, T>, encoder<B, T>
//       static conditioning_type make_conditioning(B&, const options_type&);
//       static encoder_type make_encoder(B&, const options_type&);
//       static bool frozen(const options_type&, const std::string& name);            // apply_freezing's rule
//       static std::string checkpoint_name(const options_type&, const std::string&);  // backbone name to load
//   };
//
// Parameter visiting, initialisation and the backward order follow from the parts, so a new part cannot be
// forgotten: the model has no per-architecture forward or backward code.
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "hyperadapt/backend/counter_rng.hpp"
#include "hyperadapt/io/hf_checkpoint.hpp"
#include "hyperadapt/layers/bert_embeddings.hpp"
#include "hyperadapt/layers/conditioning.hpp"
#include "hyperadapt/layers/layer_condition.hpp"
#include "hyperadapt/layers/mean_pooling.hpp"
#include "hyperadapt/layers/multitask_heads.hpp"
#include "hyperadapt/layers/pooler.hpp"
#include "hyperadapt/models/bert.hpp"
#include "hyperadapt/nn/anomaly.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"
#include "hyperadapt/data/multitask_batch.hpp"

namespace hyperadapt {

/// The auxiliary losses of a model without any (see multitask_model: Recipe::auxiliary_type).
template <class Model>
struct no_auxiliary_loss {
    struct context {};
    template <class... Args>
    void before_forward(Args&&...) const {}
    template <class... Args>
    double forward_loss(Args&&...) const {
        return 0;
    }
    template <class... Args>
    void backward(Args&&...) {}
};

namespace detail {
/// An encoder context with a row tap: a per-row output that an auxiliary loss reads (PHA's retriever
/// embeddings) and the gradient it sends back. A batch run in length groups (row_group) gathers the groups'
/// tap outputs into the batch's row order, and hands each group its rows of the gradient.
template <class EncoderContext, class B, class T>
concept row_tap_context = requires(EncoderContext& c) {
    { c.tap_requested } -> std::convertible_to<bool>;
    { c.retriever_output } -> std::convertible_to<const tensor<B, T>&>;
    { c.tap_gradient } -> std::convertible_to<const tensor<B, T>&>;
};

template <class Recipe, class Model>
struct auxiliary_of {
    using type = no_auxiliary_loss<Model>;
};
template <class Recipe, class Model>
    requires requires { typename Recipe::template auxiliary_type<Model>; }
struct auxiliary_of<Recipe, Model> {
    using type = typename Recipe::template auxiliary_type<Model>;
};
}  // namespace detail

/// What a recipe must provide (see the file comment); a wrong recipe fails here with this sentence.
template <class R>
concept multitask_recipe = requires(typename R::backend_type& b, const typename R::options_type& o, const std::string& n) {
    typename R::value_type;
    { R::make_conditioning(b, o) } -> std::same_as<typename R::conditioning_type>;
    { R::make_encoder(b, o) } -> std::same_as<typename R::encoder_type>;
    { R::frozen(o, n) } -> std::convertible_to<bool>;
    { R::checkpoint_name(o, n) } -> std::convertible_to<std::string>;
    { o.backbone } -> std::convertible_to<bert_config>;
    o.tasks;
} && conditioned_layer<typename R::encoder_type>;

template <class Recipe>
class multitask_model {
    static_assert(multitask_recipe<Recipe>,
                  "hyperadapt::multitask_model: the recipe needs backend_type, value_type, options_type (with "
                  "backbone and tasks), conditioning_type, encoder_type (a conditioned layer over layer_condition) "
                  "and the static functions make_conditioning(), make_encoder(), frozen() and checkpoint_name()");

public:
    using recipe_type = Recipe;
    using backend_type = typename Recipe::backend_type;
    using value_type = typename Recipe::value_type;
    using options_type = typename Recipe::options_type;
    using conditioning_type = typename Recipe::conditioning_type;
    using encoder_type = typename Recipe::encoder_type;
    /// Losses beside the heads' (PHA's contrastive losses): Recipe::auxiliary_type<Model>, if the recipe has one.
    using auxiliary_type = typename detail::auxiliary_of<Recipe, multitask_model>::type;
    using B = backend_type;
    using T = value_type;
    using batch_type = multitask_batch<B, T>;
    using tensor_type = tensor<B, T>;
    using embeddings_type = bert_embeddings<B, T>;
    /// The per-group part of a context (see context::groups). Declared outside `context`, whose members share
    /// the layers' names.
    struct group_context {
        const row_group<B, T>* rows = nullptr;  // the batch's group (the batch outlives backward)
        typename bert_embeddings<B, T>::context embeddings;
        typename conditioning_type::context conditioning;
        typename encoder_type::context encoder;
        typename pooler<B, T>::context pooler;
        typename mean_pooling<B, T>::context mean;
    };
    struct context {
        typename bert_embeddings<B, T>::context embeddings;
        typename conditioning_type::context conditioning;
        typename encoder_type::context encoder;
        typename pooler<B, T>::context pooler;
        typename mean_pooling<B, T>::context mean;
        typename multitask_heads<B, T>::context heads;
        typename auxiliary_type::context auxiliary;
        /// One per row group of a batch made with batch_padding::length_groups (the members above then hold
        /// only the batch-order tap of a row_tap_context encoder).
        std::vector<group_context> groups;
        double task_loss = 0;  ///< the heads' part of the last forward_loss
        anomaly_detector* anomaly = nullptr;  // run_mode::anomaly of the forward, for backward's checks
    };

    multitask_model(B& backend, options_type o);

    /// Random initialisation of every part, in the order of the composition (BERT's scheme, N(0,
    /// initializer_range), for the backbone and heads; each conditioned part its own).
    template <class Rng>
    void initialize(Rng& rng);

    /// Loads a Hugging Face BERT checkpoint into the backbone: the parameters a plain BERT of this config also
    /// has, under the recipe's checkpoint names; every other parameter keeps its value. Strict by default: a
    /// backbone tensor missing from the checkpoint, or of another shape, throws io_error naming it and both
    /// shapes, and nothing is loaded. `allow_partial` loads whatever matches instead (the report says what did
    /// not). Checkpoint tensors no parameter takes are reported, not errors.
    io::load_report load_backbone(const std::filesystem::path& checkpoint, bool allow_partial = false);

    /// Freezes by the recipe's rule (call after loading).
    void apply_freezing();

    [[nodiscard]] const options_type& options() const noexcept { return opts_; }
    [[nodiscard]] std::string name() const { return ""; }
    bert_embeddings<B, T>& embeddings() noexcept { return embeddings_; }
    conditioning_type& conditioning() noexcept { return conditioning_; }
    encoder_type& encoder() noexcept { return encoder_; }
    const bert_embeddings<B, T>& embeddings() const noexcept { return embeddings_; }
    const conditioning_type& conditioning() const noexcept { return conditioning_; }
    const encoder_type& encoder() const noexcept { return encoder_; }
    multitask_heads<B, T>& heads() noexcept { return heads_; }

    /// The sentence representation (rows, hidden) the heads read.
    tensor<B, T> pooled(const multitask_batch<B, T>& b, context& ctx, run_mode mode) const;

    double forward_loss(const multitask_batch<B, T>& b, context& ctx, run_mode mode) const;

    /// Gradients of loss_scale x the batch loss, in the reverse order of the composition.
    void backward(context& ctx, T loss_scale = T(1));

    /// Per-row head outputs without gradients: logits (or the regression score) per row.
    std::vector<std::vector<T>> outputs(const multitask_batch<B, T>& b, run_mode mode) const;

    /// The composition's order: embeddings, conditioning, encoder, pooler, heads.
    template <class F>
    void visit_parameters(F&& f) {
        embeddings_.visit_parameters(f);
        conditioning_.visit_parameters(f);
        encoder_.visit_parameters(f);
        pooler_.visit_parameters(f);
        heads_.visit_parameters(f);
    }

private:
    /// The model under the recipe's checkpoint names, restricted to the names a plain BERT has.
    struct backbone_view {
        using backend_type = B;
        using value_type = T;
        multitask_model& m;
        const std::set<std::string>& plain;
        template <class F>
        void visit_parameters(F&& f) {
            m.visit_parameters([&](const std::string& name, parameter<B, T>& p) {
                std::string as = Recipe::checkpoint_name(m.opts_, name);
                if (plain.count(as)) f(as, p);
            });
        }
    };

    /// pooled() and backward() of a batch made with batch_padding::length_groups: the encoder once per group.
    tensor<B, T> pooled_by_groups(const multitask_batch<B, T>& b, context& ctx, run_mode mode) const;
    void backward_by_groups(const tensor<B, T>& ds, context& ctx);
    /// Encoder, conditioning and (when they train) embeddings backward from the encoder output's gradient.
    void backward_below_pooling(const tensor<B, T>& dh, typename encoder_type::context& encoder,
                                typename conditioning_type::context& conditioning,
                                typename bert_embeddings<B, T>::context& embeddings, bool embeddings_train);

    static options_type check(options_type o) {
        if (o.tasks.empty()) throw config_error("multitask_model: at least one task is needed");
        return o;
    }
    static std::vector<std::int32_t> row_tasks(const multitask_batch<B, T>& b) {
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
    options_type opts_;
    bert_embeddings<B, T> embeddings_;
    conditioning_type conditioning_;
    encoder_type encoder_;
    pooler<B, T> pooler_;
    mean_pooling<B, T> mean_;
    multitask_heads<B, T> heads_;
    auxiliary_type auxiliary_;
};

// ---- out of the class body: not inline, so that `extern template class multitask_model<R>;` in a user's
// header keeps these (the bulk of a model's code) out of every translation unit but the one that instantiates
// them explicitly (examples/instances/ shows the pattern; docs/design.md "Compile time").

template <class Recipe>
multitask_model<Recipe>::multitask_model(B& backend, options_type o)
    : backend_(&backend),
      opts_(check(std::move(o))),
      embeddings_(backend, opts_.backbone.embeddings(), "embeddings"),
      conditioning_(Recipe::make_conditioning(backend, opts_)),
      encoder_(Recipe::make_encoder(backend, opts_)),
      pooler_(backend, opts_.backbone.hidden, "pooler"),
      mean_(backend, opts_.backbone.hidden, "mean_pooling"),
      heads_(backend, opts_.backbone.hidden, opts_.tasks, static_cast<T>(opts_.head_dropout), "heads") {}

template <class Recipe>
template <class Rng>
void multitask_model<Recipe>::initialize(Rng& rng) {
    const auto s = static_cast<T>(opts_.backbone.initializer_range);
    embeddings_.initialize(rng, s);
    conditioning_.initialize(rng, s);
    encoder_.initialize(rng, s);
    pooler_.initialize(rng, s);
    heads_.initialize(rng, s);
}

template <class Recipe>
io::load_report multitask_model<Recipe>::load_backbone(const std::filesystem::path& checkpoint, bool allow_partial) {
    std::set<std::string> plain;
    {
        bert_model<B, T> bert(*backend_, opts_.backbone);
        bert.visit_parameters([&](const std::string& n, parameter<B, T>&) { plain.insert(n); });
    }
    backbone_view view{*this, plain};
    bool strict = !allow_partial;
    if constexpr (requires { Recipe::strict_backbone; }) strict = strict && Recipe::strict_backbone;
    return io::load_pretrained(view, checkpoint, {.strict = strict});
}

template <class Recipe>
void multitask_model<Recipe>::apply_freezing() {
    visit_parameters([&](const std::string& name, parameter<B, T>& p) {
        if (Recipe::frozen(opts_, name))
            p.freeze();
        else
            p.unfreeze();
    });
}

template <class Recipe>
auto multitask_model<Recipe>::pooled(const multitask_batch<B, T>& b, context& ctx, run_mode mode) const -> tensor<B, T> {
    ctx.anomaly = mode.anomaly;
    if (!b.groups.empty()) return pooled_by_groups(b, ctx, mode);
    const tensor<B, T> x = embeddings_.forward(b.input_ids, b.token_type_ids, ctx.embeddings, mode,
                                               {b.host_input_ids, b.host_token_type_ids});
    layer_condition<B, T> c{.mask = &b.mask, .task_ids = &b.task_ids, .tasks = batch_tasks<B>::of(b),
                            .mean_weights = b.mean_weights.empty() ? nullptr : &b.mean_weights};
    const tensor<B, T> xc = conditioning_.forward(b.task_ids, x, c, ctx.conditioning, mode);
    const tensor<B, T> h = encoder_.forward(xc, c, ctx.encoder, mode);
    if (opts_.heads_read == head_input::pooler) return pooler_.forward(h, ctx.pooler, mode, &b.first_token_rows);
    tensor<B, T> s = b.mean_weights.empty() ? mean_.forward(h, b.mask, ctx.mean, mode, b.host_mask)
                                            : mean_.forward(h, b.mean_weights, ctx.mean, mode);
    check_output(mode.anomaly, mean_.name(), "", s);
    return s;
}

template <class Recipe>
auto multitask_model<Recipe>::pooled_by_groups(const multitask_batch<B, T>& b, context& ctx, run_mode whole_batch_mode) const
    -> tensor<B, T> {
    // Every row runs through the encoder with the rows of its group, as long as the group's longest; each
    // group's sentence representations land in their rows of one (rows, hidden) tensor for the heads.
    constexpr bool tapped = detail::row_tap_context<typename encoder_type::context, B, T>;
    const std::size_t nb = b.size(), hidden = opts_.backbone.hidden;
    tensor<B, T> out = tensor<B, T>::zeros(*backend_, {nb, hidden});
    ctx.groups.clear();
    ctx.groups.resize(b.groups.size());
    if constexpr (tapped) ctx.encoder.retriever_output = {};
    for (std::size_t g = 0; g < b.groups.size(); ++g) {
        const row_group<B, T>& rg = b.groups[g];
        auto& gc = ctx.groups[g];
        gc.rows = &rg;
        // Every group's backward adds to the same layers' gradients, and backward_by_groups runs the groups in this
        // order: only the last group's backward may report a layer's gradients final (nn/gradient_listener.hpp).
        run_mode mode = whole_batch_mode;
        if (g + 1 < b.groups.size()) mode.gradients = nullptr;
        if constexpr (tapped) gc.encoder.tap_requested = ctx.encoder.tap_requested;
        const tensor<B, T> x = embeddings_.forward(rg.input_ids, rg.token_type_ids, gc.embeddings, mode,
                                                   {rg.host_input_ids, rg.host_token_type_ids});
        layer_condition<B, T> c{.mask = &rg.mask, .task_ids = &rg.task_ids, .tasks = batch_tasks<B>::of(rg),
                                .mean_weights = rg.mean_weights.empty() ? nullptr : &rg.mean_weights};
        const tensor<B, T> xc = conditioning_.forward(rg.task_ids, x, c, gc.conditioning, mode);
        const tensor<B, T> h = encoder_.forward(xc, c, gc.encoder, mode);
        tensor<B, T> s;
        if (opts_.heads_read == head_input::pooler) {
            s = pooler_.forward(h, gc.pooler, mode, &rg.first_token_rows);
        } else {
            s = rg.mean_weights.empty() ? mean_.forward(h, rg.mask, gc.mean, mode, rg.host_mask)
                                        : mean_.forward(h, rg.mean_weights, gc.mean, mode);
            check_output(mode.anomaly, mean_.name(), "", s);
        }
        backend_->scatter_add_rows(rg.size(), hidden, s.data(), rg.rows.data(), out.data());
        if constexpr (tapped) {
            const tensor<B, T>& e = gc.encoder.retriever_output;
            if (!e.empty()) {
                const std::size_t width = e.shape()[1];
                if (ctx.encoder.retriever_output.empty())
                    ctx.encoder.retriever_output = tensor<B, T>::zeros(*backend_, {nb, width});
                backend_->scatter_add_rows(rg.size(), width, e.data(), rg.rows.data(),
                                           ctx.encoder.retriever_output.data());
            }
        }
    }
    return out;
}

template <class Recipe>
void multitask_model<Recipe>::backward_by_groups(const tensor<B, T>& ds, context& ctx) {
    constexpr bool tapped = detail::row_tap_context<typename encoder_type::context, B, T>;
    const std::size_t hidden = opts_.backbone.hidden;
    const bool embeddings_train = embeddings_trainable();
    for (std::size_t g = 0; g < ctx.groups.size(); ++g) {  // in forward's order: the last group reports (pooled_by_groups)
        auto& gc = ctx.groups[g];
        const row_group<B, T>& rg = *gc.rows;
        tensor<B, T> dsg(*backend_, {rg.size(), hidden});
        backend_->gather_rows(rg.size(), hidden, ds.data(), rg.rows.data(), dsg.data());
        const tensor<B, T> dh =
            opts_.heads_read == head_input::mean ? mean_.backward(dsg, gc.mean) : pooler_.backward(dsg, gc.pooler);
        if (opts_.heads_read == head_input::mean) check_input_gradient(ctx.anomaly, mean_.name(), "", dh);
        if constexpr (tapped) {
            const tensor<B, T>& de = ctx.encoder.tap_gradient;
            if (!de.empty()) {
                const std::size_t width = de.shape()[1];
                gc.encoder.tap_gradient = tensor<B, T>(*backend_, {rg.size(), width});
                backend_->gather_rows(rg.size(), width, de.data(), rg.rows.data(), gc.encoder.tap_gradient.data());
            }
        }
        backward_below_pooling(dh, gc.encoder, gc.conditioning, gc.embeddings, embeddings_train);
    }
}

template <class Recipe>
void multitask_model<Recipe>::backward_below_pooling(const tensor<B, T>& dh, typename encoder_type::context& encoder,
                                                     typename conditioning_type::context& conditioning,
                                                     typename bert_embeddings<B, T>::context& embeddings,
                                                     bool embeddings_train) {
    layer_condition_gradients<B, T> dc;
    dc.need_input_gradient = embeddings_train || conditioning_.needs_input_gradient();
    conditioning_.prepare(dc, conditioning);
    // dx is empty when the encoder stopped below its lowest trainable layer (nothing below needs it); the
    // conditioning still trains from the condition gradients.
    const tensor<B, T> dx = encoder_.backward(dh, encoder, dc);
    const tensor<B, T> de = conditioning_.backward(dx, dc, conditioning);
    if (embeddings_train && !de.empty()) embeddings_.backward(de, embeddings);
}

template <class Recipe>
double multitask_model<Recipe>::forward_loss(const multitask_batch<B, T>& b, context& ctx, run_mode mode) const {
    auxiliary_.before_forward(ctx);  // e.g. PHA: the encoder's retriever runs for a loss, not for outputs()
    ctx.task_loss = heads_.forward_loss(pooled(b, ctx, mode), row_tasks(b), b.labels, b.scores, ctx.heads, mode,
                                        b.loss_task_rows, {b.rows_of_task, b.labels_of_task, b.targets_of_task});
    check_scalar(mode.anomaly, heads_.name(), "loss", ctx.task_loss);
    return ctx.task_loss + auxiliary_.forward_loss(b, *this, ctx, mode);
}

template <class Recipe>
void multitask_model<Recipe>::backward(context& ctx, T loss_scale) {
    const tensor<B, T> ds = heads_.backward(ctx.heads, loss_scale);
    check_input_gradient(ctx.anomaly, heads_.name(), "", ds);
    if (!ctx.groups.empty()) {
        auxiliary_.backward(*this, ctx, loss_scale);
        backward_by_groups(ds, ctx);
        return;
    }
    const tensor<B, T> dh =
        opts_.heads_read == head_input::mean ? mean_.backward(ds, ctx.mean) : pooler_.backward(ds, ctx.pooler);
    if (opts_.heads_read == head_input::mean) check_input_gradient(ctx.anomaly, mean_.name(), "", dh);
    auxiliary_.backward(*this, ctx, loss_scale);
    backward_below_pooling(dh, ctx.encoder, ctx.conditioning, ctx.embeddings, embeddings_trainable());
}

template <class Recipe>
auto multitask_model<Recipe>::outputs(const multitask_batch<B, T>& b, run_mode mode) const -> std::vector<std::vector<T>> {
    context ctx;
    return heads_.outputs(pooled(b, ctx, mode), row_tasks(b), mode, b.rows_of_task);
}

}  // namespace hyperadapt

/// Compile time (docs/design.md, "Compile time"): a model's construction, initialisation, forward and backward
/// are most of what a program that trains it compiles. Declared in a header that every user of
/// multitask_model<Recipe> includes, HYPERADAPT_EXTERN_MULTITASK_MODEL(Recipe) keeps them out of those
/// translation units; HYPERADAPT_INSTANTIATE_MULTITASK_MODEL(Recipe) in one .cpp compiles them there, once,
/// in parallel with the rest. The members defined in the class (accessors, parameter visiting: cheap, and the
/// visitor can be anything) stay inline.
///
/// Or in two halves, each in exactly one .cpp (together they are HYPERADAPT_INSTANTIATE_MULTITASK_MODEL):
/// - HYPERADAPT_INSTANTIATE_MULTITASK_MODEL_COMPUTE: what runs every step or every batch -- initialisation,
///   forward, backward, outputs -- which deserves the optimiser;
/// - HYPERADAPT_INSTANTIATE_MULTITASK_MODEL_SETUP: what runs once per model -- construction (every layer's
///   allocation and naming), loading the backbone checkpoint (safetensors, JSON), freezing by name -- about a
///   third of a model's code, which compiles in a fraction of the time unoptimised.
/// A member added to the class and to neither list is an undefined reference at link time, naming it.
#define HYPERADAPT_EXTERN_MULTITASK_MODEL(...)                        \
    HYPERADAPT_MULTITASK_MODEL_COMPUTE_MEMBERS(extern, __VA_ARGS__); \
    HYPERADAPT_MULTITASK_MODEL_SETUP_MEMBERS(extern, __VA_ARGS__)
#define HYPERADAPT_INSTANTIATE_MULTITASK_MODEL(...)             \
    HYPERADAPT_MULTITASK_MODEL_COMPUTE_MEMBERS(, __VA_ARGS__); \
    HYPERADAPT_MULTITASK_MODEL_SETUP_MEMBERS(, __VA_ARGS__)
#define HYPERADAPT_INSTANTIATE_MULTITASK_MODEL_COMPUTE(...) HYPERADAPT_MULTITASK_MODEL_COMPUTE_MEMBERS(, __VA_ARGS__)
#define HYPERADAPT_INSTANTIATE_MULTITASK_MODEL_SETUP(...) HYPERADAPT_MULTITASK_MODEL_SETUP_MEMBERS(, __VA_ARGS__)
/// Only the compute half declared: a translation unit that constructs the model (unoptimised, say) compiles the
/// set-up half itself, where it is used.
#define HYPERADAPT_EXTERN_MULTITASK_MODEL_COMPUTE(...) HYPERADAPT_MULTITASK_MODEL_COMPUTE_MEMBERS(extern, __VA_ARGS__)

/// The members of each half (PREFIX: `extern` to declare, empty to compile).
#define HYPERADAPT_MULTITASK_MODEL_(...) ::hyperadapt::multitask_model<__VA_ARGS__>
#define HYPERADAPT_MULTITASK_MODEL_COMPUTE_MEMBERS(PREFIX, ...)                                                      \
    PREFIX template void HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::initialize<::hyperadapt::rng_stream>(             \
        ::hyperadapt::rng_stream&);                                                                                  \
    PREFIX template auto HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::pooled(                                           \
        const HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::batch_type&,                                                 \
        HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::context&,                                                          \
        ::hyperadapt::run_mode) const->HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::tensor_type;                        \
    PREFIX template double HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::forward_loss(                                   \
        const HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::batch_type&,                                                 \
        HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::context&,                                                          \
        ::hyperadapt::run_mode) const;                                                                               \
    PREFIX template void HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::backward(                                         \
        HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::context&, HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::T);            \
    PREFIX template auto HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::outputs(                                          \
        const HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::batch_type&, ::hyperadapt::run_mode)                         \
        const->std::vector<std::vector<HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::T>>;                                \
    PREFIX template auto HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::pooled_by_groups(                                 \
        const HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::batch_type&,                                                 \
        HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::context&,                                                          \
        ::hyperadapt::run_mode) const->HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::tensor_type;                        \
    PREFIX template void HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::backward_by_groups(                               \
        const HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::tensor_type&,                                                \
        HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::context&);                                                         \
    PREFIX template void HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::backward_below_pooling(                           \
        const HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::tensor_type&,                                                \
        HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::encoder_type::context&,                                            \
        HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::conditioning_type::context&,                                       \
        HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::embeddings_type::context&, bool)
#define HYPERADAPT_MULTITASK_MODEL_SETUP_MEMBERS(PREFIX, ...)                                                        \
    PREFIX template HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::multitask_model(                                       \
        HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::B&, HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::options_type);       \
    PREFIX template auto HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::load_backbone(const std::filesystem::path&, bool) \
        ->::hyperadapt::io::load_report;                                                                             \
    PREFIX template void HYPERADAPT_MULTITASK_MODEL_(__VA_ARGS__)::apply_freezing()
