// 01_embed_sentences on a GPU (--device cuda): sentence_embedder_on<cuda_backend>, compiled by nvcc in a build
// with CUDA (-DHYPERADAPT_ENABLE_CUDA=ON). Reading the sentences, tokenizing and printing are
// 01_embed_sentences.cpp's, compiled once for both devices.
#include <filesystem>
#include <memory>

#include "hyperadapt/backend/cuda.hpp"
#include "cuda_gpu.hpp"
#include "sentence_embedder.hpp"

namespace hyperadapt::examples {

std::unique_ptr<sentence_embedder> make_sentence_embedder_cuda(const std::filesystem::path& model_dir, int gpu) {
    const std::string name = use_gpu(gpu);
    return std::make_unique<sentence_embedder_on<cuda_backend>>(
        model_dir, [] { return cuda_backend(); }, "cuda:" + std::to_string(gpu) + " (" + name + ")");
}

}  // namespace hyperadapt::examples
