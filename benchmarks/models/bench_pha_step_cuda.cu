// The PHA step of models/pha_step.hpp on the CUDA backend, the side of `benchmarks/pytorch/pha_step.py
// --device cuda` (compare_pha_step.sh with DEVICE=cuda), in each way the backend multiplies fp32 matrices
// (cuda_products):
//   pha_step/cuda       exact fp32 (PyTorch fp32)
//   pha_step/cuda-tf32  TF32 operands (PRECISION=tf32 BENCH_FILTER=tf32: PyTorch with allow_tf32)
//   pha_step/cuda-bf16  bf16 operands, fp32 accumulation, everything else fp32 (PRECISION=bf16
//                       BENCH_FILTER=bf16: PyTorch's CUDA autocast)
#include "hyperadapt/backend/cuda.hpp"
#include "models/pha_step.hpp"

namespace {
void BM_pha_step_cuda(benchmark::State& state, hyperadapt::cuda_products products) {
    hyperadapt::cuda_backend::options o;
    o.products = products;
    hyperadapt::cuda_backend backend(o);
    hyperadapt::bench::pha_step(state, backend);
}
BENCHMARK_CAPTURE(BM_pha_step_cuda, fp32, hyperadapt::cuda_products::fp32)
    ->Name("pha_step/cuda")->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);
BENCHMARK_CAPTURE(BM_pha_step_cuda, tf32, hyperadapt::cuda_products::tf32)
    ->Name("pha_step/cuda-tf32")->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);
BENCHMARK_CAPTURE(BM_pha_step_cuda, bf16, hyperadapt::cuda_products::bf16)
    ->Name("pha_step/cuda-bf16")->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);
}  // namespace

BENCHMARK_MAIN();
