#pragma once
// "No parameter can be forgotten" (issue 10), checked. Two models of the same options are initialised from
// different seeds, and every parameter the first one's visit_parameters reaches is copied into the second one,
// in visit order. If the visit reaches every parameter, the two are now the same model: their training losses
// and gradients agree bit for bit. A parameter the visit misses keeps the second model's own random value, and
// the losses differ. (A parameter that is neither visited nor given a value by initialize() keeps its
// constructor value in both models and is not seen here. initialize() follows the same composition as the
// visit. A visited parameter that nothing reads is caught by the gradient checks instead: its gradient stays
// zero.)
#include <cstdint>
#include <string>
#include <vector>

#include "hyperadapt/backend/counter_rng.hpp"
#include "hyperadapt/data/multitask_batch.hpp"
#include "hyperadapt/nn/mode.hpp"
#include "hyperadapt/nn/parameter.hpp"

namespace hyperadapt::testing {

/// Empty when every parameter that the models' loss reads is visited; otherwise what differs. `first` and
/// `second` are models of the same options, initialised from different seeds.
template <class Model, class B, class T>
std::string unvisited_parameter_report(Model& first, Model& second, const multitask_batch<B, T>& batch) {
    std::vector<parameter<B, T>*> visited;
    first.visit_parameters([&](const std::string&, parameter<B, T>& p) { visited.push_back(&p); });
    std::size_t i = 0;
    std::string mismatch;
    second.visit_parameters([&](const std::string& name, parameter<B, T>& p) {
        if (i >= visited.size() || visited[i]->size() != p.size()) {
            if (mismatch.empty()) mismatch = "the two models visit different parameters (at '" + name + "')";
            ++i;
            return;
        }
        p.value.backend().copy(visited[i]->value.data(), p.value.data(), p.size());
        ++i;
    });
    if (mismatch.empty() && i != visited.size())
        mismatch = "the two models visit different parameters (" + std::to_string(visited.size()) + " and " +
                   std::to_string(i) + ")";
    if (!mismatch.empty()) return mismatch;
    typename Model::context c1, c2;
    rng_stream d1(3), d2(3);  // the same dropout masks
    const double l1 = first.forward_loss(batch, c1, run_mode::train(d1));
    const double l2 = second.forward_loss(batch, c2, run_mode::train(d2));
    if (!(l1 == l2))
        return "losses " + std::to_string(l1) + " and " + std::to_string(l2) +
               " differ after copying every visited parameter: the forward reads a parameter the visit misses";
    first.backward(c1);
    second.backward(c2);
    std::vector<std::vector<T>> g1;
    first.visit_parameters([&](const std::string&, parameter<B, T>& p) {
        g1.push_back(p.trainable() ? p.grad.to_host() : std::vector<T>{});
    });
    i = 0;
    second.visit_parameters([&](const std::string& name, parameter<B, T>& p) {
        if (mismatch.empty() && (p.trainable() ? p.grad.to_host() : std::vector<T>{}) != g1[i])
            mismatch = "the gradients of '" + name + "' differ: a parameter the visit misses reaches them";
        ++i;
    });
    return mismatch;
}

}  // namespace hyperadapt::testing
