#pragma once
// archetype_backend: the smallest type that models the full backend concept (backend/concepts.hpp) — every
// primitive declared, none defined. It exists so that a layer header, which must not name a real backend (no
// Eigen, no CUDA), can state at its end `static_assert(unary_layer<linear<archetype_backend, float>>)`: the
// check instantiates only the layer's class and member declarations, never a function body that would call
// a primitive, so the archetype costs no code and no link dependency. Calling any of its members is a link
// error by design: it is a type for concept checks, not a backend to run.
//
// The signatures mirror the CPU policy's (backend/cpu.hpp): templates over the element type T, so one
// declaration covers float, double and the int32 / uint8 id and mask buffers. A primitive added to the
// concept without a declaration here makes the static_assert below name the concept that fails.
#include <cstddef>
#include <cstdint>

#include "hyperadapt/backend/concepts.hpp"

namespace hyperadapt {

struct archetype_backend {
    /// An owning handle to backend memory: movable, never copied (as the CPU and CUDA buffers).
    template <class T>
    class buffer {
    public:
        buffer() = default;
        buffer(buffer&&) noexcept = default;
        buffer& operator=(buffer&&) noexcept = default;
        buffer(const buffer&) = delete;
        buffer& operator=(const buffer&) = delete;
        ~buffer() = default;
        [[nodiscard]] T* data() noexcept;
        [[nodiscard]] const T* data() const noexcept;
        [[nodiscard]] std::size_t size() const noexcept;
    };

    [[nodiscard]] const char* name() const noexcept;

    // ---- memory_backend
    template <class T>
    [[nodiscard]] buffer<T> allocate(std::size_t n);
    template <class T>
    void copy(const T* src, T* dst, std::size_t n);
    template <class T>
    void copy_to_host(const T* src, T* host_dst, std::size_t n);
    template <class T>
    void copy_from_host(const T* host_src, T* dst, std::size_t n);
    template <class T>
    void fill(T* x, std::size_t n, T value);
    void synchronize() noexcept;

    // ---- blas_backend
    template <class T>
    void gemm(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
              std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc);
    template <class T>
    void gemm_strided_batched(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha,
                              const T* a, std::size_t lda, std::ptrdiff_t stride_a, const T* b, std::size_t ldb,
                              std::ptrdiff_t stride_b, T beta, T* c, std::size_t ldc, std::ptrdiff_t stride_c,
                              std::size_t batch);
    template <class T>
    void gemm_batched_grid(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha,
                           const T* a, std::size_t lda, grid_strides sa, const T* b, std::size_t ldb, grid_strides sb,
                           T beta, T* c, std::size_t ldc, grid_strides sc, std::size_t outer, std::size_t inner);

    // ---- linear_backend
    template <class T>
    void add_row_vector(std::size_t rows, std::size_t cols, const T* v, T* x);
    template <class T>
    void accumulate_column_sums(std::size_t rows, std::size_t cols, const T* x, T* out);
    template <class T>
    void axpy(std::size_t n, T alpha, const T* x, T* y);

