// The CPU backend's work-claiming pool (backend/cpu_work_pool.hpp) and the backend's loops over it: every
// chunk runs exactly once whatever the thread count, exceptions reach the caller, nested and concurrent loops
// run inline, and the backend's parallel primitives give the single-thread results (products and row-wise
// work to rounding, reductions bit for bit from run to run).
#define BOOST_TEST_MODULE cpu_work_pool
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/backend/cpu_work_pool.hpp"
#if defined(HYPERADAPT_TEST_WITH_CBLAS)
#include "hyperadapt/backend/cpu_cblas.hpp"
#endif

using hyperadapt::detail::work_pool;

BOOST_AUTO_TEST_CASE(every_chunk_runs_exactly_once) {
    for (const int threads : {1, 2, 3, 8}) {
        work_pool pool(threads);
        BOOST_TEST(pool.threads() == threads);
        for (const std::size_t chunks : {0u, 1u, 2u, 3u, 7u, 64u, 1000u}) {
            for (int repeat = 0; repeat < 50; ++repeat) {
                std::vector<std::atomic<int>> hits(chunks);
                pool.run(chunks, [&](std::size_t i) { hits[i].fetch_add(1, std::memory_order_relaxed); });
                for (std::size_t i = 0; i < chunks; ++i)
                    BOOST_TEST_REQUIRE(hits[i].load() == 1, "threads " << threads << ", chunks " << chunks
                                                                       << ", repeat " << repeat << ", chunk " << i);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(more_chunks_than_one_claim_word_counts_are_claimed_in_groups) {
    work_pool pool(2);
    const std::size_t chunks = work_pool::max_chunks * 2 + 5;
    std::vector<std::uint8_t> hits(chunks, 0);
    pool.run(chunks, [&](std::size_t i) { ++hits[i]; });  // groups are disjoint: no two threads share an index
    for (std::size_t i = 0; i < chunks; ++i) BOOST_TEST_REQUIRE(hits[i] == 1, "chunk " << i);
}

BOOST_AUTO_TEST_CASE(loops_back_to_back_see_each_others_writes) {
    // Each loop reads what the previous one wrote, as a step's primitives do; a chunk that read a stale value
    // (written by another thread in an earlier loop) would leave its elements below 2^rounds.
    work_pool pool(4);
    std::vector<double> v(4096, 1.0);
    const int rounds = 1000;  // 2^1000 is a double, exactly
    for (int round = 0; round < rounds; ++round)
        pool.run(64, [&](std::size_t c) {
            // chunks cover a shifted range each round, so an element is written by different chunks
            for (std::size_t i = c * 64; i < (c + 1) * 64; ++i) v[(i + static_cast<std::size_t>(round) * 17) % v.size()] *= 2;
        });
    for (const double x : v) BOOST_TEST_REQUIRE(x == std::ldexp(1.0, rounds));
}

BOOST_AUTO_TEST_CASE(an_exception_in_a_chunk_reaches_the_caller_and_the_others_still_run) {
    // On helpers, and inline (one thread; a loop inside a chunk), alike.
    for (const int threads : {3, 1}) {
        work_pool pool(threads);
        std::atomic<int> ran{0};
        BOOST_CHECK_THROW(pool.run(40,
                                   [&](std::size_t i) {
                                       ran.fetch_add(1);
                                       if (i == 17 || i == 30) throw std::runtime_error("chunk " + std::to_string(i));
                                   }),
                          std::runtime_error);
        BOOST_TEST(ran.load() == 40, "threads " << threads);
        // The pool is usable afterwards.
        std::atomic<int> again{0};
        pool.run(10, [&](std::size_t) { again.fetch_add(1); });
        BOOST_TEST(again.load() == 10);
    }
    work_pool pool(2);
    std::atomic<int> inner{0};
    BOOST_CHECK_THROW(pool.run(2,
                               [&](std::size_t) {
                                   pool.run(8, [&](std::size_t j) {
                                       inner.fetch_add(1);
                                       if (j == 0) throw std::runtime_error("inner chunk 0");
                                   });
                               }),
                      std::runtime_error);
    BOOST_TEST(inner.load() == 16);  // both nested loops ran every chunk
}

BOOST_AUTO_TEST_CASE(a_loop_inside_a_chunk_runs_inline) {
    work_pool pool(3);
    std::vector<std::atomic<int>> hits(16 * 16);
    pool.run(16, [&](std::size_t i) { pool.run(16, [&](std::size_t j) { hits[i * 16 + j].fetch_add(1); }); });
    for (auto& h : hits) BOOST_TEST_REQUIRE(h.load() == 1);
}

BOOST_AUTO_TEST_CASE(two_callers_share_one_pool) {
    // A second caller while a loop runs does its loop itself; both finish with every chunk run once.
    work_pool pool(2);
    std::vector<std::atomic<int>> a(5000), b(5000);
    std::thread other([&] {
        for (int r = 0; r < 100; ++r) pool.run(50, [&](std::size_t c) {
                for (std::size_t i = c * 100; i < (c + 1) * 100; ++i) a[i].fetch_add(1);
            });
    });
    for (int r = 0; r < 100; ++r) pool.run(50, [&](std::size_t c) {
            for (std::size_t i = c * 100; i < (c + 1) * 100; ++i) b[i].fetch_add(1);
        });
    other.join();
    for (std::size_t i = 0; i < a.size(); ++i) {
        BOOST_TEST_REQUIRE(a[i].load() == 100);
        BOOST_TEST_REQUIRE(b[i].load() == 100);
    }
}

namespace {

std::vector<float> random_vector(std::size_t n, std::uint32_t seed) {
    std::mt19937 g(seed);
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<float> v(n);
    for (auto& x : v) x = d(g);
    return v;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double m = 0;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(static_cast<double>(a[i]) - b[i]));
    return m;
}

// Products large enough to be cut into pieces (m x n x k >= 2^21), both orientations and every transpose, on
// `threads` threads against one thread.
template <class B>
void products_match_one_thread(int threads) {
    B one(typename B::options{.threads = 1}), many(typename B::options{.threads = threads});
    using hyperadapt::transpose;
    struct shape { std::size_t m, n, k; };
    for (const shape s : {shape{517, 96, 80}, shape{64, 1029, 64}, shape{300, 300, 33}, shape{2048, 48, 40}}) {
        for (const transpose ta : {transpose::no, transpose::yes})
            for (const transpose tb : {transpose::no, transpose::yes}) {
                const std::size_t lda = ta == transpose::yes ? s.m + 3 : s.k + 1;
                const std::size_t ldb = tb == transpose::yes ? s.k + 2 : s.n + 5;
                const std::size_t ldc = s.n + 7;
                const auto a = random_vector((ta == transpose::yes ? s.k : s.m) * lda, 1);
                const auto b = random_vector((tb == transpose::yes ? s.n : s.k) * ldb, 2);
                auto c1 = random_vector(s.m * ldc, 3), cm = c1;
                one.gemm(ta, tb, s.m, s.n, s.k, 0.5f, a.data(), lda, b.data(), ldb, 0.25f, c1.data(), ldc);
                many.gemm(ta, tb, s.m, s.n, s.k, 0.5f, a.data(), lda, b.data(), ldb, 0.25f, cm.data(), ldc);
                // Padding columns of C (beyond n in each row) must be untouched: the same random values.
                BOOST_TEST_REQUIRE(max_abs_diff(c1, cm) <= 1e-4 * std::sqrt(static_cast<double>(s.k)),
                                   "m " << s.m << " n " << s.n << " k " << s.k << " ta " << (ta == transpose::yes)
                                        << " tb " << (tb == transpose::yes) << " threads " << threads);
            }
    }
}

template <class B>
void row_wise_work_matches_one_thread(int threads) {
    B one(typename B::options{.threads = 1}), many(typename B::options{.threads = threads});
    const std::size_t rows = 1531, cols = 384;  // above the threshold; rows not a multiple of any chunk count
    const auto x = random_vector(rows * cols, 4), dy = random_vector(rows * cols, 5);
    const auto gamma = random_vector(cols, 6), beta = random_vector(cols, 7);
    std::vector<float> y1(rows * cols), ym(rows * cols), mean1(rows), meanm(rows), rstd1(rows), rstdm(rows);
    one.layer_norm_forward(rows, cols, 1e-12f, x.data(), gamma.data(), beta.data(), y1.data(), mean1.data(), rstd1.data());
    many.layer_norm_forward(rows, cols, 1e-12f, x.data(), gamma.data(), beta.data(), ym.data(), meanm.data(), rstdm.data());
    BOOST_TEST(max_abs_diff(y1, ym) == 0.0);  // row by row: the same arithmetic on any thread

    std::vector<float> dx1(rows * cols), dxm(rows * cols), dg1(cols, 0.f), dgm(cols, 0.f), db1(cols, 0.f), dbm(cols, 0.f);
    one.layer_norm_backward(rows, cols, x.data(), gamma.data(), mean1.data(), rstd1.data(), dy.data(), dx1.data(),
                            dg1.data(), db1.data());
    many.layer_norm_backward(rows, cols, x.data(), gamma.data(), meanm.data(), rstdm.data(), dy.data(), dxm.data(),
                             dgm.data(), dbm.data());
    BOOST_TEST(max_abs_diff(dx1, dxm) == 0.0);
    BOOST_TEST(max_abs_diff(dg1, dgm) <= 1e-3);  // partial sums per chunk: another order of the same sum
    BOOST_TEST(max_abs_diff(db1, dbm) <= 1e-3);
    // Reductions are the same bit for bit on every run with the same thread count.
    for (int repeat = 0; repeat < 20; ++repeat) {
        std::vector<float> dx(rows * cols), dg(cols, 0.f), db(cols, 0.f);
        many.layer_norm_backward(rows, cols, x.data(), gamma.data(), meanm.data(), rstdm.data(), dy.data(), dx.data(),
                                 dg.data(), db.data());
        BOOST_TEST_REQUIRE(dg == dgm);
        BOOST_TEST_REQUIRE(db == dbm);
        std::vector<float> sums(cols, 0.f), sums1(cols, 0.f);
        many.accumulate_column_sums(rows, cols, dy.data(), sums.data());
        one.accumulate_column_sums(rows, cols, dy.data(), sums1.data());
        BOOST_TEST_REQUIRE(sums == sums1);  // each column's sum runs over the rows in order on one thread
    }

    // Element-wise work in pieces: GELU over an odd length.
    const std::size_t n = rows * cols + 13;
    const auto z = random_vector(n, 8);
    std::vector<float> g1(n), gm(n);
    one.gelu_forward(n, z.data(), g1.data());
    many.gelu_forward(n, z.data(), gm.data());
    BOOST_TEST(max_abs_diff(g1, gm) == 0.0);
}

}  // namespace

BOOST_AUTO_TEST_CASE(eigen_backend_in_pieces_matches_one_thread) {
    for (const int threads : {2, 3, 8}) {
        products_match_one_thread<hyperadapt::cpu>(threads);
        row_wise_work_matches_one_thread<hyperadapt::cpu>(threads);
    }
}

#if defined(HYPERADAPT_TEST_WITH_CBLAS)
BOOST_AUTO_TEST_CASE(cblas_backend_in_pieces_matches_one_thread) {
    for (const int threads : {2, 3, 8}) {
        products_match_one_thread<hyperadapt::cpu_blas>(threads);
        row_wise_work_matches_one_thread<hyperadapt::cpu_blas>(threads);
    }
}
#endif

#if defined(HYPERADAPT_TEST_WITH_CBLAS)
BOOST_AUTO_TEST_CASE(openblas_generic_kernels_on_a_capable_cpu_get_a_sentence) {
    using hyperadapt::detail::openblas_kernel_advice;
    const std::string avx512 = openblas_kernel_advice("Prescott", true, true);
    BOOST_TEST(avx512.find("'prescott' kernels") != std::string::npos);
    BOOST_TEST(avx512.find("OPENBLAS_CORETYPE=SkylakeX") != std::string::npos);
    BOOST_TEST(openblas_kernel_advice("CORE2", false, true).find("OPENBLAS_CORETYPE=Haswell") != std::string::npos);
    BOOST_TEST(openblas_kernel_advice("Prescott", false, false).empty());  // nothing better to pick
    BOOST_TEST(openblas_kernel_advice("SkylakeX", true, true).empty());
    BOOST_TEST(openblas_kernel_advice("Haswell", true, true).empty());  // chosen on purpose, or an AVX2 CPU
    BOOST_TEST(openblas_kernel_advice("Zen", true, true).empty());
    // The core type a program restarts with (examples/openblas_kernels.hpp): only for generic kernels.
    using hyperadapt::detail::openblas_fitting_core;
    BOOST_TEST(openblas_fitting_core("Prescott", true, true) == "SkylakeX");
    BOOST_TEST(openblas_fitting_core("UNKNOWN", false, true) == "Haswell");
    BOOST_TEST(openblas_fitting_core("Prescott", false, false).empty());
    BOOST_TEST(openblas_fitting_core("SkylakeX", true, true).empty());
    BOOST_TEST(openblas_fitting_core("Haswell", true, true).empty());
    // What this process runs on: a name, and advice only if it is a generic one.
    BOOST_TEST(!hyperadapt::cblas_gemm::kernels().empty());
    BOOST_TEST_MESSAGE("OpenBLAS kernels here: " << hyperadapt::cblas_gemm::kernels());
}
#endif
