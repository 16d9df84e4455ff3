// The PHA step of models/pha_step.hpp on the CUDA backend (cuBLAS fp32; and with TF32 or bf16 products), the side of
// `benchmarks/pytorch/pha_step.py --device cuda` (compare_pha_step.sh with device cuda).
#include "hyperadapt/backend/cuda.hpp"
#include "models/pha_step.hpp"

namespace {
void BM_pha_step_cuda(benchmark::State& state) {
    hyperadapt::cuda_backend backend;
    hyperadapt::bench::pha_step(state, backend);
}
BENCHMARK(BM_pha_step_cuda)->Name("pha_step/cuda")->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);
// fp32 products on TF32 tensor cores (cuda_backend::options::tf32): the side of the script's --precision tf32
// (PRECISION=tf32 BENCH_FILTER=tf32).
void BM_pha_step_cuda_tf32(benchmark::State& state) {
    hyperadapt::cuda_backend::options o;
    o.products = hyperadapt::cuda_products::tf32;
    hyperadapt::cuda_backend backend(o);
    hyperadapt::bench::pha_step(state, backend);
}
BENCHMARK(BM_pha_step_cuda_tf32)->Name("pha_step/cuda-tf32")->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);
// fp32 matrices multiplied with bf16 operands and fp32 accumulation (cuda_products::bf16), everything else fp32:
// the side of the script's --precision bf16 (PyTorch's CUDA autocast; PRECISION=bf16 BENCH_FILTER=bf16).
void BM_pha_step_cuda_bf16(benchmark::State& state) {
    hyperadapt::cuda_backend::options o;
    o.products = hyperadapt::cuda_products::bf16;
    hyperadapt::cuda_backend backend(o);
    hyperadapt::bench::pha_step(state, backend);
}
BENCHMARK(BM_pha_step_cuda_bf16)->Name("pha_step/cuda-bf16")->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);
}  // namespace

BENCHMARK_MAIN();
