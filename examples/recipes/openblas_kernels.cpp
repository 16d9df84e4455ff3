// restart_with_fitting_openblas_kernels (recipes.hpp): a translation unit of its own, and the light header
// (no Eigen, no backend), so that it costs the examples' build next to nothing.
#include "recipes/recipes.hpp"

#include <cstdlib>
#include <string>

#if defined(HYPERADAPT_EXAMPLE_WITH_CBLAS) && defined(__linux__)
#include <unistd.h>

#include "hyperadapt/backend/openblas_kernels.hpp"
#endif

namespace hyperadapt::examples {

void restart_with_fitting_openblas_kernels(char** argv) noexcept {
#if defined(HYPERADAPT_EXAMPLE_WITH_CBLAS) && defined(__linux__)
    if (argv == nullptr || argv[0] == nullptr) return;
    if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;  // the user's choice, or this restart's: stands
    std::string core;
    try {
        core = openblas_fitting_core();
    } catch (...) {
        return;
    }
    if (core.empty() || ::setenv("OPENBLAS_CORETYPE", core.c_str(), 1) != 0) return;
    ::execv("/proc/self/exe", argv);  // returns only on failure: run on with the generic kernels
    ::unsetenv("OPENBLAS_CORETYPE");
#else
    (void)argv;
#endif
}

}  // namespace hyperadapt::examples
