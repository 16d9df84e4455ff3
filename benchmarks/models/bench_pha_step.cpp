// The PHA step of models/pha_step.hpp on the CPU backends (Eigen, and OpenBLAS where found).
#include "hyperadapt/backend/cpu.hpp"
#if defined(HYPERADAPT_BENCH_WITH_CBLAS)
#include "hyperadapt/backend/cpu_cblas.hpp"
#endif
#if defined(HYPERADAPT_BENCH_WITH_ONEDNN)
#include "hyperadapt/backend/cpu_onednn.hpp"
#endif
#include "models/pha_step.hpp"

namespace {
using namespace hyperadapt;

template <class B, class... Provider>
void BM_pha_step(benchmark::State& state, Provider... provider) {
    B backend(typename B::options{.threads = static_cast<int>(state.range(0))}, provider...);
    bench::pha_step(state, backend, static_cast<bench::step_batches>(state.range(1)));
}
// Args: threads, batches (0 synthetic, 1 GLUE lengths padded to 128, 2 to the longest, 3 in length groups);
// one thread on length groups too, for benchmarks/contention.sh.
BENCHMARK(BM_pha_step<cpu>)->Name("pha_step/eigen")->Args({2, 0})->Args({2, 1})->Args({2, 2})->Args({2, 3})->ArgNames({"threads", "batches"})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);
#if defined(HYPERADAPT_BENCH_WITH_CBLAS)
BENCHMARK(BM_pha_step<cpu_blas>)->Name("pha_step/cblas")->Args({2, 0})->Args({2, 1})->Args({2, 2})->Args({2, 3})->Args({1, 3})->ArgNames({"threads", "batches"})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);
#endif
#if defined(HYPERADAPT_BENCH_WITH_ONEDNN)
// bf16 products (onednn_gemm: oneDNN above its size floor, the fp32 provider below; everything else fp32).
#if defined(HYPERADAPT_BENCH_WITH_CBLAS)
using bf16_provider = onednn_gemm<cblas_gemm>;
#else
using bf16_provider = onednn_gemm<eigen_gemm>;
#endif
void BM_pha_step_bf16(benchmark::State& s) { BM_pha_step<cpu_backend<bf16_provider>>(s, bf16_provider(compute_precision::bf16)); }
BENCHMARK(BM_pha_step_bf16)->Name("pha_step/bf16")->Args({2, 0})->Args({2, 1})->Args({2, 2})->Args({2, 3})->ArgNames({"threads", "batches"})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);
#endif
}  // namespace

BENCHMARK_MAIN();
