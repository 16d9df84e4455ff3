#pragma once
// The CPU backend's results for the CUDA backend's tests, behind an Eigen-free interface: the .cu test is
// compiled by nvcc and never sees Eigen or OpenMP; cuda_cpu_reference.cpp (g++) runs hyperadapt::cpu.
// Every pointer here is host memory.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/shape.hpp"

namespace hyperadapt::test {

/// hyperadapt::cpu's primitives, one static function each, same signatures. Explicitly instantiated for
/// float and double in cuda_cpu_reference.cpp.
template <class T>
struct cpu_reference {
    static void gemm(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
                     std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc);
    static void gemm_strided_batched(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k,
                                     T alpha, const T* a, std::size_t lda, std::ptrdiff_t stride_a, const T* b,
                                     std::size_t ldb, std::ptrdiff_t stride_b, T beta, T* c, std::size_t ldc,
                                     std::ptrdiff_t stride_c, std::size_t batch);
    static void add_row_vector(std::size_t rows, std::size_t cols, const T* v, T* x);
    static void accumulate_column_sums(std::size_t rows, std::size_t cols, const T* x, T* out);
    static void axpy(std::size_t n, T alpha, const T* x, T* y);
    static void mul_row_vector(std::size_t rows, std::size_t cols, const T* x, std::size_t ldx, const T* v, T* y,
                               std::size_t ldy, bool accumulate);
    static void column_dots(std::size_t rows, std::size_t cols, const T* x, const T* y, std::size_t ld, T* out,
                            bool accumulate);
    static void add(std::size_t n, const T* a, const T* b, T* out);
    static void scale(std::size_t n, T alpha, T* x);
    static void gelu_forward(std::size_t n, const T* x, T* y);
    static void gelu_backward(std::size_t n, const T* x, const T* dy, T* dx);
    static void tanh_forward(std::size_t n, const T* x, T* y);
    static void tanh_backward(std::size_t n, const T* y, const T* dy, T* dx);
    static void relu_forward(std::size_t n, const T* x, T* y);
    static void relu_backward(std::size_t n, const T* x, const T* dy, T* dx);
    static void gelu_new_forward(std::size_t n, const T* x, T* y, T* t);
    static void gelu_new_backward(std::size_t n, const T* x, const T* t, const T* dy, T* dx);
    static void bias_gelu_forward(std::size_t rows, std::size_t cols, const T* bias, T* t, T* y);
    static void bias_gelu_backward(std::size_t rows, std::size_t cols, const T* t, const T* dy, T* dt, T* bias_grad);
    static void bias_gelu_forward_backward(std::size_t rows, std::size_t cols, const T* t, const T* dy, T* y, T* dt,
                                           T* bias_grad);
    static void dropout_add_forward(std::size_t n, T p, std::uint64_t seed, std::uint64_t offset, const T* y,
                                    const T* x, T* out);
    static void dropout_forward_backward(std::size_t n, T p, std::uint64_t seed, std::uint64_t offset, const T* x,
                                         const T* dy, T* y, T* dx);
    static void dropout_forward(std::size_t n, T p, std::uint64_t seed, std::uint64_t offset, const T* x, T* y);
    static void dropout_backward(std::size_t n, T p, std::uint64_t seed, std::uint64_t offset, const T* dy, T* dx);
    static void fill_uniform(std::size_t n, std::uint64_t seed, std::uint64_t offset, T lo, T hi, T* x);
    static void fill_normal(std::size_t n, std::uint64_t seed, std::uint64_t offset, T mean, T stddev, T* x);
    static void layer_norm_forward(std::size_t rows, std::size_t cols, T eps, const T* x, const T* gamma,
                                   const T* beta, T* y, T* mean, T* rstd);
    static void layer_norm_backward(std::size_t rows, std::size_t cols, const T* x, const T* gamma, const T* mean,
                                    const T* rstd, const T* dy, T* dx, T* dgamma, T* dbeta);
    static void attention_softmax_forward(std::size_t batch, std::size_t heads, std::size_t tq, std::size_t tk,
                                          T scale, const T* scores, const T* bias, const std::uint8_t* key_mask,
                                          T* probs);
    static void softmax_backward(std::size_t rows, std::size_t cols, const T* y, const T* dy, T scale, T* dx);
    static void gather_rows(std::size_t n, std::size_t dim, const T* table, const std::int32_t* ids, T* out);
    static void scatter_add_rows(std::size_t n, std::size_t dim, const T* dout, const std::int32_t* ids,
                                 T* table_grad);
    static void cross_entropy_forward(std::size_t rows, std::size_t classes, const T* logits,
                                      const std::int32_t* labels, T* probs, T* losses);
    static void cross_entropy_backward(std::size_t rows, std::size_t classes, const T* probs,
                                       const std::int32_t* labels, T scale, T* dlogits);
    static double sum_squares(std::size_t n, const T* x);
    static double dot(std::size_t n, const T* x, const T* y);
    static void adamw_update(std::size_t n, T lr, T beta1, T beta2, T eps, T weight_decay, T bias_correction1,
                             T bias_correction2, const T* grad, T* param, T* m, T* v);
};

extern template struct cpu_reference<float>;
extern template struct cpu_reference<double>;

/// linear<cpu, double>: forward then backward once (parameter gradients start at zero).
struct linear_reference_result {
    std::vector<double> y, dx, dweight, dbias;
};
linear_reference_result linear_reference(std::size_t in, std::size_t out, const shape& input_shape,
                                         const std::vector<double>& weight, const std::vector<double>& bias,
                                         const std::vector<double>& x, const std::vector<double>& dy);

}  // namespace hyperadapt::test
