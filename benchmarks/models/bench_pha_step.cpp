// The PHA step of models/pha_step.hpp on the CPU backends (Eigen, and OpenBLAS where found).
#include "bench_backends.hpp"
#include "models/pha_step.hpp"

namespace {
using namespace hyperadapt;

template <class B, class... Provider>
void BM_pha_step(benchmark::State& state, Provider... provider) {
    B backend(typename B::options{.threads = static_cast<int>(state.range(0))}, provider...);
    bench::pha_step(state, backend, static_cast<bench::step_batches>(state.range(1)));
}
// Args: threads, batches (0 synthetic, 1 GLUE lengths padded to 128, 2 to the longest, 3 in length groups);
// one thread on length groups too, for benchmarks/contention.sh (unless that is already bench::threads()).
BENCHMARK(BM_pha_step<cpu>)->Name("pha_step/eigen")->Apply(bench::step_cases);
#if defined(HYPERADAPT_BENCH_WITH_CBLAS)
BENCHMARK(BM_pha_step<cpu_blas>)->Name("pha_step/cblas")->Apply([](benchmark::internal::Benchmark* b) {
    bench::step_cases(b);
    if (bench::threads() != 1) b->Args({1, 3});
});
#endif
#if defined(HYPERADAPT_BENCH_WITH_ONEDNN)
void BM_pha_step_bf16(benchmark::State& s) { BM_pha_step<bench::bf16_cpu>(s, bench::bf16()); }
BENCHMARK(BM_pha_step_bf16)->Name("pha_step/bf16")->Apply(bench::step_cases);
#endif
}  // namespace

BENCHMARK_MAIN();
