// expected-error: hyperadapt::sequential: every element must be a unary layer (forward(x, ctx, mode) -> tensor, backward(dy, ctx) -> tensor) or a conditioned layer
// Compiles as is; with HYPERADAPT_FAILTEST a float layer feeds a double layer.
#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/layers/activations.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/nn/compose.hpp"

#ifdef HYPERADAPT_FAILTEST
using second_scalar = double;
#else
using second_scalar = float;
#endif

int main() {
    hyperadapt::cpu b;
    hyperadapt::sequential s(hyperadapt::linear<hyperadapt::cpu, float>(b, 4, 4),
                             hyperadapt::gelu<hyperadapt::cpu, second_scalar>(b));
    (void)s;
}
