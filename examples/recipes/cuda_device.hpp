#pragma once
// The recipes' GPU choice (--device cuda --gpu N), for their CUDA translation units (nvcc only).
#include <string>

#include "hyperadapt/backend/cuda.hpp"
#include "../cuda_gpu.hpp"
#include "../example_support.hpp"

namespace hyperadapt::examples {

/// Makes GPU `index` current (cuda_gpu.hpp) and describes it for the run's record ("cuda:0 (NVIDIA H100 80GB
/// HBM3)", GEMM "cublas", or "cublas-tf32" under --precision tf32).
inline run_device select_gpu(int index, const std::string& precision) {
    const std::string name = std::to_string(index) + " (" + use_gpu(index) + ")";
    return {.device = "cuda:" + name, .gemm = precision == "tf32" ? "cublas-tf32" : "cublas", .kernels = {},
            .label = "GPU " + name};
}

/// The backend's options for --precision: fp32 exact, or tf32 (fp32 products on TF32 tensor cores).
inline cuda_backend::options cuda_options(const std::string& precision) {
    cuda_backend::options o;
    o.tf32 = precision == "tf32";
    return o;
}

}  // namespace hyperadapt::examples
