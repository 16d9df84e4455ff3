#pragma once
// The recipes' GPU choice (--device cuda --gpu N), for their CUDA translation units (nvcc only).
#include <string>

#include "../cuda_gpu.hpp"
#include "../example_support.hpp"

namespace hyperadapt::examples {

/// Makes GPU `index` current (cuda_gpu.hpp) and describes it for the run's record ("cuda:0 (NVIDIA H100 80GB
/// HBM3)", GEMM "cublas").
inline run_device select_gpu(int index) {
    const std::string name = std::to_string(index) + " (" + use_gpu(index) + ")";
    return {.device = "cuda:" + name, .gemm = "cublas", .kernels = {}, .label = "GPU " + name};
}

}  // namespace hyperadapt::examples