    // ---- elementwise_backend
    template <class T>
    void add(std::size_t n, const T* a, const T* b, T* out);
    template <class T>
    void mul_row_vector(std::size_t rows, std::size_t cols, const T* x, std::size_t ldx, const T* v, T* y,
                        std::size_t ldy, bool accumulate);
    template <class T>
    void column_dots(std::size_t rows, std::size_t cols, const T* x, const T* y, std::size_t ld, T* out,
                     bool accumulate);
    template <class T>
    void scale(std::size_t n, T alpha, T* x);
    template <class T>
    void gelu_forward(std::size_t n, const T* x, T* y);
    template <class T>
    void gelu_backward(std::size_t n, const T* x, const T* dy, T* dx);
    template <class T>
    void tanh_forward(std::size_t n, const T* x, T* y);
    template <class T>
    void tanh_backward(std::size_t n, const T* y, const T* dy, T* dx);
    template <class T>
    void dropout_forward(std::size_t n, T p, std::uint64_t seed, std::uint64_t offset, const T* x, T* y);
    template <class T>
    void dropout_backward(std::size_t n, T p, std::uint64_t seed, std::uint64_t offset, const T* dy, T* dx);
    template <class T>
    void fill_uniform(std::size_t n, std::uint64_t seed, std::uint64_t offset, T lo, T hi, T* x);
    template <class T>
    void fill_normal(std::size_t n, std::uint64_t seed, std::uint64_t offset, T mean, T stddev, T* x);
    template <class T>
    void layer_norm_forward(std::size_t rows, std::size_t cols, T eps, const T* x, const T* gamma, const T* beta,
                            T* y, T* mean, T* rstd);
    template <class T>
    void layer_norm_backward(std::size_t rows, std::size_t cols, const T* x, const T* gamma, const T* mean,
                             const T* rstd, const T* dy, T* dx, T* dgamma, T* dbeta);
    template <class T>
    void attention_softmax_forward(std::size_t batch, std::size_t heads, std::size_t tq, std::size_t tk, T scale,
                                   const T* scores, const T* bias, const std::uint8_t* key_mask, T* probs);
    template <class T>
    void softmax_backward(std::size_t rows, std::size_t cols, const T* y, const T* dy, T scale, T* dx);
    template <class T>
    void gather_rows(std::size_t n, std::size_t dim, const T* table, const std::int32_t* ids, T* out);
    template <class T>
    void scatter_add_rows(std::size_t n, std::size_t dim, const T* dout, const std::int32_t* ids, T* table_grad);
    template <class T>
    void cross_entropy_forward(std::size_t rows, std::size_t classes, const T* logits, const std::int32_t* labels,
                               T* probs, T* losses);
    template <class T>
    void cross_entropy_backward(std::size_t rows, std::size_t classes, const T* probs, const std::int32_t* labels,
                                T scale, T* dlogits);
    template <class T>
    [[nodiscard]] double sum_squares(std::size_t n, const T* x);
    template <class T>
    [[nodiscard]] double dot(std::size_t n, const T* x, const T* y);
    template <class T>
    void adamw_update(std::size_t n, T lr, T beta1, T beta2, T eps, T weight_decay, T bias_correction1,
                      T bias_correction2, const T* grad, T* param, T* m, T* v);

    // ---- the adapters' activations (relu_primitives, gelu_new_primitives)
    template <class T>
    void relu_forward(std::size_t n, const T* x, T* y);
    template <class T>
    void relu_backward(std::size_t n, const T* x, const T* dy, T* dx);
    template <class T>
    void gelu_new_forward(std::size_t n, const T* x, T* y, T* t);
    template <class T>
    void gelu_new_backward(std::size_t n, const T* x, const T* t, const T* dy, T* dx);

    // ---- fused element-wise work (fused_primitives; optional: layers fall back without it)
    template <class T>
    void bias_gelu_forward(std::size_t rows, std::size_t cols, const T* bias, T* t, T* y);
    template <class T>
    void bias_gelu_backward(std::size_t rows, std::size_t cols, const T* t, const T* dy, T* dt, T* bias_grad);
    template <class T>
    void bias_gelu_forward_backward(std::size_t rows, std::size_t cols, const T* t, const T* dy, T* y, T* dt,
                                    T* bias_grad);
    template <class T>
    void dropout_add_forward(std::size_t n, T p, std::uint64_t seed, std::uint64_t offset, const T* y, const T* x,
                             T* out);
    template <class T>
    void dropout_forward_backward(std::size_t n, T p, std::uint64_t seed, std::uint64_t offset, const T* x,
                                  const T* dy, T* y, T* dx);
};

static_assert(backend<archetype_backend>,
              "archetype_backend must model the full backend concept (backend/concepts.hpp): declare the missing "
              "primitive here with the CPU policy's signature");

}  // namespace hyperadapt
