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

#include "hyperadapt/io/hf_checkpoint.hpp"
#include "hyperadapt/layers/bert_embeddings.hpp"
#include "hyperadapt/layers/layer_condition.hpp"
#include "hyperadapt/layers/mean_pooling.hpp"
#include "hyperadapt/layers/multitask_heads.hpp"
#include "hyperadapt/layers/pooler.hpp"
#include "hyperadapt/models/bert.hpp"
#include "hyperadapt/nn/anomaly.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"
#include "hyperadapt/data/multitask_batch.hpp"

namespace hyperadapt {

/// The conditioning of a model without task conditioning (plain multi-task BERT): the layers get the mask only.
template <elementwise_backend B, class T = float>
struct no_conditioning {
    using backend_type = B;
    using value_type = T;
    struct context {};
    template <class Rng>
    void initialize(Rng&, T) {}
    [[nodiscard]] std::string name() const { return ""; }
    tensor<B, T> forward(const tensor<B, std::int32_t>&, const tensor<B, T>& x, layer_condition<B, T>&, context&,
                         run_mode) const {
        return x;
    }
    void prepare(layer_condition_gradients<B, T>&, context&) const {}
    tensor<B, T> backward(const tensor<B, T>& dx, layer_condition_gradients<B, T>&, context&) { return dx; }
    template <class F>
    void visit_parameters(F&&) {}
};

/// Several conditionings in one (e.g. CA-MTL's task embedding and PHA's generated adapters): forward in the
/// order given, backward in the reverse order, parameters in the order given.
template <class... Parts>
class conditionings {
    using first = std::tuple_element_t<0, std::tuple<Parts...>>;

public:
    using backend_type = typename first::backend_type;
    using value_type = typename first::value_type;
    using B = backend_type;
    using T = value_type;
    struct context {
        std::tuple<typename Parts::context...> parts;
    };

    explicit conditionings(Parts... parts) : parts_(std::move(parts)...) {}

    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        std::apply([&](auto&... p) { (p.initialize(rng, stddev), ...); }, parts_);
    }
    [[nodiscard]] std::string name() const { return ""; }
    template <std::size_t I>
    auto& get() noexcept { return std::get<I>(parts_); }

    tensor<B, T> forward(const tensor<B, std::int32_t>& task_ids, const tensor<B, T>& x, layer_condition<B, T>& c,
                         context& ctx, run_mode mode) const {
        return forward_impl(task_ids, x, c, ctx, mode, std::index_sequence_for<Parts...>{});
    }
    void prepare(layer_condition_gradients<B, T>& dc, context& ctx) const {
        prepare_impl(dc, ctx, std::index_sequence_for<Parts...>{});
    }
    tensor<B, T> backward(const tensor<B, T>& dx, layer_condition_gradients<B, T>& dc, context& ctx) {
        return backward_impl(dx, dc, ctx, std::index_sequence_for<Parts...>{});
    }
    template <class F>
    void visit_parameters(F&& f) {
        std::apply([&](auto&... p) { (p.visit_parameters(f), ...); }, parts_);
    }

private:
    template <std::size_t... I>
    tensor<B, T> forward_impl(const tensor<B, std::int32_t>& ids, const tensor<B, T>& x, layer_condition<B, T>& c,
                              context& ctx, run_mode mode, std::index_sequence<I...>) const {
        tensor<B, T> y = x;
        ((y = std::get<I>(parts_).forward(ids, y, c, std::get<I>(ctx.parts), mode)), ...);
        return y;
    }
    template <std::size_t... I>
    void prepare_impl(layer_condition_gradients<B, T>& dc, context& ctx, std::index_sequence<I...>) const {
        (std::get<I>(parts_).prepare(dc, std::get<I>(ctx.parts)), ...);
    }
    template <std::size_t... I>
    tensor<B, T> backward_impl(const tensor<B, T>& dx, layer_condition_gradients<B, T>& dc, context& ctx,
                               std::index_sequence<I...>) {
        constexpr std::size_t last = sizeof...(Parts) - 1;
        tensor<B, T> d = dx;
        ((d = std::get<last - I>(parts_).backward(d, dc, std::get<last - I>(ctx.parts))), ...);
        return d;
    }

