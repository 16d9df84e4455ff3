#pragma once
// The GPU an example runs on (--device cuda --gpu N), for the examples' CUDA translation units (nvcc only).
#include <cuda_runtime.h>

#include <string>

#include "hyperadapt/backend/cuda.hpp"
#include "hyperadapt/core/errors.hpp"

namespace hyperadapt::examples {

/// Makes GPU `index` current and returns its name ("NVIDIA H100 80GB HBM3"). A config_error naming --gpu when
/// there is no such device, and the CUDA runtime's own words when there is no usable GPU at all.
inline std::string use_gpu(int index) {
    int count = 0;
    if (const cudaError_t status = cudaGetDeviceCount(&count); status != cudaSuccess) {
        (void)cudaGetLastError();
        throw config_error(std::string("--device cuda: no usable GPU (") + cudaGetErrorName(status) + ": " +
                           cudaGetErrorString(status) + ")");
    }
    if (count == 0) throw config_error("--device cuda: the CUDA runtime sees no GPU");
    if (index < 0 || index >= count)
        throw config_error("--gpu " + std::to_string(index) + ": this machine has " + std::to_string(count) + " GPU" +
                           (count == 1 ? "" : "s") + " (0.." + std::to_string(count - 1) + ")");
    detail::check_cuda(cudaSetDevice(index), "cudaSetDevice", __FILE__, __LINE__);
    cudaDeviceProp prop{};
    detail::check_cuda(cudaGetDeviceProperties(&prop, index), "cudaGetDeviceProperties", __FILE__, __LINE__);
    return prop.name;
}

}  // namespace hyperadapt::examples
