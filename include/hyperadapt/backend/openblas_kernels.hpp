#pragma once
// Which kernels OpenBLAS runs, and the ones that fit the CPU. OpenBLAS 0.3.21 (Debian 12) does not recognise
// every CPU (AMD Zen 5, some virtual CPUs that hide their model) and then falls back, without a word, to its
// SSE3 'Prescott' kernels, 2-5x slower than its AVX2 or AVX-512 ones; it reads OPENBLAS_CORETYPE only when it is
// loaded. Kept apart from cpu_cblas.hpp (no Eigen, no backend) so that a program's start-up code can ask
// cheaply (examples/recipes/openblas_kernels.cpp).
#include <cblas.h>

#include <cctype>
#include <string>

#if defined(OPENBLAS_VERSION) || defined(OPENBLAS_CONFIG_H)
#define HYPERADAPT_HAS_OPENBLAS_THREADS 1
#endif

namespace hyperadapt {

namespace detail {
/// The OPENBLAS_CORETYPE that fits a CPU on which OpenBLAS chose the kernels `core`: "SkylakeX" or "Haswell"
/// when `core` names generic kernels (OpenBLAS 0.3.21, Debian 12, does not recognise every CPU: AMD Zen 5, some
/// virtual CPUs that hide their model; it then falls back to its SSE3 'Prescott' kernels, 2-5x slower than its
/// AVX2 or AVX-512 ones, without a word) and the CPU has AVX-512 or AVX2; empty otherwise.
[[nodiscard]] inline std::string openblas_fitting_core(std::string core, bool has_avx512, bool has_avx2) {
    for (auto& ch : core) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const bool generic = core == "prescott" || core == "core2" || core == "nehalem" || core == "atom" ||
                         core == "katmai" || core == "coppermine" || core == "northwood" || core == "banias" ||
                         core == "unknown";
    if (!generic || (!has_avx512 && !has_avx2)) return {};
    return has_avx512 ? "SkylakeX" : "Haswell";
}

/// What to do when OpenBLAS runs generic kernels on a CPU that has better ones (openblas_fitting_core); empty
/// when the kernels fit the CPU (or OpenBLAS cannot be told better).
[[nodiscard]] inline std::string openblas_kernel_advice(std::string core, bool has_avx512, bool has_avx2) {
    const std::string fitting = openblas_fitting_core(core, has_avx512, has_avx2);
    if (fitting.empty()) return {};
    for (auto& ch : core) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return "OpenBLAS did not recognise this CPU and runs its generic '" + core + "' kernels, though the CPU has " +
           (has_avx512 ? "AVX-512" : "AVX2") + ": set OPENBLAS_CORETYPE=" + fitting +
           " before starting the program for its faster kernels";
}
}  // namespace detail

/// The kernels OpenBLAS chose when it was loaded ("SkylakeX", "Haswell", "Prescott", ...); "" for another
/// CBLAS library.
[[nodiscard]] inline std::string openblas_kernels() {
#if defined(HYPERADAPT_HAS_OPENBLAS_THREADS)
    const char* core = openblas_get_corename();
    return core ? core : "";
#else
    return {};
#endif
}

namespace detail {
/// Whether this CPU has AVX-512 (foundation) and AVX2; both false where the compiler cannot ask.
struct vector_extensions {
    bool avx512 = false, avx2 = false;
};
[[nodiscard]] inline vector_extensions this_cpu_vector_extensions() {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    return {__builtin_cpu_supports("avx512f") != 0, __builtin_cpu_supports("avx2") != 0};
#else
    return {};
#endif
}
}  // namespace detail

/// A sentence when OpenBLAS runs generic kernels on a CPU with AVX2 or AVX-512 (detail::
/// openblas_kernel_advice); empty otherwise.
[[nodiscard]] inline std::string openblas_kernel_advice() {
    const auto here = detail::this_cpu_vector_extensions();
    return detail::openblas_kernel_advice(openblas_kernels(), here.avx512, here.avx2);
}

/// The OPENBLAS_CORETYPE that this CPU's faster kernels need when OpenBLAS chose generic ones (detail::
/// openblas_fitting_core); empty otherwise.
[[nodiscard]] inline std::string openblas_fitting_core() {
    const auto here = detail::this_cpu_vector_extensions();
    return detail::openblas_fitting_core(openblas_kernels(), here.avx512, here.avx2);
}

}  // namespace hyperadapt
