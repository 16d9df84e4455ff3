#pragma once
// Mixed-precision GEMM provider over oneDNN (Debian's libdnnl-dev). Link `hyperadapt::onednn`.
//
// bf16 here means what PyTorch's CPU autocast means for a matrix product: both operands are rounded to
// bfloat16 (round to nearest even), the products are summed in fp32 and the result is written in fp32.
// Everything else stays fp32: the master weights, the activations between layers, LayerNorm, softmax,
// GELU, the losses and the optimizer, so only the products lose precision. The bf16 products run on
// oneDNN's matmul, which uses AVX512_BF16's dot-product instructions where the CPU has them.
//
// Products smaller than `MinBf16MultiplyAdds` (m·n·k) stay in fp32 on `Fp32Gemm`: oneDNN's per-call
// setup (primitive lookup, operand conversion) costs tens of microseconds, more than such a product
// saves (attention's per-head products are 0.5-1 M multiply-adds; measured in benchmarks/backend).
// Doubles always go to `Fp32Gemm` (gradient checks run in double).
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#if defined(__AVX512BF16__) && defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "hyperadapt/backend/cpu.hpp"

namespace hyperadapt {

/// The precision of a backend's matrix products.
enum class compute_precision { fp32, bf16 };

[[nodiscard]] inline const char* to_string(compute_precision p) noexcept {
    return p == compute_precision::bf16 ? "bf16" : "fp32";
}

/// "fp32" or "bf16"; nullopt for anything else (the caller names the option in its error).
[[nodiscard]] inline std::optional<compute_precision> parse_compute_precision(std::string_view s) noexcept {
    if (s == "fp32") return compute_precision::fp32;
    if (s == "bf16") return compute_precision::bf16;
    return std::nullopt;
}

namespace detail {

/// fp32 -> bf16, round to nearest even; a NaN stays a (quiet) NaN.
[[nodiscard]] inline std::uint16_t to_bf16(float x) noexcept {
    std::uint32_t u;
    std::memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<std::uint16_t>(u >> 16);
}

/// Copies the outer x inner grid of rows x cols matrices at src (matrix (i, j) at src + i * so + j * si, row
/// stride ld) into dst as contiguous bf16: matrix after matrix, row after row.
inline void to_bf16_rows(const float* src, std::size_t rows, std::size_t cols, std::size_t ld, std::uint16_t* dst,
                         std::size_t outer = 1, std::size_t inner = 1, std::ptrdiff_t so = 0,
                         std::ptrdiff_t si = 0) noexcept {
    const auto nr = static_cast<std::ptrdiff_t>(outer * inner * rows);
    const auto per_outer = static_cast<std::ptrdiff_t>(inner * rows), per_inner = static_cast<std::ptrdiff_t>(rows);
    // One thread for small operands and inside a parallel region.
#pragma omp parallel for schedule(static) if (outer * inner * rows * cols >= (std::size_t{1} << 16) && !omp_in_parallel())
    for (std::ptrdiff_t g = 0; g < nr; ++g) {
        const std::ptrdiff_t i = g / per_outer, j = (g % per_outer) / per_inner, r = g % per_inner;
        const float* s = src + i * so + j * si + r * static_cast<std::ptrdiff_t>(ld);
        std::uint16_t* d = dst + static_cast<std::size_t>(g) * cols;
        std::size_t c = 0;
#if defined(__AVX512BF16__) && defined(__AVX512F__)
        for (; c + 32 <= cols; c += 32) {
            const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(s + c + 16), _mm512_loadu_ps(s + c));
            _mm512_storeu_si512(reinterpret_cast<void*>(d + c), reinterpret_cast<const __m512i&>(v));
        }
#endif
        for (; c < cols; ++c) d[c] = to_bf16(s[c]);
    }
}

}  // namespace detail

