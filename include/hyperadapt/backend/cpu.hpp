#pragma once
// The CPU backend policy: Eigen 3.4 for element-wise and row-wise work, one work-claiming pool of threads
// for all of it and for the matrix products (cpu_work_pool.hpp), and a GEMM provider chosen by type
// (eigen_gemm here; cblas_gemm in cpu_cblas.hpp). Layers never include this header's dependencies: they only
// name the policy.
#include <Eigen/Core>
#include <unsupported/Eigen/SpecialFunctions>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "hyperadapt/backend/adamw_segment.hpp"
#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/backend/contrastive_losses.hpp"
#include "hyperadapt/backend/counter_rng.hpp"
#include "hyperadapt/backend/cpu_allocator.hpp"
#include "hyperadapt/backend/cpu_work_pool.hpp"
#include "hyperadapt/core/errors.hpp"

namespace hyperadapt {

namespace detail {
template <class T>
using row_major_map = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0,
                                 Eigen::OuterStride<>>;
template <class T>
using const_row_major_map = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>,
                                       0, Eigen::OuterStride<>>;
template <class T>
using array_map = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T>
using const_array_map = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;

inline int default_thread_count() {
#if defined(_OPENMP)
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/// Element-wise loops below this size run on one thread: waking a helper costs more than it saves. 128 K
/// elements is about 30-50 us of work on one core (docs/benchmarks.md, "Under contention").
inline constexpr std::size_t parallel_threshold = 1 << 17;
/// Batches of products below this many multiply-adds in all run on one thread, for the same reason (a small
/// model's attention heads).
inline constexpr std::size_t parallel_gemm_threshold = std::size_t{1} << 20;
/// A product of at least this many multiply-adds is cut into pieces the pool's threads claim (~20 us of work
/// on one core); each piece at least half of it.
inline constexpr std::size_t split_gemm_threshold = std::size_t{1} << 21;
/// Chunks per thread of a parallel loop: more chunks than threads, so that a thread the OS does not run
/// leaves its share to the others instead of holding them at the end of the loop.
inline constexpr std::size_t chunks_per_thread = 4;
}  // namespace detail

/// GEMM provider: Eigen's own product kernels.
struct eigen_gemm {
    static constexpr const char* name = "eigen";

    /// The backend's pool cuts every large product into pieces and runs each on one thread: Eigen's own
    /// threads stay off.
    static void set_threads(int /*threads*/) { Eigen::setNbThreads(1); }

    template <class T>
    static void gemm(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
                     std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
        using detail::const_row_major_map;
        using Eigen::OuterStride;
        const auto ea = static_cast<Eigen::Index>(m), eb = static_cast<Eigen::Index>(n),
                   ek = static_cast<Eigen::Index>(k);
        detail::row_major_map<T> mc(c, ea, eb, OuterStride<>(static_cast<Eigen::Index>(ldc)));
        if (beta == T(0))
            mc.setZero();
        else if (beta != T(1))
            mc *= beta;
        if (k == 0) return;
        // op(A) is m x k; stored as k x m when transposed.
        const_row_major_map<T> ma(a, ta == transpose::yes ? ek : ea, ta == transpose::yes ? ea : ek,
                                  OuterStride<>(static_cast<Eigen::Index>(lda)));
        const_row_major_map<T> mb(b, tb == transpose::yes ? eb : ek, tb == transpose::yes ? ek : eb,
                                  OuterStride<>(static_cast<Eigen::Index>(ldb)));
        if (ta == transpose::no && tb == transpose::no)
            mc.noalias() += alpha * ma * mb;
        else if (ta == transpose::no)
            mc.noalias() += alpha * ma * mb.transpose();
        else if (tb == transpose::no)
            mc.noalias() += alpha * ma.transpose() * mb;
        else
            mc.noalias() += alpha * ma.transpose() * mb.transpose();
    }
};

/// The CPU backend. `GemmProvider` is eigen_gemm, cblas_gemm (hyperadapt/backend/cpu_cblas.hpp) or
/// onednn_gemm (hyperadapt/backend/cpu_onednn.hpp, fp32 or bf16 products chosen at run time). The backend
/// holds one provider object: stateless providers cost nothing, a stateful one carries its settings.
///
/// Threads: every primitive runs on one pool of `threads()` threads (the caller and threads - 1 helpers,
/// cpu_work_pool.hpp), matrix products included: a large product is cut into row or column pieces, each a
/// single-threaded call of the provider (unless the provider runs a product on threads of its own:
/// onednn_gemm's bf16 products). The default is OpenMP's (OMP_NUM_THREADS, else one per core). Copies of a
/// backend share its pool.
template <class GemmProvider = eigen_gemm>
class cpu_backend {
public:
    template <class T>
    using buffer = detail::cached_host_buffer<T>;
    using gemm_provider = GemmProvider;
    static constexpr bool host_memory = true;

    struct options {
        int threads = detail::default_thread_count();
        /// Fill every new buffer with NaN so that an output element a kernel forgot to write shows up in
        /// tests (the gradient checker turns this on).
        bool poison_new_buffers = false;
    };

    cpu_backend() : cpu_backend(options{}) {}
    explicit cpu_backend(options opts, GemmProvider provider = GemmProvider{})
        : opts_(opts), provider_(std::move(provider)), cache_(std::make_shared<detail::block_cache>()) {
        if (opts_.threads < 1) throw config_error("cpu_backend: threads must be >= 1, got " +
                                                  std::to_string(opts_.threads));
        provider_.set_threads(opts_.threads);
        pool_ = std::make_shared<detail::work_pool>(opts_.threads);
    }
    [[nodiscard]] const GemmProvider& provider() const noexcept { return provider_; }

