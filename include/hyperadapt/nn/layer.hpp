#pragma once
// The layer contract (docs/design.md has the prose version).
//
//   * A layer is a class template over a backend policy B and a scalar T.
//   * It knows its own name: the Hugging Face path of its parameters ("encoder.layer.3.output.dense").
//   * forward(input..., context&, run_mode) returns a new tensor and stores in `context` what backward
//     needs. The layer itself keeps no per-call state, so one layer may be run several times per step
//     (a sampler's candidate pass, a hypernetwork) with one context per call.
//   * backward(grad_output, context&) returns the gradient of the input and ADDS the parameter gradients
//     into each trainable parameter's `grad` (PyTorch semantics: zero them between steps). Frozen
//     parameters have no gradient buffer and are skipped.
//   * visit_parameters(f) calls f(name, parameter&) for every parameter, sub-layers included, in a fixed
//     order; nothing else needs per-layer code.
#include <concepts>
#include <string>

#include "hyperadapt/nn/mode.hpp"
#include "hyperadapt/nn/parameter.hpp"

namespace hyperadapt {

namespace detail {
template <class B, class T>
struct parameter_sink {
    void operator()(const std::string&, parameter<B, T>&) const {}
};
}  // namespace detail

/// Something that owns named parameters.
template <class L>
concept parameterized = requires(L& l) {
    typename L::backend_type;
    typename L::value_type;
    { l.name() } -> std::convertible_to<std::string>;
    l.visit_parameters(detail::parameter_sink<typename L::backend_type, typename L::value_type>{});
};

/// A layer with one tensor in and one tensor out.
template <class L>
concept unary_layer = parameterized<L> && requires(L& l, const L& cl, typename L::context& ctx,
                                                   const tensor<typename L::backend_type, typename L::value_type>& x,
                                                   run_mode mode) {
    { cl.forward(x, ctx, mode) } -> std::same_as<tensor<typename L::backend_type, typename L::value_type>>;
    { l.backward(x, ctx) } -> std::same_as<tensor<typename L::backend_type, typename L::value_type>>;
};

}  // namespace hyperadapt
