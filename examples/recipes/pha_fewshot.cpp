// The PHA recipe on the examples' CPU policy (its body, written once over the backend, is pha_fewshot_run.hpp;
// --device cuda runs it from pha_fewshot_cuda.cu). 03_pha_fewshot.cpp says what it runs and how to call it.
#include <optional>
#include <string>
#include <variant>

#include "recipe_models.hpp"  // first: the CPU models' extern instantiations
#include "pha_fewshot_run.hpp"
#include "recipes.hpp"

using namespace hyperadapt;

#if !defined(HYPERADAPT_EXAMPLE_WITH_CUDA)
int examples::pha_fewshot_recipe::run_on_cuda(pha_fewshot_args&) {
    throw config_error("--device cuda: this build has no CUDA (configure with -DHYPERADAPT_ENABLE_CUDA=ON on a machine "
                       "with the CUDA toolkit, then rebuild)");
}
#endif

int hyperadapt::examples::pha_fewshot_main(int argc, char** argv, const std::string& program) {
    auto parsed = examples::parse_pha_fewshot_options(argc, argv, program);
    if (const int* rc = std::get_if<int>(&parsed)) return *rc;
    examples::pha_fewshot_args& a = std::get<examples::pha_fewshot_args>(parsed);
    std::optional<examples::run_processes> processes;  // the ranks of an MPI launcher, or this process alone
    return examples::run_main(program, [&] {
        processes.emplace(program);
        a.processes = processes->communicator();
        if (a.gpu < 0) a.gpu = processes->local_rank();  // one GPU per rank on a machine with several
        if (a.device == "cuda") return examples::pha_fewshot_recipe::run_on_cuda(a);
        using examples::policy;
        // The demo's 64-wide matrices are too small to share between threads: one thread unless --threads says.
        const int threads = a.threads > 0 ? a.threads : a.mode == "demo" ? 1 : policy::options{}.threads;
        policy b = examples::make_backend(threads, a.precision);
        auto where = examples::cpu_run_device(a.precision);
        where.label = std::to_string(static_cast<std::size_t>(b.threads())) + " threads";
        return examples::pha_fewshot_recipe::run_on(b, a, where);
    }, &processes);
}
