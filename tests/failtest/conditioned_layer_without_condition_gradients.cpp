// expected-error: hyperadapt::layer_stack: the element must be a unary or a conditioned layer
// Compiles as is; with HYPERADAPT_FAILTEST the layer's backward is written in the unary form backward(dy, ctx),
// without the condition_gradients& it must add into (nn/conditioned_layer.hpp). Its forward takes a condition,
// so it is neither a conditioned nor a unary layer, and layer_stack must say so in its sentence rather than fail
// inside its own backward(). The layer runs over the declaration-only archetype backend: only its type is
// checked (-fsyntax-only), nothing runs.
#include <cstddef>
#include <string>
#include <utility>

#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/layers/layer_condition.hpp"
#include "hyperadapt/nn/compose.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace {

using backend_type = hyperadapt::archetype_backend;
using tensor_type = hyperadapt::tensor<backend_type, float>;

/// A conditioned layer reduced to its interface (the identity): only its type matters here.
class task_shift {
public:
    using backend_type = ::backend_type;
    using value_type = float;
    using condition_type = hyperadapt::layer_condition<backend_type, float>;
    using condition_gradients = hyperadapt::layer_condition_gradients<backend_type, float>;
    struct config_type {};
    struct context {};

    task_shift(backend_type&, const config_type&, std::string name, std::size_t) : name_(std::move(name)) {}

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    template <class F>
    void visit_parameters(F&&) {}
    template <class Rng>
    void initialize(Rng&) {}

    tensor_type forward(const tensor_type& x, const condition_type&, context&, hyperadapt::run_mode) const {
        return x;
    }
#ifdef HYPERADAPT_FAILTEST
    tensor_type backward(const tensor_type& dy, context&) { return dy; }
#else
    tensor_type backward(const tensor_type& dy, context&, condition_gradients&) { return dy; }
#endif

private:
    std::string name_;
};

}  // namespace

#ifndef HYPERADAPT_FAILTEST
static_assert(hyperadapt::conditioned_layer<task_shift>);
#endif

/// Type-checked only (the test compiles with -fsyntax-only): the archetype backend has nothing to run.
void build_stack(backend_type& backend) {
    hyperadapt::layer_stack<task_shift> stack(backend, task_shift::config_type{}, 2, "encoder");
    (void)stack;
}

int main() {}