    [[nodiscard]] const char* name() const noexcept { return "cpu"; }
    [[nodiscard]] int threads() const noexcept { return opts_.threads; }
    void set_poison_new_buffers(bool on) noexcept { opts_.poison_new_buffers = on; }
    [[nodiscard]] bool poison_new_buffers() const noexcept { return opts_.poison_new_buffers; }
    /// Returns cached activation memory to the system (e.g. after training, before serving).
    void release_cached_memory() noexcept { cache_->release(); }
    [[nodiscard]] std::size_t cached_bytes() const noexcept { return cache_->cached_bytes(); }
    /// The activation memory's accounting (backend/cpu_allocator.hpp): bytes in use and idle, the peak in
    /// use, and how many blocks came from the system.
    struct memory_stats {
        std::size_t in_use = 0, cached = 0, peak_in_use = 0, system_allocations = 0;
    };
    [[nodiscard]] memory_stats memory() const noexcept {
        return {cache_->bytes_in_use(), cache_->cached_bytes(), cache_->peak_bytes_in_use(),
                cache_->system_allocations()};
    }

    // ---- memory -------------------------------------------------------------------------------------
    template <class T>
    [[nodiscard]] buffer<T> allocate(std::size_t n) {
        buffer<T> buf(cache_, n);
        if constexpr (std::numeric_limits<T>::has_quiet_NaN)
            if (opts_.poison_new_buffers) std::fill_n(buf.data(), n, std::numeric_limits<T>::quiet_NaN());
        return buf;
    }
    template <class T>
    void copy(const T* src, T* dst, std::size_t n) {
        if (n) std::memcpy(dst, src, n * sizeof(T));
    }
    template <class T>
    void copy_to_host(const T* src, T* host_dst, std::size_t n) { copy(src, host_dst, n); }
    template <class T>
    void copy_from_host(const T* host_src, T* dst, std::size_t n) { copy(host_src, dst, n); }
    /// queued_uploads: host memory here, so the copy is done when this returns, as copy_from_host.
    template <class T>
    void queue_copy_from_host(const T* host_src, T* dst, std::size_t n) {
        copy_from_host(host_src, dst, n);
    }
    template <class T>
    void fill(T* x, std::size_t n, T value) {
        // Zero (new tensors, gradients: most fills) by memset, which runs as fast where the caller was compiled
        // without optimisation (the examples' construction code) as with it; fill_n is then a loop of calls.
        const T zero{};
        if (n && std::memcmp(&value, &zero, sizeof(T)) == 0) {
            std::memset(static_cast<void*>(x), 0, n * sizeof(T));
            return;
        }
        std::fill_n(x, n, value);
    }
    void synchronize() noexcept {}

    // ---- BLAS ---------------------------------------------------------------------------------------
    /// C = alpha op(A) op(B) + beta C. A large product is cut along the longer side of C into pieces (whole
    /// multiples of 16 rows or columns) that the pool's threads claim; every element of C is still one
    /// provider call's sum over all of k.
    template <class T>
    void gemm(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
              std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
        if constexpr (requires { provider_.threads_itself(m, n, k, a); }) {
            if (provider_.threads_itself(m, n, k, a)) {
                provider_.gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
                return;
            }
        }
        const std::size_t work = m * n * k, longer = std::max(m, n);
        const std::size_t pieces = opts_.threads == 1 || work < detail::split_gemm_threshold
                                       ? 1
                                       : std::min({longer / 32, work / (detail::split_gemm_threshold / 2),
                                                   detail::chunks_per_thread * static_cast<std::size_t>(opts_.threads)});
        if (pieces <= 1) {
            provider_.gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
            return;
        }
        const bool by_rows = m >= n;
        const auto bound = [&](std::size_t i) { return i == pieces ? longer : (longer * i / pieces) / 16 * 16; };
        pool_->run(pieces, [&](std::size_t i) {
            const std::size_t d0 = bound(i), len = bound(i + 1) - d0;
            if (len == 0) return;
            if (by_rows)  // rows d0.. of C and of op(A): A is stored m x k, or k x m when transposed
                provider_.gemm(ta, tb, len, n, k, alpha, ta == transpose::yes ? a + d0 : a + d0 * lda, lda, b, ldb,
                               beta, c + d0 * ldc, ldc);
            else  // columns d0.. of C and of op(B): B is stored k x n, or n x k when transposed
                provider_.gemm(ta, tb, m, len, k, alpha, a, lda, tb == transpose::yes ? b + d0 * ldb : b + d0, ldb,
                               beta, c + d0, ldc);
        });
    }

    /// Many small independent products (attention heads): a grid of `batch` x 1 (gemm_batched_grid).
    template <class T>
    void gemm_strided_batched(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha,
                              const T* a, std::size_t lda, std::ptrdiff_t stride_a, const T* b, std::size_t ldb,
                              std::ptrdiff_t stride_b, T beta, T* c, std::size_t ldc, std::ptrdiff_t stride_c,
                              std::size_t batch) {
        gemm_batched_grid(ta, tb, m, n, k, alpha, a, lda, grid_strides{stride_a, stride_a}, b, ldb,
                          grid_strides{stride_b, stride_b}, beta, c, ldc, grid_strides{stride_c, stride_c}, batch, 1);
    }

