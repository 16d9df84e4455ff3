#pragma once
// Device kernels of the CUDA backend (hyperadapt/backend/cuda.hpp). Internal: include cuda.hpp instead.
//
// Conventions:
//   * every kernel is a template (so this header can be included by many translation units);
//   * element-wise kernels use grid-stride loops over std::size_t indices, so any grid size is correct;
//   * row-wise kernels give each row to one block (grid-stride over rows) and reduce with block_reduce,
//     whose summation order depends only on the block size: results are deterministic run to run;
//   * no kernel uses atomics except scatter_add_rows (repeated ids must add up);
//   * every block size is a multiple of 32 and at most max_block_size.
#if !defined(__CUDACC__)
#error "hyperadapt/backend/cuda_kernels.cuh is CUDA code: include it only from .cu files compiled by nvcc"
#endif

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "hyperadapt/backend/adamw_segment.hpp"
#include "hyperadapt/backend/counter_rng.hpp"

namespace hyperadapt::detail::cuda_kernels {

inline constexpr unsigned max_block_size = 256;
inline constexpr unsigned max_warps = max_block_size / 32;
inline constexpr unsigned tile_cols = 32;  ///< column-reduction kernels: block (tile_cols, tile_rows)
inline constexpr unsigned tile_rows = 8;

// ---- math overloads (float -> the f-suffixed CUDA functions) ------------------------------------------
__device__ inline float d_erf(float x) { return erff(x); }
__device__ inline double d_erf(double x) { return erf(x); }
__device__ inline float d_exp(float x) { return expf(x); }
__device__ inline double d_exp(double x) { return exp(x); }
__device__ inline float d_log(float x) { return logf(x); }
__device__ inline double d_log(double x) { return log(x); }
__device__ inline float d_tanh(float x) { return tanhf(x); }
__device__ inline double d_tanh(double x) { return tanh(x); }
__device__ inline float d_sqrt(float x) { return sqrtf(x); }
__device__ inline double d_sqrt(double x) { return sqrt(x); }
// Explicitly rounded operations: never contracted into an FMA, so they match the source expression.
__device__ inline float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ inline double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ inline float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ inline double add_rn(double a, double b) { return __dadd_rn(a, b); }

template <class T>
__device__ inline T negative_infinity();
template <>
__device__ inline float negative_infinity<float>() { return __int_as_float(static_cast<int>(0xff800000u)); }
template <>
__device__ inline double negative_infinity<double>() {
    return __longlong_as_double(static_cast<long long>(0xfff0000000000000ull));
}

__device__ inline std::size_t thread_index() {
    return static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ inline std::size_t thread_count() { return static_cast<std::size_t>(gridDim.x) * blockDim.x; }

// ---- reductions ----------------------------------------------------------------------------------------
struct sum_op {
    template <class T>
    __device__ T operator()(T a, T b) const { return a + b; }
};
/// NaN-propagating: a NaN on either side wins (b > a alone would drop a NaN b, and a softmax row of NaNs
/// would pass for a fully masked one).
struct max_op {
    template <class T>
    __device__ T operator()(T a, T b) const { return (b > a || b != b) ? b : a; }
};

/// Reduces `v` over the block and returns the result to every thread. `scratch` holds max_warps values.
/// Every thread of the block must call it (it synchronises twice).
template <class T, class Op>
__device__ T block_reduce(T v, Op op, T* scratch) {
    for (int offset = 16; offset > 0; offset /= 2) v = op(v, __shfl_down_sync(0xffffffffu, v, offset));
    const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    T r = scratch[0];
    for (unsigned w = 1; w < blockDim.x / 32; ++w) r = op(r, scratch[w]);
    __syncthreads();  // scratch may be reused by the caller's next reduction
    return r;
}

// ---- memory --------------------------------------------------------------------------------------------
template <class T>
__global__ void fill(std::size_t n, T value, T* x) {
    for (std::size_t i = thread_index(); i < n; i += thread_count()) x[i] = value;
}

/// C[b] = beta * C[b] for `batch` row-major rows x cols matrices; beta == 0 writes zeros (NaN-safe, as BLAS).
template <class T>
__global__ void scale_matrices(std::size_t batch, std::size_t rows, std::size_t cols, std::size_t ld,
                               std::ptrdiff_t stride, T beta, T* c) {
    const std::size_t per = rows * cols, n = batch * per;
    for (std::size_t i = thread_index(); i < n; i += thread_count()) {
        const std::size_t b = i / per, r = (i % per) / cols, col = i % cols;
        T* p = c + static_cast<std::ptrdiff_t>(b) * stride + r * ld + col;
        *p = beta == T(0) ? T(0) : beta * *p;
    }
}

/// The operand pointers of a grid of products (gemm_batched_grid), entry e = i * inner + j.
template <class T>
__global__ void grid_pointers(std::size_t outer, std::size_t inner, const T* a, std::ptrdiff_t a_outer,
                              std::ptrdiff_t a_inner, const T* b, std::ptrdiff_t b_outer, std::ptrdiff_t b_inner, T* c,
                              std::ptrdiff_t c_outer, std::ptrdiff_t c_inner, const T** pa, const T** pb, T** pc) {
    const std::size_t count = outer * inner;
    for (std::size_t e = thread_index(); e < count; e += thread_count()) {
        const auto i = static_cast<std::ptrdiff_t>(e / inner), j = static_cast<std::ptrdiff_t>(e % inner);
        pa[e] = a + i * a_outer + j * a_inner;
        pb[e] = b + i * b_outer + j * b_inner;
        pc[e] = c + i * c_outer + j * c_inner;
    }
}

// ---- linear --------------------------------------------------------------------------------------------
template <class T>
__global__ void add_row_vector(std::size_t rows, std::size_t cols, const T* v, T* x) {
    const std::size_t n = rows * cols;
    for (std::size_t i = thread_index(); i < n; i += thread_count()) x[i] += v[i % cols];
}

// Column reductions: block (tile_cols, tile_rows), grid (ceil(cols / tile_cols), chunks); grid row y sums
// rows [y * chunk_rows, (y + 1) * chunk_rows). With one chunk the block adds into the output; with several it
// writes partial[y * cols + c], and add_column_partials adds the chunks in order (deterministic, no atomics).

/// The sum over the block's rows of column c, in thread (c, 0); the tile is the caller's shared memory.
template <class T>
__device__ T reduce_tile(T acc, T (&tile)[tile_rows][tile_cols + 1]) {
    tile[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    T s = tile[0][threadIdx.x];
    if (threadIdx.y == 0)
        for (unsigned y = 1; y < tile_rows; ++y) s += tile[y][threadIdx.x];
    return s;
}

__device__ inline std::size_t chunk_begin(std::size_t chunk_rows) {
    return static_cast<std::size_t>(blockIdx.y) * chunk_rows;
}
__device__ inline std::size_t chunk_end(std::size_t rows, std::size_t chunk_rows) {
    const std::size_t e = chunk_begin(chunk_rows) + chunk_rows;
    return e < rows ? e : rows;
}

/// out[c] (+)= partial[0, c] + ... + partial[chunks - 1, c].
template <class T>
__global__ void add_column_partials(std::size_t chunks, std::size_t cols, const T* partial, T* out, bool accumulate) {
    for (std::size_t c = thread_index(); c < cols; c += thread_count()) {
        T s = partial[c];
        for (std::size_t k = 1; k < chunks; ++k) s += partial[k * cols + c];
        out[c] = accumulate ? out[c] + s : s;
    }
}

/// out[c] += sum_r x[r, c] (or the chunk's sum into partial).
template <class T>
__global__ void accumulate_column_sums(std::size_t rows, std::size_t cols, std::size_t chunk_rows, const T* x, T* out,
                                       T* partial) {
    __shared__ T tile[tile_rows][tile_cols + 1];
    const std::size_t c = static_cast<std::size_t>(blockIdx.x) * tile_cols + threadIdx.x;
    T acc = T(0);
    if (c < cols)
        for (std::size_t r = chunk_begin(chunk_rows) + threadIdx.y; r < chunk_end(rows, chunk_rows); r += tile_rows)
            acc += x[r * cols + c];
    const T s = reduce_tile(acc, tile);
    if (threadIdx.y == 0 && c < cols) {
        if (partial) partial[blockIdx.y * cols + c] = s;
        else out[c] += s;
    }
}

/// y[r, c] (+)= x[r, c] * v[c], with row strides ldx and ldy.
template <class T>
__global__ void mul_row_vector(std::size_t rows, std::size_t cols, const T* x, std::size_t ldx, const T* v, T* y,
                               std::size_t ldy, bool accumulate) {
    const std::size_t n = rows * cols;
    for (std::size_t i = thread_index(); i < n; i += thread_count()) {
        const std::size_t r = i / cols, c = i % cols;
        const T p = x[r * ldx + c] * v[c];
        y[r * ldy + c] = accumulate ? y[r * ldy + c] + p : p;
    }
}

/// out[c] (+)= sum_r x[r, c] * y[r, c], row stride ld (or the chunk's sum into partial).
template <class T>
__global__ void column_dots(std::size_t rows, std::size_t cols, std::size_t chunk_rows, const T* x, const T* y,
                            std::size_t ld, T* out, bool accumulate, T* partial) {
    __shared__ T tile[tile_rows][tile_cols + 1];
    const std::size_t c = static_cast<std::size_t>(blockIdx.x) * tile_cols + threadIdx.x;
    T acc = T(0);
    if (c < cols)
        for (std::size_t r = chunk_begin(chunk_rows) + threadIdx.y; r < chunk_end(rows, chunk_rows); r += tile_rows)
            acc += x[r * ld + c] * y[r * ld + c];
    const T s = reduce_tile(acc, tile);
    if (threadIdx.y == 0 && c < cols) {
        if (partial) partial[blockIdx.y * cols + c] = s;
        else out[c] = accumulate ? out[c] + s : s;
    }
}

template <class T>
__global__ void axpy(std::size_t n, T alpha, const T* x, T* y) {
    for (std::size_t i = thread_index(); i < n; i += thread_count()) y[i] += alpha * x[i];
}

// ---- element-wise --------------------------------------------------------------------------------------
template <class T>
__global__ void add(std::size_t n, const T* a, const T* b, T* out) {
    for (std::size_t i = thread_index(); i < n; i += thread_count()) out[i] = a[i] + b[i];
}

template <class T>
__global__ void scale(std::size_t n, T alpha, T* x) {
    for (std::size_t i = thread_index(); i < n; i += thread_count()) x[i] *= alpha;
}

template <class T>
__global__ void gelu_forward(std::size_t n, const T* x, T* y) {
    for (std::size_t i = thread_index(); i < n; i += thread_count()) {
        const T v = x[i];
        y[i] = v * (T(0.5) * (T(1) + d_erf(v * T(0.70710678118654752440))));
    }
}

template <class T>
__global__ void gelu_backward(std::size_t n, const T* x, const T* dy, T* dx) {
    const T inv_sqrt_2pi = T(0.3989422804014327);
    for (std::size_t i = thread_index(); i < n; i += thread_count()) {
        const T v = x[i];
        dx[i] = dy[i] * (T(0.5) * (T(1) + d_erf(v * T(0.70710678118654752440))) +
                         v * inv_sqrt_2pi * d_exp(T(-0.5) * (v * v)));
    }
}

/// The fused element-wise work of fused_primitives (backend/concepts.hpp), each one pass over memory with the
/// unfused kernels' expressions (gelu_forward, gelu_backward, add_row_vector, dropout).
template <class T>
__global__ void bias_gelu_forward(std::size_t rows, std::size_t cols, const T* bias, T* t, T* y) {
    const std::size_t n = rows * cols;
    for (std::size_t i = thread_index(); i < n; i += thread_count()) {
        const T v = t[i] + bias[i % cols];
        t[i] = v;
        y[i] = v * (T(0.5) * (T(1) + d_erf(v * T(0.70710678118654752440))));
    }
}

/// y = gelu(t) and dt = dy * gelu'(t) from one erf per element.
template <class T>
__global__ void gelu_forward_backward(std::size_t n, const T* t, const T* dy, T* y, T* dt) {
    const T inv_sqrt_2pi = T(0.3989422804014327);
    for (std::size_t i = thread_index(); i < n; i += thread_count()) {
        const T v = t[i];
        const T phi = T(0.5) * (T(1) + d_erf(v * T(0.70710678118654752440)));
        dt[i] = dy[i] * (phi + v * inv_sqrt_2pi * d_exp(T(-0.5) * (v * v)));
        y[i] = v * phi;
    }
}

/// out = dropout(y) + x, dropout's mask.
template <class T>
__global__ void dropout_add(std::size_t n, float p, T keep_scale, std::uint64_t seed, std::uint64_t offset, const T* y,
                            const T* x, T* out) {
    for (std::size_t i = thread_index(); i < n; i += thread_count()) {
        const T v = y[i];
        // mul_rn: no FMA contraction with the add, so the CPU's bits.
        out[i] = add_rn(uniform01(seed, offset + i) >= p ? mul_rn(v, keep_scale) : v - v, x[i]);
    }
}

/// y = dropout(x), dx = dropout'(dy), one draw of each element's mask.
template <class T>
__global__ void dropout_forward_backward(std::size_t n, float p, T keep_scale, std::uint64_t seed, std::uint64_t offset,
                                         const T* x, const T* dy, T* y, T* dx) {
    for (std::size_t i = thread_index(); i < n; i += thread_count()) {
        const bool keep = uniform01(seed, offset + i) >= p;
        const T xv = x[i], g = dy[i];
        y[i] = keep ? xv * keep_scale : xv - xv;
        dx[i] = keep ? g * keep_scale : g - g;
    }
}

template <class T>
__global__ void tanh_forward(std::size_t n, const T* x, T* y) {
    for (std::size_t i = thread_index(); i < n; i += thread_count()) y[i] = d_tanh(x[i]);
}

template <class T>
__global__ void tanh_backward(std::size_t n, const T* y, const T* dy, T* dx) {
    for (std::size_t i = thread_index(); i < n; i += thread_count()) dx[i] = dy[i] * (T(1) - y[i] * y[i]);
}

/// y = (x <= 0 ? 0 : x): a NaN stays NaN (torch.relu).
template <class T>
__global__ void relu_forward(std::size_t n, const T* x, T* y) {
    for (std::size_t i = thread_index(); i < n; i += thread_count()) {
        const T v = x[i];
        y[i] = v <= T(0) ? T(0) : v;
    }
}

/// dx = (x <= 0 ? 0 : dy): a NaN x passes dy on (torch's threshold_backward).
template <class T>
__global__ void relu_backward(std::size_t n, const T* x, const T* dy, T* dx) {
    for (std::size_t i = thread_index(); i < n; i += thread_count()) dx[i] = x[i] <= T(0) ? T(0) : dy[i];
}

/// gelu_new: t = tanh(c ((x x) x a + x)), y = (x + x t) 0.5, in the CPU backend's order, each operation
/// rounded on its own (no FMA contraction).
template <class T>
__global__ void gelu_new_forward(std::size_t n, T c, T a, const T* x, T* y, T* t) {
    for (std::size_t i = thread_index(); i < n; i += thread_count()) {
        const T v = x[i];
        const T th = d_tanh(mul_rn(add_rn(mul_rn(mul_rn(mul_rn(v, v), v), a), v), c));
        t[i] = th;
        y[i] = mul_rn(add_rn(v, mul_rn(v, th)), T(0.5));
    }
}

/// dx = dy ((((x x) 3ac + c) x) (1 - t t) + t + 1) 0.5, in the CPU backend's order, no FMA contraction.
template <class T>
__global__ void gelu_new_backward(std::size_t n, T c, T three_a_c, const T* x, const T* t, const T* dy, T* dx) {
    for (std::size_t i = thread_index(); i < n; i += thread_count()) {
        const T v = x[i], th = t[i];
        const T slope = mul_rn(add_rn(mul_rn(mul_rn(v, v), three_a_c), c), v);
        const T sech2 = add_rn(T(1), -mul_rn(th, th));
        dx[i] = mul_rn(dy[i], mul_rn(add_rn(add_rn(mul_rn(slope, sech2), th), T(1)), T(0.5)));
    }
}

/// y = keep ? x * keep_scale : x - x with keep = uniform01(seed, offset + i) >= p: the CPU's mask, bit for bit
/// (x - x: +0 for a finite x, NaN for NaN or infinity, as PyTorch's x * mask).
template <class T>
__global__ void dropout(std::size_t n, float p, T keep_scale, std::uint64_t seed, std::uint64_t offset,
                        const T* x, T* y) {
    for (std::size_t i = thread_index(); i < n; i += thread_count())
        y[i] = uniform01(seed, offset + i) >= p ? x[i] * keep_scale : x[i] - x[i];
}

/// x = lo + range * u, evaluated without contraction (as written).
template <class T>
__global__ void fill_uniform(std::size_t n, std::uint64_t seed, std::uint64_t offset, T lo, T range, T* x) {
    for (std::size_t i = thread_index(); i < n; i += thread_count())
        x[i] = add_rn(lo, mul_rn(range, static_cast<T>(uniform01(seed, offset + i))));
}

template <class T>
__global__ void fill_normal(std::size_t n, std::uint64_t seed, std::uint64_t offset, T mean, T stddev, T* x) {
    for (std::size_t i = thread_index(); i < n; i += thread_count())
        x[i] = add_rn(mean, mul_rn(stddev, static_cast<T>(standard_normal(seed, offset + i))));
}

// ---- row-wise (one block per row) --------------------------------------------------------------------
template <class T>
__global__ void layer_norm_forward(std::size_t rows, std::size_t cols, T eps, const T* x, const T* gamma,
                                   const T* beta, T* y, T* mean, T* rstd) {
    __shared__ T scratch[max_warps];
    for (std::size_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * cols;
        T* yr = y + r * cols;
        T s = T(0);
        for (std::size_t j = threadIdx.x; j < cols; j += blockDim.x) s += xr[j];
        const T mu = block_reduce(s, sum_op{}, scratch) / static_cast<T>(cols);
        T q = T(0);
        for (std::size_t j = threadIdx.x; j < cols; j += blockDim.x) {
            const T d = xr[j] - mu;
            q += d * d;
        }
        const T var = block_reduce(q, sum_op{}, scratch) / static_cast<T>(cols);
        const T rs = T(1) / d_sqrt(var + eps);
        if (threadIdx.x == 0) {
            mean[r] = mu;
            rstd[r] = rs;
        }
        for (std::size_t j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = (xr[j] - mu) * rs * gamma[j] + beta[j];
    }
}

/// dx only; dgamma and dbeta come from layer_norm_param_grads.
template <class T>
__global__ void layer_norm_backward_input(std::size_t rows, std::size_t cols, const T* x, const T* gamma,
                                          const T* mean, const T* rstd, const T* dy, T* dx) {
    __shared__ T scratch[max_warps];
    for (std::size_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * cols;
        const T* dyr = dy + r * cols;
        const T mu = mean[r], rs = rstd[r];
        T s1 = T(0), s2 = T(0);
        for (std::size_t j = threadIdx.x; j < cols; j += blockDim.x) {
            const T xhat = (xr[j] - mu) * rs, dxhat = dyr[j] * gamma[j];
            s1 += dxhat;
            s2 += dxhat * xhat;
        }
        const T m1 = block_reduce(s1, sum_op{}, scratch) / static_cast<T>(cols);
        const T m2 = block_reduce(s2, sum_op{}, scratch) / static_cast<T>(cols);
        for (std::size_t j = threadIdx.x; j < cols; j += blockDim.x) {
            const T xhat = (xr[j] - mu) * rs, dxhat = dyr[j] * gamma[j];
            dx[r * cols + j] = rs * (dxhat - m1 - xhat * m2);
        }
    }
}

/// dgamma[c] += sum_r dy * xhat, dbeta[c] += sum_r dy (either may be null), or the chunk's sums into
/// partial_gamma and partial_beta (both set when chunked).
template <class T>
__global__ void layer_norm_param_grads(std::size_t rows, std::size_t cols, std::size_t chunk_rows, const T* x,
                                       const T* mean, const T* rstd, const T* dy, T* dgamma, T* dbeta,
                                       T* partial_gamma, T* partial_beta) {
    __shared__ T tg[tile_rows][tile_cols + 1];
    __shared__ T tb[tile_rows][tile_cols + 1];
    const std::size_t c = static_cast<std::size_t>(blockIdx.x) * tile_cols + threadIdx.x;
    T ag = T(0), ab = T(0);
    if (c < cols)
        for (std::size_t r = chunk_begin(chunk_rows) + threadIdx.y; r < chunk_end(rows, chunk_rows); r += tile_rows) {
            const T d = dy[r * cols + c];
            ag += d * ((x[r * cols + c] - mean[r]) * rstd[r]);
            ab += d;
        }
    const T sg = reduce_tile(ag, tg), sb = reduce_tile(ab, tb);
    if (threadIdx.y == 0 && c < cols) {
        if (partial_gamma) {
            partial_gamma[blockIdx.y * cols + c] = sg;
            partial_beta[blockIdx.y * cols + c] = sb;
        } else {
            if (dgamma) dgamma[c] += sg;
            if (dbeta) dbeta[c] += sb;
        }
    }
}

template <class T>
__global__ void attention_softmax_forward(std::size_t batch, std::size_t heads, std::size_t tq, std::size_t tk,
                                          T scale, const T* scores, const T* bias, const std::uint8_t* key_mask,
                                          T* probs) {
    __shared__ T scratch[max_warps];
    const std::size_t rows = batch * heads * tq;
    for (std::size_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const std::size_t b = r / (heads * tq), i = r % tq;
        const std::uint8_t* km = key_mask ? key_mask + b * tk : nullptr;
        const T* s = scores + r * tk;
        const T* br = bias ? bias + (b * tq + i) * tk : nullptr;
        T* p = probs + r * tk;
        T mx = negative_infinity<T>();
        for (std::size_t j = threadIdx.x; j < tk; j += blockDim.x) {
            const T v = scale * s[j] + (br ? br[j] : T(0));
            p[j] = v;
            if (!km || km[j]) mx = max_op{}(mx, v);
        }
        mx = block_reduce(mx, max_op{}, scratch);
        if (mx == negative_infinity<T>()) {  // every key masked: the same decision in every thread
            for (std::size_t j = threadIdx.x; j < tk; j += blockDim.x) p[j] = T(0);
            continue;
        }
        T sum = T(0);
        for (std::size_t j = threadIdx.x; j < tk; j += blockDim.x) {  // each thread rereads what it wrote
            const T e = (km && !km[j]) ? T(0) : d_exp(p[j] - mx);
            p[j] = e;
            sum += e;
        }
        const T inv = T(1) / block_reduce(sum, sum_op{}, scratch);
        for (std::size_t j = threadIdx.x; j < tk; j += blockDim.x) p[j] *= inv;
    }
}

template <class T>
__global__ void softmax_backward(std::size_t rows, std::size_t cols, const T* y, const T* dy, T scale, T* dx) {
    __shared__ T scratch[max_warps];
    for (std::size_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const std::size_t o = r * cols;
        T s = T(0);
        for (std::size_t j = threadIdx.x; j < cols; j += blockDim.x) s += y[o + j] * dy[o + j];
        s = block_reduce(s, sum_op{}, scratch);
        for (std::size_t j = threadIdx.x; j < cols; j += blockDim.x) dx[o + j] = scale * y[o + j] * (dy[o + j] - s);
    }
}

// ---- indexing ------------------------------------------------------------------------------------------
template <class T>
__global__ void gather_rows(std::size_t n, std::size_t dim, const T* table, const std::int32_t* ids, T* out) {
    const std::size_t total = n * dim;
    for (std::size_t e = thread_index(); e < total; e += thread_count()) {
        const std::size_t i = e / dim, j = e % dim;
        out[e] = table[static_cast<std::size_t>(ids[i]) * dim + j];
    }
}

template <class T>
__global__ void scatter_add_rows(std::size_t n, std::size_t dim, const T* dout, const std::int32_t* ids,
                                 T* table_grad) {
    const std::size_t total = n * dim;
    for (std::size_t e = thread_index(); e < total; e += thread_count()) {
        const std::size_t i = e / dim, j = e % dim;
        atomicAdd(table_grad + static_cast<std::size_t>(ids[i]) * dim + j, dout[e]);
    }
}

// ---- losses --------------------------------------------------------------------------------------------
template <class T>
__global__ void cross_entropy_forward(std::size_t rows, std::size_t classes, const T* logits,
                                      const std::int32_t* labels, T* probs, T* losses) {
    __shared__ T scratch[max_warps];
    for (std::size_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* l = logits + r * classes;
        T* p = probs + r * classes;
        T mx = negative_infinity<T>();
        for (std::size_t j = threadIdx.x; j < classes; j += blockDim.x) mx = max_op{}(mx, l[j]);
        mx = block_reduce(mx, max_op{}, scratch);
        T sum = T(0);
        for (std::size_t j = threadIdx.x; j < classes; j += blockDim.x) {
            const T e = d_exp(l[j] - mx);
            p[j] = e;
            sum += e;
        }
        const T z = block_reduce(sum, sum_op{}, scratch);
        for (std::size_t j = threadIdx.x; j < classes; j += blockDim.x) p[j] /= z;
        if (threadIdx.x == 0) {
            const std::int32_t label = labels[r];
            losses[r] = label < 0 ? T(0) : -(l[label] - mx - d_log(z));
        }
    }
}

template <class T>
__global__ void cross_entropy_backward(std::size_t rows, std::size_t classes, const T* probs,
                                       const std::int32_t* labels, T scale, T* dlogits) {
    const std::size_t total = rows * classes;
    for (std::size_t e = thread_index(); e < total; e += thread_count()) {
        const std::int32_t label = labels[e / classes];
        const std::size_t j = e % classes;
        if (label < 0)
            dlogits[e] = T(0);
        else if (j == static_cast<std::size_t>(label))
            dlogits[e] = mul_rn(scale, probs[e]) - scale;  // as the CPU: round the product, then subtract
        else
            dlogits[e] = scale * probs[e];
    }
}

// ---- reductions and optimizer -------------------------------------------------------------------------
/// partial[block] = sum over the block's grid-stride share of double(x[i]) * double(y[i]).
template <class T>
__global__ void dot_partials(std::size_t n, const T* x, const T* y, double* partial) {
    __shared__ double scratch[max_warps];
    double acc = 0.0;
    for (std::size_t i = thread_index(); i < n; i += thread_count())
        acc += static_cast<double>(x[i]) * static_cast<double>(y[i]);
    acc = block_reduce(acc, sum_op{}, scratch);
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

/// out[0] = sum of partial[0, count), by one block.
template <class Unused = void>
__global__ void sum_partials(std::size_t count, const double* partial, double* out) {
    __shared__ double scratch[max_warps];
    double acc = 0.0;
    for (std::size_t i = threadIdx.x; i < count; i += blockDim.x) acc += partial[i];
    acc = block_reduce(acc, sum_op{}, scratch);
    if (threadIdx.x == 0) out[0] = acc;
}

template <class T>
__global__ void adamw_update(std::size_t n, T beta1, T one_minus_beta1, T beta2, T one_minus_beta2, T eps,
                             T step, T inv_sqrt_bc2, T decay, const T* grad, T* param, T* m, T* v) {
    for (std::size_t i = thread_index(); i < n; i += thread_count()) {
        const T g = grad[i];
        const T mm = beta1 * m[i] + one_minus_beta1 * g;
        const T vv = beta2 * v[i] + one_minus_beta2 * (g * g);
        m[i] = mm;
        v[i] = vv;
        param[i] = param[i] * decay - step * mm / (d_sqrt(vv) * inv_sqrt_bc2 + eps);
    }
}

/// adamw_update over segments[blockIdx.y + first]: the blocks of one grid row share a segment (a grid-stride
/// loop over its values), so one launch updates every tensor.
template <class T>
__global__ void adamw_update_segments(const adamw_segment<T>* segments, T beta1, T one_minus_beta1, T beta2,
                                      T one_minus_beta2, T eps) {
    const adamw_segment<T> s = segments[blockIdx.y];
    for (std::size_t i = thread_index(); i < s.n; i += thread_count()) {
        const T g = s.grad[i];
        const T mm = beta1 * s.m[i] + one_minus_beta1 * g;
        const T vv = beta2 * s.v[i] + one_minus_beta2 * (g * g);
        s.m[i] = mm;
        s.v[i] = vv;
        s.param[i] = s.param[i] * s.decay - s.step * mm / (d_sqrt(vv) * s.inv_sqrt_bc2 + eps);
    }
}

/// Scratch of contrastive_losses (doubles in one buffer, carved by contrastive_scratch_layout below).
struct contrastive_scratch {
    double *f, *norms, *s, *grad_s, *d_ins, *row_terms, *k, *k_norms, *s_pro, *grad_pro, *d_pro, *dk;
};

/// Rows of x (rows, cols) normalised into f, norms kept (F.normalize, eps 1e-12); a thread per row.
__device__ inline void contrastive_normalize(const double* x, std::size_t rows, std::size_t cols, double* f,
                                             double* norms) {
    for (std::size_t r = threadIdx.x; r < rows; r += blockDim.x) {
        double s = 0;
        for (std::size_t c = 0; c < cols; ++c) s += x[r * cols + c] * x[r * cols + c];
        const double root = sqrt(s), n = root < 1e-12 ? 1e-12 : root;  // std::max's NaN behaviour, as the host
        norms[r] = n;
        for (std::size_t c = 0; c < cols; ++c) f[r * cols + c] = x[r * cols + c] / n;
    }
}
/// d through the normalisation, in place; a thread per row.
__device__ inline void contrastive_normalize_backward(const double* f, const double* norms, double* d, std::size_t rows,
                                                      std::size_t cols) {
    for (std::size_t r = threadIdx.x; r < rows; r += blockDim.x) {
        double dot = 0;
        for (std::size_t c = 0; c < cols; ++c) dot += f[r * cols + c] * d[r * cols + c];
        const bool clamped = norms[r] <= 1e-12;
        for (std::size_t c = 0; c < cols; ++c)
            d[r * cols + c] = (d[r * cols + c] - (clamped ? 0.0 : f[r * cols + c] * dot)) / norms[r];
    }
}
__device__ inline double contrastive_max(double a, double b) { return b > a || isnan(b) ? b : a; }

/// PHA's contrastive losses and their gradients (backend/contrastive_losses.hpp), in ONE block: the matrices are
/// (rows, rows) and (rows, tasks), a few thousand values. Each value is summed in the order of the host
/// reference (contrastive_losses_on_host), phase by phase with the block synchronised between phases; the
/// losses' sums over rows are taken by thread 0 in row order.
template <class T>
__global__ void contrastive_losses(std::size_t n, std::size_t dim, std::size_t nt, const T* features,
                                   const std::int32_t* t, const T* prototypes, double temperature, double weight,
                                   bool instance, bool prototype, bool exclude_positive, contrastive_scratch w,
                                   double* losses, T* feature_grad, T* prototype_grad) {
    const std::size_t tid = threadIdx.x, step = blockDim.x;
    for (std::size_t i = tid; i < n * dim; i += step) w.d_ins[i] = static_cast<double>(features[i]);  // staging
    for (std::size_t i = tid; i < nt * dim && prototype; i += step) w.dk[i] = static_cast<double>(prototypes[i]);
    __syncthreads();
    contrastive_normalize(w.d_ins, n, dim, w.f, w.norms);
    if (prototype) contrastive_normalize(w.dk, nt, dim, w.k, w.k_norms);
    __syncthreads();
    if (instance) {
        for (std::size_t e = tid; e < n * n; e += step) {
            const std::size_t i = e / n, j = e % n;
            double v = 0;
            for (std::size_t c = 0; c < dim; ++c) v += w.f[i * dim + c] * w.f[j * dim + c];
            w.s[e] = v / temperature;
            w.grad_s[e] = 0;
        }
        __syncthreads();
        __shared__ double anchors_shared;
        if (tid == 0) {
            std::size_t anchors = 0;
            for (std::size_t i = 0; i < n; ++i)
                for (std::size_t j = 0; j < n; ++j)
                    if (j != i && t[j] == t[i]) {
                        ++anchors;
                        break;
                    }
            anchors_shared = static_cast<double>(anchors);
        }
        __syncthreads();
        const double anchors = anchors_shared;
        const double c = anchors > 0 ? weight / anchors : 0.0;
        for (std::size_t i = tid; i < n; i += step) {
            w.row_terms[i] = 0;
            if (anchors == 0) continue;
            std::size_t positives = 0;
            for (std::size_t j = 0; j < n; ++j) positives += (j != i && t[j] == t[i]);
            if (positives == 0) continue;
            double mx = -INFINITY;
            for (std::size_t k = 0; k < n; ++k)
                if (k != i) mx = contrastive_max(mx, w.s[i * n + k]);
            double z = 0;
            for (std::size_t k = 0; k < n; ++k)
                if (k != i) z += exp(w.s[i * n + k] - mx);
            const double lse = mx + log(z);
            double li = 0;
            for (std::size_t j = 0; j < n; ++j)
                if (j != i && t[j] == t[i]) li -= w.s[i * n + j] - lse;
            w.row_terms[i] = li / static_cast<double>(positives);
            for (std::size_t k = 0; k < n; ++k) {
                if (k == i) continue;
                const double p = exp(w.s[i * n + k] - lse);
                const double pos = (t[k] == t[i]) ? 1.0 / static_cast<double>(positives) : 0.0;
                w.grad_s[i * n + k] = c * (p - pos);
            }
        }
        __syncthreads();
        if (tid == 0) {
            double total = 0;
            for (std::size_t i = 0; i < n; ++i) total += w.row_terms[i];
            losses[0] = anchors > 0 ? total * c : 0.0;
        }
        for (std::size_t e = tid; e < n * dim; e += step) {
            const std::size_t i = e / dim, col = e % dim;
            double acc = 0;
            for (std::size_t j = 0; j < n; ++j) {
                const double g = (w.grad_s[i * n + j] + w.grad_s[j * n + i]) / temperature;
                if (g == 0) continue;
                acc += g * w.f[j * dim + col];
            }
            w.d_ins[e] = acc;
        }
        __syncthreads();
        contrastive_normalize_backward(w.f, w.norms, w.d_ins, n, dim);
    } else if (tid == 0) {
        losses[0] = 0;
    }
    if (prototype) {
        const double c = weight / static_cast<double>(n);
        for (std::size_t i = tid; i < n; i += step) {
            const auto ti = static_cast<std::size_t>(t[i]);
            double* s = w.s_pro + i * nt;
            double mx = -INFINITY;
            for (std::size_t p = 0; p < nt; ++p) {
                double v = 0;
                for (std::size_t d = 0; d < dim; ++d) v += w.f[i * dim + d] * w.k[p * dim + d];
                s[p] = v / temperature;
                if (!exclude_positive || p != ti) mx = contrastive_max(mx, s[p]);
            }
            double z = 0;
            for (std::size_t p = 0; p < nt; ++p)
                if (!exclude_positive || p != ti) z += exp(s[p] - mx);
            const double lse = mx + log(z);
            w.row_terms[i] = lse - s[ti];
            for (std::size_t p = 0; p < nt; ++p) {
                const double prob = (!exclude_positive || p != ti) ? exp(s[p] - lse) : 0.0;
                w.grad_pro[i * nt + p] = c * (prob - (p == ti ? 1.0 : 0.0));
            }
        }
        __syncthreads();
        if (tid == 0) {
            double total = 0;
            for (std::size_t i = 0; i < n; ++i) total += w.row_terms[i];
            losses[1] = c * total;
        }
        for (std::size_t e = tid; e < n * dim; e += step) {
            const std::size_t i = e / dim, d = e % dim;
            double acc = 0;
            for (std::size_t p = 0; p < nt; ++p) {
                const double g = w.grad_pro[i * nt + p] / temperature;
                if (g == 0) continue;
                acc += g * w.k[p * dim + d];
            }
            w.d_pro[e] = acc;
        }
        for (std::size_t e = tid; e < nt * dim; e += step) {
            const std::size_t p = e / dim, d = e % dim;
            double acc = 0;
            for (std::size_t i = 0; i < n; ++i) {
                const double g = w.grad_pro[i * nt + p] / temperature;
                if (g == 0) continue;
                acc += g * w.f[i * dim + d];
            }
            w.dk[e] = acc;
        }
        __syncthreads();
        contrastive_normalize_backward(w.f, w.norms, w.d_pro, n, dim);
        contrastive_normalize_backward(w.k, w.k_norms, w.dk, nt, dim);
    } else if (tid == 0) {
        losses[1] = 0;
    }
    __syncthreads();
    for (std::size_t i = tid; i < n * dim; i += step) {
        const T a = instance ? static_cast<T>(w.d_ins[i]) : T(0), b = prototype ? static_cast<T>(w.d_pro[i]) : T(0);
        feature_grad[i] = instance && prototype ? a + b : instance ? a : b;
    }
    for (std::size_t i = tid; i < nt * dim && prototype; i += step) prototype_grad[i] = static_cast<T>(w.dk[i]);
}

}  // namespace hyperadapt::detail::cuda_kernels
