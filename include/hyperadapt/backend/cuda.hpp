#pragma once
// The CUDA backend policy: cuBLAS for GEMM, small kernels (cuda_kernels.cuh) for everything else, and a
// caching device allocator. Layers never include this header: they only name the policy.
//
// Concept level: the complete `backend` concept (memory_backend, blas_backend, linear_backend,
// elementwise_backend and the relu / gelu_new primitives) is implemented; see the static_asserts at the end.
//
// Stream and cuBLAS handle:
//   * cuda_backend() OWNS them: it creates a non-blocking stream and a cuBLAS handle on the device that is
//     current at construction, binds the handle to the stream, and destroys both in its destructor.
//   * cuda_backend(stream, handle) BORROWS them: the caller keeps ownership and must keep both alive for
//     the backend's lifetime. The constructor binds the handle to the stream (cublasSetStream) and sets
//     host pointer mode; the caller must not rebind the handle while the backend uses it.
// Every primitive is enqueued on that stream and returns without waiting, except those that hand a value
// or host memory back (copy_to_host, copy_from_host, sum_squares, dot) and synchronize(), which wait for
// the stream. All pointers are device pointers unless the name says "host".
//
// Memory: buffers are RAII and move-only; their device memory comes from a cache owned (shared) by the
// backend that keeps freed blocks by size class (core/size_class.hpp). Blocks go back to the cache without
// waiting for the GPU: reuse is safe because the backend enqueues all its work on one stream, so a later
// kernel that writes a reused block runs after every earlier kernel that read it. Use a backend (and its
// buffers) from one host thread at a time, with its device current.
//
// Errors: every CUDA and cuBLAS status other than success becomes a hyperadapt::backend_error whose message
// names the status (e.g. cudaErrorMemoryAllocation, CUBLAS_STATUS_INVALID_VALUE), the failing call, and the
// file and line. Destructors never throw: they ignore errors of cudaFree/cublasDestroy/cudaStreamDestroy.
//
// Numerics: results match the CPU backend's up to floating-point summation order and the last-ulp
// differences of device erf/exp/tanh/log; dropout masks are bit-identical to the CPU's (same counter RNG),
// fill_uniform/fill_normal evaluate `lo + range * u` and gelu_new_* their polynomials without FMA
// contraction, and relu_* is exact. Float GEMM uses cuBLAS's default math mode (no TF32) on an owned handle,
// unless options::products asks for TF32, bf16 or fp16 products (reduced-precision operands, fp32 accumulation
// and fp32 results: everything but the products stays fp32).
#if !defined(__CUDACC__)
#error "hyperadapt/backend/cuda.hpp needs nvcc: include it only from .cu translation units (CUDA language)"
#endif

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "hyperadapt/core/size_class.hpp"
#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/backend/contrastive_losses.hpp"
#include "hyperadapt/backend/counter_rng.hpp"
#include "hyperadapt/backend/cuda_kernels.cuh"
#include "hyperadapt/core/errors.hpp"

namespace hyperadapt {

// ---- error handling ------------------------------------------------------------------------------------
namespace detail {
[[noreturn]] inline void throw_cuda_error(cudaError_t status, const std::string& what, const char* file,
                                          int line) {
    throw backend_error(std::string("CUDA error ") + cudaGetErrorName(status) + " (" +
                        cudaGetErrorString(status) + ") in " + what + " at " + file + ":" + std::to_string(line));
}
inline void check_cuda(cudaError_t status, const char* what, const char* file, int line) {
    if (status != cudaSuccess) throw_cuda_error(status, what, file, line);
}
[[noreturn]] inline void throw_cublas_error(cublasStatus_t status, const char* what, const char* file, int line) {
    throw backend_error(std::string("cuBLAS error ") + cublasGetStatusName(status) + " (" +
                        cublasGetStatusString(status) + ") in " + what + " at " + file + ":" +
                        std::to_string(line));
}
inline void check_cublas(cublasStatus_t status, const char* what, const char* file, int line) {
    if (status != CUBLAS_STATUS_SUCCESS) throw_cublas_error(status, what, file, line);
}
}  // namespace detail

}  // namespace hyperadapt