/// GEMM provider with the precision chosen at run time: fp32 products on `Fp32Gemm`, or bf16 products
/// (fp32 accumulation and output) on oneDNN's matmul. Constructing it for bf16 on a CPU without AVX-512
/// throws config_error (oneDNN has no bf16 matmul below AVX-512; it emulates bf16 on AVX-512 cores
/// that lack AVX512_BF16, correctly but slower than fp32 — `native_bf16()` tells).
template <class Fp32Gemm = eigen_gemm, std::size_t MinBf16MultiplyAdds = (std::size_t{1} << 22)>
class onednn_gemm {
public:
    static constexpr const char* name = "onednn";
    using fp32_provider = Fp32Gemm;
    static constexpr std::size_t min_bf16_multiply_adds = MinBf16MultiplyAdds;

    explicit onednn_gemm(compute_precision precision = compute_precision::fp32) : precision_(precision) {
        if (precision_ == compute_precision::bf16) {
            if (!bf16_supported())
                throw config_error(
                    "precision bf16: this CPU has no AVX-512 (oneDNN reports ISA '" + isa_name() +
                    "'), so oneDNN has no bf16 matrix product here; use precision fp32");
            engine_ = std::make_shared<dnnl::engine>(dnnl::engine::kind::cpu, 0);
            scratch_ = std::make_shared<detail::block_cache>();
        }
    }

    [[nodiscard]] compute_precision precision() const noexcept { return precision_; }

    /// True where oneDNN can run bf16 products at all (AVX-512 and up).
    [[nodiscard]] static bool bf16_supported() {
        return effective_isa() >= static_cast<int>(dnnl::cpu_isa::avx512_core);
    }
    /// True where the bf16 products use the CPU's own bf16 instructions (AVX512_BF16 or AMX).
    [[nodiscard]] static bool native_bf16() {
        return effective_isa() >= static_cast<int>(dnnl::cpu_isa::avx512_core_bf16);
    }

    /// True when the backend should hand this product over whole, as it runs on oneDNN's own threads (a bf16
    /// product at or above the size floor); the fp32 products are cut into pieces by the backend's pool.
    template <class T>
    [[nodiscard]] bool threads_itself(std::size_t m, std::size_t n, std::size_t k, const T*) const noexcept {
        return std::is_same_v<T, float> && precision_ == compute_precision::bf16 && m != 0 && n != 0 && k != 0 &&
               m * n * k >= MinBf16MultiplyAdds;
    }

    void set_threads(int threads) const {
        Fp32Gemm::set_threads(threads);
#if defined(_OPENMP)
        omp_set_num_threads(threads);  // oneDNN's OpenMP runtime uses omp_get_max_threads() threads
#endif
    }

    template <class T>
    void gemm(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
              std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) const {
        if constexpr (!std::is_same_v<T, float>) {
            Fp32Gemm::gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        } else {
            if (precision_ == compute_precision::fp32 || m == 0 || n == 0 || k == 0 ||
                m * n * k < MinBf16MultiplyAdds) {
                Fp32Gemm::gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
                return;
            }
            run_bf16(ta, tb, m, n, k, alpha, a, lda, grid_strides{}, b, ldb, grid_strides{}, beta, c, ldc,
                     grid_strides{}, 1, 1);
        }
    }

    /// A grid of independent products (cpu_backend's gemm_strided_batched and gemm_batched_grid ask first):
    /// in bf16, one oneDNN matmul over the whole grid when its multiply-adds reach the size floor; returns
    /// false (the backend then runs them one per thread on the fp32 path) otherwise.
    template <class T>
    bool gemm_grid(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
                   std::size_t lda, grid_strides sa, const T* b, std::size_t ldb, grid_strides sb, T beta, T* c,
                   std::size_t ldc, grid_strides sc, std::size_t outer, std::size_t inner) const {
        if constexpr (!std::is_same_v<T, float>) {
            return false;
        } else {
            if (precision_ != compute_precision::bf16 || m == 0 || n == 0 || k == 0 || outer * inner == 0 ||
                outer * inner * m * n * k < MinBf16MultiplyAdds)
                return false;
            // oneDNN reads the batch from strides; negative or zero ones (a shared operand) take the loop.
            for (const auto st : {sa.outer, sa.inner, sb.outer, sb.inner, sc.outer, sc.inner})
                if (st <= 0) return false;
            run_bf16(ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, outer, inner);
            return true;
        }
    }

private:
    static int effective_isa() { return static_cast<int>(dnnl::get_effective_cpu_isa()); }
    static std::string isa_name() {
        switch (dnnl::get_effective_cpu_isa()) {
            case dnnl::cpu_isa::sse41: return "sse41";
            case dnnl::cpu_isa::avx: return "avx";
            case dnnl::cpu_isa::avx2: return "avx2";
            default: return std::to_string(effective_isa());
        }
    }

