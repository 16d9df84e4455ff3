#pragma once
// GEMM provider over a CBLAS library (OpenBLAS or BLIS from Debian). Link `hyperadapt::cblas`.
// Measured on AVX-512 Zen 5: OpenBLAS reaches ~90 % of the FMA peak on transformer shapes, Eigen 3.4 ~65 %.
#include <cblas.h>

#include <cctype>
#include <string>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "hyperadapt/backend/cpu.hpp"

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

struct cblas_gemm {
    static constexpr const char* name = "cblas";

    /// The backend's pool cuts every large product into pieces and runs each on one thread (cpu.hpp), so
    /// OpenBLAS's own threads stay off: its OpenMP team would wait at a barrier for a thread another
    /// process keeps from running (docs/benchmarks.md, "Under contention"). OpenBLAS has one thread count
    /// per process; other code in the process that calls it gets one thread too.
    static void set_threads(int /*threads*/) {
#if defined(HYPERADAPT_HAS_OPENBLAS_THREADS)
        openblas_set_num_threads(1);
#endif
    }

    /// The kernels OpenBLAS chose when it was loaded ("SkylakeX", "Haswell", "Prescott", ...); "" for
    /// another CBLAS library.
    [[nodiscard]] static std::string kernels() {
#if defined(HYPERADAPT_HAS_OPENBLAS_THREADS)
        const char* core = openblas_get_corename();
        return core ? core : "";
#else
        return {};
#endif
    }
    /// A sentence when those kernels are generic ones on a CPU with AVX2 or AVX-512 (detail::
    /// openblas_kernel_advice); empty otherwise.
    [[nodiscard]] static std::string kernel_advice() {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
        return detail::openblas_kernel_advice(kernels(), __builtin_cpu_supports("avx512f"),
                                              __builtin_cpu_supports("avx2"));
#else
        return {};
#endif
    }
    /// The OPENBLAS_CORETYPE this CPU's faster kernels need when OpenBLAS chose generic ones (detail::
    /// openblas_fitting_core); empty otherwise. OpenBLAS reads the variable once, when it is loaded.
    [[nodiscard]] static std::string fitting_core() {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
        return detail::openblas_fitting_core(kernels(), __builtin_cpu_supports("avx512f"),
                                             __builtin_cpu_supports("avx2"));
#else
        return {};
#endif
    }

    template <class T>
    static void gemm(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
                     std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
        static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                      "cblas_gemm supports float and double only");
        const auto op_a = ta == transpose::yes ? CblasTrans : CblasNoTrans;
        const auto op_b = tb == transpose::yes ? CblasTrans : CblasNoTrans;
        const auto i = [](std::size_t v) { return static_cast<blasint_type>(v); };
#if defined(_OPENMP)
        // An OpenMP build of OpenBLAS threads a product over omp_get_max_threads() of the calling thread,
        // whatever openblas_set_num_threads said (and a pool helper, not an OpenMP thread, has the process's
        // default): one thread for this call, the caller's count restored after it.
        const int outer = omp_get_max_threads();
        if (outer != 1) omp_set_num_threads(1);
#endif
        if constexpr (std::is_same_v<T, float>)
            cblas_sgemm(CblasRowMajor, op_a, op_b, i(m), i(n), i(k), alpha, a, i(lda), b, i(ldb), beta, c, i(ldc));
        else
            cblas_dgemm(CblasRowMajor, op_a, op_b, i(m), i(n), i(k), alpha, a, i(lda), b, i(ldb), beta, c, i(ldc));
#if defined(_OPENMP)
        if (outer != 1) omp_set_num_threads(outer);
#endif
    }

private:
#if defined(HYPERADAPT_HAS_OPENBLAS_THREADS)
    using blasint_type = blasint;
#else
    using blasint_type = int;
#endif
};

/// The CPU backend with CBLAS GEMMs: the faster choice where OpenBLAS is installed.
using cpu_blas = cpu_backend<cblas_gemm>;

}  // namespace hyperadapt
