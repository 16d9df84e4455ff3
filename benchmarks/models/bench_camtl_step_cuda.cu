// The CA-MTL step of models/camtl_step.hpp on the CUDA backend (cuBLAS fp32; and with TF32 or bf16 products), the side of
// `benchmarks/pytorch/camtl_step.py --device cuda` (DEVICE=cuda benchmarks/compare_camtl_step.sh).
#include "hyperadapt/backend/cuda.hpp"
#include "models/camtl_step.hpp"

namespace {
void BM_camtl_step_cuda(benchmark::State& state) {
    hyperadapt::cuda_backend backend;
    hyperadapt::bench::camtl_step(state, backend);
}
BENCHMARK(BM_camtl_step_cuda)->Name("camtl_step/cuda")->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);
// fp32 products on TF32 tensor cores (cuda_backend::options::tf32): the side of the script's --precision tf32
// (PRECISION=tf32 BENCH_FILTER=tf32).
void BM_camtl_step_cuda_tf32(benchmark::State& state) {
    hyperadapt::cuda_backend::options o;
    o.products = hyperadapt::cuda_products::tf32;
    hyperadapt::cuda_backend backend(o);
    hyperadapt::bench::camtl_step(state, backend);
}
BENCHMARK(BM_camtl_step_cuda_tf32)->Name("camtl_step/cuda-tf32")->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);
// fp32 matrices multiplied with bf16 operands and fp32 accumulation (cuda_products::bf16), everything else fp32:
// the side of the script's --precision bf16 (PyTorch's CUDA autocast; PRECISION=bf16 BENCH_FILTER=bf16).
void BM_camtl_step_cuda_bf16(benchmark::State& state) {
    hyperadapt::cuda_backend::options o;
    o.products = hyperadapt::cuda_products::bf16;
    hyperadapt::cuda_backend backend(o);
    hyperadapt::bench::camtl_step(state, backend);
}
BENCHMARK(BM_camtl_step_cuda_bf16)->Name("camtl_step/cuda-bf16")->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);
}  // namespace

BENCHMARK_MAIN();