    std::tuple<Parts...> parts_;
};

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
    using B = backend_type;
    using T = value_type;
    struct context {
        typename bert_embeddings<B, T>::context embeddings;
        typename conditioning_type::context conditioning;
        typename encoder_type::context encoder;
        typename pooler<B, T>::context pooler;
        typename mean_pooling<B, T>::context mean;
        typename multitask_heads<B, T>::context heads;
        anomaly_detector* anomaly = nullptr;  // run_mode::anomaly of the forward, for backward's checks
    };

    multitask_model(B& backend, options_type o)
        : backend_(&backend),
          opts_(check(std::move(o))),
          embeddings_(backend, opts_.backbone.embeddings(), "embeddings"),
          conditioning_(Recipe::make_conditioning(backend, opts_)),
          encoder_(Recipe::make_encoder(backend, opts_)),
          pooler_(backend, opts_.backbone.hidden, "pooler"),
          mean_(backend, opts_.backbone.hidden, "mean_pooling"),
          heads_(backend, opts_.backbone.hidden, opts_.tasks, static_cast<T>(opts_.head_dropout), "heads") {}

    /// Random initialisation of every part, in the order of the composition (BERT's scheme, N(0,
    /// initializer_range), for the backbone and heads; each conditioned part its own).
    template <class Rng>
    void initialize(Rng& rng) {
        const auto s = static_cast<T>(opts_.backbone.initializer_range);
        embeddings_.initialize(rng, s);
        conditioning_.initialize(rng, s);
        encoder_.initialize(rng, s);
        pooler_.initialize(rng, s);
        heads_.initialize(rng, s);
    }

    /// Loads a Hugging Face BERT checkpoint into the backbone: the parameters a plain BERT of this config also
    /// has, under the recipe's checkpoint names; every other parameter keeps its value. Strict by default: a
    /// backbone tensor missing from the checkpoint, or of another shape, throws io_error naming it and both
    /// shapes, and nothing is loaded. `allow_partial` loads whatever matches instead (the report says what did
    /// not). Checkpoint tensors no parameter takes are reported, not errors.
    io::load_report load_backbone(const std::filesystem::path& checkpoint, bool allow_partial = false) {
        std::set<std::string> plain;
        {
            bert_model<B, T> bert(*backend_, opts_.backbone);
            bert.visit_parameters([&](const std::string& n, parameter<B, T>&) { plain.insert(n); });
        }
        backbone_view view{*this, plain};
        return io::load_pretrained(view, checkpoint, {.strict = !allow_partial});
    }

    /// Freezes by the recipe's rule (call after loading).
    void apply_freezing() {
        visit_parameters([&](const std::string& name, parameter<B, T>& p) {
            if (Recipe::frozen(opts_, name))
                p.freeze();
            else
                p.unfreeze();
        });
    }

    [[nodiscard]] const options_type& options() const noexcept { return opts_; }
    [[nodiscard]] std::string name() const { return ""; }
    bert_embeddings<B, T>& embeddings() noexcept { return embeddings_; }
    conditioning_type& conditioning() noexcept { return conditioning_; }
    encoder_type& encoder() noexcept { return encoder_; }
    multitask_heads<B, T>& heads() noexcept { return heads_; }

    /// The sentence representation (rows, hidden) the heads read.
    tensor<B, T> pooled(const multitask_batch<B, T>& b, context& ctx, run_mode mode) const {
        ctx.anomaly = mode.anomaly;
        const tensor<B, T> x = embeddings_.forward(b.input_ids, b.token_type_ids, ctx.embeddings, mode);
        layer_condition<B, T> c{.mask = &b.mask, .task_ids = &b.task_ids};
        const tensor<B, T> xc = conditioning_.forward(b.task_ids, x, c, ctx.conditioning, mode);
        const tensor<B, T> h = encoder_.forward(xc, c, ctx.encoder, mode);
        if (opts_.heads_read == head_input::pooler) return pooler_.forward(h, ctx.pooler, mode);
        tensor<B, T> s = mean_.forward(h, b.mask, ctx.mean, mode);
        check_output(mode.anomaly, mean_.name(), "", s);
        return s;
    }

    double forward_loss(const multitask_batch<B, T>& b, context& ctx, run_mode mode) const {
        const double loss = heads_.forward_loss(pooled(b, ctx, mode), row_tasks(b), b.labels, b.scores, ctx.heads, mode);
        check_scalar(mode.anomaly, heads_.name(), "loss", loss);
        return loss;
    }

    /// Gradients of loss_scale x the batch loss, in the reverse order of the composition.
    void backward(context& ctx, T loss_scale = T(1)) {
        const tensor<B, T> ds = heads_.backward(ctx.heads, loss_scale);
        check_input_gradient(ctx.anomaly, heads_.name(), "", ds);
        const tensor<B, T> dh =
            opts_.heads_read == head_input::mean ? mean_.backward(ds, ctx.mean) : pooler_.backward(ds, ctx.pooler);
        if (opts_.heads_read == head_input::mean) check_input_gradient(ctx.anomaly, mean_.name(), "", dh);
        layer_condition_gradients<B, T> dc;
        conditioning_.prepare(dc, ctx.conditioning);
        const tensor<B, T> dx = encoder_.backward(dh, ctx.encoder, dc);
        const tensor<B, T> de = conditioning_.backward(dx, dc, ctx.conditioning);
        if (embeddings_trainable()) embeddings_.backward(de, ctx.embeddings);
    }

    /// Per-row head outputs without gradients: logits (or the regression score) per row.
    std::vector<std::vector<T>> outputs(const multitask_batch<B, T>& b, run_mode mode) const {
        context ctx;
        return heads_.outputs(pooled(b, ctx, mode), row_tasks(b), mode);
    }

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
};

}  // namespace hyperadapt