    /// A grid of independent products: entry (i, j), i < outer, j < inner, multiplies the operands at
    /// a + i * sa.outer + j * sa.inner (likewise b and c); the pool's threads claim them one by one, each
    /// product on one thread.
    template <class T>
    void gemm_batched_grid(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha,
                           const T* a, std::size_t lda, grid_strides sa, const T* b, std::size_t ldb, grid_strides sb,
                           T beta, T* c, std::size_t ldc, grid_strides sc, std::size_t outer, std::size_t inner) {
        if constexpr (requires { provider_.gemm_grid(ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc,
                                                     outer, inner); }) {
            if (provider_.gemm_grid(ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, outer, inner))
                return;
        }
        const std::size_t count = outer * inner;
        const auto ni = static_cast<std::ptrdiff_t>(inner);
        const auto one = [&](std::size_t e) {
            const std::ptrdiff_t i = static_cast<std::ptrdiff_t>(e) / ni, j = static_cast<std::ptrdiff_t>(e) % ni;
            provider_.gemm(ta, tb, m, n, k, alpha, a + i * sa.outer + j * sa.inner, lda,
                           b + i * sb.outer + j * sb.inner, ldb, beta, c + i * sc.outer + j * sc.inner, ldc);
        };
        if (count > 1 && count * m * n * k > detail::parallel_gemm_threshold && opts_.threads > 1)
            pool_->run(count, one);
        else
            for (std::size_t e = 0; e < count; ++e) one(e);
    }

    // ---- linear -------------------------------------------------------------------------------------
    /// x[r, :] += v for every row r of the rows x cols matrix x.
    template <class T>
    void add_row_vector(std::size_t rows, std::size_t cols, const T* v, T* x) {
        const detail::const_array_map<T> vv(v, static_cast<Eigen::Index>(cols));
        for_rows(rows, cols, [&](std::size_t r0, std::size_t r1) {
            for (std::size_t r = r0; r < r1; ++r) arr(x + r * cols, cols) += vv;
        });
    }

    /// out[c] += sum_r x[r, c].
    template <class T>
    void accumulate_column_sums(std::size_t rows, std::size_t cols, const T* x, T* out) {
        // Split by columns so that no two threads write the same output; each sum runs over the rows in order.
        for_column_blocks(rows, cols, [&](std::size_t c0, std::size_t w) {
            auto acc = arr(out + c0, w);
            for (std::size_t r = 0; r < rows; ++r) acc += carr(x + r * cols + c0, w);
        });
    }

    /// y[r, c] (+)= x[r, c] * v[c] for a (rows, cols) matrix with row strides ldx, ldy (FiLM's modulation).
    template <class T>
    void mul_row_vector(std::size_t rows, std::size_t cols, const T* x, std::size_t ldx, const T* v, T* y,
                        std::size_t ldy, bool accumulate) {
        const detail::const_array_map<T> vv(v, static_cast<Eigen::Index>(cols));
        for_rows(rows, cols, [&](std::size_t r0, std::size_t r1) {
            for (std::size_t r = r0; r < r1; ++r) {
                auto yr = arr(y + r * ldy, cols);
                const auto xr = carr(x + r * ldx, cols);
                if (accumulate)
                    yr += xr * vv;
                else
                    yr = xr * vv;
            }
        });
    }
    /// out[c] (+)= sum_r x[r, c] * y[r, c] for (rows, cols) matrices with row stride ld (FiLM's gain gradient).
    template <class T>
    void column_dots(std::size_t rows, std::size_t cols, const T* x, const T* y, std::size_t ld, T* out,
                     bool accumulate) {
        for_column_blocks(rows, cols, [&](std::size_t c0, std::size_t w) {
            auto acc = arr(out + c0, w);
            if (!accumulate) acc.setZero();
            for (std::size_t r = 0; r < rows; ++r) acc += carr(x + r * ld + c0, w) * carr(y + r * ld + c0, w);
        });
    }

    /// y += alpha * x.
    template <class T>
    void axpy(std::size_t n, T alpha, const T* x, T* y) {
        for_chunks(n, [&](std::size_t i0, std::size_t len) { arr(y + i0, len) += alpha * carr(x + i0, len); });
    }

