#pragma once
// The recipes' GPU choice (--device cuda --gpu N), for their CUDA translation units (nvcc only).
#include <memory>
#include <string>

#include "hyperadapt/backend/cuda.hpp"
#include "hyperadapt/distributed/communicator_ref.hpp"
#if defined(HYPERADAPT_RECIPES_WITH_NCCL)
#include "hyperadapt/distributed/nccl_communicator.hpp"
#endif
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

/// GPUs under a launcher (mpirun -np N with --device cuda): an NCCL communicator over the launcher's ranks
/// (bootstrapped over them, on `gpu`'s stream), so that the trainer all-reduces the gradients in device memory
/// (allreduce_gradients through communicator_ref::carries_device_collectives) instead of copying them to the host
/// for MPI; the rank and the world size are the launcher's. One process, or a build without NCCL
/// (hyperadapt::nccl): communicator() is the launcher's own.
class gpu_ranks {
public:
    gpu_ranks(communicator_ref launcher, [[maybe_unused]] cuda_backend& gpu) : communicator_(launcher) {
#if defined(HYPERADAPT_RECIPES_WITH_NCCL)
        if (is_single_process(launcher)) return;
        nccl_ = std::make_unique<nccl_communicator>(launcher, gpu.stream());
        communicator_ = communicator_ref(*nccl_);
#endif
    }
    gpu_ranks(const gpu_ranks&) = delete;
    gpu_ranks& operator=(const gpu_ranks&) = delete;
    ~gpu_ranks() = default;

    /// What the run's collectives go through while this object lives.
    [[nodiscard]] communicator_ref communicator() const noexcept { return communicator_; }

private:
#if defined(HYPERADAPT_RECIPES_WITH_NCCL)
    std::unique_ptr<nccl_communicator> nccl_;
#endif
    communicator_ref communicator_;
};

}  // namespace hyperadapt::examples
