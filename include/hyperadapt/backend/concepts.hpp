#pragma once
// What a backend policy provides. A layer names the narrowest concept it needs, so a backend can be
// brought up piece by piece (the CUDA policy first satisfies linear_backend, then more).
//
// Conventions shared by every primitive:
//   * matrices are row-major; `ld*` is the distance between consecutive rows;
//   * pointers are backend memory (host for the CPU, device for CUDA);
//   * "accumulate" primitives add into their output, all others overwrite it;
//   * random numbers are counter-based: (seed, offset) fully determines every value, so results do not
//     depend on thread count or scheduling, and dropout masks can be regenerated in backward.
#include <concepts>
#include <cstddef>
#include <cstdint>

namespace hyperadapt {

enum class transpose : bool { no = false, yes = true };

/// Element distances of one operand in a grid of products (gemm_batched_grid): between consecutive entries
/// of the outer axis and of the inner axis (attention: examples and heads).
struct grid_strides {
    std::ptrdiff_t outer = 0, inner = 0;
};

/// A backend whose memory is the host's says so with `static constexpr bool host_memory = true;`: its
/// pointers may then go straight to host libraries (an MPI all-reduce in place, a file write) without a copy.
template <class B>
inline constexpr bool host_memory_backend = requires { requires B::host_memory; };

/// Memory: RAII buffers, copies between host and backend, fills.
template <class B>
concept memory_backend = requires(B& b, const B& cb, float* f, const float* cf, double* d, const double* cd,
                                  std::size_t n) {
    typename B::template buffer<float>;
    typename B::template buffer<double>;
    { b.template allocate<float>(n) } -> std::same_as<typename B::template buffer<float>>;
    { b.template allocate<double>(n) } -> std::same_as<typename B::template buffer<double>>;
    b.copy(cf, f, n);
    b.copy_to_host(cf, f, n);
    b.copy_from_host(cf, f, n);
    b.fill(f, n, 0.0f);
    b.copy(cd, d, n);
    b.copy_to_host(cd, d, n);
    b.copy_from_host(cd, d, n);
    b.fill(d, n, 0.0);
    b.synchronize();
    { cb.name() } -> std::convertible_to<const char*>;
};

/// GEMM, single, strided-batched and batched over a grid of (outer, inner) entries:
/// C = alpha * op(A) * op(B) + beta * C for every entry.
template <class B>
concept blas_backend = memory_backend<B> && requires(B& b, transpose t, std::size_t n, std::ptrdiff_t s,
                                                     grid_strides g, float* f, const float* cf, double* d,
                                                     const double* cd) {
    b.gemm(t, t, n, n, n, 1.0f, cf, n, cf, n, 0.0f, f, n);
    b.gemm(t, t, n, n, n, 1.0, cd, n, cd, n, 0.0, d, n);
    b.gemm_strided_batched(t, t, n, n, n, 1.0f, cf, n, s, cf, n, s, 0.0f, f, n, s, n);
    b.gemm_strided_batched(t, t, n, n, n, 1.0, cd, n, s, cd, n, s, 0.0, d, n, s, n);
    b.gemm_batched_grid(t, t, n, n, n, 1.0f, cf, n, g, cf, n, g, 0.0f, f, n, g, n, n);
    b.gemm_batched_grid(t, t, n, n, n, 1.0, cd, n, g, cd, n, g, 0.0, d, n, g, n, n);
};

/// What a Linear layer needs beyond GEMM: a row-broadcast bias and its gradient (column sums).
template <class B>
concept linear_backend = blas_backend<B> && requires(B& b, std::size_t n, float* f, const float* cf, double* d,
                                                     const double* cd) {
    b.add_row_vector(n, n, cf, f);
    b.add_row_vector(n, n, cd, d);
    b.accumulate_column_sums(n, n, cf, f);
    b.accumulate_column_sums(n, n, cd, d);
    b.axpy(n, 1.0f, cf, f);
    b.axpy(n, 1.0, cd, d);
};

/// Element-wise and row-wise primitives of a transformer encoder, losses and optimizers.
template <class B>
concept elementwise_backend =
    linear_backend<B> &&
    requires(B& b, std::size_t n, std::uint64_t u, float* f, const float* cf, double* d, const double* cd,
             const std::int32_t* ids, const std::uint8_t* mask, std::int32_t* ids_out, std::uint8_t* mask_out) {
        b.add(n, cf, cf, f);
        b.mul_row_vector(n, n, cf, n, cf, f, n, true);
        b.column_dots(n, n, cf, cf, n, f, true);
        b.scale(n, 1.0f, f);
        b.gelu_forward(n, cf, f);
        b.gelu_backward(n, cf, cf, f);
        b.tanh_forward(n, cf, f);
        b.tanh_backward(n, cf, cf, f);
        b.dropout_forward(n, 0.1f, u, u, cf, f);
        b.dropout_backward(n, 0.1f, u, u, cf, f);
        b.fill_uniform(n, u, u, 0.0f, 1.0f, f);
        b.fill_normal(n, u, u, 0.0f, 1.0f, f);
        b.layer_norm_forward(n, n, 1e-12f, cf, cf, cf, f, f, f);
        b.layer_norm_backward(n, n, cf, cf, cf, cf, cf, f, f, f);
        b.attention_softmax_forward(n, n, n, n, 1.0f, cf, cf, mask, f);
        b.softmax_backward(n, n, cf, cf, 1.0f, f);
        b.gather_rows(n, n, cf, ids, f);
        b.scatter_add_rows(n, n, cf, ids, f);
        b.cross_entropy_forward(n, n, cf, ids, f, f);
        b.cross_entropy_backward(n, n, cf, ids, 1.0f, f);
        { b.sum_squares(n, cf) } -> std::same_as<double>;
        { b.dot(n, cf, cf) } -> std::same_as<double>;
        b.adamw_update(n, 1.0f, 0.9f, 0.999f, 1e-8f, 0.01f, 1.0f, 1.0f, cf, f, f, f);
        // Every primitive in double too: gradient checks run the same layers in double precision.
        b.add(n, cd, cd, d);
        b.mul_row_vector(n, n, cd, n, cd, d, n, true);
        b.column_dots(n, n, cd, cd, n, d, true);
        b.scale(n, 1.0, d);
        b.gelu_forward(n, cd, d);
        b.gelu_backward(n, cd, cd, d);
        b.tanh_forward(n, cd, d);
        b.tanh_backward(n, cd, cd, d);
        b.dropout_forward(n, 0.1, u, u, cd, d);
        b.dropout_backward(n, 0.1, u, u, cd, d);
        b.fill_uniform(n, u, u, 0.0, 1.0, d);
        b.fill_normal(n, u, u, 0.0, 1.0, d);
        b.layer_norm_forward(n, n, 1e-12, cd, cd, cd, d, d, d);
        b.layer_norm_backward(n, n, cd, cd, cd, cd, cd, d, d, d);
        b.attention_softmax_forward(n, n, n, n, 1.0, cd, cd, mask, d);
        b.softmax_backward(n, n, cd, cd, 1.0, d);
        b.gather_rows(n, n, cd, ids, d);
        b.scatter_add_rows(n, n, cd, ids, d);
        b.cross_entropy_forward(n, n, cd, ids, d, d);
        b.cross_entropy_backward(n, n, cd, ids, 1.0, d);
        { b.sum_squares(n, cd) } -> std::same_as<double>;
        { b.dot(n, cd, cd) } -> std::same_as<double>;
        b.adamw_update(n, 1.0, 0.9, 0.999, 1e-8, 0.01, 1.0, 1.0, cd, d, d, d);
        // Token ids and padding masks live in backend memory as well.
        { b.template allocate<std::int32_t>(n) } -> std::same_as<typename B::template buffer<std::int32_t>>;
        { b.template allocate<std::uint8_t>(n) } -> std::same_as<typename B::template buffer<std::uint8_t>>;
        b.copy_from_host(ids, ids_out, n);
        b.copy_from_host(mask, mask_out, n);
        b.copy_to_host(ids, ids_out, n);
        b.copy_to_host(mask, mask_out, n);
    };

/// The adapters' activations (PHA, HyperFormer), one primitive each: no layer composes them from other
/// primitives or computes them on the host. Element-wise; outputs may alias their same-length inputs except
/// where noted.
///   relu_forward(n, x, y)               y = (x <= 0 ? 0 : x): torch.relu, so a NaN stays NaN.
///   relu_backward(n, x, dy, dx)         dx = (x <= 0 ? 0 : dy): torch's threshold_backward, so a NaN x passes
///                                       dy on and the subgradient at 0 is 0.
///   gelu_new_forward(n, x, y, t)        transformers 3.5.1's gelu_new (HyperFormer), in this order:
///                                       t = tanh(((x x) x a + x) c), y = (x + x t) 0.5, c = sqrt(2/pi), a = 0.044715
///                                       (gelu_new_constants); t is saved for the backward and must not alias x.
///   gelu_new_backward(n, x, t, dy, dx)  dx = dy * 0.5 ((3 a c x^2 + c) x (1 - t^2) + t + 1), from the saved t.
template <class B, class T>
concept relu_primitives = requires(B& b, std::size_t n, const T* cx, T* x) {
    b.relu_forward(n, cx, x);
    b.relu_backward(n, cx, cx, x);
};
template <class B, class T>
concept gelu_new_primitives = requires(B& b, std::size_t n, const T* cx, T* x) {
    b.gelu_new_forward(n, cx, x, x);
    b.gelu_new_backward(n, cx, cx, cx, x);
};

/// Optional fused element-wise work of the encoder layer: one pass over memory where the plain primitives take
/// two or three. A backend without them is still complete: the layers test this concept and otherwise run the
/// plain primitives in sequence (same values up to rounding). The CPU and CUDA policies provide them.
///   bias_gelu_forward(rows, cols, bias, t, y)     t += bias (row-broadcast, in place: backward reads it),
///                                                 y = gelu(t), the erf form; y must not alias t.
///   bias_gelu_backward(rows, cols, t, dy, dt, bias_grad)
///                                                 dt = dy * gelu'(t); bias_grad[c] += sum_r dt[r, c] over the
///                                                 rows in order (null: no bias gradient), as
///                                                 accumulate_column_sums does.
///   bias_gelu_forward_backward(rows, cols, t, dy, y, dt, bias_grad)
///                                                 y = gelu(t) with bias_gelu_forward's values to the bit (t
///                                                 holds the bias), and dt, bias_grad as bias_gelu_backward: a
///                                                 backward that did not keep the GELU's output gets it back in
///                                                 the pass that makes the GELU's input gradient.
///   dropout_add_forward(n, p, seed, offset, y, x, out)
///                                                 out = dropout(y) + x with dropout_forward's mask for (seed,
///                                                 offset); out may alias y or x.
///   dropout_forward_backward(n, p, seed, offset, x, dy, y, dx)
///                                                 y = dropout(x) and dx = dropout'(dy), both with
///                                                 dropout_forward's mask for (seed, offset), drawn once: a
///                                                 backward that did not keep the forward's output gets it
///                                                 back in the pass that makes the input gradient.
template <class B, class T>
concept fused_primitives = requires(B& b, std::size_t n, std::uint64_t u, T p, const T* cx, T* x) {
    b.bias_gelu_forward(n, n, cx, x, x);
    b.bias_gelu_backward(n, n, cx, cx, x, x);
    b.bias_gelu_forward_backward(n, n, cx, cx, x, x, x);
    b.dropout_add_forward(n, p, u, u, cx, cx, x);
    b.dropout_forward_backward(n, p, u, u, cx, cx, x, x);
};

/// Optional reductions that stay in backend memory, so that a caller summing many of them (the gradient norm
/// over every parameter tensor) waits once, for the total, instead of once per tensor:
///   sum_squares_accumulate(n, x, acc)   *acc += sum of x[i]^2 in double; acc is one double in backend memory.
///                                       The same value sum_squares(n, x) hands back, added the same way.
template <class B, class T>
concept accumulating_reductions = requires(B& b, std::size_t n, const T* cx, double* acc) {
    b.sum_squares_accumulate(n, cx, acc);
};

/// Optional copies to the backend that do not wait for the device:
///   queue_copy_from_host(host_src, dst, n)   takes the n values before it returns (host_src may be reused at
///                                            once: the backend copies them into memory of its own, pinned on a
///                                            GPU) and copies them to dst in order with the backend's other work.
/// A batch's one upload (tensor/staged_upload.hpp) goes this way where the backend offers it, so that it costs
/// the host a memcpy, not a wait for the device (issue 13: "one pinned, asynchronous transfer").
template <class B>
concept queued_uploads = requires(B& b, const std::uint8_t* host, std::uint8_t* dst, std::size_t n) {
    b.queue_copy_from_host(host, dst, n);
};

/// gelu_new's constants, shared by every backend's gelu_new primitives.
template <class T>
struct gelu_new_constants {
    static constexpr T c = T(0.7978845608028654);  ///< sqrt(2 / pi)
    static constexpr T a = T(0.044715);
    static constexpr T three_a_c = T(3) * a * c;    ///< the backward's x^2 coefficient, rounded as T
};

/// A backend that can run every layer of the library: the BERT encoder, the CA-MTL, PHA and HyperFormer
/// modules, losses and AdamW. The layers that call relu_* or gelu_new_* name elementwise_backend and
/// static_assert the primitive they call (layers/pha/pha_ops.hpp), so a backend without one fails to compile
/// with a sentence naming it; no layer falls back to the host.
template <class B>
concept backend = elementwise_backend<B> && relu_primitives<B, float> && relu_primitives<B, double> &&
                  gelu_new_primitives<B, float> && gelu_new_primitives<B, double>;

}  // namespace hyperadapt
