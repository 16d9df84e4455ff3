#pragma once
// GEMM provider over a CBLAS library (OpenBLAS or BLIS from Debian). Link `hyperadapt::cblas`.
// Measured on AVX-512 Zen 5: OpenBLAS reaches ~90 % of the FMA peak on transformer shapes, Eigen 3.4 ~65 %.
#include <cblas.h>

#include <string>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/backend/openblas_kernels.hpp"

namespace hyperadapt {

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
    /// another CBLAS library (backend/openblas_kernels.hpp).
    [[nodiscard]] static std::string kernels() { return openblas_kernels(); }
    /// A sentence when those kernels are generic ones on a CPU with AVX2 or AVX-512; empty otherwise.
    [[nodiscard]] static std::string kernel_advice() { return openblas_kernel_advice(); }
    /// The OPENBLAS_CORETYPE this CPU's faster kernels need when OpenBLAS chose generic ones; empty otherwise.
    [[nodiscard]] static std::string fitting_core() { return openblas_fitting_core(); }

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
