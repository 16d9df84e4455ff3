#pragma once
// The conditioning of a multi-task model (models/multitask_model.hpp): what runs between the embeddings and the
// encoder, turns every row's task id into the layer condition, and trains from the condition gradients.
//
//   tensor forward(task_ids, embedded, layer_condition& c, context&, run_mode)   returns the encoder input (the
//                                                      embeddings, or a transform of them), fills c
//   void prepare(layer_condition_gradients& dc, context&)                        before the encoder's backward
//                                                      (e.g. room for the generated weights' gradients)
//   bool needs_input_gradient()                         whether backward needs the encoder's input gradient
//   tensor backward(d_encoder_input, dc, context&)      returns the gradient of the embeddings (may be empty)
//   initialize(rng, stddev), visit_parameters(f), name()
//
// Conditionings: no_conditioning and conditionings<...> (here), camtl_task_conditioning
// (layers/camtl/task_conditioning.hpp), prototype_conditioning, task_table_conditioning, hyperformer_conditioning
// and adapter_generator (layers/pha/).
#include <cstddef>
#include <cstdint>
#include <string>
#include <tuple>
#include <utility>

#include "hyperadapt/layers/layer_condition.hpp"
#include "hyperadapt/nn/mode.hpp"

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
    [[nodiscard]] bool needs_input_gradient() const { return false; }
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
    [[nodiscard]] bool needs_input_gradient() const {
        return std::apply([](const auto&... p) { return (p.needs_input_gradient() || ...); }, parts_);
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

}  // namespace hyperadapt
