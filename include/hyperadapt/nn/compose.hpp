#pragma once
// Compositions of layers. Parameter visiting, initialisation, the forward context and the backward order are
// derived from the composition, so a composed model cannot forget a parameter or run backward out of order.
//
//   sequential<L1, L2, ...>  layers run one after another, held flat in a std::tuple (type names and compile
//                            time stay linear in the number of layers). Elements may be unary layers
//                            (nn/layer.hpp) or conditioned layers (nn/conditioned_layer.hpp); if any is
//                            conditioned, the sequential is a conditioned layer that hands the condition to
//                            those elements and ignores it for the unary ones.
//   layer_stack<L>           n layers of one type (n known at run time, as a checkpoint's layer count),
//                            named "<prefix>.layer.<i>" and numbered from a first index, so that a split
//                            encoder (a frozen lower stack, a conditioned upper one) keeps Hugging Face's names.
//                            Its backward tells a gradient_listener (nn/gradient_listener.hpp) each layer's
//                            gradients as soon as they are final.
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
#include <vector>

#include "hyperadapt/nn/anomaly.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"
#include "hyperadapt/nn/gradient_listener.hpp"
#include "hyperadapt/nn/layer.hpp"
#include "hyperadapt/nn/parameter.hpp"

namespace hyperadapt {

namespace detail {

template <class L>
tensor<typename L::backend_type, typename L::value_type> forward_element(
    const L& layer, const tensor<typename L::backend_type, typename L::value_type>& x, const auto& condition,
    typename L::context& ctx, run_mode mode) {
    if constexpr (conditioned_layer<L>)
        return layer.forward(x, condition, ctx, mode);
    else
        return layer.forward(x, ctx, mode);
}

template <class L>
tensor<typename L::backend_type, typename L::value_type> backward_element(
    L& layer, const tensor<typename L::backend_type, typename L::value_type>& dy, typename L::context& ctx,
    auto& condition_gradients) {
    if constexpr (conditioned_layer<L>)
        return layer.backward(dy, ctx, condition_gradients);
    else
        return layer.backward(dy, ctx);
}

/// initialize(rng, stddev) where the layer takes a stddev (BERT's N(0, initializer_range) layers),
/// initialize(rng) where it has its own scheme, nothing for a layer without parameters to draw.
template <class L, class Rng, class T>
void initialize_element(L& layer, Rng& rng, T stddev) {
    if constexpr (requires { layer.initialize(rng, stddev); })
        layer.initialize(rng, stddev);
    else if constexpr (requires { layer.initialize(rng); })
        layer.initialize(rng);
}

struct no_condition {};

// The condition (and its gradients) of the first conditioned element; no_condition when there is none.
template <class... Layers>
struct condition_of {
    using type = no_condition;
    using gradients = no_condition;
};
template <class First, class... Rest>
struct condition_of<First, Rest...> : condition_of<Rest...> {};
template <class First, class... Rest>
    requires conditioned_layer<First>
struct condition_of<First, Rest...> {
    using type = typename First::condition_type;
    using gradients = typename First::condition_gradients;
};

template <class L, class Condition>
constexpr bool takes_condition() {
    if constexpr (conditioned_layer<L>)
        return std::same_as<typename L::condition_type, Condition>;
    else
        return true;
}

template <class... Layers>
struct composable : std::false_type {};

// The backend, scalar and condition checks only run once every element is known to be a layer, so a non-layer
// element yields `false` rather than a hard error on a missing nested type.
template <class First, class... Rest>
    requires(composable_layer<First> && ... && composable_layer<Rest>)
struct composable<First, Rest...>
    : std::bool_constant<((std::same_as<typename Rest::backend_type, typename First::backend_type> &&
                           std::same_as<typename Rest::value_type, typename First::value_type>) &&
                          ...) &&
                         (takes_condition<First, typename condition_of<First, Rest...>::type>() && ... &&
                          takes_condition<Rest, typename condition_of<First, Rest...>::type>())> {};

template <class... Layers>
class sequential_impl {
    using first = std::tuple_element_t<0, std::tuple<Layers...>>;
    static constexpr bool conditioned = (conditioned_layer<Layers> || ...);

public:
    using backend_type = typename first::backend_type;
    using value_type = typename first::value_type;
    using tensor_type = tensor<backend_type, value_type>;
    /// Only meaningful when an element is conditioned (then the sequential is a conditioned layer).
    using condition_type = typename condition_of<Layers...>::type;
    using condition_gradients = typename condition_of<Layers...>::gradients;
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

