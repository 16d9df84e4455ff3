// expected-error: hyperadapt::block_diagonal_bias: Hidden must be a positive multiple of SeqLen
// Compiles as is; with HYPERADAPT_FAILTEST the static geometry has d = 768 and L = 512 (768 % 512 != 0).
#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/layers/camtl/conditional_attention.hpp"

int main() {
    hyperadapt::cpu b;
#ifdef HYPERADAPT_FAILTEST
    hyperadapt::conditional_self_attention<hyperadapt::cpu, float, 512, 768> att(b, 12, 0.1f);
#else
    hyperadapt::conditional_self_attention<hyperadapt::cpu, float, 128, 768> att(b, 12, 0.1f);
#endif
    (void)att;
}
