#pragma once
// sequential<L1, L2, ...>: unary layers run one after another, held flat in a std::tuple rather than
// nested types, so type names and compile time stay linear in the number of layers. A sequential is itself
// a unary layer and can be nested.
//
//   sequential<linear<cpu>, gelu<cpu>, linear<cpu>> mlp(linear<cpu>(b, 8, 32, "fc1"), gelu<cpu>(b),
//                                                       linear<cpu>(b, 32, 8, "fc2"));
//
// A wrong composition stops at one static_assert sentence instead of an error deep inside forward(). In the
// anomaly mode (nn/anomaly.hpp) each element's output and input gradient is checked under the element's name.
#include <cstddef>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "hyperadapt/nn/anomaly.hpp"
#include "hyperadapt/nn/layer.hpp"

namespace hyperadapt {

namespace detail {
template <class... Layers>
struct composable : std::false_type {};

// The backend and scalar checks only run once every element is known to be a layer, so a non-layer
// element yields `false` rather than a hard error on a missing nested type.
template <class First, class... Rest>
    requires(unary_layer<First> && ... && unary_layer<Rest>)
struct composable<First, Rest...>
    : std::bool_constant<((std::same_as<typename Rest::backend_type, typename First::backend_type> &&
                           std::same_as<typename Rest::value_type, typename First::value_type>) &&
                          ...)> {};

template <class... Layers>
class sequential_impl {
    using first = std::tuple_element_t<0, std::tuple<Layers...>>;

public:
    using backend_type = typename first::backend_type;
    using value_type = typename first::value_type;
    using tensor_type = tensor<backend_type, value_type>;
    static constexpr std::size_t size = sizeof...(Layers);

    struct context {
        std::tuple<typename Layers::context...> inner;
        anomaly_detector* anomaly = nullptr;  // run_mode::anomaly of the forward, for backward's checks
    };

    explicit sequential_impl(Layers... layers) : layers_(std::move(layers)...) {}
    sequential_impl(std::string name, Layers... layers) : name_(std::move(name)), layers_(std::move(layers)...) {}

    /// The sequential's own name; parameters keep the names their layers gave them.
    [[nodiscard]] const std::string& name() const noexcept { return name_; }

    template <std::size_t I>
    [[nodiscard]] auto& get() noexcept { return std::get<I>(layers_); }
    template <std::size_t I>
    [[nodiscard]] const auto& get() const noexcept { return std::get<I>(layers_); }

    tensor_type forward(const tensor_type& x, context& ctx, run_mode mode = {}) const {
        return forward_impl(x, ctx, mode, std::index_sequence_for<Layers...>{});
    }
    tensor_type apply(const tensor_type& x) const {
        context ctx;
        return forward(x, ctx, run_mode::inference());
    }
    tensor_type backward(const tensor_type& dy, context& ctx) {
        return backward_impl(dy, ctx, std::index_sequence_for<Layers...>{});
    }

    template <class F>
    void visit_parameters(F&& f) {
        std::apply([&](auto&... layer) { (layer.visit_parameters(f), ...); }, layers_);
    }

private:
    template <std::size_t... I>
    tensor_type forward_impl(const tensor_type& x, context& ctx, run_mode mode, std::index_sequence<I...>) const {
        ctx.anomaly = mode.anomaly;
        tensor_type y = x;
        (forward_step<I>(y, ctx, mode), ...);
        return y;
    }
    template <std::size_t... I>
    tensor_type backward_impl(const tensor_type& dy, context& ctx, std::index_sequence<I...>) {
        constexpr std::size_t last = sizeof...(Layers) - 1;
        tensor_type d = dy;
        (backward_step<last - I>(d, ctx), ...);
        return d;
    }
    template <std::size_t I>
    void forward_step(tensor_type& y, context& ctx, run_mode mode) const {
        y = std::get<I>(layers_).forward(y, std::get<I>(ctx.inner), mode);
        if (mode.anomaly) check_output(mode.anomaly, std::get<I>(layers_).name(), "", y);  // name() may build a string
    }
    template <std::size_t I>
    void backward_step(tensor_type& d, context& ctx) {
        d = std::get<I>(layers_).backward(d, std::get<I>(ctx.inner));
        if (ctx.anomaly) check_input_gradient(ctx.anomaly, std::get<I>(layers_).name(), "", d);
    }

    std::string name_;
    std::tuple<Layers...> layers_;
};

/// Stands in for the implementation when the composition is invalid, so that the static_assert is the
/// only diagnostic about the composition itself.
struct invalid_sequential {
    template <class... Args>
    explicit invalid_sequential(Args&&...) {}
};
}  // namespace detail

template <class... Layers>
class sequential : public std::conditional_t<detail::composable<Layers...>::value, detail::sequential_impl<Layers...>,
                                             detail::invalid_sequential> {
    static_assert(sizeof...(Layers) > 0, "hyperadapt::sequential: needs at least one layer");
    static_assert(sizeof...(Layers) == 0 || detail::composable<Layers...>::value,
                  "hyperadapt::sequential: every element must be a unary layer (forward(x, ctx, mode) -> tensor, "
                  "backward(dy, ctx) -> tensor) over the same backend and scalar type");
    using base = std::conditional_t<detail::composable<Layers...>::value, detail::sequential_impl<Layers...>,
                                    detail::invalid_sequential>;

public:
    using base::base;
};

template <class... Layers>
sequential(Layers...) -> sequential<Layers...>;
template <class... Layers>
sequential(std::string, Layers...) -> sequential<Layers...>;
template <class... Layers>
sequential(const char*, Layers...) -> sequential<Layers...>;

}  // namespace hyperadapt
