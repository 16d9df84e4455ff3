// The PHA step of models/pha_step.hpp on the CUDA backend (cuBLAS fp32, no TF32), the side of
// `benchmarks/pytorch/pha_step.py --device cuda` (compare_pha_step.sh with device cuda).
#include "hyperadapt/backend/cuda.hpp"
#include "models/pha_step.hpp"

namespace {
void BM_pha_step_cuda(benchmark::State& state) {
    hyperadapt::cuda_backend backend;
    hyperadapt::bench::pha_step(state, backend);
}
BENCHMARK(BM_pha_step_cuda)->Name("pha_step/cuda")->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);
}  // namespace

BENCHMARK_MAIN();
