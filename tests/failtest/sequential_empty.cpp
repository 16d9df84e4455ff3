// expected-error: hyperadapt::sequential: needs at least one layer
// Compiles as is; with HYPERADAPT_FAILTEST the composition is empty.
#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/layers/activations.hpp"
#include "hyperadapt/nn/compose.hpp"

int main() {
    hyperadapt::cpu b;
#ifdef HYPERADAPT_FAILTEST
    hyperadapt::sequential<> s;
#else
    hyperadapt::sequential<hyperadapt::gelu<hyperadapt::cpu, float>> s{hyperadapt::gelu<hyperadapt::cpu, float>(b)};
#endif
    (void)s;
    (void)b;
}
