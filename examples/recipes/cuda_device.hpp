#pragma once
// The recipes' GPU choice (--device cuda --gpu N), for their CUDA translation units (nvcc only).
#include <string>

#include "hyperadapt/backend/cuda.hpp"
#include "../cuda_gpu.hpp"
#include "../example_support.hpp"

namespace hyperadapt::examples {

/// The backend's products for --precision: fp32 exact; tf32, bf16 or fp16 operands with fp32 accumulation
/// (cuda_products). check_common_options has refused anything else.
inline cuda_products cuda_products_for(const std::string& precision) {
    if (precision == "tf32") return cuda_products::tf32;
    if (precision == "bf16") return cuda_products::bf16;
    if (precision == "fp16") return cuda_products::fp16;
    return cuda_products::fp32;
}

/// Makes GPU `index` current (cuda_gpu.hpp) and describes it for the run's record ("cuda:0 (NVIDIA H100 80GB
/// HBM3)", GEMM "cublas", or "cublas-tf32" / "cublas-bf16" / "cublas-fp16" under --precision).
inline run_device select_gpu(int index, const std::string& precision) {
    const std::string name = std::to_string(index) + " (" + use_gpu(index) + ")";
    const cuda_products p = cuda_products_for(precision);
    return {.device = "cuda:" + name,
            .gemm = p == cuda_products::fp32 ? std::string("cublas") : std::string("cublas-") + to_string(p),
            .kernels = {},
            .label = "GPU " + name};
}

/// The backend's options for --precision.
inline cuda_backend::options cuda_options(const std::string& precision) {
    cuda_backend::options o;
    o.products = cuda_products_for(precision);
    return o;
}

}  // namespace hyperadapt::examples
