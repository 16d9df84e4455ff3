// The CUDA backend against the CPU backend. Compiled by nvcc; the CPU side runs in cuda_cpu_reference.cpp
// (g++), so this file never sees Eigen. Without a usable CUDA device every test case is skipped (the suite's
// precondition) with a visible message, and the process exits 0.
#define BOOST_TEST_MODULE backend_cuda
// Boost.Preprocessor switches variadic macros off for nvcc (a leftover from old CUDA releases); BOOST_TEST's
// message form needs them, and nvcc 11+ handles __VA_ARGS__ like the host compiler.
#if defined(__NVCC__) && !defined(BOOST_PP_VARIADICS)
#define BOOST_PP_VARIADICS 1
#endif
#include <boost/mpl/list.hpp>
#include <boost/test/unit_test.hpp>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "backend/cuda_cpu_reference.hpp"
#include "support/cuda_device.hpp"
#include "hyperadapt/backend/contrastive_losses.hpp"
#include "hyperadapt/backend/counter_rng.hpp"
#include "hyperadapt/backend/cuda.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/nn/anomaly.hpp"
#include "hyperadapt/tensor/tensor.hpp"
#include "hyperadapt/testing/gradcheck.hpp"

using namespace hyperadapt;
using hyperadapt::test::cpu_reference;
namespace utf = boost::unit_test;

namespace {

using real_types = boost::mpl::list<float, double>;

// ---- host data -----------------------------------------------------------------------------------------
/// Integers in [lo, hi]: every product and sum in the tests stays exact in float and double.
template <class T>
std::vector<T> int_values(std::size_t n, std::uint64_t seed, int lo = -4, int hi = 4) {
    std::vector<T> v(n);
    const auto span = static_cast<std::uint64_t>(hi - lo + 1);
    for (std::size_t i = 0; i < n; ++i)
        v[i] = static_cast<T>(static_cast<int>(detail::counter_hash(seed, i) % span) + lo);
    return v;
}

/// Uniform reals in [lo, hi).
template <class T>
std::vector<T> real_values(std::size_t n, std::uint64_t seed, double lo = -1, double hi = 1) {
    std::vector<T> v(n);
    for (std::size_t i = 0; i < n; ++i)
        v[i] = static_cast<T>(lo + (hi - lo) * static_cast<double>(detail::uniform01(seed, i)));
    return v;
}

template <class T>
cuda_backend::buffer<T> upload(cuda_backend& b, const std::vector<T>& h) {
    auto d = b.allocate<T>(h.size());
    b.copy_from_host(h.data(), d.data(), h.size());
    return d;
}

template <class T>
std::vector<T> download(cuda_backend& b, const T* d, std::size_t n) {
    std::vector<T> h(n);
    b.copy_to_host(d, h.data(), n);
    return h;
}
template <class T>
std::vector<T> download(cuda_backend& b, const cuda_backend::buffer<T>& d) {
    return download(b, d.data(), d.size());
}

template <class T>
bool same_value(T a, T b) {
    return a == b || (std::isnan(a) && std::isnan(b));
}

/// Exact equality, element by element (NaN equals NaN: untouched poisoned padding must stay NaN).
template <class T>
void check_equal(const std::vector<T>& got, const std::vector<T>& want, const std::string& what) {
    BOOST_TEST_REQUIRE(got.size() == want.size(), what << ": size " << got.size() << " != " << want.size());
    std::size_t bad = 0, first = 0;
    for (std::size_t i = 0; i < got.size(); ++i)
        if (!same_value(got[i], want[i]) && bad++ == 0) first = i;
    BOOST_TEST(bad == 0u, what << ": " << bad << " of " << got.size() << " elements differ; first [" << first
                               << "]: got " << (bad ? got[first] : T(0)) << ", want "
                               << (bad ? want[first] : T(0)));
}

/// |got - want| <= abs_tol + rel * |want| element-wise.
template <class T>
void check_close(const std::vector<T>& got, const std::vector<T>& want, double rel, double abs_tol,
                 const std::string& what) {
    BOOST_TEST_REQUIRE(got.size() == want.size(), what << ": size " << got.size() << " != " << want.size());
    std::size_t bad = 0, first = 0;
    double worst = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        const double g = got[i], w = want[i], err = std::abs(g - w);
        worst = std::max(worst, err);
        if (!(err <= abs_tol + rel * std::abs(w)) && bad++ == 0) first = i;
    }
    std::ostringstream msg;
    msg.precision(17);
    if (bad)
        msg << what << ": " << bad << " of " << got.size() << " elements differ; first [" << first << "]: got "
            << static_cast<double>(got[first]) << ", want " << static_cast<double>(want[first])
            << "; worst |diff| " << worst;
    BOOST_TEST(bad == 0u, msg.str());
}

/// Relative tolerances for transcendental kernels (device vs Eigen/glibc math, different summation orders).
template <class T>
constexpr double tol_rel = std::is_same_v<T, float> ? 2e-5 : 1e-12;
template <class T>
constexpr double tol_abs = std::is_same_v<T, float> ? 2e-6 : 1e-14;

std::string op_name(transpose ta, transpose tb) {
    return std::string(ta == transpose::yes ? "T" : "N") + (tb == transpose::yes ? "T" : "N");
}

constexpr transpose both[] = {transpose::no, transpose::yes};

}  // namespace

BOOST_AUTO_TEST_SUITE(cuda, *utf::precondition(&test::cuda_device_present))

// ---- memory --------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_CASE(memory_round_trips_fills_and_caches) {
    cuda_backend b;
    BOOST_TEST(std::string(b.name()) == "cuda");
    BOOST_TEST(b.owns_stream_and_handle());

    const auto h = real_values<double>(1000, 1);
    auto d = upload(b, h);
    check_equal(download(b, d), h, "copy_from_host/copy_to_host");

    auto d2 = b.allocate<double>(h.size());
    b.copy(d.data(), d2.data(), h.size());
    check_equal(download(b, d2), h, "device copy");

    auto f = b.allocate<float>(777);
    b.fill(f.data(), f.size(), 2.5f);
    check_equal(download(b, f), std::vector<float>(777, 2.5f), "fill float");
    b.fill(f.data(), f.size(), 0.0f);
    check_equal(download(b, f), std::vector<float>(777, 0.0f), "fill float zero");

    auto ids = b.allocate<std::int32_t>(5);
    b.fill(ids.data(), ids.size(), std::int32_t{-7});
    check_equal(download(b, ids), std::vector<std::int32_t>(5, -7), "fill int32");
    const std::vector<std::int32_t> hi{3, 1, 4, 1, 5};
    b.copy_from_host(hi.data(), ids.data(), hi.size());
    check_equal(download(b, ids), hi, "int32 round trip");

    // Poisoned buffers start as NaN.
    b.set_poison_new_buffers(true);
    auto p = b.allocate<float>(33);
    b.set_poison_new_buffers(false);
    for (float v : download(b, p)) BOOST_TEST(std::isnan(v));

    // The cache hands a freed block of the same size back.
    const double* first = nullptr;
    {
        auto a = b.allocate<double>(4096);
        first = a.data();
    }
    BOOST_TEST(b.cached_bytes() >= 4096 * sizeof(double));
    auto again = b.allocate<double>(4096);
    BOOST_TEST(again.data() == first);
    cuda_backend::buffer<double> moved = std::move(again);
    BOOST_TEST(moved.data() == first);
    BOOST_TEST((again.data() == nullptr));
    b.release_cached_memory();
    BOOST_TEST(b.cached_bytes() == 0u);
    b.synchronize();
}

// Queued uploads (queued_uploads, a batch's one upload): the values are taken before the call returns, so the
// caller may overwrite its buffer at once, and each lands where it was sent; more uploads in flight than the
// pinned blocks, and ones larger than any block so far, still land. A kernel queued after an upload sees it.
BOOST_AUTO_TEST_CASE(queued_uploads_take_the_values_at_once_and_land_in_order) {
    static_assert(queued_uploads<cuda_backend>);
    cuda_backend b;
    std::vector<cuda_backend::buffer<std::uint8_t>> targets;
    std::vector<std::vector<std::uint8_t>> sent;
    std::vector<std::uint8_t> scratch;
    for (std::size_t k = 0; k < 12; ++k) {
        const std::size_t bytes = (std::size_t{1} << (10 + k % 7)) * 3 + k;  // 3 KiB .. 192 KiB and odd sizes
        scratch.assign(bytes, 0);
        for (std::size_t i = 0; i < bytes; ++i) scratch[i] = static_cast<std::uint8_t>((i * 31 + k * 7) & 0xff);
        targets.push_back(b.allocate<std::uint8_t>(bytes));
        b.queue_copy_from_host(scratch.data(), targets.back().data(), bytes);
        sent.push_back(scratch);
        std::fill(scratch.begin(), scratch.end(), std::uint8_t{0xee});  // the caller reuses its buffer at once
    }
    for (std::size_t k = 0; k < targets.size(); ++k)
        check_equal(download(b, targets[k]), sent[k], "queued upload " + std::to_string(k));
    const std::vector<float> values{1.5f, -2.0f, 3.25f};
    auto x = b.allocate<float>(3);
    b.queue_copy_from_host(values.data(), x.data(), values.size());
    b.scale(3, 2.0f, x.data());
    check_equal(download(b, x), std::vector<float>{3.0f, -4.0f, 6.5f}, "a kernel after a queued upload");
}

