// 00_train_encoder: a small BERT-style encoder trained from scratch on a built-in synthetic task.
//
// The task needs attention and position information: every sequence starts with [CLS], has a random
// length (the padding is masked out) and holds two marker tokens, A and B, at random places among random
// filler tokens. The label says whether A comes before B. Only the pooled [CLS] vector reaches the
// classifier, so the encoder has to find both markers and compare their position embeddings.
//
// What it shows: bert_model + classification_head composed in a small hand-written class, cross-entropy,
// AdamW with decoupled weight decay (none on biases and LayerNorm weights), linear warmup/decay, global
// gradient-norm clipping, dropout driven by a seeded rng_stream, and inference on held-out data.
//
// A run is bit-for-bit reproducible for a given --seed and --threads (reductions are split per thread, so
// a different thread count may change the last bits).
//
//   00_train_encoder [--epochs N] [--seed S] [--threads T] [--device cpu|cuda] [--gpu N]
//
// The task, the model and the loop are in train_encoder.hpp, a template over the backend policy: this file runs
// it on the CPU, 00_train_encoder_cuda.cu (nvcc, a build with -DHYPERADAPT_ENABLE_CUDA=ON) on a GPU.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include "hyperadapt/backend/cpu.hpp"
#include "train_encoder.hpp"

namespace ha = hyperadapt;

namespace {

[[noreturn]] void usage(const char* argv0, const std::string& problem) {
    std::fprintf(stderr, "%s: %s\nusage: %s [--epochs N >= 1] [--seed S] [--threads T >= 1] [--device cpu|cuda] [--gpu N]\n", argv0,
                 problem.c_str(), argv0);
    std::exit(2);
}

train_encoder::flags parse(int argc, char** argv) {
    train_encoder::flags f;
    bool gpu_given = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") usage(argv[0], "help");
        if (i + 1 >= argc) usage(argv[0], "missing value after " + std::string(arg));
        const std::string value = argv[++i];
        if (arg == "--device") {
            if (value != "cpu" && value != "cuda") usage(argv[0], "--device " + value + ": expected cpu or cuda");
            f.device = value;
            continue;
        }
        char* end = nullptr;
        const long long v = std::strtoll(value.c_str(), &end, 10);
        if (end == value.c_str() || *end != '\0') usage(argv[0], "not an integer: " + value);
        if (arg == "--epochs" && v >= 1 && v <= 1000)
            f.epochs = static_cast<int>(v);
        else if (arg == "--seed" && v >= 0)
            f.seed = static_cast<std::uint64_t>(v);
        else if (arg == "--threads" && v >= 1 && v <= 1024)
            f.threads = static_cast<int>(v);
        else if (arg == "--gpu" && v >= 0 && v <= 1023)
            f.gpu = static_cast<int>(v), gpu_given = true;
        else
            usage(argv[0], "bad option or value: " + std::string(arg) + " " + value);
    }
    if (gpu_given && f.device != "cuda") usage(argv[0], "--gpu needs --device cuda");
    return f;
}

}  // namespace

#if !defined(HYPERADAPT_EXAMPLE_WITH_CUDA)
void train_encoder::train_on_gpu(const flags&) {
    throw ha::config_error("--device cuda: this build has no CUDA (configure with -DHYPERADAPT_ENABLE_CUDA=ON on a machine "
                           "with the CUDA toolkit, then rebuild)");
}
#endif

int main(int argc, char** argv) {
    const train_encoder::flags opt = parse(argc, argv);
    try {
        if (opt.device == "cuda") {
            train_encoder::train_on_gpu(opt);
            return 0;
        }
        ha::cpu b(ha::cpu::options{.threads = opt.threads});
        train_encoder::train(b, opt, "threads " + std::to_string(opt.threads));
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "00_train_encoder: %s\n", e.what());
        return 1;
    }
}
