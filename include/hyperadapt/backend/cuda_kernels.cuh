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

}  // namespace hyperadapt::detail::cuda_kernels
