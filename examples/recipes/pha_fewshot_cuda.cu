// The PHA recipe on a GPU (--device cuda): pha_fewshot_run.hpp's body on the CUDA backend, compiled by nvcc in a
// build with CUDA (-DHYPERADAPT_ENABLE_CUDA=ON). The CPU's run is pha_fewshot.cpp's.
#include "hyperadapt/backend/cuda.hpp"
#include "cuda_device.hpp"
#include "pha_fewshot_run.hpp"

namespace hyperadapt::examples::pha_fewshot_recipe {

int run_on_cuda(args& a) {
    const run_device gpu = select_gpu(a.gpu, a.precision);
    cuda_backend b(cuda_options(a.precision));
    const gpu_ranks ranks(a.processes, b);  // NCCL for the gradients under a launcher, where the build has it
    args on_gpus = a;
    on_gpus.processes = ranks.communicator();
    return run_on(b, on_gpus, gpu);
}

}  // namespace hyperadapt::examples::pha_fewshot_recipe
