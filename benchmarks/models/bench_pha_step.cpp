// The PHA step of models/pha_step.hpp on the CPU backends (Eigen, and OpenBLAS where found).
#include "hyperadapt/backend/cpu.hpp"
#if defined(HYPERADAPT_BENCH_WITH_CBLAS)
#include "hyperadapt/backend/cpu_cblas.hpp"
#endif
#include "models/pha_step.hpp"

namespace {
using namespace hyperadapt;

template <class B>
void BM_pha_step(benchmark::State& state) {
    B backend(typename B::options{.threads = static_cast<int>(state.range(0))});
    bench::pha_step(state, backend, static_cast<bench::step_batches>(state.range(1)));
}
// Args: threads, batches (0 synthetic, 1 GLUE lengths padded to 128, 2 to the longest, 3 in length groups).
BENCHMARK(BM_pha_step<cpu>)->Name("pha_step/eigen")->Args({2, 0})->Args({2, 1})->Args({2, 2})->Args({2, 3})->ArgNames({"threads", "batches"})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);
#if defined(HYPERADAPT_BENCH_WITH_CBLAS)
BENCHMARK(BM_pha_step<cpu_blas>)->Name("pha_step/cblas")->Args({2, 0})->Args({2, 1})->Args({2, 2})->Args({2, 3})->ArgNames({"threads", "batches"})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);
#endif
}  // namespace

BENCHMARK_MAIN();
