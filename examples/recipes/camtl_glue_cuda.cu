// The CA-MTL recipe's models on a GPU (--device cuda): camtl_glue_on<cuda_backend>, compiled by nvcc in a build
// with CUDA (-DHYPERADAPT_ENABLE_CUDA=ON). Everything else of the recipe -- options, data, tokenizing, reports --
// is camtl_glue.cpp's, compiled once for both devices.
#include <cuda_runtime.h>

#include <memory>
#include <string>

#include "hyperadapt/backend/cuda.hpp"
#include "camtl_glue_device.hpp"

namespace hyperadapt::examples {

namespace {

/// Makes GPU `index` current and names it ("cuda:0 (NVIDIA H100 80GB HBM3)"); a config_error naming --gpu when
/// there is no such device, and the CUDA runtime's own words when there is no usable GPU at all.
std::string select_gpu(int index) {
    int count = 0;
    if (const cudaError_t status = cudaGetDeviceCount(&count); status != cudaSuccess) {
        (void)cudaGetLastError();
        throw config_error(std::string("--device cuda: no usable GPU (") + cudaGetErrorName(status) + ": " +
                           cudaGetErrorString(status) + ")");
    }
    if (count == 0) throw config_error("--device cuda: the CUDA runtime sees no GPU");
    if (index < 0 || index >= count)
        throw config_error("--gpu " + std::to_string(index) + ": this machine has " + std::to_string(count) +
                           " GPU" + (count == 1 ? "" : "s") + " (0.." + std::to_string(count - 1) + ")");
    detail::check_cuda(cudaSetDevice(index), "cudaSetDevice", __FILE__, __LINE__);
    cudaDeviceProp prop{};
    detail::check_cuda(cudaGetDeviceProperties(&prop, index), "cudaGetDeviceProperties", __FILE__, __LINE__);
    return "cuda:" + std::to_string(index) + " (" + prop.name + ")";
}

}  // namespace

std::unique_ptr<camtl_glue_device> make_camtl_glue_cuda(const camtl_glue_args& a) {
    const std::string name = select_gpu(a.gpu);
    auto d = std::make_unique<camtl_glue_on<cuda_backend>>(run_device{.device = name, .gemm = "cublas", .kernels = {}},
                                                           [] { return cuda_backend(); });
    d->set_label("GPU " + name.substr(5));
    return d;
}

}  // namespace hyperadapt::examples