/// Throws hyperadapt::backend_error unless the CUDA runtime call returns cudaSuccess.
#define HYPERADAPT_CUDA_CHECK(expr) ::hyperadapt::detail::check_cuda((expr), #expr, __FILE__, __LINE__)
/// Throws hyperadapt::backend_error unless the cuBLAS call returns CUBLAS_STATUS_SUCCESS.
#define HYPERADAPT_CUBLAS_CHECK(expr) ::hyperadapt::detail::check_cublas((expr), #expr, __FILE__, __LINE__)
/// Launches a kernel and turns a launch error (bad configuration, no kernel image for the device, ...)
/// into hyperadapt::backend_error naming the kernel.
#define HYPERADAPT_CUDA_LAUNCH(kernel, grid, block, stream, ...)                                         \
    do {                                                                                                 \
        kernel<<<(grid), (block), 0, (stream)>>>(__VA_ARGS__);                                           \
        ::hyperadapt::detail::check_cuda(cudaGetLastError(), "launch of " #kernel, __FILE__, __LINE__); \
    } while (0)

namespace hyperadapt {

namespace detail {

// ---- caching device allocator --------------------------------------------------------------------------
/// Device memory blocks of one device, kept by exact (rounded) size when freed and handed out again.
class device_block_cache {
public:
    static constexpr std::size_t granularity = 256;  ///< cudaMalloc's own alignment

    explicit device_block_cache(int device) : device_(device) {}
    device_block_cache(const device_block_cache&) = delete;
    device_block_cache& operator=(const device_block_cache&) = delete;
    ~device_block_cache() { release(); }

    void* acquire(std::size_t bytes) {
        bytes = round_up(bytes);
        {
            std::lock_guard lock(mutex_);
            if (auto it = free_.find(bytes); it != free_.end()) {
                void* p = it->second;
                free_.erase(it);
                cached_bytes_ -= bytes;
                return p;
            }
        }
        void* p = nullptr;
        cudaError_t status = cudaMalloc(&p, bytes);
        if (status == cudaErrorMemoryAllocation) {  // give the cached blocks back and try once more
            (void)cudaGetLastError();
            release();
            status = cudaMalloc(&p, bytes);
        }
        if (status != cudaSuccess) {
            (void)cudaGetLastError();
            throw_cuda_error(status, "cudaMalloc of " + std::to_string(bytes) + " bytes", __FILE__, __LINE__);
        }
        return p;
    }

    void give_back(void* p, std::size_t bytes) noexcept {
        bytes = round_up(bytes);
        try {
            std::lock_guard lock(mutex_);
            free_.emplace(bytes, p);
            cached_bytes_ += bytes;
        } catch (...) {
            (void)cudaFree(p);
        }
    }

    /// Returns every cached block to the device (cudaFree waits for the device first).
    void release() noexcept {
        std::lock_guard lock(mutex_);
        if (free_.empty()) return;
        int current = -1;
        const bool switch_device = cudaGetDevice(&current) == cudaSuccess && current != device_;
        if (switch_device) (void)cudaSetDevice(device_);
        for (auto& [bytes, p] : free_) (void)cudaFree(p);
        if (switch_device) (void)cudaSetDevice(current);
        free_.clear();
        cached_bytes_ = 0;
    }

    [[nodiscard]] std::size_t cached_bytes() const noexcept {
        std::lock_guard lock(mutex_);
        return cached_bytes_;
    }
    [[nodiscard]] int device() const noexcept { return device_; }

private:
    static std::size_t round_up(std::size_t bytes) noexcept { return size_class(bytes, granularity); }

    int device_;
    mutable std::mutex mutex_;
    std::multimap<std::size_t, void*> free_;
    std::size_t cached_bytes_ = 0;
};

/// Owning, move-only device buffer whose memory goes back to its cache.
template <class T>
class cuda_device_buffer {
public:
    cuda_device_buffer() = default;
    cuda_device_buffer(std::shared_ptr<device_block_cache> cache, std::size_t n)
        : cache_(std::move(cache)), data_(static_cast<T*>(cache_->acquire(n * sizeof(T)))), size_(n) {}
    cuda_device_buffer(cuda_device_buffer&& o) noexcept
        : cache_(std::move(o.cache_)), data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
    cuda_device_buffer& operator=(cuda_device_buffer&& o) noexcept {
        if (this != &o) {
            reset();
            cache_ = std::move(o.cache_);
            data_ = std::exchange(o.data_, nullptr);
            size_ = std::exchange(o.size_, 0);
        }
        return *this;
    }
    cuda_device_buffer(const cuda_device_buffer&) = delete;
    cuda_device_buffer& operator=(const cuda_device_buffer&) = delete;
    ~cuda_device_buffer() { reset(); }

    /// Device pointer.
    [[nodiscard]] T* data() noexcept { return data_; }
    [[nodiscard]] const T* data() const noexcept { return data_; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }

private:
    void reset() noexcept {
        if (data_ != nullptr) cache_->give_back(data_, size_ * sizeof(T));
        data_ = nullptr;
        size_ = 0;
    }

    std::shared_ptr<device_block_cache> cache_;
    T* data_ = nullptr;
    std::size_t size_ = 0;
};

// ---- pinned staging for queued uploads -------------------------------------------------------------------
/// Page-locked host blocks that queue_copy_from_host copies through: the caller's values are memcpy'd into a
/// block, the block's asynchronous copy to the device is queued on the stream, and an event marks when the
/// block may be written again. A step's one upload thus never waits for the device; a block is reused once its
/// copy is done (steady state: the same one or two blocks, step after step). Only when all max_blocks blocks
/// are still being copied does an upload wait, for the one used longest ago.
class pinned_staging {
public:
    static constexpr std::size_t max_blocks = 4;
    static constexpr std::size_t smallest_block = std::size_t{1} << 16;

    pinned_staging() = default;
    pinned_staging(const pinned_staging&) = delete;
    pinned_staging& operator=(const pinned_staging&) = delete;
    /// Waits for every queued copy (a block must not be freed while the device reads it).
    ~pinned_staging() {
        for (auto& b : blocks_) {
            if (b.done) {
                (void)cudaEventSynchronize(b.done);
                (void)cudaEventDestroy(b.done);
            }
            if (b.host) (void)cudaFreeHost(b.host);
        }
    }

    /// Copies `bytes` from `host_src` to device `dst` through a pinned block, queued on `stream`.
    void upload(const void* host_src, void* dst, std::size_t bytes, cudaStream_t stream) {
        if (bytes == 0) return;
        block& b = free_block(bytes);
        std::memcpy(b.host, host_src, bytes);
        HYPERADAPT_CUDA_CHECK(cudaMemcpyAsync(dst, b.host, bytes, cudaMemcpyHostToDevice, stream));
        HYPERADAPT_CUDA_CHECK(cudaEventRecord(b.done, stream));
        b.last_use = ++uses_;
    }

private:
    struct block {
        void* host = nullptr;
        std::size_t bytes = 0;
        cudaEvent_t done = nullptr;
        std::size_t last_use = 0;
    };

    static bool copied(const block& b) {
        const cudaError_t status = cudaEventQuery(b.done);  // cudaSuccess also for a never-recorded event
        if (status == cudaErrorNotReady) return false;
        HYPERADAPT_CUDA_CHECK(status);
        return true;
    }
    /// A block of at least `bytes` whose last copy is done.
    block& free_block(std::size_t bytes) {
        for (auto& b : blocks_)
            if (b.bytes >= bytes && copied(b)) return b;
        for (auto& b : blocks_)
            if (copied(b)) return grown(b, bytes);
        if (blocks_.size() < max_blocks) {
            cudaEvent_t done = nullptr;  // created first: a block in the list always has its event
            HYPERADAPT_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
            blocks_.push_back({.host = nullptr, .bytes = 0, .done = done, .last_use = 0});
            return grown(blocks_.back(), bytes);
        }
        block* oldest = &blocks_.front();
        for (auto& b : blocks_)
            if (b.last_use < oldest->last_use) oldest = &b;
        HYPERADAPT_CUDA_CHECK(cudaEventSynchronize(oldest->done));
        return grown(*oldest, bytes);
    }
    /// `b` (no copy pending) with room for `bytes`: a new power-of-two pinned allocation when it is smaller.
    static block& grown(block& b, std::size_t bytes) {
        if (b.bytes >= bytes) return b;
        std::size_t size = smallest_block;
        while (size < bytes) size *= 2;
        void* p = nullptr;
        HYPERADAPT_CUDA_CHECK(cudaHostAlloc(&p, size, cudaHostAllocDefault));
        if (b.host) (void)cudaFreeHost(b.host);
        b.host = p;
        b.bytes = size;
        return b;
    }

    std::vector<block> blocks_;
    std::size_t uses_ = 0;
};

inline int to_blas_int(std::size_t v, const char* what) {
    if (v > static_cast<std::size_t>(INT_MAX))
        throw backend_error(std::string("cuda_backend: ") + what + " = " + std::to_string(v) +
                            " exceeds cuBLAS's int range");
    return static_cast<int>(v);
}

namespace ck = cuda_kernels;  // short name for the kernel launches below

inline cublasOperation_t to_cublas(transpose t) noexcept { return t == transpose::yes ? CUBLAS_OP_T : CUBLAS_OP_N; }

}  // namespace detail

/// How a cuda_backend multiplies fp32 matrices (double products are always exact fp64). Every mode reads and
/// writes fp32 matrices and accumulates in fp32; they differ in how the operands are rounded on the way into
/// the tensor cores:
///   fp32  exact fp32 products (CUBLAS_DEFAULT_MATH)
///   tf32  operands rounded to TF32, 10 mantissa bits (CUBLAS_TF32_TENSOR_OP_MATH; PyTorch's allow_tf32)
///   bf16  operands rounded to bfloat16, 8 bits and fp32's range (CUBLAS_COMPUTE_32F_FAST_16BF): what the CPU's
///         --precision bf16 does to a product (backend/cpu_onednn.hpp) and what autocast's bf16 matmul
///         computes, while the weights, activations, LayerNorm, softmax, losses and AdamW stay fp32
///   fp16  operands rounded to IEEE half, 11 bits, largest 65504 (CUBLAS_COMPUTE_32F_FAST_16F): an operand
///         beyond that range becomes infinite, so fp16 training needs dynamic loss scaling (the trainer's
///         loss_scaling skips such a step and lowers the scale; optim/loss_scaler.hpp)
enum class cuda_products { fp32, tf32, bf16, fp16 };

[[nodiscard]] inline const char* to_string(cuda_products p) noexcept {
    switch (p) {
        case cuda_products::tf32: return "tf32";
        case cuda_products::bf16: return "bf16";
        case cuda_products::fp16: return "fp16";
        case cuda_products::fp32: break;
    }
    return "fp32";
}

/// The CUDA backend. Satisfies hyperadapt::backend (every concept level); see the top of this file for
/// stream/handle ownership, memory and error handling.
class cuda_backend {
public:
    template <class T>
    using buffer = detail::cuda_device_buffer<T>;

    struct options {
        /// Fill every new float/double buffer with NaN so that an output element a kernel forgot to write
        /// shows up in tests (the gradient checker turns this on).
        bool poison_new_buffers = false;
        /// How fp32 matrices are multiplied (cuda_products): exact, or on TF32 / bf16 / fp16 tensor cores with
        /// fp32 accumulation, several times the fp32 throughput on an A100/H100. Everything else stays fp32;
        /// double products are unaffected.
        cuda_products products = cuda_products::fp32;
    };

    /// Owns a new non-blocking stream and cuBLAS handle on the current device.
    cuda_backend() : cuda_backend(options{}) {}
    explicit cuda_backend(options opts) : opts_(opts), owns_(true) {
        HYPERADAPT_CUDA_CHECK(cudaGetDevice(&device_));
        HYPERADAPT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
        try {
            HYPERADAPT_CUBLAS_CHECK(cublasCreate(&handle_));
        } catch (...) {
            (void)cudaStreamDestroy(stream_);
            throw;
        }
        try {
            bind_handle();
            HYPERADAPT_CUBLAS_CHECK(cublasSetMathMode(handle_, tf32() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
            cache_ = std::make_shared<detail::device_block_cache>(device_);
        } catch (...) {
            destroy_owned();
            throw;
        }
    }
    /// Borrows `stream` and `handle` (see the top of this file); they must outlive the backend.
    cuda_backend(cudaStream_t stream, cublasHandle_t handle) : cuda_backend(stream, handle, options{}) {}
    cuda_backend(cudaStream_t stream, cublasHandle_t handle, options opts)
        : opts_(opts), owns_(false), stream_(stream), handle_(handle) {
        if (handle == nullptr) throw config_error("cuda_backend: borrowed cuBLAS handle is null");
        HYPERADAPT_CUDA_CHECK(cudaGetDevice(&device_));
        bind_handle();
        // A borrowed handle keeps its owner's math mode unless TF32 is asked for (then the owner's handle has it too;
        // bf16 and fp16 products name their compute type in each call and need no mode).
        if (tf32()) HYPERADAPT_CUBLAS_CHECK(cublasSetMathMode(handle_, CUBLAS_TF32_TENSOR_OP_MATH));
        cache_ = std::make_shared<detail::device_block_cache>(device_);
    }

    // Tensors and layers keep a pointer to their backend: it neither copies nor moves.
    cuda_backend(const cuda_backend&) = delete;
    cuda_backend& operator=(const cuda_backend&) = delete;
    cuda_backend(cuda_backend&&) = delete;
    cuda_backend& operator=(cuda_backend&&) = delete;

    /// Waits for the stream's work, then destroys the stream and handle if owned. Cached blocks are freed
    /// when the last buffer referring to the cache is gone.
    ~cuda_backend() {
        (void)cudaStreamSynchronize(stream_);
        if (owns_) destroy_owned();
    }

    [[nodiscard]] const char* name() const noexcept { return "cuda"; }
    [[nodiscard]] cudaStream_t stream() const noexcept { return stream_; }
    [[nodiscard]] cublasHandle_t cublas_handle() const noexcept { return handle_; }
    [[nodiscard]] bool owns_stream_and_handle() const noexcept { return owns_; }
    [[nodiscard]] int device() const noexcept { return device_; }
    void set_poison_new_buffers(bool on) noexcept { opts_.poison_new_buffers = on; }
    [[nodiscard]] bool poison_new_buffers() const noexcept { return opts_.poison_new_buffers; }
    /// How fp32 matrices are multiplied (options::products).
    [[nodiscard]] cuda_products products() const noexcept { return opts_.products; }
    /// Whether fp32 products run on TF32 tensor cores.
    [[nodiscard]] bool tf32() const noexcept { return opts_.products == cuda_products::tf32; }
    /// Returns cached device memory to the driver (waits for the device).
    void release_cached_memory() noexcept { cache_->release(); }
    [[nodiscard]] std::size_t cached_bytes() const noexcept { return cache_->cached_bytes(); }

    // ---- memory -------------------------------------------------------------------------------------
    template <class T>
    [[nodiscard]] buffer<T> allocate(std::size_t n) {
        buffer<T> buf(cache_, n);
        if constexpr (std::numeric_limits<T>::has_quiet_NaN)
            if (opts_.poison_new_buffers) fill(buf.data(), n, std::numeric_limits<T>::quiet_NaN());
        return buf;
    }
    /// Device to device, enqueued.
    template <class T>
    void copy(const T* src, T* dst, std::size_t n) {
        if (n) HYPERADAPT_CUDA_CHECK(cudaMemcpyAsync(dst, src, n * sizeof(T), cudaMemcpyDeviceToDevice, stream_));
    }
    /// Device to host; returns when host_dst holds the values.
    template <class T>
    void copy_to_host(const T* src, T* host_dst, std::size_t n) {
        if (n == 0) return;
        HYPERADAPT_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, n * sizeof(T), cudaMemcpyDeviceToHost, stream_));
        HYPERADAPT_CUDA_CHECK(cudaStreamSynchronize(stream_));
    }
    /// Host to device; returns when host_src may be reused (also for pinned host memory).
    template <class T>
    void copy_from_host(const T* host_src, T* dst, std::size_t n) {
        if (n == 0) return;
        HYPERADAPT_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, n * sizeof(T), cudaMemcpyHostToDevice, stream_));
        HYPERADAPT_CUDA_CHECK(cudaStreamSynchronize(stream_));
    }
    /// Host to device without waiting (queued_uploads): the values are copied into a pinned block before this
    /// returns, so host_src may be reused at once; the transfer runs in stream order.
    template <class T>
    void queue_copy_from_host(const T* host_src, T* dst, std::size_t n) {
        staging_->upload(host_src, dst, n * sizeof(T), stream_);
    }
    template <class T>
    void fill(T* x, std::size_t n, T value) {
        if (n == 0) return;
        const T zero{};
        if (std::memcmp(&value, &zero, sizeof(T)) == 0)  // all-zero bits: a memset
            HYPERADAPT_CUDA_CHECK(cudaMemsetAsync(x, 0, n * sizeof(T), stream_));
        else
            HYPERADAPT_CUDA_LAUNCH(detail::ck::fill<T>, grid_for(n), block_for(n), stream_, n, value, x);
    }
    void synchronize() { HYPERADAPT_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

    // ---- BLAS ---------------------------------------------------------------------------------------
    /// C = alpha op(A) op(B) + beta C, row-major, exactly the CPU backend's semantics (beta == 0 ignores C).
    ///
    /// Mapping: a row-major matrix read as column-major is its transpose, so row-major C = op(A) op(B) is
    /// column-major C^T = op(B)^T op(A)^T: cuBLAS gets (B, A) swapped, (n, m) swapped, the same op flags
    /// and the same leading dimensions.
    template <class T>
    void gemm(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
              std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
        static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "cuda_backend::gemm: float or double");
        if (m == 0 || n == 0) return;
        if (k == 0) {  // cuBLAS would reject lda/ldb of 0; BLAS semantics: C = beta C
            scale_matrices(1, m, n, ldc, 0, beta, c);
            return;
        }
        const int im = detail::to_blas_int(m, "m"), in = detail::to_blas_int(n, "n"),
                  ik = detail::to_blas_int(k, "k"), ilda = detail::to_blas_int(lda, "lda"),
                  ildb = detail::to_blas_int(ldb, "ldb"), ildc = detail::to_blas_int(ldc, "ldc");
        if constexpr (std::is_same_v<T, float>) {
            if (const auto compute = half_compute())
                HYPERADAPT_CUBLAS_CHECK(cublasGemmEx(handle_, detail::to_cublas(tb), detail::to_cublas(ta), in, im, ik,
                                                     &alpha, b, CUDA_R_32F, ildb, a, CUDA_R_32F, ilda, &beta, c,
                                                     CUDA_R_32F, ildc, *compute, CUBLAS_GEMM_DEFAULT));
            else
                HYPERADAPT_CUBLAS_CHECK(cublasSgemm(handle_, detail::to_cublas(tb), detail::to_cublas(ta), in, im, ik,
                                                    &alpha, b, ildb, a, ilda, &beta, c, ildc));
        } else
            HYPERADAPT_CUBLAS_CHECK(cublasDgemm(handle_, detail::to_cublas(tb), detail::to_cublas(ta), in, im, ik,
                                                &alpha, b, ildb, a, ilda, &beta, c, ildc));
    }

    /// `batch` independent products C_i = alpha op(A_i) op(B_i) + beta C_i, X_i = X + i * stride_x.
    template <class T>
    void gemm_strided_batched(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha,
                              const T* a, std::size_t lda, std::ptrdiff_t stride_a, const T* b, std::size_t ldb,
                              std::ptrdiff_t stride_b, T beta, T* c, std::size_t ldc, std::ptrdiff_t stride_c,
                              std::size_t batch) {
        static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                      "cuda_backend::gemm_strided_batched: float or double");
        if (m == 0 || n == 0 || batch == 0) return;
        if (k == 0) {
            scale_matrices(batch, m, n, ldc, stride_c, beta, c);
            return;
        }
        const int im = detail::to_blas_int(m, "m"), in = detail::to_blas_int(n, "n"),
                  ik = detail::to_blas_int(k, "k"), ilda = detail::to_blas_int(lda, "lda"),
                  ildb = detail::to_blas_int(ldb, "ldb"), ildc = detail::to_blas_int(ldc, "ldc"),
                  ibatch = detail::to_blas_int(batch, "batch");
        const auto sa = static_cast<long long>(stride_a), sb = static_cast<long long>(stride_b),
                   sc = static_cast<long long>(stride_c);
        if constexpr (std::is_same_v<T, float>) {
            if (const auto compute = half_compute())
                HYPERADAPT_CUBLAS_CHECK(cublasGemmStridedBatchedEx(handle_, detail::to_cublas(tb), detail::to_cublas(ta),
                                                                   in, im, ik, &alpha, b, CUDA_R_32F, ildb, sb, a,
                                                                   CUDA_R_32F, ilda, sa, &beta, c, CUDA_R_32F, ildc, sc,
                                                                   ibatch, *compute, CUBLAS_GEMM_DEFAULT));
            else
                HYPERADAPT_CUBLAS_CHECK(cublasSgemmStridedBatched(handle_, detail::to_cublas(tb), detail::to_cublas(ta),
                                                                  in, im, ik, &alpha, b, ildb, sb, a, ilda, sa, &beta,
                                                                  c, ildc, sc, ibatch));
        } else
            HYPERADAPT_CUBLAS_CHECK(cublasDgemmStridedBatched(handle_, detail::to_cublas(tb), detail::to_cublas(ta),
                                                              in, im, ik, &alpha, b, ildb, sb, a, ilda, sa, &beta, c,
                                                              ildc, sc, ibatch));
    }

    /// A grid of independent products: entry (i, j), i < outer, j < inner, multiplies the operands at
    /// a + i * sa.outer + j * sa.inner (likewise b and c). One pointer-array batched cuBLAS call, whose
    /// pointer arrays a kernel writes on the device, so nothing waits for the host; attention's
    /// (example, head) products are one launch instead of one per example or head.
    template <class T>
    void gemm_batched_grid(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha,
                           const T* a, std::size_t lda, grid_strides sa, const T* b, std::size_t ldb, grid_strides sb,
                           T beta, T* c, std::size_t ldc, grid_strides sc, std::size_t outer, std::size_t inner) {
        static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                      "cuda_backend::gemm_batched_grid: float or double");
        if (m == 0 || n == 0 || outer == 0 || inner == 0) return;
        if (k == 0) {
            for (std::size_t i = 0; i < outer; ++i)
                scale_matrices(inner, m, n, ldc, sc.inner, beta, c + static_cast<std::ptrdiff_t>(i) * sc.outer);
            return;
        }
        const std::size_t count = outer * inner;
        const int im = detail::to_blas_int(m, "m"), in = detail::to_blas_int(n, "n"),
                  ik = detail::to_blas_int(k, "k"), ilda = detail::to_blas_int(lda, "lda"),
                  ildb = detail::to_blas_int(ldb, "ldb"), ildc = detail::to_blas_int(ldc, "ldc"),
                  icount = detail::to_blas_int(count, "batch");
        buffer<const T*> operands = allocate<const T*>(2 * count);
        buffer<T*> results = allocate<T*>(count);
        const T** pa = operands.data();
        const T** pb = operands.data() + count;
        HYPERADAPT_CUDA_LAUNCH(detail::ck::grid_pointers<T>, grid_for(count), block_for(count), stream_, outer, inner,
                               a, sa.outer, sa.inner, b, sb.outer, sb.inner, c, sc.outer, sc.inner, pa, pb,
                               results.data());
        // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T, as in gemm above.
        if constexpr (std::is_same_v<T, float>) {
            if (const auto compute = half_compute()) {
                const void* const* vb = reinterpret_cast<const void* const*>(pb);
                const void* const* va = reinterpret_cast<const void* const*>(pa);
                void* const* vc = reinterpret_cast<void* const*>(results.data());
                HYPERADAPT_CUBLAS_CHECK(cublasGemmBatchedEx(handle_, detail::to_cublas(tb), detail::to_cublas(ta), in, im,
                                                            ik, &alpha, vb, CUDA_R_32F, ildb, va, CUDA_R_32F, ilda,
                                                            &beta, vc, CUDA_R_32F, ildc, icount, *compute,
                                                            CUBLAS_GEMM_DEFAULT));
            } else {
                HYPERADAPT_CUBLAS_CHECK(cublasSgemmBatched(handle_, detail::to_cublas(tb), detail::to_cublas(ta), in, im,
                                                           ik, &alpha, pb, ildb, pa, ilda, &beta, results.data(), ildc,
                                                           icount));
            }
        } else
            HYPERADAPT_CUBLAS_CHECK(cublasDgemmBatched(handle_, detail::to_cublas(tb), detail::to_cublas(ta), in, im,
                                                       ik, &alpha, pb, ildb, pa, ilda, &beta, results.data(), ildc,
                                                       icount));
    }

    // ---- linear -------------------------------------------------------------------------------------
    /// x[r, :] += v for every row r of the rows x cols matrix x.
    template <class T>
    void add_row_vector(std::size_t rows, std::size_t cols, const T* v, T* x) {
        const std::size_t n = rows * cols;
        if (n) HYPERADAPT_CUDA_LAUNCH(detail::ck::add_row_vector<T>, grid_for(n), block_for(n), stream_, rows, cols, v, x);
    }
    /// out[c] += sum_r x[r, c] (deterministic: no atomics).
    template <class T>
    void accumulate_column_sums(std::size_t rows, std::size_t cols, const T* x, T* out) {
        if (rows == 0 || cols == 0) return;
        const column_split split(rows, cols);
        buffer<T> partial = split.chunks > 1 ? allocate<T>(split.chunks * cols) : buffer<T>{};
        HYPERADAPT_CUDA_LAUNCH(detail::ck::accumulate_column_sums<T>, split.grid(), split.block(), stream_, rows, cols,
                               split.chunk_rows, x, out, partial.data());
        if (split.chunks > 1) add_column_partials(split.chunks, cols, partial.data(), out, true);
    }
    /// y[r, c] (+)= x[r, c] * v[c] for a (rows, cols) matrix with row strides ldx, ldy (FiLM's modulation).
    template <class T>
    void mul_row_vector(std::size_t rows, std::size_t cols, const T* x, std::size_t ldx, const T* v, T* y,
                        std::size_t ldy, bool accumulate) {
        const std::size_t n = rows * cols;
        if (n) HYPERADAPT_CUDA_LAUNCH(detail::ck::mul_row_vector<T>, grid_for(n), block_for(n), stream_, rows, cols, x,
                                      ldx, v, y, ldy, accumulate);
    }
    /// out[c] (+)= sum_r x[r, c] * y[r, c] (FiLM's gain gradient).
    template <class T>
    void column_dots(std::size_t rows, std::size_t cols, const T* x, const T* y, std::size_t ld, T* out,
                     bool accumulate) {
        if (cols == 0) return;
        const column_split split(rows, cols);
        buffer<T> partial = split.chunks > 1 ? allocate<T>(split.chunks * cols) : buffer<T>{};
        HYPERADAPT_CUDA_LAUNCH(detail::ck::column_dots<T>, split.grid(), split.block(), stream_, rows, cols,
                               split.chunk_rows, x, y, ld, out, accumulate, partial.data());
        if (split.chunks > 1) add_column_partials(split.chunks, cols, partial.data(), out, accumulate);
    }
    /// y += alpha * x.
    template <class T>
    void axpy(std::size_t n, T alpha, const T* x, T* y) {
        if (n) HYPERADAPT_CUDA_LAUNCH(detail::ck::axpy<T>, grid_for(n), block_for(n), stream_, n, alpha, x, y);
    }

    // ---- element-wise -------------------------------------------------------------------------------
    /// out = a + b (out may alias a or b).
    template <class T>
    void add(std::size_t n, const T* a, const T* b, T* out) {
        if (n) HYPERADAPT_CUDA_LAUNCH(detail::ck::add<T>, grid_for(n), block_for(n), stream_, n, a, b, out);
    }
    /// x *= alpha.
    template <class T>
    void scale(std::size_t n, T alpha, T* x) {
        if (n) HYPERADAPT_CUDA_LAUNCH(detail::ck::scale<T>, grid_for(n), block_for(n), stream_, n, alpha, x);
    }
    /// y = x * Phi(x), the exact (erf) GELU.
    template <class T>
    void gelu_forward(std::size_t n, const T* x, T* y) {
        if (n) HYPERADAPT_CUDA_LAUNCH(detail::ck::gelu_forward<T>, grid_for(n), block_for(n), stream_, n, x, y);
    }
    /// dx = dy * (Phi(x) + x * phi(x)).
    template <class T>
    void gelu_backward(std::size_t n, const T* x, const T* dy, T* dx) {
        if (n) HYPERADAPT_CUDA_LAUNCH(detail::ck::gelu_backward<T>, grid_for(n), block_for(n), stream_, n, x, dy, dx);
    }
    // ---- fused element-wise work (fused_primitives, backend/concepts.hpp) ---------------------------------
    // One pass over memory each where the plain primitives take two: the encoder layer's FFN activation and its
    // dropout + residual, and the backward passes that recompute what the forward did not keep. The values are
    // the plain kernels' (the same expressions); a bias gradient is a column sum (accumulate_column_sums) after
    // the element-wise pass.
    /// t += bias (row-broadcast), y = gelu(t).
    template <class T>
    void bias_gelu_forward(std::size_t rows, std::size_t cols, const T* bias, T* t, T* y) {
        const std::size_t n = rows * cols;
        if (n)
            HYPERADAPT_CUDA_LAUNCH(detail::ck::bias_gelu_forward<T>, grid_for(n), block_for(n), stream_, rows, cols, bias,
                                   t, y);
    }
    /// dt = dy * gelu'(t); bias_grad += the column sums of dt (null: none).
    template <class T>
    void bias_gelu_backward(std::size_t rows, std::size_t cols, const T* t, const T* dy, T* dt, T* bias_grad) {
        gelu_backward(rows * cols, t, dy, dt);
        if (bias_grad) accumulate_column_sums(rows, cols, dt, bias_grad);
    }
    /// y = gelu(t) (t holds the bias already) and dt = dy * gelu'(t) in one pass; bias_grad as bias_gelu_backward.
    template <class T>
    void bias_gelu_forward_backward(std::size_t rows, std::size_t cols, const T* t, const T* dy, T* y, T* dt,
                                    T* bias_grad) {
        const std::size_t n = rows * cols;
        if (n)
            HYPERADAPT_CUDA_LAUNCH(detail::ck::gelu_forward_backward<T>, grid_for(n), block_for(n), stream_, n, t, dy, y,
                                   dt);
        if (bias_grad) accumulate_column_sums(rows, cols, dt, bias_grad);
    }
    /// out = dropout(y) + x with dropout_forward's mask for (seed, offset); out may alias y or x.
    template <class T>
    void dropout_add_forward(std::size_t n, T p, std::uint64_t seed, std::uint64_t offset, const T* y, const T* x,
                             T* out) {
        const T keep_scale = T(1) / (T(1) - p);
        if (n)
            HYPERADAPT_CUDA_LAUNCH(detail::ck::dropout_add<T>, grid_for(n), block_for(n), stream_, n, static_cast<float>(p),
                                   keep_scale, seed, offset, y, x, out);
    }
    /// y = dropout(x) and dx = dropout'(dy), both with dropout_forward's mask for (seed, offset), drawn once.
    template <class T>
    void dropout_forward_backward(std::size_t n, T p, std::uint64_t seed, std::uint64_t offset, const T* x, const T* dy,
                                  T* y, T* dx) {
        const T keep_scale = T(1) / (T(1) - p);
        if (n)
            HYPERADAPT_CUDA_LAUNCH(detail::ck::dropout_forward_backward<T>, grid_for(n), block_for(n), stream_, n,
                                   static_cast<float>(p), keep_scale, seed, offset, x, dy, y, dx);
    }

    template <class T>
    void tanh_forward(std::size_t n, const T* x, T* y) {
        if (n) HYPERADAPT_CUDA_LAUNCH(detail::ck::tanh_forward<T>, grid_for(n), block_for(n), stream_, n, x, y);
    }
    /// dx = dy * (1 - y^2), from the forward output y.
    template <class T>
    void tanh_backward(std::size_t n, const T* y, const T* dy, T* dx) {
        if (n) HYPERADAPT_CUDA_LAUNCH(detail::ck::tanh_backward<T>, grid_for(n), block_for(n), stream_, n, y, dy, dx);
    }
    /// y = (x <= 0 ? 0 : x): a NaN stays NaN, as torch.relu (y may alias x).
    template <class T>
    void relu_forward(std::size_t n, const T* x, T* y) {
        if (n) HYPERADAPT_CUDA_LAUNCH(detail::ck::relu_forward<T>, grid_for(n), block_for(n), stream_, n, x, y);
    }
    /// dx = (x <= 0 ? 0 : dy): a NaN x passes dy on, as torch's threshold_backward (dx may alias dy).
    template <class T>
    void relu_backward(std::size_t n, const T* x, const T* dy, T* dx) {
        if (n) HYPERADAPT_CUDA_LAUNCH(detail::ck::relu_backward<T>, grid_for(n), block_for(n), stream_, n, x, dy, dx);
    }
    /// gelu_new (transformers 3.5.1): t = tanh(c (x + a x^3)), y = 0.5 (x + x t), in the CPU backend's order
    /// with each operation rounded on its own; t must not alias x.
    template <class T>
    void gelu_new_forward(std::size_t n, const T* x, T* y, T* t) {
        using k = gelu_new_constants<T>;
        if (n)
            HYPERADAPT_CUDA_LAUNCH(detail::ck::gelu_new_forward<T>, grid_for(n), block_for(n), stream_, n, k::c, k::a, x,
                                   y, t);
    }
    /// dx = dy * 0.5 ((3 a c x^2 + c) x (1 - t^2) + t + 1), from x and the forward's t (dx may alias dy).
    template <class T>
    void gelu_new_backward(std::size_t n, const T* x, const T* t, const T* dy, T* dx) {
        using k = gelu_new_constants<T>;
        if (n)
            HYPERADAPT_CUDA_LAUNCH(detail::ck::gelu_new_backward<T>, grid_for(n), block_for(n), stream_, n, k::c,
                                   k::three_a_c, x, t, dy, dx);
    }
    /// y = x * keep / (1 - p), keep_i = uniform(seed, offset + i) >= p: the CPU backend's mask.
    template <class T>
    void dropout_forward(std::size_t n, T p, std::uint64_t seed, std::uint64_t offset, const T* x, T* y) {
        apply_dropout(n, p, seed, offset, x, y);
    }
    /// dx = dy * keep / (1 - p) with the same mask as dropout_forward(seed, offset).
    template <class T>
    void dropout_backward(std::size_t n, T p, std::uint64_t seed, std::uint64_t offset, const T* dy, T* dx) {
        apply_dropout(n, p, seed, offset, dy, dx);
    }
    template <class T>
    void fill_uniform(std::size_t n, std::uint64_t seed, std::uint64_t offset, T lo, T hi, T* x) {
        const T range = hi - lo;
        if (n)
            HYPERADAPT_CUDA_LAUNCH(detail::ck::fill_uniform<T>, grid_for(n), block_for(n), stream_, n, seed, offset, lo,
                                   range, x);
    }
    template <class T>
    void fill_normal(std::size_t n, std::uint64_t seed, std::uint64_t offset, T mean, T stddev, T* x) {
        if (n)
            HYPERADAPT_CUDA_LAUNCH(detail::ck::fill_normal<T>, grid_for(n), block_for(n), stream_, n, seed, offset, mean,
                                   stddev, x);
    }

    // ---- row-wise -----------------------------------------------------------------------------------
    /// y = (x - mean) * rstd * gamma + beta per row; saves mean and rstd (one per row) for backward.
    template <class T>
    void layer_norm_forward(std::size_t rows, std::size_t cols, T eps, const T* x, const T* gamma, const T* beta,
                            T* y, T* mean, T* rstd) {
        if (rows == 0 || cols == 0) return;
        HYPERADAPT_CUDA_LAUNCH(detail::ck::layer_norm_forward<T>, row_grid(rows), row_block(cols), stream_, rows, cols,
                               eps, x, gamma, beta, y, mean, rstd);
    }
    /// dx = rstd * (dy*gamma - mean(dy*gamma) - xhat * mean(dy*gamma*xhat)); dgamma += sum dy*xhat;
    /// dbeta += sum dy. dgamma and dbeta may be null (frozen parameters).
    template <class T>
    void layer_norm_backward(std::size_t rows, std::size_t cols, const T* x, const T* gamma, const T* mean,
                             const T* rstd, const T* dy, T* dx, T* dgamma, T* dbeta) {
        if (rows == 0 || cols == 0) return;
        HYPERADAPT_CUDA_LAUNCH(detail::ck::layer_norm_backward_input<T>, row_grid(rows), row_block(cols), stream_, rows,
                               cols, x, gamma, mean, rstd, dy, dx);
        if (!dgamma && !dbeta) return;
        const column_split split(rows, cols);
        buffer<T> partial = split.chunks > 1 ? allocate<T>(2 * split.chunks * cols) : buffer<T>{};
        T* partial_gamma = partial.data();
        T* partial_beta = partial_gamma ? partial_gamma + split.chunks * cols : nullptr;
        HYPERADAPT_CUDA_LAUNCH(detail::ck::layer_norm_param_grads<T>, split.grid(), split.block(), stream_, rows, cols,
                               split.chunk_rows, x, mean, rstd, dy, dgamma, dbeta, partial_gamma, partial_beta);
        if (split.chunks == 1) return;
        if (dgamma) add_column_partials(split.chunks, cols, partial_gamma, dgamma, true);
        if (dbeta) add_column_partials(split.chunks, cols, partial_beta, dbeta, true);
    }
    /// Attention probabilities: probs = softmax(scale * scores + bias) over the key axis, masked keys get
    /// probability exactly 0, a row whose keys are all masked gets all zeros, a NaN among a row's unmasked
    /// logits makes the whole row NaN (as the CPU backend and PyTorch).
    ///   scores, probs: (batch, heads, tq, tk); bias: (batch, tq, tk) or null; key_mask: (batch, tk) or null.
    template <class T>
    void attention_softmax_forward(std::size_t batch, std::size_t heads, std::size_t tq, std::size_t tk, T scale,
                                   const T* scores, const T* bias, const std::uint8_t* key_mask, T* probs) {
        const std::size_t rows = batch * heads * tq;
        if (rows == 0 || tk == 0) return;
        HYPERADAPT_CUDA_LAUNCH(detail::ck::attention_softmax_forward<T>, row_grid(rows), row_block(tk), stream_, batch,
                               heads, tq, tk, scale, scores, bias, key_mask, probs);
    }
    /// dx = scale * y * (dy - sum(y * dy)) per row, for softmax outputs y.
    template <class T>
    void softmax_backward(std::size_t rows, std::size_t cols, const T* y, const T* dy, T scale, T* dx) {
        if (rows == 0 || cols == 0) return;
        HYPERADAPT_CUDA_LAUNCH(detail::ck::softmax_backward<T>, row_grid(rows), row_block(cols), stream_, rows, cols, y,
                               dy, scale, dx);
    }

    // ---- indexing -----------------------------------------------------------------------------------
    /// out[i, :] = table[ids[i], :]; ids (device memory) are trusted: layers validate them first.
    template <class T>
    void gather_rows(std::size_t n, std::size_t dim, const T* table, const std::int32_t* ids, T* out) {
        const std::size_t total = n * dim;
        if (total)
            HYPERADAPT_CUDA_LAUNCH(detail::ck::gather_rows<T>, grid_for(total), block_for(total), stream_, n, dim, table,
                                   ids, out);
    }
    /// table_grad[ids[i], :] += dout[i, :], with atomicAdd (repeated ids add up; float order may vary).
    template <class T>
    void scatter_add_rows(std::size_t n, std::size_t dim, const T* dout, const std::int32_t* ids, T* table_grad) {
        const std::size_t total = n * dim;
        if (total)
            HYPERADAPT_CUDA_LAUNCH(detail::ck::scatter_add_rows<T>, grid_for(total), block_for(total), stream_, n, dim, dout,
                                   ids, table_grad);
    }

    // ---- losses -------------------------------------------------------------------------------------
    /// probs = softmax(logits) per row; losses[r] = -log probs[r, labels[r]], 0 where labels[r] < 0.
    template <class T>
    void cross_entropy_forward(std::size_t rows, std::size_t classes, const T* logits, const std::int32_t* labels,
                               T* probs, T* losses) {
        if (rows == 0 || classes == 0) return;
        HYPERADAPT_CUDA_LAUNCH(detail::ck::cross_entropy_forward<T>, row_grid(rows), row_block(classes), stream_, rows,
                               classes, logits, labels, probs, losses);
    }
    /// dlogits = scale * (probs - onehot(labels)); rows with labels < 0 get 0.
    template <class T>
    void cross_entropy_backward(std::size_t rows, std::size_t classes, const T* probs, const std::int32_t* labels,
                                T scale, T* dlogits) {
        const std::size_t total = rows * classes;
        if (total)
            HYPERADAPT_CUDA_LAUNCH(detail::ck::cross_entropy_backward<T>, grid_for(total), block_for(total), stream_, rows,
                                   classes, probs, labels, scale, dlogits);
    }

    // ---- reductions and optimizer ------------------------------------------------------------------
    /// sum x[i]^2 in double; waits for the result. Deterministic for a given n.
    template <class T>
    [[nodiscard]] double sum_squares(std::size_t n, const T* x) {
        return dot(n, x, x);
    }
    /// sum x[i] * y[i] in double; waits for the result. Deterministic for a given n.
    template <class T>
    [[nodiscard]] double dot(std::size_t n, const T* x, const T* y) {
        if (n == 0) return 0.0;
        const buffer<double> on_device = dot_on_device(n, x, y);
        double result = 0.0;
        copy_to_host(on_device.data(), &result, 1);
        return result;
    }
    /// *acc += sum x[i]^2 in double, acc in device memory, without waiting (accumulating_reductions:
    /// gradient_norm adds every tensor's sum this way and copies the total back once). The partial sums are
    /// sum_squares's, and adding 1.0 * s to *acc rounds as the host's `total += s`, so the total is the same.
    template <class T>
    void sum_squares_accumulate(std::size_t n, const T* x, double* acc) {
        if (n == 0) return;
        const buffer<double> on_device = dot_on_device(n, x, x);
        axpy(std::size_t{1}, 1.0, on_device.data(), acc);
    }
    /// AdamW with decoupled weight decay, as torch.optim.AdamW and the CPU backend:
    ///   param -= lr * wd * param;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
    ///   param -= lr * (m / bc1) / (sqrt(v / bc2) + eps).
    template <class T>
    void adamw_update(std::size_t n, T lr, T beta1, T beta2, T eps, T weight_decay, T bias_correction1,
                      T bias_correction2, const T* grad, T* param, T* m, T* v) {
        const T step = lr / bias_correction1, inv_sqrt_bc2 = T(1) / std::sqrt(bias_correction2),
                decay = T(1) - lr * weight_decay;
        if (n)
            HYPERADAPT_CUDA_LAUNCH(detail::ck::adamw_update<T>, grid_for(n), block_for(n), stream_, n, beta1, T(1) - beta1,
                                   beta2, T(1) - beta2, eps, step, inv_sqrt_bc2, decay, grad, param, m, v);
    }

    /// The same update for many tensors in one launch (segmented_adamw): the table of segments goes up in the
    /// stream's order (queue_copy_from_host, no wait), one grid row per segment. The same bits as one
    /// adamw_update per segment.
    template <class T>
    void adamw_update_segments(std::span<const adamw_segment<T>> segments, T beta1, T beta2, T eps) {
        constexpr std::size_t max_rows = 65535;  // gridDim.y's limit
        for (std::size_t first = 0; first < segments.size(); first += max_rows) {
            const auto part = segments.subspan(first, std::min(max_rows, segments.size() - first));
            std::size_t longest = 0;
            for (const auto& s : part) longest = std::max(longest, s.n);
            if (longest == 0) continue;
            buffer<adamw_segment<T>> table(cache_, part.size());
            queue_copy_from_host(part.data(), table.data(), part.size());
            // At most 256 blocks a segment: enough to fill the device for the largest tensor, few empty ones
            // for the many small tensors whose rows end at once.
            const dim3 grid(std::min(grid_for(longest), 256u), static_cast<unsigned>(part.size()));
            HYPERADAPT_CUDA_LAUNCH(detail::ck::adamw_update_segments<T>, grid, block_for(longest), stream_, table.data(),
                                   beta1, T(1) - beta1, beta2, T(1) - beta2, eps);
        }
    }

    // ---- PHA's contrastive losses (contrastive_primitives, backend/contrastive_losses.hpp) ---------------
    /// One single-block launch (the matrices are (rows, rows) and (rows, tasks)); its double scratch comes from
    /// the cache and goes back at once (safe on the one stream). Enqueued: losses are read with copy_to_host.
    template <class T>
    void contrastive_losses(std::size_t rows, std::size_t dim, std::size_t tasks, const T* features,
                            const std::int32_t* task_ids, const T* prototypes, const contrastive_settings& settings,
                            double* losses, T* feature_grad, T* prototype_grad) {
        if (rows == 0 || dim == 0) throw shape_error("cuda_backend::contrastive_losses: no rows or no features");
        const std::size_t n = rows, nt = settings.prototype ? tasks : 0;
        const std::size_t sizes[] = {n * dim, n, n * n, n * n, n * dim, n, nt * dim, nt, n * nt, n * nt, n * dim, nt * dim};
        std::size_t total = 0;
        for (const std::size_t z : sizes) total += z;
        buffer<double> scratch(cache_, total);
        double* at = scratch.data();
        const auto take = [&at](std::size_t z) {
            double* p = at;
            at += z;
            return p;
        };
        detail::ck::contrastive_scratch w{};
        w.f = take(sizes[0]), w.norms = take(sizes[1]), w.s = take(sizes[2]), w.grad_s = take(sizes[3]);
        w.d_ins = take(sizes[4]), w.row_terms = take(sizes[5]), w.k = take(sizes[6]), w.k_norms = take(sizes[7]);
        w.s_pro = take(sizes[8]), w.grad_pro = take(sizes[9]), w.d_pro = take(sizes[10]), w.dk = take(sizes[11]);
        HYPERADAPT_CUDA_LAUNCH(detail::ck::contrastive_losses<T>, 1, detail::ck::max_block_size, stream_, n, dim, nt,
                               features, task_ids, prototypes, settings.temperature, settings.weight,
                               settings.instance, settings.prototype, settings.exclude_positive, w, losses,
                               feature_grad, prototype_grad);
    }

