#pragma once
// Element-wise products with a broadcast vector, the arithmetic of FiLM modulation, forwarded to the
// backend's primitives:
//
//   mul_column_scales:  y[r, c] (+)= x[r, c] * v[c]
//   column_dots:        out[c] (+)= sum_r x[r, c] * y[r, c]
//
// Every operand is read with a leading dimension, so no transposed copy is made.
#include <cstddef>

#include "hyperadapt/backend/concepts.hpp"

namespace hyperadapt::camtl_ops {

/// y[r, c] = x[r, c] * v[c] (accumulate: y += ...) for a (rows, cols) matrix x with row stride ld.
template <elementwise_backend B, class T>
void mul_column_scales(B& b, std::size_t rows, std::size_t cols, const T* x, std::size_t ld, const T* v, T* y,
                       std::size_t ldy, bool accumulate) {
    if (rows == 0 || cols == 0) return;
    b.mul_row_vector(rows, cols, x, ld, v, y, ldy, accumulate);
}

/// out[c] = sum_r x[r, c] * y[r, c] (accumulate: out += ...) for (rows, cols) matrices with row stride ld.
template <elementwise_backend B, class T>
void column_dots(B& b, std::size_t rows, std::size_t cols, const T* x, const T* y, std::size_t ld, T* out,
                 bool accumulate) {
    if (cols == 0) return;
    b.column_dots(rows, cols, x, y, ld, out, accumulate);
}

}  // namespace hyperadapt::camtl_ops
