#pragma once
// Where a model's generated adapter weights come from — the conditionings of models/multitask_model.hpp that fill
// the layer condition's generated[i] for the encoder layers [first, first + layers):
//
//   prototype_conditioning    PHA: prototypes -> prototypical hypernetwork (layers/pha/prototype_conditioning.hpp)
//   task_table_conditioning   one adapter per task and layer ("task_adapters.<i>.*"): the plain-adapter baseline
//   hyperformer_conditioning  HyperFormer++: a learned task embedding ("task_embeddings.weight", N(0, 1)) -> one
//                             hypernetwork ("hypernet.*") for every layer and both serial adapter positions
//   adapter_generator         one of the three, chosen at run time (models/pha_bert.hpp's adapter_source)
//
// Each generated tensor lives in the conditioning's context for the step; the layers' gradients of it come back
// through the condition gradients, and backward trains the generator.
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "hyperadapt/layers/embedding.hpp"
#include "hyperadapt/layers/layer_condition.hpp"
#include "hyperadapt/layers/pha/adapter_slots.hpp"
#include "hyperadapt/layers/pha/hyperformer_hypernet.hpp"
#include "hyperadapt/layers/pha/prototype_conditioning.hpp"
#include "hyperadapt/layers/pha/task_adapter_table.hpp"

namespace hyperadapt {

/// One adapter per task in each generated layer: the layers read rows of the task's table.
template <elementwise_backend B, class T = float>
class task_table_conditioning {
public:
    using backend_type = B;
    using value_type = T;
    struct context {
        std::vector<typename task_adapter_table<B, T>::context> tables;
        std::vector<adapter_weights<B, T>> weights;
        std::vector<generated_adapters<B, T>> generated;
        std::vector<generated_adapter_gradients<B, T>> grads;
    };

    task_table_conditioning(B& backend, std::size_t tasks, std::size_t features, std::size_t bottleneck,
                            std::size_t first, std::size_t layers)
        : first_(first) {
        tables_.reserve(layers);
        for (std::size_t i = first; i < first + layers; ++i)
            tables_.emplace_back(backend, tasks, features, bottleneck, "task_adapters." + std::to_string(i));
    }
    template <class Rng>
    void initialize(Rng& rng, T = T(0.02)) {
        for (auto& t : tables_) t.initialize(rng);
    }
    [[nodiscard]] std::string name() const { return "task_adapters"; }

    tensor<B, T> forward(const tensor<B, std::int32_t>& task_ids, const tensor<B, T>& x, layer_condition<B, T>& c,
                         context& ctx, run_mode mode) const {
        ctx.tables.resize(tables_.size());
        ctx.weights.resize(tables_.size());
        ctx.generated.assign(first_ + tables_.size(), {});
        for (std::size_t j = 0; j < tables_.size(); ++j) {
            ctx.weights[j] = tables_[j].forward(task_ids, ctx.tables[j], mode, c.tasks.host_task_ids);
            ctx.generated[first_ + j].parallel = &ctx.weights[j];
        }
        c.generated = &ctx.generated;
        return x;
    }
    [[nodiscard]] bool needs_input_gradient() const { return false; }
    void prepare(layer_condition_gradients<B, T>& dc, context& ctx) const {
        ctx.grads.assign(first_ + tables_.size(), {});
        dc.generated = &ctx.grads;
    }
    tensor<B, T> backward(const tensor<B, T>& dx, layer_condition_gradients<B, T>&, context& ctx) {
        for (std::size_t j = tables_.size(); j-- > 0;)
            if (!ctx.grads[first_ + j].parallel.down_weight.empty())
                tables_[j].backward(ctx.grads[first_ + j].parallel, ctx.tables[j]);
        return dx;
    }
    template <class F>
    void visit_parameters(F&& f) {
        for (auto& t : tables_) t.visit_parameters(f);
    }

private:
    std::size_t first_;
    std::vector<task_adapter_table<B, T>> tables_;
};

/// HyperFormer++'s generator: weights of both serial adapters of each layer from the task embedding.
template <elementwise_backend B, class T = float>
class hyperformer_conditioning {
public:
    using backend_type = B;
    using value_type = T;
    struct context {
        typename embedding<B, T>::context task_rows;
        std::vector<typename hyperformer_hypernet<B, T>::context> attention, ffn;
        std::vector<hyperformer_adapter_weights<B, T>> attention_weights, ffn_weights;
        std::vector<generated_adapters<B, T>> generated;
        std::vector<generated_adapter_gradients<B, T>> grads;
        anomaly_detector* anomaly = nullptr;
    };

    hyperformer_conditioning(B& backend, std::size_t tasks, const hyperformer_hypernet_config& cfg, std::size_t first)
        : backend_(&backend),
          first_(first),
          layers_(cfg.layers),
          table_(backend, tasks, cfg.task_embedding, "task_embeddings"),
          hypernet_(backend, cfg, "hypernet") {}
    template <class Rng>
    void initialize(Rng& rng, T = T(0.02)) {
        table_.initialize(rng, T(1));
        hypernet_.initialize(rng);
    }
    [[nodiscard]] std::string name() const { return hypernet_.name(); }
    embedding<B, T>& task_embeddings() noexcept { return table_; }