    // ---- element-wise -------------------------------------------------------------------------------
    /// out = a + b (out may alias a or b).
    template <class T>
    void add(std::size_t n, const T* a, const T* b, T* out) {
        for_chunks(n, [&](std::size_t i0, std::size_t len) { arr(out + i0, len) = carr(a + i0, len) + carr(b + i0, len); });
    }
    /// x *= alpha.
    template <class T>
    void scale(std::size_t n, T alpha, T* x) {
        for_chunks(n, [&](std::size_t i0, std::size_t len) { arr(x + i0, len) *= alpha; });
    }
    /// y = x * Phi(x), the exact (erf) GELU as BERT uses.
    template <class T>
    void gelu_forward(std::size_t n, const T* x, T* y) {
        for_chunks(n, [&](std::size_t i0, std::size_t len) {
            auto xv = carr(x + i0, len);
            arr(y + i0, len) = xv * (T(0.5) * (T(1) + (xv * T(M_SQRT1_2)).erf()));
        });
    }
    /// dx = dy * (Phi(x) + x * phi(x)).
    template <class T>
    void gelu_backward(std::size_t n, const T* x, const T* dy, T* dx) {
        for_chunks(n, [&](std::size_t i0, std::size_t len) {
            auto xv = carr(x + i0, len);
            const T inv_sqrt_2pi = T(0.3989422804014327);
            arr(dx + i0, len) = carr(dy + i0, len) * (T(0.5) * (T(1) + (xv * T(M_SQRT1_2)).erf()) +
                                                      xv * inv_sqrt_2pi * (T(-0.5) * xv.square()).exp());
        });
    }
    // ---- fused element-wise work (fused_primitives, backend/concepts.hpp) ---------------------------------
    /// t += bias (row-broadcast), y = gelu(t): the bias add and the GELU in one pass.
    template <class T>
    void bias_gelu_forward(std::size_t rows, std::size_t cols, const T* bias, T* t, T* y) {
        const detail::const_array_map<T> bv(bias, static_cast<Eigen::Index>(cols));
        for_rows(rows, cols, [&](std::size_t r0, std::size_t r1) {
            for (std::size_t r = r0; r < r1; ++r) {
                auto tr = arr(t + r * cols, cols);
                tr += bv;
                arr(y + r * cols, cols) = tr * (T(0.5) * (T(1) + (tr * T(M_SQRT1_2)).erf()));
            }
        });
    }
    /// dt = dy * gelu'(t) and bias_grad += the column sums of dt, in one pass: split by columns like
    /// accumulate_column_sums, each sum over the rows in order, so the bias gradient is the same.
    template <class T>
    void bias_gelu_backward(std::size_t rows, std::size_t cols, const T* t, const T* dy, T* dt, T* bias_grad) {
        const T inv_sqrt_2pi = T(0.3989422804014327);
        for_column_blocks(rows, cols, [&](std::size_t c0, std::size_t w) {
            for (std::size_t r = 0; r < rows; ++r) {
                const std::size_t o = r * cols + c0;
                auto tv = carr(t + o, w);
                auto d = arr(dt + o, w);
                d = carr(dy + o, w) * (T(0.5) * (T(1) + (tv * T(M_SQRT1_2)).erf()) +
                                       tv * inv_sqrt_2pi * (T(-0.5) * tv.square()).exp());
                if (bias_grad) arr(bias_grad + c0, w) += d;
            }
        });
    }
    /// y = gelu(t) with bias_gelu_forward's values to the bit (t holds the bias already), dt = dy * gelu'(t) and
    /// bias_grad += the column sums of dt over the rows in order (as bias_gelu_backward), from one erf per
    /// element: a backward that did not keep the GELU's output gets it back in the pass that makes the GELU's
    /// input gradient. The pass goes by column blocks where the forward went by rows, so which elements Eigen
    /// evaluates in SIMD packets differs between them; its erf gives each element the same value either way
    /// (test_dense_gelu checks the output to the bit at widths that are not whole packets).
    template <class T>
    void bias_gelu_forward_backward(std::size_t rows, std::size_t cols, const T* t, const T* dy, T* y, T* dt,
                                    T* bias_grad) {
        const T inv_sqrt_2pi = T(0.3989422804014327);
        for_column_blocks(rows, cols, [&](std::size_t c0, std::size_t w) {
            for (std::size_t r = 0; r < rows; ++r) {
                const std::size_t o = r * cols + c0;
                const auto tv = carr(t + o, w);
                auto phi = arr(y + o, w);  // Phi(t) first, then y = t * Phi(t) in place
                phi = T(0.5) * (T(1) + (tv * T(M_SQRT1_2)).erf());
                auto d = arr(dt + o, w);
                d = carr(dy + o, w) * (phi + tv * inv_sqrt_2pi * (T(-0.5) * tv.square()).exp());
                phi *= tv;
                if (bias_grad) arr(bias_grad + c0, w) += d;
            }
        });
    }
    /// out = dropout(y) + x (dropout_forward's mask), one pass instead of a dropout and a residual add.
    ///
    /// The loops written element by element here capture by value ([=]): captured by reference, the pointers
    /// and constants are read through the closure after every store (a store might change them), and GCC
    /// leaves the loop scalar -- 5-12x slower on an attention-sized mask of 6 M elements (docs/benchmarks.md,
    /// session 23). The values are the same either way.
    template <class T>
    void dropout_add_forward(std::size_t n, T p, std::uint64_t seed, std::uint64_t offset, const T* y, const T* x,
                             T* out) {
        const T keep_scale = T(1) / (T(1) - p);
        const float pf = static_cast<float>(p);
        for_chunks(n, [=](std::size_t i0, std::size_t len) {
            for (std::size_t i = i0; i < i0 + len; ++i) {
                const T v = y[i], kept = v * keep_scale, dropped = v - v;
                out[i] = (detail::uniform01(seed, offset + i) >= pf ? kept : dropped) + x[i];
            }
        });
    }
    /// y = dropout(x), dx = dropout'(dy): apply_dropout's values for both, from one draw of each element's mask.
    template <class T>
    void dropout_forward_backward(std::size_t n, T p, std::uint64_t seed, std::uint64_t offset, const T* x,
                                  const T* dy, T* y, T* dx) {
        const T keep_scale = T(1) / (T(1) - p);
        const float pf = static_cast<float>(p);
        for_chunks(n, [=](std::size_t i0, std::size_t len) {
            for (std::size_t i = i0; i < i0 + len; ++i) {
                const bool keep = detail::uniform01(seed, offset + i) >= pf;
                const T v = x[i], g = dy[i];
                const T v_kept = v * keep_scale, v_dropped = v - v, g_kept = g * keep_scale, g_dropped = g - g;
                y[i] = keep ? v_kept : v_dropped;
                dx[i] = keep ? g_kept : g_dropped;
            }
        });
    }