BOOST_AUTO_TEST_CASE(errors_become_backend_errors_with_status_names) {
    cuda_backend b;
    try {
        (void)b.allocate<float>(std::size_t{1} << 46);  // 256 TiB
        BOOST_FAIL("expected backend_error");
    } catch (const backend_error& e) {
        const std::string msg = e.what();
        BOOST_TEST(msg.find("cudaErrorMemoryAllocation") != std::string::npos, msg);
        BOOST_TEST(msg.find("cuda.hpp:") != std::string::npos, msg);
    }
    auto a = b.allocate<float>(16), c = b.allocate<float>(16);
    try {  // ldb = 2 < n = 4: cuBLAS rejects it
        b.gemm(transpose::no, transpose::no, 4, 4, 4, 1.0f, a.data(), 4, a.data(), 2, 0.0f, c.data(), 4);
        BOOST_FAIL("expected backend_error");
    } catch (const backend_error& e) {
        const std::string msg = e.what();
        BOOST_TEST(msg.find("CUBLAS_STATUS_INVALID_VALUE") != std::string::npos, msg);
        BOOST_TEST(msg.find("cublasSgemm") != std::string::npos, msg);
    }
    // The backend still works afterwards.
    b.fill(c.data(), c.size(), 1.0f);
    check_equal(download(b, c), std::vector<float>(16, 1.0f), "fill after errors");
}

BOOST_AUTO_TEST_CASE(borrowed_stream_and_handle) {
    cudaStream_t stream = nullptr;
    cublasHandle_t handle = nullptr;
    HYPERADAPT_CUDA_CHECK(cudaStreamCreate(&stream));
    HYPERADAPT_CUBLAS_CHECK(cublasCreate(&handle));
    {
        cuda_backend b(stream, handle);
        BOOST_TEST(!b.owns_stream_and_handle());
        BOOST_TEST(b.stream() == stream);
        BOOST_TEST(b.cublas_handle() == handle);
        const auto ha = int_values<double>(6, 1), hb = int_values<double>(6, 2);
        auto a = upload(b, ha), bb = upload(b, hb);
        auto c = b.allocate<double>(4);
        b.gemm(transpose::no, transpose::no, 2, 2, 3, 1.0, a.data(), 3, bb.data(), 2, 0.0, c.data(), 2);
        std::vector<double> want(4);
        cpu_reference<double>::gemm(transpose::no, transpose::no, 2, 2, 3, 1.0, ha.data(), 3, hb.data(), 2, 0.0,
                                    want.data(), 2);
        check_equal(download(b, c), want, "gemm on a borrowed stream");
    }
    // The backend is gone; the borrowed handle and stream are still usable and ours to destroy.
    cudaStream_t bound = nullptr;
    HYPERADAPT_CUBLAS_CHECK(cublasGetStream(handle, &bound));
    BOOST_TEST(bound == stream);
    HYPERADAPT_CUBLAS_CHECK(cublasDestroy(handle));
    HYPERADAPT_CUDA_CHECK(cudaStreamDestroy(stream));
}

