// 04_compose_custom_model: a model no paper has, assembled from the layer templates in
// 04_compose_custom_model.hpp (read it first: the whole model is its ~40 lines of composition), trained on
// the built-in synthetic tasks with MT-Uncertainty sampling.
//
// What it shows: a new layer kind as a choice of slots (CA-MTL's block-diagonal attention and conditional
// layer norms, PHA's generated adapters), two conditionings combined (a task embedding and a prototype
// hypernetwork), a split encoder (plain frozen BERT below, the new layers above) as a sequential of layer
// stacks, and the same trainer, sampler and evaluation as CA-MTL and PHA use. Its gradients are checked in
// tests/models/test_custom_model.cpp.
//
//   04_compose_custom_model [--steps N] [--seed S] [--threads T] [--device cpu|cuda] [--gpu N]
//
// --device cuda trains the same model on GPU N in a build with CUDA: 04_compose_custom_model_run.hpp is the
// training, instantiated here on the CPU and in 04_compose_custom_model_cuda.cu on the CUDA backend.
#include <cstdint>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "04_compose_custom_model_run.hpp"
#include "hyperadapt/backend/cpu.hpp"

using namespace hyperadapt;

// What runs every step -- the model's initialisation, forward and backward, AdamW, the gradients' zeroing and
// clipping -- is compiled in instances/hybrid.cpp (-O3), in parallel with this file, which holds what runs
// once or around the step (options, construction, the training loop) and compiles at -O1 (docs/design.md,
// "Compile time").
HYPERADAPT_EXTERN_MULTITASK_MODEL_COMPUTE(hybrid::recipe<cpu, float>);
extern template class hyperadapt::adamw<cpu, float>;
extern template void hyperadapt::zero_grad(hybrid::model<cpu>&);
extern template double hyperadapt::clip_grad_norm(hybrid::model<cpu>&, double, bool);

#if !defined(HYPERADAPT_EXAMPLE_WITH_CUDA)
void hybrid::train_on_synthetic_tasks_cuda(int, std::int64_t, std::uint64_t) {
    throw config_error("--device cuda: this build has no CUDA (configure with -DHYPERADAPT_ENABLE_CUDA=ON on a machine "
                       "with the CUDA toolkit, then rebuild)");
}
#endif

int main(int argc, char** argv) try {
    CLI::App app("A hybrid of CA-MTL and PHA assembled from the layer templates, on built-in synthetic tasks",
                 "04_compose_custom_model");
    std::int64_t steps = 600;
    std::uint64_t seed = 1;
    int threads = 0, gpu = 0;
    std::string device = "cpu";
    app.add_option("--steps", steps, "training steps")->check(CLI::PositiveNumber);
    app.add_option("--seed", seed, "initialisation, sampling and dropout seed");
    app.add_option("--threads", threads, "CPU threads (0: OpenMP's default)")->check(CLI::Range(0, 1024));
    app.add_option("--device", device, "where the model trains: cpu, or cuda (a build with -DHYPERADAPT_ENABLE_CUDA=ON)")
        ->check(CLI::IsMember({"cpu", "cuda"}))
        ->capture_default_str();
    auto* gpu_option = app.add_option("--gpu", gpu, "the CUDA device's index, with --device cuda")->check(CLI::Range(0, 1023));
    CLI11_PARSE(app, argc, argv);
    if (device != "cuda" && gpu_option->count() > 0) {
        std::fprintf(stderr, "04_compose_custom_model: --gpu needs --device cuda\n");
        return 2;
    }

    if (device == "cuda") {
        hybrid::train_on_synthetic_tasks_cuda(gpu, steps, seed);
        return 0;
    }
    cpu::options backend_options;
    if (threads > 0) backend_options.threads = threads;
    cpu b(backend_options);
    hybrid::train_on_synthetic_tasks(b, steps, seed, std::to_string(static_cast<std::size_t>(b.threads())) + " threads");
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "04_compose_custom_model: %s\n", e.what());
    return 1;
}