    template <class T>
    void tanh_forward(std::size_t n, const T* x, T* y) {
        for_chunks(n, [&](std::size_t i0, std::size_t len) { arr(y + i0, len) = carr(x + i0, len).tanh(); });
    }
    /// dx = dy * (1 - y^2), from the forward output y.
    template <class T>
    void tanh_backward(std::size_t n, const T* y, const T* dy, T* dx) {
        for_chunks(n, [&](std::size_t i0, std::size_t len) {
            arr(dx + i0, len) = carr(dy + i0, len) * (T(1) - carr(y + i0, len).square());
        });
    }
    /// y = (x <= 0 ? 0 : x): a NaN stays NaN, as torch.relu (y may alias x).
    template <class T>
    void relu_forward(std::size_t n, const T* x, T* y) {
        for_chunks(n, [=](std::size_t i0, std::size_t len) {
            for (std::size_t i = i0; i < i0 + len; ++i) {
                const T v = x[i];
                y[i] = v <= T(0) ? T(0) : v;
            }
        });
    }
    /// dx = (x <= 0 ? 0 : dy): a NaN x passes dy on, as torch's threshold_backward (dx may alias dy).
    template <class T>
    void relu_backward(std::size_t n, const T* x, const T* dy, T* dx) {
        for_chunks(n, [=](std::size_t i0, std::size_t len) {
            for (std::size_t i = i0; i < i0 + len; ++i) {
                const T v = x[i], g = dy[i];
                dx[i] = v <= T(0) ? T(0) : g;
            }
        });
    }
    /// gelu_new (transformers 3.5.1): t = tanh(c (x + a x^3)), y = 0.5 (x + x t); t must not alias x.
    ///
    /// Rounded exactly as the composition of primitives it replaces: a step that was a primitive of its own is
    /// an assignment of its own here, because a compiler may contract `p * q + r` written in one expression into
    /// an FMA (GCC does with -march=native). The PHA and HyperFormer results are unchanged to the bit.
    template <class T>
    void gelu_new_forward(std::size_t n, const T* x, T* y, T* t) {
        using k = gelu_new_constants<T>;
        for_chunks(n, [&](std::size_t i0, std::size_t len) {
            const auto xv = carr(x + i0, len);
            auto tv = arr(t + i0, len);
            tv = xv * xv * xv * k::a;
            tv = ((tv + xv) * k::c).tanh();
            arr(y + i0, len) = (xv + xv * tv) * T(0.5);  // as mul_row_vector's accumulate, then scale
        });
    }
    /// dx = dy * 0.5 ((3 a c x^2 + c) x (1 - t^2) + t + 1), from x and the forward's t (dx may alias dy); rounded
    /// as gelu_new_forward explains, the stored steps going through scratch small enough for L1.
    template <class T>
    void gelu_new_backward(std::size_t n, const T* x, const T* t, const T* dy, T* dx) {
        using k = gelu_new_constants<T>;
        constexpr std::size_t block = 256;
        for_chunks(n, [&](std::size_t i0, std::size_t len) {
            std::array<T, block> scratch;
            for (std::size_t b0 = i0; b0 < i0 + len; b0 += block) {
                const std::size_t m = std::min(block, i0 + len - b0);
                const auto xv = carr(x + b0, m), tv = carr(t + b0, m);
                auto sv = arr(scratch.data(), m);
                sv = xv * xv * k::three_a_c;
                sv = (sv + k::c) * xv;
                sv = sv * (T(1) - tv.square());  // 1 - t^2 as tanh_backward computes it
                arr(dx + b0, m) = carr(dy + b0, m) * ((sv + tv + T(1)) * T(0.5));
            }
        });
    }
    /// y = x * keep / (1 - p), keep_i = uniform(seed, offset + i) >= p.
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
        for_chunks(n, [&](std::size_t i0, std::size_t len) {
            for (std::size_t i = i0; i < i0 + len; ++i)
                x[i] = lo + (hi - lo) * static_cast<T>(detail::uniform01(seed, offset + i));
        });
    }
    template <class T>
    void fill_normal(std::size_t n, std::uint64_t seed, std::uint64_t offset, T mean, T stddev, T* x) {
        for_chunks(n, [&](std::size_t i0, std::size_t len) {
            for (std::size_t i = i0; i < i0 + len; ++i)
                x[i] = mean + stddev * static_cast<T>(detail::standard_normal(seed, offset + i));
        });
    }

