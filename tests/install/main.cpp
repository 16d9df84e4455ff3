// Builds a Linear layer over the CPU backend and checks one forward against a hand-computed product.
#include <cmath>
#include <cstdio>
#include <vector>

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/layers/linear.hpp"
#if defined(CONSUMER_WITH_CBLAS)
#include "hyperadapt/backend/cpu_cblas.hpp"
using backend = hyperadapt::cpu_blas;
#else
using backend = hyperadapt::cpu;
#endif

int main() {
    backend b;
    hyperadapt::linear<backend, float> fc(b, 3, 2, "classifier");
    const std::vector<float> w{1, 2, 3, 4, 5, 6}, bias{0.5f, -1.0f}, x{1, 0, -1, 2, 1, 0};
    b.copy_from_host(w.data(), fc.weight().value.data(), w.size());
    b.copy_from_host(bias.data(), fc.bias().value.data(), bias.size());
    const auto y = fc.apply(hyperadapt::tensor<backend, float>::from_host(b, {2, 3}, x)).to_host();
    const std::vector<float> want{-1.5f, -3.0f, 4.5f, 12.0f};
    for (std::size_t i = 0; i < want.size(); ++i) {
        if (std::abs(y[i] - want[i]) > 1e-6f) {
            std::printf("consumer: y[%zu] = %g, expected %g\n", i, static_cast<double>(y[i]),
                        static_cast<double>(want[i]));
            return 1;
        }
    }
    std::printf("consumer: linear forward on %s backend (%s GEMM) OK\n", b.name(), backend::gemm_provider::name);
    return 0;
}
