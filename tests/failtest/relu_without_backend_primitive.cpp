// expected-error: pha_ops::relu_forward: the backend has no relu_forward(n, x, y) primitive
// Compiles as is; with HYPERADAPT_FAILTEST the PHA modules' ReLU runs over a backend that has every
// element-wise primitive but relu_forward, which must stop compilation with a sentence naming the missing
// primitive instead of computing ReLU through host memory.
#include <cstddef>

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/layers/pha/pha_ops.hpp"

#ifdef HYPERADAPT_FAILTEST
/// The CPU backend without relu_forward: the deleted member hides cpu's, so b.relu_forward(n, x, y) is invalid.
struct cpu_without_relu : hyperadapt::cpu {
    void relu_forward() = delete;
};
static_assert(hyperadapt::elementwise_backend<cpu_without_relu>);
static_assert(!hyperadapt::backend<cpu_without_relu>);
using backend_under_test = cpu_without_relu;
#else
using backend_under_test = hyperadapt::cpu;
#endif

int main() {
    backend_under_test b;
    float x[4] = {-1.0f, 0.0f, 2.0f, 3.0f}, y[4] = {};
    hyperadapt::pha_ops::relu_forward(b, std::size_t{4}, x, y);
    return y[2] == 2.0f ? 0 : 1;
}