    // ---- row-wise -----------------------------------------------------------------------------------
    /// y = (x - mean) * rstd * gamma + beta per row; saves mean and rstd (one per row) for backward.
    template <class T>
    void layer_norm_forward(std::size_t rows, std::size_t cols, T eps, const T* x, const T* gamma, const T* beta,
                            T* y, T* mean, T* rstd) {
        const auto nc = static_cast<Eigen::Index>(cols);
        const detail::const_array_map<T> g(gamma, nc), b(beta, nc);
        for_rows(rows, cols, [&](std::size_t r0, std::size_t r1) {
            for (std::size_t r = r0; r < r1; ++r) {
                const auto xr = carr(x + r * cols, cols);
                const T mu = xr.mean();
                const T var = (xr - mu).square().mean();
                const T rs = T(1) / std::sqrt(var + eps);
                mean[r] = mu;
                rstd[r] = rs;
                arr(y + r * cols, cols) = (xr - mu) * rs * g + b;
            }
        });
    }
    /// dx = rstd * (dy*gamma - mean(dy*gamma) - xhat * mean(dy*gamma*xhat)); dgamma += sum dy*xhat;
    /// dbeta += sum dy. dgamma and dbeta may be null (frozen parameters).
    template <class T>
    void layer_norm_backward(std::size_t rows, std::size_t cols, const T* x, const T* gamma, const T* mean,
                             const T* rstd, const T* dy, T* dx, T* dgamma, T* dbeta) {
        const auto nc = static_cast<Eigen::Index>(cols);
        // One partial sum of dgamma and dbeta per chunk of rows, added in chunk order: the result depends on
        // the chunk count (rows, cols and threads()), never on which thread ran which chunk.
        const std::size_t chunks = row_chunks(rows, cols);
        std::vector<T> partial(chunks * 2 * cols, T(0));
        const detail::const_array_map<T> g(gamma, nc);
        run_chunks(chunks, [&](std::size_t chunk) {
            detail::array_map<T> pg(partial.data() + chunk * 2 * cols, nc);
            detail::array_map<T> pb(partial.data() + chunk * 2 * cols + cols, nc);
            Eigen::Array<T, Eigen::Dynamic, 1> xhat(nc), dxhat(nc);
            const std::size_t r0 = rows * chunk / chunks, r1 = rows * (chunk + 1) / chunks;
            for (std::size_t r = r0; r < r1; ++r) {
                const auto dyr = carr(dy + r * cols, cols);
                xhat = (carr(x + r * cols, cols) - mean[r]) * rstd[r];
                dxhat = dyr * g;
                const T m1 = dxhat.mean(), m2 = (dxhat * xhat).mean();
                arr(dx + r * cols, cols) = rstd[r] * (dxhat - m1 - xhat * m2);
                pg += dyr * xhat;
                pb += dyr;
            }
        });
        for (std::size_t t = 0; t < chunks; ++t) {
            const T* p = partial.data() + t * 2 * cols;
            if (dgamma) arr(dgamma, cols) += carr(p, cols);
            if (dbeta) arr(dbeta, cols) += carr(p + cols, cols);
        }
    }

    /// Attention probabilities: probs = softmax(scale * scores + bias) over the key axis, with masked keys
    /// given probability exactly 0.
    ///   scores, probs: (batch, heads, tq, tk);  bias: (batch, tq, tk) shared by all heads, or null;
    ///   key_mask: (batch, tk), 1 = real token, 0 = padding, or null.
    /// A row whose keys are all masked gets all-zero probabilities. A NaN among a row's unmasked logits makes
    /// the whole row NaN, as PyTorch's softmax (the max shift takes it up: std::max would drop it, and an
    /// all-NaN row would pass for a fully masked one). Masked keys are never read, so padding stays invisible.
    /// Where a batch element's key mask is its first keys real and the rest padding (every batch this library
    /// builds), its rows run vectorised over those keys alone (one pass for the logits, one for the NaN-keeping
    /// max, one exp, one sum, one scale); any other mask takes the general path, key by key.
    template <class T>
    void attention_softmax_forward(std::size_t batch, std::size_t heads, std::size_t tq, std::size_t tk, T scale,
                                   const T* scores, const T* bias, const std::uint8_t* key_mask, T* probs) {
        constexpr std::size_t general = std::numeric_limits<std::size_t>::max();
        // real_keys[b]: how many leading keys of batch element b are real, or `general`.
        std::vector<std::size_t> real_keys(batch, tk);
        if (key_mask)
            for (std::size_t b = 0; b < batch; ++b) {
                const std::uint8_t* km = key_mask + b * tk;
                const std::size_t n = static_cast<std::size_t>(std::find(km, km + tk, std::uint8_t{0}) - km);
                real_keys[b] = std::find_if(km + n, km + tk, [](std::uint8_t v) { return v != 0; }) == km + tk
                                   ? n
                                   : general;
            }
        for_rows(batch * heads * tq, tk, [&](std::size_t r0, std::size_t r1) {
          for (std::size_t ur = r0; ur < r1; ++ur) {
            const std::size_t b = ur / (heads * tq), i = ur % tq;
            const T* s = scores + ur * tk;
            const T* br = bias ? bias + (b * tq + i) * tk : nullptr;
            T* p = probs + ur * tk;
            if (const std::size_t n = real_keys[b]; n != general) {
                auto v = arr(p, n);
                if (br)
                    v = scale * carr(s, n) + carr(br, n);
                else
                    v = scale * carr(s, n);
                const T mx = n ? v.template maxCoeff<Eigen::PropagateNaN>()  // a NaN among the logits stays
                               : -std::numeric_limits<T>::infinity();
                if (mx == -std::numeric_limits<T>::infinity()) {
                    std::fill_n(p, tk, T(0));
                    continue;
                }
                v = (v - mx).exp();
                const T inv = T(1) / v.sum();
                v *= inv;
                std::fill(p + n, p + tk, T(0) * inv);  // 0, or NaN with the rest of a NaN row (as PyTorch's)
                continue;
            }
            const std::uint8_t* km = key_mask + b * tk;
            T mx = -std::numeric_limits<T>::infinity();
            for (std::size_t j = 0; j < tk; ++j) {
                const T v = scale * s[j] + (br ? br[j] : T(0));
                p[j] = v;
                if (km[j] && (v > mx || std::isnan(v))) mx = v;  // a NaN, once in, stays
            }
            if (mx == -std::numeric_limits<T>::infinity()) {
                std::fill_n(p, tk, T(0));
                continue;
            }
            auto pr = arr(p, tk);
            pr = (pr - mx).exp();
            for (std::size_t j = 0; j < tk; ++j)
                if (!km[j]) p[j] = T(0);
            pr *= T(1) / pr.sum();
          }
        });
    }

