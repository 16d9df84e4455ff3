// The CA-MTL step of models/camtl_step.hpp on the CPU backends (Eigen, OpenBLAS where found, oneDNN's bf16).
#include "bench_backends.hpp"
#include "models/camtl_step.hpp"

namespace {
using namespace hyperadapt;

template <class B, class... Provider>
void BM_camtl_step(benchmark::State& state, Provider... provider) {
    B backend(typename B::options{.threads = static_cast<int>(state.range(0))}, provider...);
    bench::camtl_step(state, backend, static_cast<bench::step_batches>(state.range(1)));
}
// Args: threads, batches (0 synthetic, 1 GLUE lengths padded to 128, 2 to the longest, 3 in length groups).
BENCHMARK(BM_camtl_step<cpu>)->Name("camtl_step/eigen")->Apply(bench::step_cases);
#if defined(HYPERADAPT_BENCH_WITH_CBLAS)
BENCHMARK(BM_camtl_step<cpu_blas>)->Name("camtl_step/cblas")->Apply(bench::step_cases);
#endif
#if defined(HYPERADAPT_BENCH_WITH_ONEDNN)
void BM_camtl_step_bf16(benchmark::State& s) { BM_camtl_step<bench::bf16_cpu>(s, bench::bf16()); }
BENCHMARK(BM_camtl_step_bf16)->Name("camtl_step/bf16")->Apply(bench::step_cases);
#endif
}  // namespace

BENCHMARK_MAIN();