// ---- BLAS ----------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_CASE_TEMPLATE(gemm_matches_cpu_exactly_for_all_transposes, T, real_types) {
    cuda_backend b;
    struct dims {
        std::size_t m, n, k;
    };
    for (const dims d : {dims{7, 5, 9}, dims{33, 65, 17}, dims{1, 1, 1}, dims{64, 48, 80}})
        for (const transpose ta : both)
            for (const transpose tb : both)
                for (const bool zero_beta : {false, true}) {
                    const std::string what = "gemm " + op_name(ta, tb) + " m=" + std::to_string(d.m) +
                                             " n=" + std::to_string(d.n) + " k=" + std::to_string(d.k) +
                                             (zero_beta ? " beta=0" : " beta=-3");
                    // Stored shapes (row-major) with padded leading dimensions.
                    const std::size_t a_rows = ta == transpose::yes ? d.k : d.m, a_cols = ta == transpose::yes ? d.m : d.k;
                    const std::size_t b_rows = tb == transpose::yes ? d.n : d.k, b_cols = tb == transpose::yes ? d.k : d.n;
                    const std::size_t lda = a_cols + 3, ldb = b_cols + 2, ldc = d.n + 1;
                    const auto ha = int_values<T>(a_rows * lda, 11), hb = int_values<T>(b_rows * ldb, 12);
                    // beta = 0 must ignore C entirely, NaN included (BLAS semantics); padding stays untouched.
                    auto hc = zero_beta ? std::vector<T>(d.m * ldc, std::numeric_limits<T>::quiet_NaN())
                                        : int_values<T>(d.m * ldc, 13);
                    const T alpha = T(2), beta = zero_beta ? T(0) : T(-3);
                    auto da = upload(b, ha), db = upload(b, hb), dc = upload(b, hc);
                    b.gemm(ta, tb, d.m, d.n, d.k, alpha, da.data(), lda, db.data(), ldb, beta, dc.data(), ldc);
                    cpu_reference<T>::gemm(ta, tb, d.m, d.n, d.k, alpha, ha.data(), lda, hb.data(), ldb, beta,
                                           hc.data(), ldc);
                    check_equal(download(b, dc), hc, what);
                }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(gemm_with_empty_inner_dimension_scales_c, T, real_types) {
    cuda_backend b;
    const std::size_t m = 3, n = 4, ldc = 6;
    for (const T beta : {T(0), T(2)}) {
        auto hc = int_values<T>(m * ldc, 5);
        if (beta == T(0)) hc[0] = std::numeric_limits<T>::quiet_NaN();
        auto dc = upload(b, hc);
        auto dummy = b.allocate<T>(1);
        b.gemm(transpose::no, transpose::no, m, n, 0, T(1), dummy.data(), 0, dummy.data(), n, beta, dc.data(), ldc);
        cpu_reference<T>::gemm(transpose::no, transpose::no, m, n, 0, T(1), hc.data(), 0, hc.data(), n, beta,
                               hc.data(), ldc);
        check_equal(download(b, dc), hc, "gemm k=0");
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(gemm_strided_batched_matches_cpu_exactly, T, real_types) {
    cuda_backend b;
    const std::size_t m = 6, n = 5, k = 7, batch = 4;
    for (const transpose ta : both)
        for (const transpose tb : both)
            for (const bool broadcast_b : {false, true}) {
                const std::string what = "gemm_strided_batched " + op_name(ta, tb) + (broadcast_b ? " stride_b=0" : "");
                const std::size_t a_rows = ta == transpose::yes ? k : m, a_cols = ta == transpose::yes ? m : k;
                const std::size_t b_rows = tb == transpose::yes ? n : k, b_cols = tb == transpose::yes ? k : n;
                const std::size_t lda = a_cols + 1, ldb = b_cols + 2, ldc = n + 3;
                const auto stride_a = static_cast<std::ptrdiff_t>(a_rows * lda + 5);
                const auto stride_b = broadcast_b ? std::ptrdiff_t{0} : static_cast<std::ptrdiff_t>(b_rows * ldb + 1);
                const auto stride_c = static_cast<std::ptrdiff_t>(m * ldc + 2);
                const auto ha = int_values<T>(static_cast<std::size_t>(stride_a) * batch, 21);
                const auto hb = int_values<T>(broadcast_b ? b_rows * ldb : static_cast<std::size_t>(stride_b) * batch, 22);
                auto hc = int_values<T>(static_cast<std::size_t>(stride_c) * batch, 23);
                auto da = upload(b, ha), db = upload(b, hb), dc = upload(b, hc);
                b.gemm_strided_batched(ta, tb, m, n, k, T(-1), da.data(), lda, stride_a, db.data(), ldb, stride_b,
                                       T(2), dc.data(), ldc, stride_c, batch);
                cpu_reference<T>::gemm_strided_batched(ta, tb, m, n, k, T(-1), ha.data(), lda, stride_a, hb.data(), ldb,
                                                       stride_b, T(2), hc.data(), ldc, stride_c, batch);
                check_equal(download(b, dc), hc, what);
            }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(gemm_batched_grid_matches_cpu_exactly, T, real_types) {
    // Attention's layout: per outer entry (example) the inner entries (heads) sit side by side in a row.
    cuda_backend b;
    const std::size_t m = 6, n = 5, k = 3, outer = 3, inner = 4;
    for (const transpose ta : both)
        for (const transpose tb : both) {
            const std::string what = "gemm_batched_grid " + op_name(ta, tb);
            const std::size_t a_rows = ta == transpose::yes ? k : m, a_cols = ta == transpose::yes ? m : k;
            const std::size_t b_rows = tb == transpose::yes ? n : k, b_cols = tb == transpose::yes ? k : n;
            const std::size_t lda = inner * a_cols, ldb = inner * b_cols + 1, ldc = n + 2;
            const grid_strides sa{static_cast<std::ptrdiff_t>(a_rows * lda), static_cast<std::ptrdiff_t>(a_cols)},
                sb{static_cast<std::ptrdiff_t>(b_rows * ldb), static_cast<std::ptrdiff_t>(b_cols)},
                sc{static_cast<std::ptrdiff_t>(inner * m * ldc), static_cast<std::ptrdiff_t>(m * ldc)};
            const auto ha = int_values<T>(outer * a_rows * lda, 24), hb = int_values<T>(outer * b_rows * ldb, 25);
            auto hc = int_values<T>(outer * inner * m * ldc, 26);
            auto da = upload(b, ha), db = upload(b, hb), dc = upload(b, hc);
            b.gemm_batched_grid(ta, tb, m, n, k, T(-1), da.data(), lda, sa, db.data(), ldb, sb, T(2), dc.data(), ldc, sc,
                                outer, inner);
            for (std::size_t i = 0; i < outer; ++i)
                for (std::size_t j = 0; j < inner; ++j) {
                    const auto at = [&](grid_strides s) {
                        return static_cast<std::size_t>(static_cast<std::ptrdiff_t>(i) * s.outer +
                                                        static_cast<std::ptrdiff_t>(j) * s.inner);
                    };
                    cpu_reference<T>::gemm(ta, tb, m, n, k, T(-1), ha.data() + at(sa), lda, hb.data() + at(sb), ldb,
                                           T(2), hc.data() + at(sc), ldc);
                }
            check_equal(download(b, dc), hc, what);
        }
}

// ---- reduced-precision products (cuda_backend::options::products) ----------------------------------------
// Each mode rounds the operands of an fp32 product (TF32 and fp16: 11 significant bits, bf16: 8) and sums in
// fp32. Checked against the exact product in double, element by element: the error stays within the operands'
// rounding (2u per product, u = 2^-10 or 2^-7, whether the conversion rounds to nearest or truncates) plus fp32
// accumulation, and somewhere exceeds 1e-4, which an exact fp32 product (error ~1e-6 here) never does: the
// products really ran in the reduced format. Doubles are unaffected (bit-identical to the CPU).
BOOST_AUTO_TEST_CASE(reduced_precision_products_round_only_their_operands) {
    struct mode {
        cuda_products products;
        double u;  // the operands' relative rounding, truncation included
    };
    const std::size_t m = 24, n = 20, k = 64, outer = 2, inner = 3;
    const auto ha = real_values<float>(outer * inner * m * k, 71), hb = real_values<float>(outer * inner * k * n, 72);
    // The exact C_g = A_g B_g (row-major, A_g at g * m * k, B_g at g * k * n) and the bound sum_k |a| |b|.
    std::vector<double> exact(outer * inner * m * n, 0.0), magnitude(exact.size(), 0.0);
    for (std::size_t g = 0; g < outer * inner; ++g)
        for (std::size_t i = 0; i < m; ++i)
            for (std::size_t j = 0; j < n; ++j)
                for (std::size_t p = 0; p < k; ++p) {
                    const double a = ha[g * m * k + i * k + p], bv = hb[g * k * n + p * n + j];
                    exact[g * m * n + i * n + j] += a * bv;
                    magnitude[g * m * n + i * n + j] += std::abs(a * bv);
                }
    const auto check = [&](const std::vector<float>& got, std::size_t count, double u, const std::string& what) {
        double worst = 0;
        std::size_t bad = 0, first = 0;
        for (std::size_t e = 0; e < count; ++e) {
            const double err = std::abs(static_cast<double>(got[e]) - exact[e]);
            worst = std::max(worst, err);
            const double bound = (2 * u + 2.0 * static_cast<double>(k + 2) * 0x1p-24) * magnitude[e];
            if (!(err <= bound) && bad++ == 0) first = e;
        }
        BOOST_TEST(bad == 0u, what << ": " << bad << " of " << count << " elements beyond the operands' rounding; first ["
                                   << first << "]: got " << got[first] << ", exact " << exact[first]);
        BOOST_TEST(worst > 1e-4, what << ": the largest error " << worst << " is an exact fp32 product's: not reduced");
    };
    for (const mode md : {mode{cuda_products::tf32, 0x1p-10}, mode{cuda_products::bf16, 0x1p-7},
                          mode{cuda_products::fp16, 0x1p-10}}) {
        cuda_backend::options o;
        o.products = md.products;
        cuda_backend b(o);
        BOOST_TEST((b.products() == md.products));
        const std::string name = to_string(md.products);
        auto da = upload(b, ha), db = upload(b, hb);
        auto dc = b.allocate<float>(exact.size());
        b.gemm(transpose::no, transpose::no, m, n, k, 1.0f, da.data(), k, db.data(), n, 0.0f, dc.data(), n);
        check(download(b, dc), m * n, md.u, name + " gemm");
        const auto mk = static_cast<std::ptrdiff_t>(m * k), kn = static_cast<std::ptrdiff_t>(k * n),
                   mn = static_cast<std::ptrdiff_t>(m * n);
        b.gemm_strided_batched(transpose::no, transpose::no, m, n, k, 1.0f, da.data(), k, mk, db.data(), n, kn, 0.0f,
                               dc.data(), n, mn, outer * inner);
        check(download(b, dc), exact.size(), md.u, name + " gemm_strided_batched");
        b.fill(dc.data(), dc.size(), 0.0f);
        b.gemm_batched_grid(transpose::no, transpose::no, m, n, k, 1.0f, da.data(), k,
                            grid_strides{static_cast<std::ptrdiff_t>(inner) * mk, mk}, db.data(), n,
                            grid_strides{static_cast<std::ptrdiff_t>(inner) * kn, kn}, 0.0f, dc.data(), n,
                            grid_strides{static_cast<std::ptrdiff_t>(inner) * mn, mn}, outer, inner);
        check(download(b, dc), exact.size(), md.u, name + " gemm_batched_grid");
        // Doubles: exact fp64 whatever the mode.
        const auto hda = int_values<double>(m * k, 73), hdb = int_values<double>(k * n, 74);
        auto dda = upload(b, hda), ddb = upload(b, hdb);
        auto ddc = b.allocate<double>(m * n);
        std::vector<double> want(m * n, 0.0);
        b.gemm(transpose::no, transpose::no, m, n, k, 1.0, dda.data(), k, ddb.data(), n, 0.0, ddc.data(), n);
        cpu_reference<double>::gemm(transpose::no, transpose::no, m, n, k, 1.0, hda.data(), k, hdb.data(), n, 0.0,
                                    want.data(), n);
        check_equal(download(b, ddc), want, name + " double gemm");
    }
    // fp16's range ends at 65504: a larger operand becomes infinite (what dynamic loss scaling is for); bf16
    // keeps fp32's range.
    std::vector<float> big(k, 1e5f), ones(k, 1.0f);
    for (const cuda_products p : {cuda_products::fp16, cuda_products::bf16}) {
        cuda_backend::options o;
        o.products = p;
        cuda_backend b(o);
        auto da = upload(b, big), db = upload(b, ones);
        auto dc = b.allocate<float>(1);
        b.gemm(transpose::no, transpose::no, 1, 1, k, 1.0f, da.data(), k, db.data(), 1, 0.0f, dc.data(), 1);
        const float got = download(b, dc)[0];
        if (p == cuda_products::fp16)
            BOOST_TEST(!std::isfinite(got), "fp16 product of 1e5-sized operands: got " << got << ", expected infinity");
        else
            BOOST_TEST(std::abs(got - 6.4e6f) <= 6.4e6f * 0x1p-7, "bf16 product of 1e5-sized operands: got " << got);
    }
}

// ---- PHA's contrastive losses (contrastive_primitives) ------------------------------------------------------
// The one-block kernel against the host reference (the CPU backend's implementation), which sums every value in
// the same order: the device's exp/log differ from glibc's in the last bits, so within 1e-12 (double) and a few
// float ulps, for both losses, either alone, either denominator, rows without a positive.
BOOST_AUTO_TEST_CASE_TEMPLATE(contrastive_losses_match_the_host_reference, T, real_types) {
    cuda_backend b;
    const std::vector<std::int32_t> tasks{0, 1, 0, 2, 1, 0, 3, 1, 1, 0, 2, 3, 0, 0, 1, 2, 3, 3, 0, 5, 4, 1, 0, 2, 2,
                                          1, 0, 3, 4, 4, 1, 5, 0};
    const std::size_t rows = tasks.size(), dim = 64, nt = 6;
    const auto hf = real_values<T>(rows * dim, 81), hk = real_values<T>(nt * dim, 82);
    auto df = upload(b, hf), dk = upload(b, hk);
    auto dt = upload(b, tasks);
    for (const bool exclude : {true, false})
        for (const int which : {3, 1, 2}) {  // both, instance only, prototype only
            const contrastive_settings s{.temperature = 0.1, .weight = 0.1, .instance = (which & 1) != 0,
                                         .prototype = (which & 2) != 0, .exclude_positive = exclude};
            const std::string what = std::string(exclude ? "positive excluded" : "standard") +
                                     (which == 3 ? ", both" : which == 1 ? ", instance only" : ", prototype only");
            std::vector<double> want_losses(2);
            std::vector<T> want_fg(rows * dim), want_pg(nt * dim);
            detail::contrastive_losses_on_host(rows, dim, nt, hf.data(), tasks.data(), hk.data(), s, want_losses.data(),
                                               want_fg.data(), want_pg.data());
            auto losses = b.allocate<double>(2);
            auto fg = b.allocate<T>(rows * dim), pg = b.allocate<T>(nt * dim);
            b.contrastive_losses(rows, dim, nt, df.data(), dt.data(), dk.data(), s, losses.data(), fg.data(), pg.data());
            check_close(download(b, losses), want_losses, 1e-12, 1e-15, what + ": losses");
            check_close(download(b, fg), want_fg, tol_rel<T>, tol_abs<T> * 1e-2, what + ": feature gradient");
            if (s.prototype)
                check_close(download(b, pg), want_pg, tol_rel<T>, tol_abs<T> * 1e-2, what + ": prototype gradient");
        }
}

// ---- Linear --------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_CASE(linear_double_matches_cpu) {
    cuda_backend b;
    struct linear_case {
        shape input;
        std::size_t out;
        bool bias;
    };
    for (const auto& lc : {linear_case{{2, 4, 5}, 3, true}, linear_case{{33, 17}, 11, true},
                           linear_case{{3, 2, 4, 6}, 9, false}}) {
        const std::size_t in = lc.input.cols(), rows = lc.input.rows();
        const auto w = real_values<double>(lc.out * in, 31), x = real_values<double>(lc.input.size(), 32),
                   dy = real_values<double>(rows * lc.out, 33);
        const auto bias = lc.bias ? real_values<double>(lc.out, 34) : std::vector<double>{};
        const auto want = test::linear_reference(in, lc.out, lc.input, w, bias, x, dy);

        linear<cuda_backend, double> layer(b, in, lc.out, "fc", lc.bias);
        b.copy_from_host(w.data(), layer.weight().value.data(), w.size());
        if (lc.bias) b.copy_from_host(bias.data(), layer.bias().value.data(), bias.size());
        linear<cuda_backend, double>::context ctx;
        const auto y = layer.forward(tensor<cuda_backend, double>::from_host(b, lc.input, x), ctx);
        const auto dx = layer.backward(tensor<cuda_backend, double>::from_host(b, y.shape(), dy), ctx);
        BOOST_TEST((dx.shape() == lc.input));

        // Relative to each tensor's magnitude: summation order may differ between cuBLAS and Eigen.
        auto check = [&](const std::vector<double>& got, const std::vector<double>& ref, const char* what) {
            double scale = 0;
            for (double v : ref) scale = std::max(scale, std::abs(v));
            check_close(got, ref, 0.0, 1e-12 * std::max(scale, 1.0), std::string("linear ") + lc.input.str() + " " + what);
        };
        check(y.to_host(), want.y, "y");
        check(dx.to_host(), want.dx, "dx");
        check(layer.weight().grad.to_host(), want.dweight, "dweight");
        if (lc.bias) check(layer.bias().grad.to_host(), want.dbias, "dbias");
    }
}

BOOST_AUTO_TEST_CASE(linear_gradients_match_finite_differences_on_gpu) {
    cuda_backend b;
    linear<cuda_backend, double> layer(b, 5, 3, "encoder.layer.0.output.dense");
    rng_stream rng(1);
    layer.initialize(rng, 0.5);
    b.fill_uniform(3, 9, 0, -0.5, 0.5, layer.bias().value.data());
    tensor<cuda_backend, double> x(b, {2, 4, 5});
    b.fill_uniform(x.size(), 3, 0, -1.0, 1.0, x.data());
    auto r = testing::check_layer(layer, x);
    BOOST_TEST(r.ok, r.report);
    BOOST_TEST(r.checked == 40u + 15u + 3u);
    BOOST_TEST(!b.poison_new_buffers());  // the checker restores the setting
}

// ---- linear primitives ---------------------------------------------------------------------------------
BOOST_AUTO_TEST_CASE_TEMPLATE(linear_primitives_match_cpu_exactly, T, real_types) {
    cuda_backend b;
    const std::size_t rows = 37, cols = 301;
    const auto x = int_values<T>(rows * cols, 41), v = int_values<T>(cols, 42), acc = int_values<T>(cols, 43);
    {
        auto dx = upload(b, x), dv = upload(b, v);
        b.add_row_vector(rows, cols, dv.data(), dx.data());
        auto want = x;
        cpu_reference<T>::add_row_vector(rows, cols, v.data(), want.data());
        check_equal(download(b, dx), want, "add_row_vector");
    }
    for (const std::size_t r : {rows, std::size_t{1}, std::size_t{1000}}) {
        const auto xr = int_values<T>(r * cols, 44);
        auto dx = upload(b, xr), dacc = upload(b, acc);
        b.accumulate_column_sums(r, cols, dx.data(), dacc.data());
        auto want = acc;
        cpu_reference<T>::accumulate_column_sums(r, cols, xr.data(), want.data());
        check_equal(download(b, dacc), want, "accumulate_column_sums rows=" + std::to_string(r));
    }
    {
        const auto y = int_values<T>(rows * cols, 45);
        auto dx = upload(b, x), dy = upload(b, y);
        b.axpy(x.size(), T(-3), dx.data(), dy.data());
        auto want = y;
        cpu_reference<T>::axpy(x.size(), T(-3), x.data(), want.data());
        check_equal(download(b, dy), want, "axpy");
    }
    // FiLM's primitives, on a strided view (ld = cols + 3); 1000 rows: column_dots sums in chunks of rows.
    for (const std::size_t r : {rows, std::size_t{1000}})
    for (const bool accumulate : {false, true}) {
        const std::size_t ld = cols + 3;
        const std::string what = " rows=" + std::to_string(r) + (accumulate ? " accumulate" : "");
        const auto xs = int_values<T>(r * ld, 46), ys = int_values<T>(r * ld, 47);
        auto dx = upload(b, xs), dv = upload(b, v), dy = upload(b, ys), dacc = upload(b, acc);
        b.mul_row_vector(r, cols, dx.data(), ld, dv.data(), dy.data(), ld, accumulate);
        auto want = ys;
        cpu_reference<T>::mul_row_vector(r, cols, xs.data(), ld, v.data(), want.data(), ld, accumulate);
        check_equal(download(b, dy), want, "mul_row_vector" + what);
        b.column_dots(r, cols, dx.data(), dx.data(), ld, dacc.data(), accumulate);
        auto want_dots = acc;
        cpu_reference<T>::column_dots(r, cols, xs.data(), xs.data(), ld, want_dots.data(), accumulate);
        check_equal(download(b, dacc), want_dots, "column_dots" + what);
    }
}

// ---- element-wise --------------------------------------------------------------------------------------
BOOST_AUTO_TEST_CASE_TEMPLATE(add_and_scale_match_cpu_exactly, T, real_types) {
    cuda_backend b;
    const std::size_t n = 5000;
    const auto a = int_values<T>(n, 51), c = int_values<T>(n, 52);
    auto da = upload(b, a), dc = upload(b, c), out = b.allocate<T>(n);
    b.add(n, da.data(), dc.data(), out.data());
    std::vector<T> want(n);
    cpu_reference<T>::add(n, a.data(), c.data(), want.data());
    check_equal(download(b, out), want, "add");
    b.add(n, da.data(), dc.data(), da.data());  // aliasing output
    check_equal(download(b, da), want, "add in place");
    b.scale(n, T(-2), out.data());
    cpu_reference<T>::scale(n, T(-2), want.data());
    check_equal(download(b, out), want, "scale");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(gelu_and_tanh_match_cpu, T, real_types) {
    cuda_backend b;
    const std::size_t n = 4099;
    const auto x = real_values<T>(n, 61, -6, 6), dy = real_values<T>(n, 62);
    auto dx_in = upload(b, x), ddy = upload(b, dy), out = b.allocate<T>(n);
    std::vector<T> want(n);

    b.gelu_forward(n, dx_in.data(), out.data());
    cpu_reference<T>::gelu_forward(n, x.data(), want.data());
    check_close(download(b, out), want, tol_rel<T>, tol_abs<T>, "gelu_forward");
    b.gelu_backward(n, dx_in.data(), ddy.data(), out.data());
    cpu_reference<T>::gelu_backward(n, x.data(), dy.data(), want.data());
    check_close(download(b, out), want, tol_rel<T>, tol_abs<T>, "gelu_backward");

    b.tanh_forward(n, dx_in.data(), out.data());
    cpu_reference<T>::tanh_forward(n, x.data(), want.data());
    check_close(download(b, out), want, tol_rel<T>, tol_abs<T>, "tanh_forward");
    const auto y = want;  // tanh_backward takes the forward output
    auto dyt = upload(b, y);
    b.tanh_backward(n, dyt.data(), ddy.data(), out.data());
    cpu_reference<T>::tanh_backward(n, y.data(), dy.data(), want.data());
    check_close(download(b, out), want, tol_rel<T>, tol_abs<T>, "tanh_backward");
}

// The fused primitives (fused_primitives: the encoder layer uses them where a backend has them): the CPU's
// values, GELU within the transcendental tolerance (the bias sums to 1e-5 of the column sums' size), dropout's
// masks and scaled values bit for bit. 37 x 131: not a whole number of blocks or warps.
BOOST_AUTO_TEST_CASE_TEMPLATE(fused_primitives_match_cpu, T, real_types) {
    cuda_backend b;
    const std::size_t rows = 37, cols = 131, n = rows * cols;
    const auto t0 = real_values<T>(n, 91, -5, 5), bias = real_values<T>(cols, 92), dy = real_values<T>(n, 93);
    auto dt_in = upload(b, t0), dbias = upload(b, bias), ddy = upload(b, dy);
    auto y = b.allocate<T>(n), dt = b.allocate<T>(n);
    std::vector<T> want_t = t0, want_y(n), want_dt(n);

    b.bias_gelu_forward(rows, cols, dbias.data(), dt_in.data(), y.data());
    cpu_reference<T>::bias_gelu_forward(rows, cols, bias.data(), want_t.data(), want_y.data());
    check_close(download(b, dt_in), want_t, tol_rel<T>, tol_abs<T>, "bias_gelu_forward: t + bias");
    check_close(download(b, y), want_y, tol_rel<T>, tol_abs<T>, "bias_gelu_forward: gelu");

    const auto t = want_t;  // t with the bias, as the backward passes get it
    auto dt_biased = upload(b, t);
    std::vector<T> bias_grad0 = real_values<T>(cols, 94), want_bias_grad = bias_grad0;
    auto dbias_grad = upload(b, bias_grad0);
    b.bias_gelu_backward(rows, cols, dt_biased.data(), ddy.data(), dt.data(), dbias_grad.data());
    cpu_reference<T>::bias_gelu_backward(rows, cols, t.data(), dy.data(), want_dt.data(), want_bias_grad.data());
    check_close(download(b, dt), want_dt, tol_rel<T>, tol_abs<T>, "bias_gelu_backward: dt");
    check_close(download(b, dbias_grad), want_bias_grad, tol_rel<T>, tol_abs<T> * rows, "bias_gelu_backward: bias");
    b.bias_gelu_backward(rows, cols, dt_biased.data(), ddy.data(), dt.data(), static_cast<T*>(nullptr));  // no bias

    want_bias_grad = bias_grad0;
    dbias_grad = upload(b, bias_grad0);
    b.bias_gelu_forward_backward(rows, cols, dt_biased.data(), ddy.data(), y.data(), dt.data(), dbias_grad.data());
    cpu_reference<T>::bias_gelu_forward_backward(rows, cols, t.data(), dy.data(), want_y.data(), want_dt.data(),
                                                 want_bias_grad.data());
    check_close(download(b, y), want_y, tol_rel<T>, tol_abs<T>, "bias_gelu_forward_backward: gelu");
    check_close(download(b, dt), want_dt, tol_rel<T>, tol_abs<T>, "bias_gelu_forward_backward: dt");
    check_close(download(b, dbias_grad), want_bias_grad, tol_rel<T>, tol_abs<T> * rows,
                "bias_gelu_forward_backward: bias");

    const auto x = real_values<T>(n, 95);
    auto dx_in = upload(b, x);
    for (const T p : {T(0.1), T(0)}) {
        const std::uint64_t seed = 7, offset = 987654321;
        const std::string at = " p=" + std::to_string(p);
        std::vector<T> want(n), want_dx(n);
        auto out = b.allocate<T>(n);
        b.dropout_add_forward(n, p, seed, offset, ddy.data(), dx_in.data(), out.data());
        cpu_reference<T>::dropout_add_forward(n, p, seed, offset, dy.data(), x.data(), want.data());
        check_equal(download(b, out), want, "dropout_add_forward" + at);
        auto dx = b.allocate<T>(n);
        b.dropout_forward_backward(n, p, seed, offset, dx_in.data(), ddy.data(), out.data(), dx.data());
        cpu_reference<T>::dropout_forward_backward(n, p, seed, offset, x.data(), dy.data(), want.data(), want_dx.data());
        check_equal(download(b, out), want, "dropout_forward_backward: y" + at);
        check_equal(download(b, dx), want_dx, "dropout_forward_backward: dx" + at);
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(dropout_masks_equal_cpu_bit_for_bit, T, real_types) {
    cuda_backend b;
    const std::size_t n = 10007;
    const auto x = real_values<T>(n, 71);
    auto dx = upload(b, x), out = b.allocate<T>(n);
    for (const T p : {T(0.1), T(0.5), T(0)}) {
        const std::uint64_t seed = 42, offset = 123456789;
        std::vector<T> want(n);
        b.dropout_forward(n, p, seed, offset, dx.data(), out.data());
        cpu_reference<T>::dropout_forward(n, p, seed, offset, x.data(), want.data());
        const auto got = download(b, out);
        check_equal(got, want, "dropout_forward p=" + std::to_string(p));
        std::size_t dropped = 0;
        for (T v : got) dropped += v == T(0);
        if (p > T(0)) BOOST_TEST(dropped > 0u);
        b.dropout_backward(n, p, seed, offset, dx.data(), out.data());
        cpu_reference<T>::dropout_backward(n, p, seed, offset, x.data(), want.data());
        check_equal(download(b, out), want, "dropout_backward p=" + std::to_string(p));
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(random_fills_match_cpu, T, real_types) {
    cuda_backend b;
    const std::size_t n = 3001;
    auto out = b.allocate<T>(n);
    std::vector<T> want(n);
    // The CPU's `lo + (hi - lo) * u` may be contracted into an FMA by the host compiler: one rounding apart.
    b.fill_uniform(n, 5, 77, T(-0.25), T(0.75), out.data());
    cpu_reference<T>::fill_uniform(n, 5, 77, T(-0.25), T(0.75), want.data());
    check_close(download(b, out), want, 0.0, std::is_same_v<T, float> ? 1.2e-7 : 2.3e-16, "fill_uniform");
    b.fill_normal(n, 6, 99, T(1), T(0.02), out.data());
    cpu_reference<T>::fill_normal(n, 6, 99, T(1), T(0.02), want.data());
    check_close(download(b, out), want, std::is_same_v<T, float> ? 2.4e-7 : 1e-14, 0.0, "fill_normal");
}

// ---- row-wise ------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_CASE_TEMPLATE(layer_norm_matches_cpu, T, real_types) {
    cuda_backend b;
    // 700 rows: the parameter gradients are summed in chunks of rows (column_split), then the chunks in order.
    for (const std::size_t rows : {std::size_t{19}, std::size_t{700}})
    for (const std::size_t cols : {std::size_t{5}, std::size_t{768}})
        for (const bool param_grads : {true, false}) {
            const std::string what = "layer_norm rows=" + std::to_string(rows) + " cols=" + std::to_string(cols) +
                                     (param_grads ? "" : " frozen");
            const double sum_tol = 10 * tol_abs<T> * std::sqrt(static_cast<double>(rows));  // sums over rows
            const auto x = real_values<T>(rows * cols, 81, -3, 5), gamma = real_values<T>(cols, 82, 0.5, 1.5),
                       beta = real_values<T>(cols, 83), dy = real_values<T>(rows * cols, 84),
                       dg0 = real_values<T>(cols, 85), db0 = real_values<T>(cols, 86);
            const T eps = T(1e-5);
            auto dx_ = upload(b, x), dgamma_ = upload(b, gamma), dbeta_ = upload(b, beta), ddy = upload(b, dy);
            auto y = b.allocate<T>(rows * cols), mean = b.allocate<T>(rows), rstd = b.allocate<T>(rows);
            b.layer_norm_forward(rows, cols, eps, dx_.data(), dgamma_.data(), dbeta_.data(), y.data(), mean.data(),
                                 rstd.data());
            std::vector<T> wy(rows * cols), wmean(rows), wrstd(rows);
            cpu_reference<T>::layer_norm_forward(rows, cols, eps, x.data(), gamma.data(), beta.data(), wy.data(),
                                                 wmean.data(), wrstd.data());
            check_close(download(b, y), wy, tol_rel<T>, 10 * tol_abs<T>, what + " y");
            check_close(download(b, mean), wmean, tol_rel<T>, tol_abs<T>, what + " mean");
            check_close(download(b, rstd), wrstd, tol_rel<T>, tol_abs<T>, what + " rstd");

            // Backward from the CPU's saved statistics, so both sides see identical inputs.
            auto dmean = upload(b, wmean), drstd = upload(b, wrstd);
            auto dxo = b.allocate<T>(rows * cols);
            auto dg = upload(b, dg0), dbb = upload(b, db0);
            b.layer_norm_backward(rows, cols, dx_.data(), dgamma_.data(), dmean.data(), drstd.data(), ddy.data(),
                                  dxo.data(), param_grads ? dg.data() : nullptr, param_grads ? dbb.data() : nullptr);
            std::vector<T> wdx(rows * cols);
            auto wdg = dg0, wdb = db0;
            cpu_reference<T>::layer_norm_backward(rows, cols, x.data(), gamma.data(), wmean.data(), wrstd.data(),
                                                  dy.data(), wdx.data(), param_grads ? wdg.data() : nullptr,
                                                  param_grads ? wdb.data() : nullptr);
            check_close(download(b, dxo), wdx, 10 * tol_rel<T>, 10 * tol_abs<T>, what + " dx");
            check_close(download(b, dg), wdg, 10 * tol_rel<T>, sum_tol, what + " dgamma");
            check_close(download(b, dbb), wdb, 10 * tol_rel<T>, sum_tol, what + " dbeta");
        }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(attention_softmax_matches_cpu, T, real_types) {
    cuda_backend b;
    const std::size_t batch = 3, heads = 2, tq = 4;
    for (const std::size_t tk : {std::size_t{7}, std::size_t{300}})
        for (const bool with_bias : {true, false})
            for (const bool with_mask : {true, false}) {
                const std::string what = "attention_softmax_forward tk=" + std::to_string(tk) +
                                         (with_bias ? " bias" : "") + (with_mask ? " mask" : "");
                const std::size_t n = batch * heads * tq * tk;
                const auto scores = real_values<T>(n, 91, -4, 4), bias = real_values<T>(batch * tq * tk, 92, -2, 0);
                // batch 0: some keys masked; batch 1: every key masked (zero rows); batch 2: none masked.
                std::vector<std::uint8_t> mask(batch * tk, 1);
                for (std::size_t j = 0; j < tk; ++j) {
                    mask[j] = j % 3 != 1;
                    mask[tk + j] = 0;
                }
                auto ds = upload(b, scores), dbias = upload(b, bias);
                auto dmask = upload(b, mask);
                auto probs = b.allocate<T>(n);
                const T scale = T(0.125);
                b.attention_softmax_forward(batch, heads, tq, tk, scale, ds.data(), with_bias ? dbias.data() : nullptr,
                                            with_mask ? dmask.data() : nullptr, probs.data());
                std::vector<T> want(n);
                cpu_reference<T>::attention_softmax_forward(batch, heads, tq, tk, scale, scores.data(),
                                                            with_bias ? bias.data() : nullptr,
                                                            with_mask ? mask.data() : nullptr, want.data());
                const auto got = download(b, probs);
                check_close(got, want, tol_rel<T>, tol_abs<T>, what);
                if (with_mask)  // masked keys are exactly zero
                    for (std::size_t r = 0; r < batch * heads * tq; ++r)
                        for (std::size_t j = 0; j < tk; ++j)
                            if (!mask[(r / (heads * tq)) * tk + j]) BOOST_TEST(got[r * tk + j] == T(0));
            }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(softmax_backward_matches_cpu, T, real_types) {
    cuda_backend b;
    for (const std::size_t cols : {std::size_t{3}, std::size_t{513}}) {
        const std::size_t rows = 21;
        const auto y = real_values<T>(rows * cols, 101, 0, 1), dy = real_values<T>(rows * cols, 102);
        auto dy_ = upload(b, y), ddy = upload(b, dy), dx = b.allocate<T>(rows * cols);
        b.softmax_backward(rows, cols, dy_.data(), ddy.data(), T(0.5), dx.data());
        std::vector<T> want(rows * cols);
        cpu_reference<T>::softmax_backward(rows, cols, y.data(), dy.data(), T(0.5), want.data());
        check_close(download(b, dx), want, 10 * tol_rel<T>, 10 * tol_abs<T> * static_cast<double>(cols),
                    "softmax_backward cols=" + std::to_string(cols));
    }
}

// ---- indexing ------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_CASE_TEMPLATE(gather_and_scatter_rows_match_cpu_exactly, T, real_types) {
    cuda_backend b;
    const std::size_t vocab = 50, dim = 33, n = 200;
    const auto table = int_values<T>(vocab * dim, 111), dout = int_values<T>(n * dim, 112),
               grad0 = int_values<T>(vocab * dim, 113);
    std::vector<std::int32_t> ids(n);
    for (std::size_t i = 0; i < n; ++i) ids[i] = static_cast<std::int32_t>(detail::counter_hash(114, i) % 7 * 7);
    auto dtable = upload(b, table), ddout = upload(b, dout), dgrad = upload(b, grad0);
    auto dids = upload(b, ids);
    auto out = b.allocate<T>(n * dim);
    b.gather_rows(n, dim, dtable.data(), dids.data(), out.data());
    std::vector<T> want(n * dim);
    cpu_reference<T>::gather_rows(n, dim, table.data(), ids.data(), want.data());
    check_equal(download(b, out), want, "gather_rows");
    b.scatter_add_rows(n, dim, ddout.data(), dids.data(), dgrad.data());
    auto wgrad = grad0;
    cpu_reference<T>::scatter_add_rows(n, dim, dout.data(), ids.data(), wgrad.data());
    check_equal(download(b, dgrad), wgrad, "scatter_add_rows (repeated ids)");
}

// ---- losses --------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_CASE_TEMPLATE(cross_entropy_matches_cpu, T, real_types) {
    cuda_backend b;
    for (const std::size_t classes : {std::size_t{2}, std::size_t{1000}}) {
        const std::size_t rows = 17;
        const std::string what = "cross_entropy classes=" + std::to_string(classes);
        const auto logits = real_values<T>(rows * classes, 121, -8, 8);
        std::vector<std::int32_t> labels(rows);
        for (std::size_t r = 0; r < rows; ++r)
            labels[r] = r % 5 == 3 ? -1 : static_cast<std::int32_t>(detail::counter_hash(122, r) % classes);
        auto dl = upload(b, logits);
        auto dlab = upload(b, labels);
        auto probs = b.allocate<T>(rows * classes), losses = b.allocate<T>(rows), grad = b.allocate<T>(rows * classes);
        b.cross_entropy_forward(rows, classes, dl.data(), dlab.data(), probs.data(), losses.data());
        std::vector<T> wp(rows * classes), wl(rows), wg(rows * classes);
        cpu_reference<T>::cross_entropy_forward(rows, classes, logits.data(), labels.data(), wp.data(), wl.data());
        check_close(download(b, probs), wp, tol_rel<T>, tol_abs<T>, what + " probs");
        check_close(download(b, losses), wl, tol_rel<T>, tol_abs<T>, what + " losses");
        // Backward from the CPU's probabilities: identical inputs on both sides, so exact.
        auto dp = upload(b, wp);
        b.cross_entropy_backward(rows, classes, dp.data(), dlab.data(), T(0.25), grad.data());
        cpu_reference<T>::cross_entropy_backward(rows, classes, wp.data(), labels.data(), T(0.25), wg.data());
        check_equal(download(b, grad), wg, what + " backward");
    }
}

// ---- reductions and optimizer -------------------------------------------------------------------------
BOOST_AUTO_TEST_CASE_TEMPLATE(reductions_match_cpu, T, real_types) {
    cuda_backend b;
    for (const std::size_t n : {std::size_t{1}, std::size_t{1000}, std::size_t{300001}}) {
        const auto xi = int_values<T>(n, 131), yi = int_values<T>(n, 132);
        auto dxi = upload(b, xi), dyi = upload(b, yi);
        // Integer data: every partial sum is exact in double, so the order does not matter.
        BOOST_TEST(b.sum_squares(n, dxi.data()) == cpu_reference<T>::sum_squares(n, xi.data()));
        BOOST_TEST(b.dot(n, dxi.data(), dyi.data()) == cpu_reference<T>::dot(n, xi.data(), yi.data()));
        const auto xr = real_values<T>(n, 133), yr = real_values<T>(n, 134);
        auto dxr = upload(b, xr), dyr = upload(b, yr);
        const double ss = cpu_reference<T>::sum_squares(n, xr.data());
        BOOST_TEST(std::abs(b.sum_squares(n, dxr.data()) - ss) <= 1e-12 * ss);
        const double dt = cpu_reference<T>::dot(n, xr.data(), yr.data());
        BOOST_TEST(std::abs(b.dot(n, dxr.data(), dyr.data()) - dt) <= 1e-12 * ss);
        BOOST_TEST(b.dot(n, dxr.data(), dyr.data()) == b.dot(n, dxr.data(), dyr.data()));  // deterministic
    }
    BOOST_TEST(b.sum_squares<T>(0, nullptr) == 0.0);
}

// gradient_norm's path: sums of squares added on the device, the total copied back once, equal to the host's
// running sum of sum_squares (the same partials, and adding 1.0 * s rounds as += s).
BOOST_AUTO_TEST_CASE_TEMPLATE(sum_squares_accumulate_matches_sum_squares, T, real_types) {
    cuda_backend b;
    auto total = b.allocate<double>(1);
    b.fill(total.data(), 1, 0.0);
    double host_total = 0;
    for (const std::size_t n : {std::size_t{1}, std::size_t{1000}, std::size_t{0}, std::size_t{300001}}) {
        const auto x = real_values<T>(n, 135 + static_cast<unsigned>(n % 7));
        auto dx = upload(b, x);
        b.sum_squares_accumulate(n, dx.data(), total.data());
        host_total += b.sum_squares(n, dx.data());
    }
    double device_total = -1;
    b.copy_to_host(total.data(), &device_total, 1);
    BOOST_TEST(device_total == host_total);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(adamw_matches_cpu, T, real_types) {
    cuda_backend b;
    const std::size_t n = 2049;
    auto param = real_values<T>(n, 141), m = std::vector<T>(n, T(0)), v = std::vector<T>(n, T(0));
    auto dp = upload(b, param), dm = upload(b, m), dv = upload(b, v);
    const T lr = T(1e-3), beta1 = T(0.9), beta2 = T(0.999), eps = T(1e-8), wd = T(0.01);
    for (int step = 1; step <= 3; ++step) {
        const auto g = real_values<T>(n, 150 + static_cast<std::uint64_t>(step));
        auto dg = upload(b, g);
        const T bc1 = T(1) - static_cast<T>(std::pow(0.9, step)), bc2 = T(1) - static_cast<T>(std::pow(0.999, step));
        b.adamw_update(n, lr, beta1, beta2, eps, wd, bc1, bc2, dg.data(), dp.data(), dm.data(), dv.data());
        cpu_reference<T>::adamw_update(n, lr, beta1, beta2, eps, wd, bc1, bc2, g.data(), param.data(), m.data(),
                                       v.data());
        const std::string what = "adamw step " + std::to_string(step);
        check_close(download(b, dp), param, tol_rel<T>, tol_abs<T>, what + " param");
        check_close(download(b, dm), m, tol_rel<T>, tol_abs<T>, what + " m");
        check_close(download(b, dv), v, tol_rel<T>, tol_abs<T>, what + " v");
    }
}

// AdamW over many tensors in one launch (segmented_adamw): the bits of one adamw_update per tensor, each
// segment with its own rate, decay and bias corrections; sizes from 1 to past one block's reach and empty.
BOOST_AUTO_TEST_CASE_TEMPLATE(adamw_segments_match_one_update_per_tensor, T, real_types) {
    cuda_backend b;
    const std::vector<std::size_t> sizes{1, 33, 0, 300001, 1024, 7};
    using buffer = typename cuda_backend::template buffer<T>;
    std::vector<buffer> g, p1, m1, v1, p2, m2, v2;
    std::vector<adamw_segment<T>> segments;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        const std::size_t n = sizes[i];
        const auto gi = real_values<T>(n, 160 + i), pi = real_values<T>(n, 170 + i), mi = real_values<T>(n, 180 + i);
        auto vi = real_values<T>(n, 190 + i);
        for (auto& x : vi) x = x * x;  // second moments are >= 0
        g.push_back(upload(b, gi));
        p1.push_back(upload(b, pi));
        m1.push_back(upload(b, mi));
        v1.push_back(upload(b, vi));
        p2.push_back(upload(b, pi));
        m2.push_back(upload(b, mi));
        v2.push_back(upload(b, vi));
        const T lr = T(1e-3) * T(i + 1), wd = i % 2 ? T(0) : T(0.01);
        const T bc1 = T(1) - static_cast<T>(std::pow(0.9, i + 1)), bc2 = T(1) - static_cast<T>(std::pow(0.999, i + 1));
        b.adamw_update(n, lr, T(0.9), T(0.999), T(1e-8), wd, bc1, bc2, g[i].data(), p1[i].data(), m1[i].data(),
                       v1[i].data());
        segments.push_back(adamw_segment<T>::make(n, lr, wd, bc1, bc2, g[i].data(), p2[i].data(), m2[i].data(),
                                                  v2[i].data()));
    }
    b.adamw_update_segments(std::span<const adamw_segment<T>>(segments), T(0.9), T(0.999), T(1e-8));
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        const std::string what = "segment " + std::to_string(i);
        BOOST_TEST((download(b, p2[i]) == download(b, p1[i])), what + " param");
        BOOST_TEST((download(b, m2[i]) == download(b, m1[i])), what + " m");
        BOOST_TEST((download(b, v2[i]) == download(b, v1[i])), what + " v");
    }
}

// ---- NaN never hides ----------------------------------------------------------------------------------
/// The same NaN pattern as the CPU, and the finite values close to it.
template <class T>
void check_nan_pattern(const std::vector<T>& got, const std::vector<T>& want, const std::string& what) {
    BOOST_TEST_REQUIRE(got.size() == want.size());
    std::size_t bad = 0, first = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        const bool ok = std::isnan(want[i]) ? std::isnan(got[i])
                                            : std::abs(double(got[i]) - double(want[i])) <=
                                                  tol_abs<T> + tol_rel<T> * std::abs(double(want[i]));
        if (!ok && bad++ == 0) first = i;
    }
    BOOST_TEST(bad == 0u, what << ": " << bad << " elements differ; first [" << first << "]: got "
                               << (bad ? got[first] : T(0)) << ", want " << (bad ? want[first] : T(0)));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(nan_propagates_as_on_the_cpu, T, real_types) {
    cuda_backend b;
    const T nan = std::numeric_limits<T>::quiet_NaN();
    // Softmax: one block per row, many threads per row at tk = 300, so a NaN sits in one thread's share and
    // must survive the block's max reduction (b > a alone dropped it; an all-NaN row then passed for a masked
    // one and came out zero).
    for (const std::size_t tk : {std::size_t{7}, std::size_t{300}}) {
        const std::size_t batch = 2, heads = 2, tq = 3, n = batch * heads * tq * tk;
        auto scores = real_values<T>(n, 161, -4, 4);
        std::vector<std::uint8_t> mask(batch * tk, 1);
        mask[tk - 1] = 0;  // batch 0: last key padded
        for (std::size_t j = 0; j < tk; ++j) scores[j] = nan;  // (0, 0, 0): all NaN
        scores[tk + tk / 2] = nan;                            // (0, 0, 1): one NaN among the real keys
        scores[2 * tk + tk - 1] = nan;                        // (0, 0, 2): NaN only at the padded key
        scores[(heads * tq + 1) * tk + tk - 1] = nan;         // batch 1, last key, not padded
        auto ds = upload(b, scores);
        auto dmask = upload(b, mask);
        auto probs = b.allocate<T>(n);
        b.attention_softmax_forward(batch, heads, tq, tk, T(0.5), ds.data(), static_cast<const T*>(nullptr),
                                    dmask.data(), probs.data());
        std::vector<T> want(n);
        cpu_reference<T>::attention_softmax_forward(batch, heads, tq, tk, T(0.5), scores.data(), nullptr, mask.data(),
                                                    want.data());
        const auto got = download(b, probs);
        const std::string what = "attention_softmax_forward with NaN, tk=" + std::to_string(tk);
        check_nan_pattern(got, want, what);
        for (std::size_t j = 0; j < tk; ++j) {
            BOOST_TEST(std::isnan(got[j]), what << " all-NaN row, key " << j);
            BOOST_TEST(std::isnan(got[tk + j]), what << " one-NaN row, key " << j);
            BOOST_TEST(std::isfinite(got[2 * tk + j]), what << " NaN at a padded key, key " << j);
            BOOST_TEST(std::isnan(got[(heads * tq + 1) * tk + j]), what << " batch 1, key " << j);
        }
    }
    // Cross-entropy: a NaN logit in one thread's share of a 1000-class row.
    {
        const std::size_t rows = 3, classes = 1000;
        auto logits = real_values<T>(rows * classes, 171, -8, 8);
        logits[classes + 777] = nan;                  // row 1, counted
        logits[2 * classes + 3] = nan;                // row 2, ignored
        const std::vector<std::int32_t> labels{5, 6, -1};
        auto dl = upload(b, logits);
        auto dlab = upload(b, labels);
        auto probs = b.allocate<T>(rows * classes), losses = b.allocate<T>(rows);
        b.cross_entropy_forward(rows, classes, dl.data(), dlab.data(), probs.data(), losses.data());
        std::vector<T> wp(rows * classes), wl(rows);
        cpu_reference<T>::cross_entropy_forward(rows, classes, logits.data(), labels.data(), wp.data(), wl.data());
        const auto gl = download(b, losses);
        check_nan_pattern(gl, wl, "cross_entropy losses with NaN");
        check_nan_pattern(download(b, probs), wp, "cross_entropy probs with NaN");
        BOOST_TEST(std::isfinite(gl[0]));
        BOOST_TEST(std::isnan(gl[1]));
        BOOST_TEST(gl[2] == T(0));  // ignored
    }
    // Dropout: a dropped NaN or infinity is NaN (x - x), a dropped finite value +0, bit for bit the CPU's.
    {
        const std::size_t n = 5003;
        auto x = real_values<T>(n, 181);
        for (std::size_t i = 0; i < n; i += 3) x[i] = i % 2 ? nan : std::numeric_limits<T>::infinity();
        auto dx = upload(b, x), out = b.allocate<T>(n);
        std::vector<T> want(n);
        b.dropout_forward(n, T(0.5), 42, 7, dx.data(), out.data());
        cpu_reference<T>::dropout_forward(n, T(0.5), 42, 7, x.data(), want.data());
        const auto got = download(b, out);
        check_equal(got, want, "dropout_forward with NaN and infinity");
        for (std::size_t i = 0; i < n; i += 3) BOOST_TEST(!std::isfinite(got[i]), "dropout element " << i);
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(relu_and_gelu_new_match_cpu_with_nan_and_infinity, T, real_types) {
    // ReLU is exact. gelu_new runs the CPU's operations in the CPU's order, so it differs by device tanh's last
    // ulps (the backward, given the CPU's saved tanh, not even by those) and by any FMA the host compiler formed.
    cuda_backend b;
    const std::size_t n = 4099;
    const T nan = std::numeric_limits<T>::quiet_NaN(), inf = std::numeric_limits<T>::infinity();
    auto x = real_values<T>(n, 191, -8, 8), dy = real_values<T>(n, 192);
    const T specials[] = {T(0), -T(0), nan, inf, -inf, T(1e4), T(-1e4)};
    for (std::size_t i = 0; i < std::size(specials); ++i) x[37 * i + 5] = specials[i];
    dy[3000] = nan;  // passes through where x > 0, is dropped where x <= 0 (torch's threshold_backward)
    dy[3001] = nan;
    x[3000] = T(1);
    x[3001] = T(-1);
    auto dx_in = upload(b, x), ddy = upload(b, dy), y = b.allocate<T>(n), t = b.allocate<T>(n), dx = b.allocate<T>(n);
    std::vector<T> want(n), want_t(n);

    b.relu_forward(n, dx_in.data(), y.data());
    cpu_reference<T>::relu_forward(n, x.data(), want.data());
    check_equal(download(b, y), want, "relu_forward");
    BOOST_TEST(std::isnan(download(b, y)[37 * 2 + 5]), "relu of NaN");
    b.relu_backward(n, dx_in.data(), ddy.data(), dx.data());
    cpu_reference<T>::relu_backward(n, x.data(), dy.data(), want.data());
    check_equal(download(b, dx), want, "relu_backward");
    auto io = upload(b, dy);
    b.relu_backward(n, dx_in.data(), io.data(), io.data());
    check_equal(download(b, io), want, "relu_backward in place");

    b.gelu_new_forward(n, dx_in.data(), y.data(), t.data());
    cpu_reference<T>::gelu_new_forward(n, x.data(), want.data(), want_t.data());
    check_nan_pattern(download(b, t), want_t, "gelu_new_forward's tanh");
    check_nan_pattern(download(b, y), want, "gelu_new_forward");
    auto cpu_t = upload(b, want_t);
    b.gelu_new_backward(n, dx_in.data(), cpu_t.data(), ddy.data(), dx.data());
    cpu_reference<T>::gelu_new_backward(n, x.data(), want_t.data(), dy.data(), want.data());
    check_nan_pattern(download(b, dx), want, "gelu_new_backward");
    io = upload(b, dy);
    b.gelu_new_backward(n, dx_in.data(), cpu_t.data(), io.data(), io.data());
    check_nan_pattern(download(b, io), want, "gelu_new_backward in place");
}

BOOST_AUTO_TEST_CASE(anomaly_detector_finds_the_first_non_finite_element_on_the_device) {
    cuda_backend b;
    std::vector<float> v(4096, 0.25f);
    v[3001] = std::numeric_limits<float>::infinity();
    v[3500] = std::numeric_limits<float>::quiet_NaN();
    const auto t = tensor<cuda_backend, float>::from_host(b, {4, 1024}, v);
    anomaly_detector detect;
    try {
        detect.check(anomaly_pass::forward, "encoder.layer.0", "output", "output", t);
        BOOST_FAIL("no anomaly_error");
    } catch (const anomaly_error& e) {
        BOOST_TEST(e.module() == "encoder.layer.0.output");
        BOOST_TEST(e.index() == 3001u);
        BOOST_TEST(std::string(e.what()).find("(2, 953)") != std::string::npos, e.what());
    }
    const auto finite = tensor<cuda_backend, float>::filled(b, {4, 1024}, 1.5f);
    BOOST_CHECK_NO_THROW(detect.check(anomaly_pass::backward, "pooler", "", "input gradient", finite));
    BOOST_TEST(detect.checked() == 2u);
}

BOOST_AUTO_TEST_SUITE_END()