private:
    /// sum x[i] * y[i] in double (n > 0), enqueued: the one-element device buffer it will be in. Partial sums
    /// per block, then their sum, in an order fixed by n: deterministic. The partials' scratch goes back to
    /// the cache at once, which is safe on the one stream (see the top of this header).
    template <class T>
    [[nodiscard]] buffer<double> dot_on_device(std::size_t n, const T* x, const T* y) {
        const unsigned blocks = std::min(grid_for(n), reduction_blocks);
        buffer<double> partials(cache_, std::size_t{blocks}), result(cache_, 1);
        HYPERADAPT_CUDA_LAUNCH(detail::ck::dot_partials<T>, blocks, detail::ck::max_block_size, stream_, n, x, y,
                               partials.data());
        HYPERADAPT_CUDA_LAUNCH(detail::ck::sum_partials<>, 1, detail::ck::max_block_size, stream_, std::size_t{blocks},
                               partials.data(), result.data());
        return result;
    }
    static constexpr unsigned reduction_blocks = 1024;  ///< partial sums of dot/sum_squares
    static constexpr unsigned max_grid = 1u << 20;      ///< grid-stride loops cover the rest

    /// Blocks for an element-wise launch over n > 0 elements.
    static unsigned grid_for(std::size_t n) noexcept {
        const std::size_t blocks = (n + detail::ck::max_block_size - 1) / detail::ck::max_block_size;
        return static_cast<unsigned>(std::min<std::size_t>(blocks, max_grid));
    }
    static unsigned block_for(std::size_t n) noexcept {
        // Small launches use fewer threads; always a whole number of warps.
        return static_cast<unsigned>(std::min<std::size_t>(detail::ck::max_block_size, (n + 31) / 32 * 32));
    }
    /// One block per row (grid-stride beyond max_grid rows).
    static unsigned row_grid(std::size_t rows) noexcept {
        return static_cast<unsigned>(std::min<std::size_t>(rows, max_grid));
    }
    /// Threads per row: enough warps to cover the row, at most max_block_size.
    static unsigned row_block(std::size_t cols) noexcept {
        return static_cast<unsigned>(std::min<std::size_t>(detail::ck::max_block_size, (cols + 31) / 32 * 32));
    }
    /// How a column reduction over a (rows, cols) matrix is launched: one grid column per tile_cols columns and
    /// one grid row per chunk of rows, so a tall matrix (batch x sequence rows) fills the GPU instead of running
    /// cols / 32 blocks; the chunks' sums are added in order afterwards (add_column_partials).
    struct column_split {
        static constexpr std::size_t target_chunk_rows = 128;
        static constexpr std::size_t max_chunks = 65535;  ///< gridDim.y
        std::size_t cols, chunks, chunk_rows;
        column_split(std::size_t rows, std::size_t cols_)
            : cols(cols_),
              chunks(std::clamp<std::size_t>((rows + target_chunk_rows - 1) / target_chunk_rows, 1, max_chunks)),
              chunk_rows(rows == 0 ? 1 : (rows + chunks - 1) / chunks) {}
        [[nodiscard]] dim3 grid() const {
            return dim3(static_cast<unsigned>((cols + detail::ck::tile_cols - 1) / detail::ck::tile_cols),
                        static_cast<unsigned>(chunks));
        }
        [[nodiscard]] static dim3 block() { return dim3(detail::ck::tile_cols, detail::ck::tile_rows); }
    };
    template <class T>
    void add_column_partials(std::size_t chunks, std::size_t cols, const T* partial, T* out, bool accumulate) {
        HYPERADAPT_CUDA_LAUNCH(detail::ck::add_column_partials<T>, grid_for(cols), block_for(cols), stream_, chunks, cols,
                               partial, out, accumulate);
    }

    template <class T>
    void scale_matrices(std::size_t batch, std::size_t rows, std::size_t cols, std::size_t ld, std::ptrdiff_t stride,
                        T beta, T* c) {
        const std::size_t n = batch * rows * cols;
        HYPERADAPT_CUDA_LAUNCH(detail::ck::scale_matrices<T>, grid_for(n), block_for(n), stream_, batch, rows, cols, ld,
                               stride, beta, c);
    }

    template <class T>
    void apply_dropout(std::size_t n, T p, std::uint64_t seed, std::uint64_t offset, const T* x, T* y) {
        const T keep_scale = T(1) / (T(1) - p);
        const float pf = static_cast<float>(p);
        if (n)
            HYPERADAPT_CUDA_LAUNCH(detail::ck::dropout<T>, grid_for(n), block_for(n), stream_, n, pf, keep_scale, seed,
                                   offset, x, y);
    }

    void bind_handle() {
        HYPERADAPT_CUBLAS_CHECK(cublasSetStream(handle_, stream_));
        HYPERADAPT_CUBLAS_CHECK(cublasSetPointerMode(handle_, CUBLAS_POINTER_MODE_HOST));
    }
    void destroy_owned() noexcept {
        if (handle_ != nullptr) (void)cublasDestroy(handle_);
        if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
        handle_ = nullptr;
        stream_ = nullptr;
    }

    /// The compute type of fp32 products with bf16 or fp16 operands; nullopt for exact fp32 and TF32 (the
    /// handle's math mode).
    [[nodiscard]] std::optional<cublasComputeType_t> half_compute() const noexcept {
        if (opts_.products == cuda_products::bf16) return CUBLAS_COMPUTE_32F_FAST_16BF;
        if (opts_.products == cuda_products::fp16) return CUBLAS_COMPUTE_32F_FAST_16F;
        return std::nullopt;
    }

    options opts_;
    bool owns_;
    int device_ = 0;
    cudaStream_t stream_ = nullptr;
    cublasHandle_t handle_ = nullptr;
    std::shared_ptr<detail::device_block_cache> cache_;
    /// Pinned blocks for queue_copy_from_host; freed after ~cuda_backend has waited for the stream.
    std::unique_ptr<detail::pinned_staging> staging_ = std::make_unique<detail::pinned_staging>();
};

