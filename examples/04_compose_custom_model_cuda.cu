// 04_compose_custom_model on a GPU (--device cuda): the hybrid's training (04_compose_custom_model_run.hpp) on the
// CUDA backend, compiled by nvcc in a build with CUDA (-DHYPERADAPT_ENABLE_CUDA=ON).
#include <cstdint>
#include <string>

#include "hyperadapt/backend/cuda.hpp"
#include "04_compose_custom_model_run.hpp"
#include "cuda_gpu.hpp"

void hybrid::train_on_synthetic_tasks_cuda(int gpu, std::int64_t steps, std::uint64_t seed) {
    const std::string name = hyperadapt::examples::use_gpu(gpu);
    hyperadapt::cuda_backend b;
    train_on_synthetic_tasks(b, steps, seed, "GPU " + std::to_string(gpu) + " (" + name + ")");
}
