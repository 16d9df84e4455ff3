// expected-error: hyperadapt::sequential: every element must be a unary layer
// Compiles as is; with HYPERADAPT_FAILTEST one element of the composition is not a layer at all.
#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/layers/activations.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/nn/compose.hpp"

int main() {
    hyperadapt::cpu b;
#ifdef HYPERADAPT_FAILTEST
    hyperadapt::sequential<hyperadapt::linear<hyperadapt::cpu, float>, int> s(
        hyperadapt::linear<hyperadapt::cpu, float>(b, 4, 4), 3);
#else
    hyperadapt::sequential<hyperadapt::linear<hyperadapt::cpu, float>, hyperadapt::gelu<hyperadapt::cpu, float>> s(
        hyperadapt::linear<hyperadapt::cpu, float>(b, 4, 4), hyperadapt::gelu<hyperadapt::cpu, float>(b));
#endif
    (void)s;
}
