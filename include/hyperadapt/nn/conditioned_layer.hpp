#pragma once
// The contract of a conditioned layer: a layer that reads, besides its input tensor, what the model knows about
// the batch — the padding mask, every row's task id, the task embedding, weights a hypernetwork generated — and
// whose backward hands gradients back to those conditions as well as to its input.
//
//   * L::condition_type: what forward receives besides x (layers/layer_condition.hpp has the library's one:
//     hyperadapt::layer_condition). A conditioned layer only reads it; it is built once per batch by the model.
//   * L::condition_gradients: what backward ADDS into (the task-embedding gradient, the generated weights'
//     gradients). Adding, never assigning, is what lets a composition pass one accumulator through all layers
//     instead of each layer returning its own gradients struct.
//   * forward(x, condition, context&, run_mode) -> tensor;  backward(dy, context&, condition_gradients&) ->
//     the input gradient (parameter gradients accumulate into the parameters, as for every layer).
//   * initialize(rng): one signature for every layer (optional arguments, such as BERT's stddev, have defaults).
//
// A unary layer (nn/layer.hpp) is the special case that ignores the condition; compositions (nn/compose.hpp)
// accept both and call each element in its own form.
#include <concepts>

#include "hyperadapt/nn/layer.hpp"

namespace hyperadapt {

/// Has the one initialisation signature: initialize(rng).
template <class L>
concept initializable = requires(L& l, rng_stream& rng) { l.initialize(rng); };

/// A layer conditioned on the batch (see the file comment).
template <class L>
concept conditioned_layer =
    parameterized<L> &&
    requires(L& l, const L& cl, typename L::context& ctx, const typename L::condition_type& c,
             typename L::condition_gradients& dc, const tensor<typename L::backend_type, typename L::value_type>& x,
             run_mode mode) {
        { cl.forward(x, c, ctx, mode) } -> std::same_as<tensor<typename L::backend_type, typename L::value_type>>;
        { l.backward(x, ctx, dc) } -> std::same_as<tensor<typename L::backend_type, typename L::value_type>>;
    };

/// What a composition may chain: unary or conditioned layers.
template <class L>
concept composable_layer = unary_layer<L> || conditioned_layer<L>;

}  // namespace hyperadapt