    /// Unary form (no element is conditioned).
    tensor_type forward(const tensor_type& x, context& ctx, run_mode mode = {}) const
        requires(!conditioned)
    {
        return forward_impl(x, no_condition{}, ctx, mode, std::index_sequence_for<Layers...>{});
    }
    tensor_type apply(const tensor_type& x) const
        requires(!conditioned)
    {
        context ctx;
        return forward(x, ctx, run_mode::inference());
    }
    tensor_type backward(const tensor_type& dy, context& ctx)
        requires(!conditioned)
    {
        no_condition none;
        return backward_impl(dy, ctx, none, std::index_sequence_for<Layers...>{});
    }

    /// Conditioned form.
    tensor_type forward(const tensor_type& x, const condition_type& c, context& ctx, run_mode mode) const
        requires conditioned
    {
        return forward_impl(x, c, ctx, mode, std::index_sequence_for<Layers...>{});
    }
    tensor_type backward(const tensor_type& dy, context& ctx, condition_gradients& dc)
        requires conditioned
    {
        return backward_impl(dy, ctx, dc, std::index_sequence_for<Layers...>{});
    }

    template <class Rng>
    void initialize(Rng& rng, value_type stddev = value_type(0.02)) {
        std::apply([&](auto&... layer) { (initialize_element(layer, rng, stddev), ...); }, layers_);
    }

    template <class F>
    void visit_parameters(F&& f) {
        std::apply([&](auto&... layer) { (layer.visit_parameters(f), ...); }, layers_);
    }

private:
    template <class Condition, std::size_t... I>
    tensor_type forward_impl(const tensor_type& x, const Condition& c, context& ctx, run_mode mode,
                             std::index_sequence<I...>) const {
        ctx.anomaly = mode.anomaly;
        tensor_type y = x;
        (forward_step<I>(y, c, ctx, mode), ...);
        return y;
    }
    template <class Gradients, std::size_t... I>
    tensor_type backward_impl(const tensor_type& dy, context& ctx, Gradients& dc, std::index_sequence<I...>) {
        constexpr std::size_t last = sizeof...(Layers) - 1;
        tensor_type d = dy;
        (backward_step<last - I>(d, ctx, dc), ...);
        return d;
    }
    template <std::size_t I, class Condition>
    void forward_step(tensor_type& y, const Condition& c, context& ctx, run_mode mode) const {
        y = forward_element(std::get<I>(layers_), y, c, std::get<I>(ctx.inner), mode);
        if (mode.anomaly) check_output(mode.anomaly, std::get<I>(layers_).name(), "", y);  // name() may build a string
    }
    template <std::size_t I, class Gradients>
    void backward_step(tensor_type& d, context& ctx, Gradients& dc) {
        d = backward_element(std::get<I>(layers_), d, std::get<I>(ctx.inner), dc);
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
                  "backward(dy, ctx) -> tensor) or a conditioned layer (forward(x, condition, ctx, mode), "
                  "backward(dy, ctx, condition_gradients&)), over the same backend, scalar and condition type");
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

/// n layers of type L named "<prefix>.layer.<first + i>" (see the file comment). L is built as
/// L(backend, config, name, index); its condition (if any) is the stack's.
template <class L>
class layer_stack {
    static_assert(composable_layer<L>,
                  "hyperadapt::layer_stack: the element must be a unary or a conditioned layer (nn/layer.hpp, "
                  "nn/conditioned_layer.hpp)");
    static constexpr bool conditioned = conditioned_layer<L>;

public:
    using layer_type = L;
    using backend_type = typename L::backend_type;
    using value_type = typename L::value_type;
    using tensor_type = tensor<backend_type, value_type>;
    using condition_type = typename detail::condition_of<L>::type;
    using condition_gradients = typename detail::condition_of<L>::gradients;
    struct context {
        std::vector<typename L::context> layers;
        anomaly_detector* anomaly = nullptr;
        gradient_listener* gradients = nullptr;  // run_mode::gradients of the forward, told by backward
    };

