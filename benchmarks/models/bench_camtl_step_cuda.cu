// The CA-MTL step of models/camtl_step.hpp on the CUDA backend (cuBLAS fp32, no TF32), the side of
// `benchmarks/pytorch/camtl_step.py --device cuda` (DEVICE=cuda benchmarks/compare_camtl_step.sh).
#include "hyperadapt/backend/cuda.hpp"
#include "models/camtl_step.hpp"

namespace {
void BM_camtl_step_cuda(benchmark::State& state) {
    hyperadapt::cuda_backend backend;
    hyperadapt::bench::camtl_step(state, backend);
}
BENCHMARK(BM_camtl_step_cuda)->Name("camtl_step/cuda")->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);
}  // namespace

BENCHMARK_MAIN();