static_assert(memory_backend<cuda_backend>, "cuda_backend must satisfy memory_backend");
static_assert(blas_backend<cuda_backend>, "cuda_backend must satisfy blas_backend");
static_assert(linear_backend<cuda_backend>, "cuda_backend must satisfy linear_backend");
static_assert(elementwise_backend<cuda_backend>, "cuda_backend must satisfy elementwise_backend");
static_assert(relu_primitives<cuda_backend, float> && relu_primitives<cuda_backend, double>,
              "cuda_backend must provide relu_forward and relu_backward");
static_assert(gelu_new_primitives<cuda_backend, float> && gelu_new_primitives<cuda_backend, double>,
              "cuda_backend must provide gelu_new_forward and gelu_new_backward");
static_assert(backend<cuda_backend>, "cuda_backend must satisfy the full backend concept");
static_assert(queued_uploads<cuda_backend>, "cuda_backend must queue uploads (a batch's upload must not wait)");
static_assert(fused_primitives<cuda_backend, float> && fused_primitives<cuda_backend, double>,
              "cuda_backend must provide the fused element-wise primitives (backend/concepts.hpp)");
static_assert(contrastive_primitives<cuda_backend, float> && contrastive_primitives<cuda_backend, double>,
              "cuda_backend must compute PHA's contrastive losses on the device (backend/contrastive_losses.hpp)");

}  // namespace hyperadapt