    template <class Config = typename L::config_type>
    layer_stack(backend_type& backend, const Config& config, std::size_t count, std::string prefix = "encoder",
                std::size_t first = 0)
        : name_(std::move(prefix)), first_(first) {
        layers_.reserve(count);
        for (std::size_t i = first; i < first + count; ++i)
            layers_.emplace_back(backend, config, join_name(name_, "layer." + std::to_string(i)), i);
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] std::size_t size() const noexcept { return layers_.size(); }
    [[nodiscard]] std::size_t first_index() const noexcept { return first_; }
    L& layer(std::size_t i) { return layers_.at(i); }
    const L& layer(std::size_t i) const { return layers_.at(i); }
    auto begin() noexcept { return layers_.begin(); }
    auto end() noexcept { return layers_.end(); }

    tensor_type forward(const tensor_type& x, context& ctx, run_mode mode = {}) const
        requires(!conditioned)
    {
        return forward_impl(x, detail::no_condition{}, ctx, mode);
    }
    tensor_type backward(const tensor_type& dy, context& ctx)
        requires(!conditioned)
    {
        detail::no_condition none;
        return backward_impl(dy, ctx, none);
    }
    tensor_type forward(const tensor_type& x, const condition_type& c, context& ctx, run_mode mode) const
        requires conditioned
    {
        return forward_impl(x, c, ctx, mode);
    }
    tensor_type backward(const tensor_type& dy, context& ctx, condition_gradients& dc)
        requires conditioned
    {
        return backward_impl(dy, ctx, dc);
    }
    /// Backward through the layers from the top down to layer `lowest` only, for a caller that knows nothing below
    /// needs a gradient (a frozen backbone under the lowest adapter); returns the gradient of layer `lowest`'s input
    /// (`dy` itself when `lowest` is size()).
    tensor_type backward_down_to(std::size_t lowest, const tensor_type& dy, context& ctx, condition_gradients& dc)
        requires conditioned
    {
        return backward_impl(dy, ctx, dc, lowest);
    }

    template <class Rng>
    void initialize(Rng& rng, value_type stddev = value_type(0.02)) {
        for (auto& l : layers_) detail::initialize_element(l, rng, stddev);
    }
    template <class F>
    void visit_parameters(F&& f) {
        for (auto& l : layers_) l.visit_parameters(f);
    }

private:
    template <class Condition>
    tensor_type forward_impl(const tensor_type& x, const Condition& c, context& ctx, run_mode mode) const {
        ctx.anomaly = mode.anomaly;
        ctx.gradients = mode.gradients;
        ctx.layers.resize(layers_.size());
        tensor_type h = x;
        for (std::size_t i = 0; i < layers_.size(); ++i)
            h = detail::forward_element(layers_[i], h, c, ctx.layers[i], mode);
        return h;
    }
    template <class Gradients>
    tensor_type backward_impl(const tensor_type& dy, context& ctx, Gradients& dc, std::size_t lowest = 0) {
        tensor_type g = dy;
        for (std::size_t i = layers_.size(); i-- > lowest;) {
            g = detail::backward_element(layers_[i], g, ctx.layers[i], dc);
            if (ctx.gradients) report_gradients(layers_[i], *ctx.gradients);
        }
        return g;
    }

    /// Layer `l` has run its backward: its trainable parameters' gradients are final (nn/gradient_listener.hpp).
    static void report_gradients(L& l, gradient_listener& listener) {
        l.visit_parameters([&](const std::string&, parameter<backend_type, value_type>& p) {
            if (p.trainable() && !p.grad.empty()) listener.gradient_ready(p.grad.data(), p.size() * sizeof(value_type));
        });
        listener.layer_finished();
    }

    std::string name_;
    std::size_t first_ = 0;
    std::vector<L> layers_;
};

}  // namespace hyperadapt
