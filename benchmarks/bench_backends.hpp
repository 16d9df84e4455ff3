#pragma once
// The CPU backends every benchmark compares: Eigen's GEMM, OpenBLAS's where the build found a CBLAS library
// (HYPERADAPT_BENCH_WITH_CBLAS), and bf16 products where it found oneDNN (HYPERADAPT_BENCH_WITH_ONEDNN):
// onednn_gemm over the faster fp32 provider, which keeps the products under its size floor.
#include <benchmark/benchmark.h>

#include <cstdlib>

#include "hyperadapt/backend/cpu.hpp"
#if defined(HYPERADAPT_BENCH_WITH_CBLAS)
#include "hyperadapt/backend/cpu_cblas.hpp"
#endif
#if defined(HYPERADAPT_BENCH_WITH_ONEDNN)
#include "hyperadapt/backend/cpu_onednn.hpp"
#endif

namespace hyperadapt::bench {

#if defined(HYPERADAPT_BENCH_WITH_ONEDNN)
#if defined(HYPERADAPT_BENCH_WITH_CBLAS)
using bf16_provider = onednn_gemm<cblas_gemm>;
#else
using bf16_provider = onednn_gemm<eigen_gemm>;
#endif
using bf16_cpu = cpu_backend<bf16_provider>;
/// The provider in bf16 (the backend's constructor takes it after its options).
inline bf16_provider bf16() { return bf16_provider(compute_precision::bf16); }
#endif

/// The thread count of the layer and step benchmarks: HYPERADAPT_BENCH_THREADS (set by the compare scripts
/// from their threads argument, so that both sides run the same count), 2 where it is unset or not a count.
inline long threads() {
    const char* v = std::getenv("HYPERADAPT_BENCH_THREADS");
    const long n = v ? std::strtol(v, nullptr, 10) : 0;
    return n > 0 ? n : 2;
}

/// The training-step benchmarks' cases: threads();  batches 0 synthetic, 1 GLUE lengths padded to 128,
/// 2 to the batch's longest, 3 in length groups; at least 5 s each, or exactly HYPERADAPT_BENCH_ITERATIONS
/// steps where that is set (compare_memory.sh: every GLUE batch once, whatever the machine's speed).
inline void step_cases(benchmark::internal::Benchmark* b) {
    const long t = threads();
    b->Args({t, 0})->Args({t, 1})->Args({t, 2})->Args({t, 3})->ArgNames({"threads", "batches"});
    b->Unit(benchmark::kMillisecond)->UseRealTime();
    const char* steps = std::getenv("HYPERADAPT_BENCH_ITERATIONS");
    const long n = steps ? std::strtol(steps, nullptr, 10) : 0;
    if (n > 0)
        b->Iterations(n);
    else
        b->MinTime(5.0);
}

}  // namespace hyperadapt::bench
