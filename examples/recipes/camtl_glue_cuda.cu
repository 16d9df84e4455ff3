// The CA-MTL recipe's models on a GPU (--device cuda): camtl_glue_on<cuda_backend>, compiled by nvcc in a build
// with CUDA (-DHYPERADAPT_ENABLE_CUDA=ON). Everything else of the recipe -- options, data, tokenizing, reports --
// is camtl_glue.cpp's, compiled once for both devices.
#include <memory>

#include "hyperadapt/backend/cuda.hpp"
#include "camtl_glue_device.hpp"
#include "cuda_device.hpp"

namespace hyperadapt::examples {

std::unique_ptr<camtl_glue_device> make_camtl_glue_cuda(const camtl_glue_args& a) {
    const run_device gpu = select_gpu(a.gpu, a.precision);
    const cuda_backend::options options = cuda_options(a.precision);
    auto d = std::make_unique<camtl_glue_on<cuda_backend>>(gpu, [options] { return cuda_backend(options); });
    d->set_label(gpu.label);
    // NCCL for the gradients under a launcher, where the build has it; the device object keeps it.
    auto ranks = std::make_shared<gpu_ranks>(a.processes, d->backend());
    d->use_processes(ranks, ranks->communicator());
    return d;
}

}  // namespace hyperadapt::examples
