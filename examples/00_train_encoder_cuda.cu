// 00_train_encoder on a GPU (--device cuda): train_encoder.hpp's training on the CUDA backend, compiled by nvcc in a
// build with CUDA (-DHYPERADAPT_ENABLE_CUDA=ON).
#include <string>

#include "hyperadapt/backend/cuda.hpp"
#include "cuda_gpu.hpp"
#include "train_encoder.hpp"

void train_encoder::train_on_gpu(const flags& opt) {
    const std::string name = hyperadapt::examples::use_gpu(opt.gpu);
    hyperadapt::cuda_backend b;
    train(b, opt, "GPU " + std::to_string(opt.gpu) + " (" + name + ")");
}