    /// dx = scale * y * (dy - sum(y * dy)) per row, for softmax outputs y.
    template <class T>
    void softmax_backward(std::size_t rows, std::size_t cols, const T* y, const T* dy, T scale, T* dx) {
        for_rows(rows, cols, [&](std::size_t r0, std::size_t r1) {
            for (std::size_t r = r0; r < r1; ++r) {
                const std::size_t o = r * cols;
                const auto yr = carr(y + o, cols), dyr = carr(dy + o, cols);
                const T s = (yr * dyr).sum();
                arr(dx + o, cols) = scale * yr * (dyr - s);
            }
        });
    }

    // ---- indexing -----------------------------------------------------------------------------------
    /// out[i, :] = table[ids[i], :]. ids are trusted here: layers validate them first.
    template <class T>
    void gather_rows(std::size_t n, std::size_t dim, const T* table, const std::int32_t* ids, T* out) {
        for_rows(n, dim, [&](std::size_t r0, std::size_t r1) {
            for (std::size_t i = r0; i < r1; ++i)
                std::memcpy(out + i * dim, table + static_cast<std::size_t>(ids[i]) * dim, dim * sizeof(T));
        });
    }
    /// table_grad[ids[i], :] += dout[i, :]. Serial over rows: repeated ids must not race.
    template <class T>
    void scatter_add_rows(std::size_t n, std::size_t dim, const T* dout, const std::int32_t* ids, T* table_grad) {
        for (std::size_t i = 0; i < n; ++i)
            arr(table_grad + static_cast<std::size_t>(ids[i]) * dim, dim) += carr(dout + i * dim, dim);
    }

    // ---- losses -------------------------------------------------------------------------------------
    /// probs = softmax(logits) per row; losses[r] = -log probs[r, labels[r]], 0 where labels[r] < 0 (ignored).
    template <class T>
    void cross_entropy_forward(std::size_t rows, std::size_t classes, const T* logits, const std::int32_t* labels,
                               T* probs, T* losses) {
        for (std::size_t r = 0; r < rows; ++r) {
            const auto lr = carr(logits + r * classes, classes);
            const T mx = lr.template maxCoeff<Eigen::PropagateNaN>();  // a NaN logit makes the row's loss NaN
            auto pr = arr(probs + r * classes, classes);
            pr = (lr - mx).exp();
            const T z = pr.sum();
            pr /= z;
            losses[r] = labels[r] < 0 ? T(0) : -(lr[labels[r]] - mx - std::log(z));
        }
    }
    /// dlogits = scale * (probs - onehot(labels)); rows with labels < 0 get 0.
    template <class T>
    void cross_entropy_backward(std::size_t rows, std::size_t classes, const T* probs, const std::int32_t* labels,
                                T scale, T* dlogits) {
        for (std::size_t r = 0; r < rows; ++r) {
            auto d = arr(dlogits + r * classes, classes);
            if (labels[r] < 0) {
                d.setZero();
                continue;
            }
            d = scale * carr(probs + r * classes, classes);
            d[labels[r]] -= scale;
        }
    }

    /// PHA's contrastive losses and their gradients (contrastive_primitives, backend/contrastive_losses.hpp): the
    /// host reference itself, in double, one thread (the matrices are (rows, rows) and (rows, tasks)).
    template <class T>
    void contrastive_losses(std::size_t rows, std::size_t dim, std::size_t tasks, const T* features,
                            const std::int32_t* task_ids, const T* prototypes, const contrastive_settings& settings,
                            double* losses, T* feature_grad, T* prototype_grad) {
        detail::contrastive_losses_on_host(rows, dim, tasks, features, task_ids, prototypes, settings, losses,
                                           feature_grad, prototype_grad);
    }

    // ---- reductions and optimizer ------------------------------------------------------------------
    template <class T>
    [[nodiscard]] double sum_squares(std::size_t n, const T* x) {
        return carr(x, n).template cast<double>().square().sum();
    }
    template <class T>
    [[nodiscard]] double dot(std::size_t n, const T* x, const T* y) {
        return (carr(x, n).template cast<double>() * carr(y, n).template cast<double>()).sum();
    }
    /// *acc += sum_squares(n, x) (accumulating_reductions; host memory here, so nothing waits either way).
    template <class T>
    void sum_squares_accumulate(std::size_t n, const T* x, double* acc) {
        *acc += sum_squares(n, x);
    }
    /// AdamW with decoupled weight decay (Loshchilov & Hutter), as torch.optim.AdamW:
    ///   param -= lr * wd * param;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
    ///   param -= lr * (m / bc1) / (sqrt(v / bc2) + eps).
    template <class T>
    void adamw_update(std::size_t n, T lr, T beta1, T beta2, T eps, T weight_decay, T bias_correction1,
                      T bias_correction2, const T* grad, T* param, T* m, T* v) {
        adamw_update_one(adamw_segment<T>::make(n, lr, weight_decay, bias_correction1, bias_correction2, grad, param,
                                                m, v),
                         beta1, beta2, eps);
    }
    /// The same update for many tensors in one call (segmented_adamw): the same bits as one call per segment.
    template <class T>
    void adamw_update_segments(std::span<const adamw_segment<T>> segments, T beta1, T beta2, T eps) {
        for (const auto& s : segments) adamw_update_one(s, beta1, beta2, eps);
    }

private:
    template <class T>
    void adamw_update_one(const adamw_segment<T>& s, T beta1, T beta2, T eps) {
        for_chunks(s.n, [&](std::size_t i0, std::size_t len) {
            auto g = carr(s.grad + i0, len);
            auto mm = arr(s.m + i0, len);
            auto vv = arr(s.v + i0, len);
            auto p = arr(s.param + i0, len);
            mm = beta1 * mm + (T(1) - beta1) * g;
            vv = beta2 * vv + (T(1) - beta2) * g.square();
            p = p * s.decay - s.step * mm / (vv.sqrt() * s.inv_sqrt_bc2 + eps);
        });
    }

