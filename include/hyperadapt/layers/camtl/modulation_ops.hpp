#pragma once
// Element-wise products with a broadcast vector, the arithmetic of FiLM modulation, composed from the
// backend's GEMM: the backend concept has no element-wise multiply, but a product with one-element
// operands is one. Each helper is a single gemm_strided_batched call with one small product per column:
//
//   mul_column_scales:  y[r, c] (+)= x[r, c] * v[c]          batch = cols, each (rows x 1) * (1 x 1)
//   column_dots:        out[c] (+)= sum_r x[r, c] * y[r, c]   batch = cols, each (1 x rows) * (rows x 1)
//
// Every operand is read with a leading dimension, so no transposed copy is made; every BLAS accepts these
// leading dimensions (row-major, column-major via cuBLAS). Outputs must not alias inputs: GEMM with
// beta = 0 clears C before it reads A.
#include <cstddef>

#include "hyperadapt/backend/concepts.hpp"

namespace hyperadapt::camtl_ops {

/// y[r, c] = x[r, c] * v[c] (accumulate: y += ...) for a (rows, cols) matrix x with row stride ld.
template <blas_backend B, class T>
void mul_column_scales(B& b, std::size_t rows, std::size_t cols, const T* x, std::size_t ld, const T* v, T* y,
                       std::size_t ldy, bool accumulate) {
    if (rows == 0 || cols == 0) return;
    b.gemm_strided_batched(transpose::no, transpose::no, rows, 1, 1, T(1), x, ld, 1, v, 1, 1,
                           accumulate ? T(1) : T(0), y, ldy, 1, cols);
}

/// out[c] = sum_r x[r, c] * y[r, c] (accumulate: out += ...) for (rows, cols) matrices with row stride ld.
template <blas_backend B, class T>
void column_dots(B& b, std::size_t rows, std::size_t cols, const T* x, const T* y, std::size_t ld, T* out,
                 bool accumulate) {
    if (cols == 0) return;
    b.gemm_strided_batched(transpose::yes, transpose::no, 1, 1, rows, T(1), x, ld, 1, y, ld, 1,
                           accumulate ? T(1) : T(0), out, 1, 1, cols);
}

}  // namespace hyperadapt::camtl_ops