    // C(i, j) = alpha op(A(i, j)) op(B(i, j)) + beta C(i, j) over the outer x inner grid, as one matmul.
    void run_bf16(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a,
                  std::size_t lda, grid_strides sa, const float* b, std::size_t ldb, grid_strides sb, float beta,
                  float* c, std::size_t ldc, grid_strides sc, std::size_t outer, std::size_t inner) const {
        using dnnl::memory;
        // op(A) is m x k, stored k x m when transposed; the bf16 copy is contiguous in the stored layout,
        // and its memory descriptor's strides say which way it is read.
        const bool at = ta == transpose::yes, bt = tb == transpose::yes;
        const std::size_t a_rows = at ? k : m, a_cols = at ? m : k, b_rows = bt ? n : k, b_cols = bt ? k : n;
        const std::size_t count = outer * inner;
        detail::cached_host_buffer<std::uint16_t> a16(scratch_, count * a_rows * a_cols);
        detail::cached_host_buffer<std::uint16_t> b16(scratch_, count * b_rows * b_cols);
        detail::to_bf16_rows(a, a_rows, a_cols, lda, a16.data(), outer, inner, sa.outer, sa.inner);
        detail::to_bf16_rows(b, b_rows, b_cols, ldb, b16.data(), outer, inner, sb.outer, sb.inner);

        const auto d = [](std::size_t v) { return static_cast<memory::dim>(v); };
        const memory::dim am_size = d(m * k), bm_size = d(k * n);
        try {
            // Dims {outer, inner, rows, cols}: the bf16 copies are dense grids; C keeps its own strides.
            const memory::desc ad({d(outer), d(inner), d(m), d(k)}, memory::data_type::bf16,
                                  at ? memory::dims{d(inner) * am_size, am_size, 1, d(m)}
                                     : memory::dims{d(inner) * am_size, am_size, d(k), 1});
            const memory::desc bd({d(outer), d(inner), d(k), d(n)}, memory::data_type::bf16,
                                  bt ? memory::dims{d(inner) * bm_size, bm_size, 1, d(k)}
                                     : memory::dims{d(inner) * bm_size, bm_size, d(n), 1});
            const memory::desc cd({d(outer), d(inner), d(m), d(n)}, memory::data_type::f32,
                                  memory::dims{count > 1 ? sc.outer : d(m * ldc), count > 1 ? sc.inner : d(m * ldc),
                                               d(ldc), 1});
            dnnl::primitive_attr attr;
            if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
            if (beta != 0.0f) {
                dnnl::post_ops ops;
                ops.append_sum(beta);
                attr.set_post_ops(ops);
            }
            const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(ad, bd, cd), attr, *engine_);
            const dnnl::matmul product(pd);
            memory am(ad, *engine_, a16.data()), bm(bd, *engine_, b16.data()), cm(cd, *engine_, c);
            dnnl::stream s(*engine_);  // per call: a stream is not safe to share between threads
            product.execute(s, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
            s.wait();
        } catch (const dnnl::error& e) {
            throw backend_error("onednn_gemm: bf16 product " + std::to_string(outer) + "x" + std::to_string(inner) +
                                " of " + std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k) +
                                " failed: " + e.what());
        }
    }

    compute_precision precision_;
    std::shared_ptr<dnnl::engine> engine_;  // shared: engines are thread-safe and cost a lookup to make
    // The operands' bf16 copies, reused from call to call (fresh pages for every product cost ~3 % of a
    // BERT-base training step in page faults); thread-safe, as batched products may run on many threads.
    std::shared_ptr<detail::block_cache> scratch_;
};

}  // namespace hyperadapt
