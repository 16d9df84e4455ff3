#define BOOST_TEST_MODULE backend_gemm_providers
#include <boost/mpl/list.hpp>
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "hyperadapt/backend/cpu.hpp"
#if defined(HYPERADAPT_TEST_WITH_CBLAS)
#include "hyperadapt/backend/cpu_cblas.hpp"
#endif
#include "support/max_keeping_nan.hpp"

// Every GEMM entry point of the CPU backend (gemm, gemm_strided_batched, gemm_batched_grid) on every GEMM
// provider, in float and double, against a long-double triple loop: every transpose, leading dimensions wider
// than the rows, alpha and beta of every kind (beta 0 must overwrite NaN, as BLAS does: the allocator hands out
// recycled memory), shapes with a side of one, and products large enough for the backend to cut into pieces on
// two threads. This is the provider boundary: the layer tests run on one provider (support/backends.hpp), so a
// provider that differs anywhere a layer could reach must fail here.

using namespace hyperadapt;
using hyperadapt::test::max_keeping_nan;

namespace {

#if defined(HYPERADAPT_TEST_WITH_CBLAS)
using providers = boost::mpl::list<cpu, cpu_blas>;
#else
using providers = boost::mpl::list<cpu>;
#endif

template <class T>
std::vector<T> random_values(std::size_t n, std::uint32_t seed) {
    std::mt19937 g(seed);
    std::uniform_real_distribution<double> d(-1.0, 1.0);
    std::vector<T> v(n);
    for (auto& x : v) x = static_cast<T>(d(g));
    return v;
}

struct product_shape {
    std::size_t m, n, k;
};

/// Where one product's operands sit: leading dimensions (each wider than the stored rows) and offsets.
struct layout {
    std::size_t lda, ldb, ldc;
};

layout padded_layout(const product_shape& s, transpose ta, transpose tb) {
    return {(ta == transpose::yes ? s.m : s.k) + 3, (tb == transpose::yes ? s.k : s.n) + 2, s.n + 5};
}

/// C = alpha op(A) op(B) + beta C in long double, beta 0 ignoring C (BLAS's convention).
template <class T>
void reference_product(transpose ta, transpose tb, const product_shape& s, long double alpha, const T* a,
                       std::size_t lda, const T* b, std::size_t ldb, long double beta, std::vector<long double>& c,
                       std::size_t c_offset, std::size_t ldc) {
    for (std::size_t i = 0; i < s.m; ++i)
        for (std::size_t j = 0; j < s.n; ++j) {
            long double sum = 0;
            for (std::size_t p = 0; p < s.k; ++p) {
                const long double av = ta == transpose::yes ? a[p * lda + i] : a[i * lda + p];
                const long double bv = tb == transpose::yes ? b[j * ldb + p] : b[p * ldb + j];
                sum += av * bv;
            }
            long double& out = c[c_offset + i * ldc + j];
            out = alpha * sum + (beta == 0 ? 0.0L : beta * out);
        }
}

/// max |ours - reference| over the product's entries relative to the largest |reference|, NaN when any entry
/// is NaN; entries outside the products (row padding, gaps between batch entries) must be untouched.
template <class T>
double relative_error(const std::vector<T>& ours, const std::vector<long double>& reference,
                      const std::vector<bool>& written, const std::vector<T>& before, std::string& untouched_failure) {
    double diff = 0, scale = 0;
    for (std::size_t i = 0; i < ours.size(); ++i) {
        if (!written[i]) {
            const bool same = (std::isnan(before[i]) && std::isnan(ours[i])) || before[i] == ours[i];
            if (!same && untouched_failure.empty()) untouched_failure = "element " + std::to_string(i) + " outside C changed";
            continue;
        }
        diff = max_keeping_nan(diff, std::abs(static_cast<double>(static_cast<long double>(ours[i]) - reference[i])));
        scale = std::max(scale, std::abs(static_cast<double>(reference[i])));
    }
    return diff / std::max(scale, 1e-30);
}

template <class T>
double tolerance(std::size_t k) {
    return (std::is_same_v<T, float> ? 2e-6 : 1e-14) * std::sqrt(static_cast<double>(k) + 1.0) * 8.0;
}

struct scalars {
    double alpha, beta;
};

template <class B, class T>
void check_single_products(B& backend, const std::string& label) {
    const std::vector<product_shape> shapes{{1, 1, 1}, {1, 7, 5}, {6, 1, 9}, {5, 8, 1}, {13, 11, 17},
                                            {33, 29, 64}, {517, 96, 80}, {64, 1029, 40}};
    const std::vector<scalars> coefficients{{1.0, 0.0}, {0.5, 1.0}, {-1.5, 0.25}};
    std::uint32_t seed = 1;
    for (const auto& s : shapes)
        for (const transpose ta : {transpose::no, transpose::yes})
            for (const transpose tb : {transpose::no, transpose::yes})
                for (const auto [alpha, beta] : coefficients) {
                    const layout l = padded_layout(s, ta, tb);
                    const auto a = random_values<T>((ta == transpose::yes ? s.k : s.m) * l.lda, seed++);
                    const auto b = random_values<T>((tb == transpose::yes ? s.n : s.k) * l.ldb, seed++);
                    auto c = random_values<T>(s.m * l.ldc, seed++);
                    std::vector<bool> written(c.size(), false);
                    for (std::size_t i = 0; i < s.m; ++i)
                        for (std::size_t j = 0; j < s.n; ++j) {
                            written[i * l.ldc + j] = true;
                            // beta 0: C's old values must not matter, not even NaN (recycled memory).
                            if (beta == 0.0) c[i * l.ldc + j] = std::numeric_limits<T>::quiet_NaN();
                        }
                    const auto before = c;
                    std::vector<long double> reference(c.begin(), c.end());
                    reference_product(ta, tb, s, alpha, a.data(), l.lda, b.data(), l.ldb, beta, reference, 0, l.ldc);
                    backend.gemm(ta, tb, s.m, s.n, s.k, static_cast<T>(alpha), a.data(), l.lda, b.data(), l.ldb,
                                 static_cast<T>(beta), c.data(), l.ldc);
                    std::string untouched;
                    const double error = relative_error(c, reference, written, before, untouched);
                    std::ostringstream where;
                    where << label << " gemm m " << s.m << " n " << s.n << " k " << s.k << " ta "
                          << (ta == transpose::yes) << " tb " << (tb == transpose::yes) << " alpha " << alpha
                          << " beta " << beta;
                    BOOST_TEST_REQUIRE(error <= tolerance<T>(s.k), where.str() << ": relative error " << error);
                    BOOST_TEST_REQUIRE(untouched.empty(), where.str() << ": " << untouched);
                }
}

/// A grid of outer x inner products with strides that leave gaps between entries (strided-batched is the
/// grid with inner 1); entry (i, j) is compared with its own reference product.
template <class B, class T>
void check_grids(B& backend, const std::string& label, bool strided_batched) {
    const std::vector<product_shape> shapes{{1, 4, 3}, {9, 7, 5}, {16, 16, 32}, {40, 128, 64}};
    std::uint32_t seed = 1000;
    for (const auto& s : shapes)
        for (const transpose ta : {transpose::no, transpose::yes})
            for (const transpose tb : {transpose::no, transpose::yes}) {
                const layout l = padded_layout(s, ta, tb);
                const std::size_t outer = strided_batched ? 5 : 3, inner = strided_batched ? 1 : 4;
                const std::size_t a_one = (ta == transpose::yes ? s.k : s.m) * l.lda;
                const std::size_t b_one = (tb == transpose::yes ? s.n : s.k) * l.ldb;
                const std::size_t c_one = s.m * l.ldc;
                // Inner entries interleave in memory only through their offsets: a gap of 7 elements after
                // each entry, and the outer stride spans all inner entries plus another gap of 11.
                const grid_strides sa{static_cast<std::ptrdiff_t>(inner * (a_one + 7) + 11), static_cast<std::ptrdiff_t>(a_one + 7)};
                const grid_strides sb{static_cast<std::ptrdiff_t>(inner * (b_one + 7) + 11), static_cast<std::ptrdiff_t>(b_one + 7)};
                const grid_strides sc{static_cast<std::ptrdiff_t>(inner * (c_one + 7) + 11), static_cast<std::ptrdiff_t>(c_one + 7)};
                const auto a = random_values<T>(outer * static_cast<std::size_t>(sa.outer), seed++);
                const auto b = random_values<T>(outer * static_cast<std::size_t>(sb.outer), seed++);
                auto c = random_values<T>(outer * static_cast<std::size_t>(sc.outer), seed++);
                const double alpha = 0.75, beta = strided_batched ? 0.0 : -0.5;
                std::vector<bool> written(c.size(), false);
                std::vector<long double> reference(c.begin(), c.end());
                for (std::size_t i = 0; i < outer; ++i)
                    for (std::size_t j = 0; j < inner; ++j) {
                        const std::size_t ao = i * static_cast<std::size_t>(sa.outer) + j * static_cast<std::size_t>(sa.inner);
                        const std::size_t bo = i * static_cast<std::size_t>(sb.outer) + j * static_cast<std::size_t>(sb.inner);
                        const std::size_t co = i * static_cast<std::size_t>(sc.outer) + j * static_cast<std::size_t>(sc.inner);
                        for (std::size_t r = 0; r < s.m; ++r)
                            for (std::size_t q = 0; q < s.n; ++q) {
                                written[co + r * l.ldc + q] = true;
                                if (beta == 0.0) c[co + r * l.ldc + q] = std::numeric_limits<T>::quiet_NaN();
                            }
                        reference_product(ta, tb, s, alpha, a.data() + ao, l.lda, b.data() + bo, l.ldb, beta,
                                          reference, co, l.ldc);
                    }
                const auto before = c;
                if (strided_batched)
                    backend.gemm_strided_batched(ta, tb, s.m, s.n, s.k, static_cast<T>(alpha), a.data(), l.lda,
                                                 sa.outer, b.data(), l.ldb, sb.outer, static_cast<T>(beta), c.data(),
                                                 l.ldc, sc.outer, outer);
                else
                    backend.gemm_batched_grid(ta, tb, s.m, s.n, s.k, static_cast<T>(alpha), a.data(), l.lda, sa,
                                              b.data(), l.ldb, sb, static_cast<T>(beta), c.data(), l.ldc, sc, outer,
                                              inner);
                std::string untouched;
                const double error = relative_error(c, reference, written, before, untouched);
                std::ostringstream where;
                where << label << (strided_batched ? " gemm_strided_batched" : " gemm_batched_grid") << " m " << s.m
                      << " n " << s.n << " k " << s.k << " ta " << (ta == transpose::yes) << " tb "
                      << (tb == transpose::yes);
                BOOST_TEST_REQUIRE(error <= tolerance<T>(s.k), where.str() << ": relative error " << error);
                BOOST_TEST_REQUIRE(untouched.empty(), where.str() << ": " << untouched);
            }
}

template <class B>
void check_every_entry_point(int threads) {
    B backend(typename B::options{.threads = threads});
    const std::string label = std::string(B::gemm_provider::name) + " on " + std::to_string(threads) + " threads";
    check_single_products<B, float>(backend, label + " float");
    check_single_products<B, double>(backend, label + " double");
    for (const bool strided : {true, false}) {
        check_grids<B, float>(backend, label + " float", strided);
        check_grids<B, double>(backend, label + " double", strided);
    }
}

}  // namespace

BOOST_AUTO_TEST_CASE_TEMPLATE(every_entry_point_matches_a_long_double_reference_on_one_thread, B, providers) {
    check_every_entry_point<B>(1);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(every_entry_point_matches_a_long_double_reference_on_two_threads, B, providers) {
    check_every_entry_point<B>(2);
}