    template <class T>
    static detail::array_map<T> arr(T* p, std::size_t n) {
        return detail::array_map<T>(p, static_cast<Eigen::Index>(n));
    }
    template <class T>
    static detail::const_array_map<T> carr(const T* p, std::size_t n) {
        return detail::const_array_map<T>(p, static_cast<Eigen::Index>(n));
    }

    /// How many chunks a loop over `rows` rows of `cols` elements is cut into: one below the threshold or on
    /// one thread, else chunks_per_thread per thread, each at least a sixteenth of the threshold, at most one
    /// per row.
    [[nodiscard]] std::size_t row_chunks(std::size_t rows, std::size_t cols) const noexcept {
        const std::size_t work = rows * cols;
        if (opts_.threads == 1 || work <= detail::parallel_threshold) return 1;
        return std::max<std::size_t>(1, std::min({rows, work / (detail::parallel_threshold / 16),
                                                  detail::chunks_per_thread * static_cast<std::size_t>(opts_.threads)}));
    }
    /// Runs f(chunk) for chunk in [0, chunks) on the pool (inline for one chunk).
    template <class F>
    void run_chunks(std::size_t chunks, F&& f) {
        if (chunks <= 1) {
            f(std::size_t{0});
            return;
        }
        pool_->run(chunks, f);
    }
    /// f(r0, r1) over contiguous row ranges covering [0, rows).
    template <class F>
    void for_rows(std::size_t rows, std::size_t cols, F&& f) {
        const std::size_t chunks = row_chunks(rows, cols);
        run_chunks(chunks, [&](std::size_t i) { f(rows * i / chunks, rows * (i + 1) / chunks); });
    }
    /// f(c0, width) over blocks of at least 64 columns covering [0, cols) (column reductions).
    template <class F>
    void for_column_blocks(std::size_t rows, std::size_t cols, F&& f) {
        const std::size_t blocks = std::max<std::size_t>(1, std::min(row_chunks(rows, cols), cols / 64));
        const std::size_t width = (cols + blocks - 1) / blocks;
        run_chunks(blocks, [&](std::size_t i) {
            const std::size_t c0 = std::min(cols, i * width);
            if (c0 < cols) f(c0, std::min(width, cols - c0));
        });
    }
    /// f(0, n) as a function of its own, as the pool runs each chunk: inlined into its caller instead, GCC 12 left
    /// dropout's loop scalar ("control flow in loop"), 5-10x slower on one thread (docs/benchmarks.md, session 31).
    template <class F>
    [[gnu::noinline]] static void run_whole(F& f, std::size_t n) {
        f(std::size_t{0}, n);
    }
    /// f(i0, len) over pieces of [0, n) whose starts are multiples of 16 elements.
    template <class F>
    void for_chunks(std::size_t n, F&& f) {
        const std::size_t chunks = row_chunks(n, 1);
        if (chunks == 1) {
            run_whole(f, n);
            return;
        }
        const std::size_t per = ((n + chunks - 1) / chunks + 15) / 16 * 16;
        run_chunks(chunks, [&](std::size_t i) {
            const std::size_t i0 = std::min(n, per * i);
            const std::size_t len = std::min(per, n - i0);
            if (len) f(i0, len);
        });
    }

    /// A dropped element is x - x: +0 for a finite x, NaN for NaN or infinity, as PyTorch's x * mask; a
    /// dropped-out NaN does not vanish.
    template <class T>
    void apply_dropout(std::size_t n, T p, std::uint64_t seed, std::uint64_t offset, const T* x, T* y) {
        const T keep_scale = T(1) / (T(1) - p);
        const float pf = static_cast<float>(p);
        for_chunks(n, [=](std::size_t i0, std::size_t len) {
            for (std::size_t i = i0; i < i0 + len; ++i) {
                const T v = x[i], kept = v * keep_scale, dropped = v - v;
                y[i] = detail::uniform01(seed, offset + i) >= pf ? kept : dropped;
            }
        });
    }

    options opts_;
    [[no_unique_address]] GemmProvider provider_;
    std::shared_ptr<detail::block_cache> cache_;
    std::shared_ptr<detail::work_pool> pool_;  // shared by copies; one loop at a time, others run inline
};

/// The default CPU backend: Eigen for everything.
using cpu = cpu_backend<eigen_gemm>;

static_assert(backend<cpu>, "cpu_backend must satisfy the full backend concept");
static_assert(fused_primitives<cpu, float> && fused_primitives<cpu, double>,
              "cpu_backend must provide the fused element-wise primitives (backend/concepts.hpp)");
static_assert(contrastive_primitives<cpu, float> && contrastive_primitives<cpu, double>,
              "cpu_backend must provide PHA's contrastive losses (backend/contrastive_losses.hpp)");

}  // namespace hyperadapt
