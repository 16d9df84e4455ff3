// Compiled by the host C++ compiler (Eigen, OpenMP): the CPU side of test_cuda_backend.
#include "backend/cuda_cpu_reference.hpp"

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/tensor/tensor.hpp"

namespace hyperadapt::test {

namespace {
cpu& backend() {
    static cpu b;
    return b;
}
}  // namespace

template <class T>
void cpu_reference<T>::gemm(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha,
                            const T* a, std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
    backend().gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
template <class T>
void cpu_reference<T>::gemm_strided_batched(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k,
                                            T alpha, const T* a, std::size_t lda, std::ptrdiff_t stride_a, const T* b,
                                            std::size_t ldb, std::ptrdiff_t stride_b, T beta, T* c, std::size_t ldc,
                                            std::ptrdiff_t stride_c, std::size_t batch) {
    backend().gemm_strided_batched(ta, tb, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c, ldc, stride_c,
                                   batch);
}
template <class T>
void cpu_reference<T>::add_row_vector(std::size_t rows, std::size_t cols, const T* v, T* x) {
    backend().add_row_vector(rows, cols, v, x);
}
template <class T>
void cpu_reference<T>::accumulate_column_sums(std::size_t rows, std::size_t cols, const T* x, T* out) {
    backend().accumulate_column_sums(rows, cols, x, out);
}
template <class T>
void cpu_reference<T>::axpy(std::size_t n, T alpha, const T* x, T* y) {
    backend().axpy(n, alpha, x, y);
}
template <class T>
void cpu_reference<T>::mul_row_vector(std::size_t rows, std::size_t cols, const T* x, std::size_t ldx, const T* v,
                                      T* y, std::size_t ldy, bool accumulate) {
    backend().mul_row_vector(rows, cols, x, ldx, v, y, ldy, accumulate);
}
template <class T>
void cpu_reference<T>::column_dots(std::size_t rows, std::size_t cols, const T* x, const T* y, std::size_t ld, T* out,
                                   bool accumulate) {
    backend().column_dots(rows, cols, x, y, ld, out, accumulate);
}
template <class T>
void cpu_reference<T>::add(std::size_t n, const T* a, const T* b, T* out) {
    backend().add(n, a, b, out);
}
template <class T>
void cpu_reference<T>::scale(std::size_t n, T alpha, T* x) {
    backend().scale(n, alpha, x);
}
template <class T>
void cpu_reference<T>::gelu_forward(std::size_t n, const T* x, T* y) {
    backend().gelu_forward(n, x, y);
}
template <class T>
void cpu_reference<T>::gelu_backward(std::size_t n, const T* x, const T* dy, T* dx) {
    backend().gelu_backward(n, x, dy, dx);
}
template <class T>
void cpu_reference<T>::tanh_forward(std::size_t n, const T* x, T* y) {
    backend().tanh_forward(n, x, y);
}
template <class T>
void cpu_reference<T>::tanh_backward(std::size_t n, const T* y, const T* dy, T* dx) {
    backend().tanh_backward(n, y, dy, dx);
}
template <class T>
void cpu_reference<T>::relu_forward(std::size_t n, const T* x, T* y) {
    backend().relu_forward(n, x, y);
}
template <class T>
void cpu_reference<T>::relu_backward(std::size_t n, const T* x, const T* dy, T* dx) {
    backend().relu_backward(n, x, dy, dx);
}
template <class T>
void cpu_reference<T>::gelu_new_forward(std::size_t n, const T* x, T* y, T* t) {
    backend().gelu_new_forward(n, x, y, t);
}
template <class T>
void cpu_reference<T>::gelu_new_backward(std::size_t n, const T* x, const T* t, const T* dy, T* dx) {
    backend().gelu_new_backward(n, x, t, dy, dx);
}
template <class T>
void cpu_reference<T>::bias_gelu_forward(std::size_t rows, std::size_t cols, const T* bias, T* t, T* y) {
    backend().bias_gelu_forward(rows, cols, bias, t, y);
}
template <class T>
void cpu_reference<T>::bias_gelu_backward(std::size_t rows, std::size_t cols, const T* t, const T* dy, T* dt,
                                          T* bias_grad) {
    backend().bias_gelu_backward(rows, cols, t, dy, dt, bias_grad);
}
template <class T>
void cpu_reference<T>::bias_gelu_forward_backward(std::size_t rows, std::size_t cols, const T* t, const T* dy, T* y,
                                                  T* dt, T* bias_grad) {
    backend().bias_gelu_forward_backward(rows, cols, t, dy, y, dt, bias_grad);
}
template <class T>
void cpu_reference<T>::dropout_add_forward(std::size_t n, T p, std::uint64_t seed, std::uint64_t offset, const T* y,
                                           const T* x, T* out) {
    backend().dropout_add_forward(n, p, seed, offset, y, x, out);
}
template <class T>
void cpu_reference<T>::dropout_forward_backward(std::size_t n, T p, std::uint64_t seed, std::uint64_t offset,
                                                const T* x, const T* dy, T* y, T* dx) {
    backend().dropout_forward_backward(n, p, seed, offset, x, dy, y, dx);
}
template <class T>
void cpu_reference<T>::dropout_forward(std::size_t n, T p, std::uint64_t seed, std::uint64_t offset, const T* x,
                                       T* y) {
    backend().dropout_forward(n, p, seed, offset, x, y);
}
template <class T>
void cpu_reference<T>::dropout_backward(std::size_t n, T p, std::uint64_t seed, std::uint64_t offset, const T* dy,
                                        T* dx) {
    backend().dropout_backward(n, p, seed, offset, dy, dx);
}
template <class T>
void cpu_reference<T>::fill_uniform(std::size_t n, std::uint64_t seed, std::uint64_t offset, T lo, T hi, T* x) {
    backend().fill_uniform(n, seed, offset, lo, hi, x);
}
template <class T>
void cpu_reference<T>::fill_normal(std::size_t n, std::uint64_t seed, std::uint64_t offset, T mean, T stddev, T* x) {
    backend().fill_normal(n, seed, offset, mean, stddev, x);
}
template <class T>
void cpu_reference<T>::layer_norm_forward(std::size_t rows, std::size_t cols, T eps, const T* x, const T* gamma,
                                          const T* beta, T* y, T* mean, T* rstd) {
    backend().layer_norm_forward(rows, cols, eps, x, gamma, beta, y, mean, rstd);
}
template <class T>
void cpu_reference<T>::layer_norm_backward(std::size_t rows, std::size_t cols, const T* x, const T* gamma,
                                           const T* mean, const T* rstd, const T* dy, T* dx, T* dgamma, T* dbeta) {
    backend().layer_norm_backward(rows, cols, x, gamma, mean, rstd, dy, dx, dgamma, dbeta);
}
template <class T>
void cpu_reference<T>::attention_softmax_forward(std::size_t batch, std::size_t heads, std::size_t tq, std::size_t tk,
                                                 T scale, const T* scores, const T* bias,
                                                 const std::uint8_t* key_mask, T* probs) {
    backend().attention_softmax_forward(batch, heads, tq, tk, scale, scores, bias, key_mask, probs);
}
template <class T>
void cpu_reference<T>::softmax_backward(std::size_t rows, std::size_t cols, const T* y, const T* dy, T scale, T* dx) {
    backend().softmax_backward(rows, cols, y, dy, scale, dx);
}
template <class T>
void cpu_reference<T>::gather_rows(std::size_t n, std::size_t dim, const T* table, const std::int32_t* ids, T* out) {
    backend().gather_rows(n, dim, table, ids, out);
}
template <class T>
void cpu_reference<T>::scatter_add_rows(std::size_t n, std::size_t dim, const T* dout, const std::int32_t* ids,
                                        T* table_grad) {
    backend().scatter_add_rows(n, dim, dout, ids, table_grad);
}
template <class T>
void cpu_reference<T>::cross_entropy_forward(std::size_t rows, std::size_t classes, const T* logits,
                                             const std::int32_t* labels, T* probs, T* losses) {
    backend().cross_entropy_forward(rows, classes, logits, labels, probs, losses);
}
template <class T>
void cpu_reference<T>::cross_entropy_backward(std::size_t rows, std::size_t classes, const T* probs,
                                              const std::int32_t* labels, T scale, T* dlogits) {
    backend().cross_entropy_backward(rows, classes, probs, labels, scale, dlogits);
}
template <class T>
double cpu_reference<T>::sum_squares(std::size_t n, const T* x) {
    return backend().sum_squares(n, x);
}
template <class T>
double cpu_reference<T>::dot(std::size_t n, const T* x, const T* y) {
    return backend().dot(n, x, y);
}
template <class T>
void cpu_reference<T>::adamw_update(std::size_t n, T lr, T beta1, T beta2, T eps, T weight_decay, T bias_correction1,
                                    T bias_correction2, const T* grad, T* param, T* m, T* v) {
    backend().adamw_update(n, lr, beta1, beta2, eps, weight_decay, bias_correction1, bias_correction2, grad, param, m,
                           v);
}

template struct cpu_reference<float>;
template struct cpu_reference<double>;

linear_reference_result linear_reference(std::size_t in, std::size_t out, const shape& input_shape,
                                         const std::vector<double>& weight, const std::vector<double>& bias,
                                         const std::vector<double>& x, const std::vector<double>& dy) {
    cpu& b = backend();
    linear<cpu, double> layer(b, in, out, "reference", !bias.empty());
    b.copy_from_host(weight.data(), layer.weight().value.data(), weight.size());
    if (!bias.empty()) b.copy_from_host(bias.data(), layer.bias().value.data(), bias.size());
    linear<cpu, double>::context ctx;
    const auto xt = tensor<cpu, double>::from_host(b, input_shape, x);
    const auto y = layer.forward(xt, ctx);
    const auto dyt = tensor<cpu, double>::from_host(b, y.shape(), dy);
    const auto dx = layer.backward(dyt, ctx);
    linear_reference_result r;
    r.y = y.to_host();
    r.dx = dx.to_host();
    r.dweight = layer.weight().grad.to_host();
    if (!bias.empty()) r.dbias = layer.bias().grad.to_host();
    return r;
}

}  // namespace hyperadapt::test