    tensor<B, T> forward(const tensor<B, std::int32_t>& task_ids, const tensor<B, T>& x, layer_condition<B, T>& c,
                         context& ctx, run_mode mode) const {
        ctx.anomaly = mode.anomaly;
        const tensor<B, T> k = table_.forward(task_ids, ctx.task_rows, mode, c.tasks.host_task_ids);
        ctx.attention.resize(layers_);
        ctx.ffn.resize(layers_);
        ctx.attention_weights.resize(layers_);
        ctx.ffn_weights.resize(layers_);
        ctx.generated.assign(first_ + layers_, {});
        for (std::size_t j = 0; j < layers_; ++j) {
            ctx.attention_weights[j] = hypernet_.forward(k, j, hyperformer_block::self_attention, ctx.attention[j], mode);
            ctx.ffn_weights[j] = hypernet_.forward(k, j, hyperformer_block::feed_forward, ctx.ffn[j], mode);
            ctx.generated[first_ + j].after_attention = &ctx.attention_weights[j];
            ctx.generated[first_ + j].after_ffn = &ctx.ffn_weights[j];
        }
        c.generated = &ctx.generated;
        return x;
    }
    [[nodiscard]] bool needs_input_gradient() const { return false; }
    void prepare(layer_condition_gradients<B, T>& dc, context& ctx) const {
        ctx.grads.assign(first_ + layers_, {});
        dc.generated = &ctx.grads;
    }
    tensor<B, T> backward(const tensor<B, T>& dx, layer_condition_gradients<B, T>&, context& ctx) {
        tensor<B, T> dk;
        auto add = [&](const tensor<B, T>& d) {
            check_input_gradient(ctx.anomaly, hypernet_.name(), "", d, "task-embedding gradient");
            accumulate_into(*backend_, dk, d);
        };
        for (std::size_t j = layers_; j-- > 0;) {
            const auto& g = ctx.grads[first_ + j];
            if (!g.after_ffn.down_weight.empty()) add(hypernet_.backward(g.after_ffn, ctx.ffn[j]));
            if (!g.after_attention.down_weight.empty()) add(hypernet_.backward(g.after_attention, ctx.attention[j]));
        }
        if (!dk.empty()) table_.backward(dk, ctx.task_rows);
        return dx;
    }
    template <class F>
    void visit_parameters(F&& f) {
        table_.visit_parameters(f);
        hypernet_.visit_parameters(f);
    }

private:
    B* backend_;
    std::size_t first_, layers_;
    embedding<B, T> table_;
    hyperformer_hypernet<B, T> hypernet_;
};

/// One of the generators above, chosen at run time; every call goes to the one held.
template <elementwise_backend B, class T = float>
class adapter_generator {
    using held = std::variant<prototype_conditioning<B, T>, task_table_conditioning<B, T>, hyperformer_conditioning<B, T>>;

public:
    using backend_type = B;
    using value_type = T;
    struct context {
        std::variant<typename prototype_conditioning<B, T>::context, typename task_table_conditioning<B, T>::context,
                     typename hyperformer_conditioning<B, T>::context>
            held;
    };

    template <class Generator>
        requires std::is_constructible_v<held, Generator&&>
    explicit adapter_generator(Generator&& g) : generator_(std::forward<Generator>(g)) {}

    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        std::visit([&](auto& g) { g.initialize(rng, stddev); }, generator_);
    }
    [[nodiscard]] std::string name() const {
        return std::visit([](const auto& g) { return g.name(); }, generator_);
    }
    /// The generator, when it is a G (else null).
    template <class G>
    G* get() noexcept { return std::get_if<G>(&generator_); }
    template <class G>
    const G* get() const noexcept { return std::get_if<G>(&generator_); }

    tensor<B, T> forward(const tensor<B, std::int32_t>& task_ids, const tensor<B, T>& x, layer_condition<B, T>& c,
                         context& ctx, run_mode mode) const {
        return std::visit(
            [&](const auto& g) {
                auto& gc = emplace_context(g, ctx);
                return g.forward(task_ids, x, c, gc, mode);
            },
            generator_);
    }
    [[nodiscard]] bool needs_input_gradient() const { return false; }
    void prepare(layer_condition_gradients<B, T>& dc, context& ctx) const {
        std::visit([&](const auto& g) { g.prepare(dc, emplace_context(g, ctx)); }, generator_);
    }
    tensor<B, T> backward(const tensor<B, T>& dx, layer_condition_gradients<B, T>& dc, context& ctx) {
        return std::visit([&](auto& g) { return g.backward(dx, dc, emplace_context(g, ctx)); }, generator_);
    }
    template <class F>
    void visit_parameters(F&& f) {
        std::visit([&](auto& g) { g.visit_parameters(f); }, generator_);
    }

private:
    template <class G>
    static auto& emplace_context(const G&, context& ctx) {
        using gctx = typename G::context;
        if (!std::holds_alternative<gctx>(ctx.held)) ctx.held.template emplace<gctx>();
        return std::get<gctx>(ctx.held);
    }

    held generator_;
};

}  // namespace hyperadapt
