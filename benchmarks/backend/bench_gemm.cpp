// GEMM on the encoder's shapes (tokens = 16 x 128): hyperadapt's backends next to raw Eigen and raw CBLAS
// in the same binary, so the figures compare like with like. GFLOP/s per run; FMA peak on this machine
// is documented in docs/benchmarks.md.
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <vector>

#include "bench_backends.hpp"

namespace {
using namespace hyperadapt;

// (m, n, k) of y = x W^T: QKV fused, attention output, FFN up, FFN down at BERT-base; plus awkward sizes.
void shapes(benchmark::internal::Benchmark* b) {
    b->ArgNames({"m", "n", "k", "threads"});
    for (auto s : std::vector<std::vector<long>>{{2048, 2304, 768}, {2048, 768, 768}, {2048, 3072, 768},
                                                 {2048, 768, 3072}, {2048, 1536, 384}, {2048, 384, 1536},
                                                 {1000, 1000, 1000}, {127, 513, 255}})
        b->Args({s[0], s[1], s[2], bench::threads()});
    b->Unit(benchmark::kMillisecond)->UseRealTime();
}

void set_flops(benchmark::State& state) {
    const double flops = 2.0 * static_cast<double>(state.range(0)) * static_cast<double>(state.range(1)) *
                         static_cast<double>(state.range(2));
    state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// Small products, where oneDNN's per-call setup decides whether bf16 pays (onednn_gemm's size floor):
// attention heads (128 x 128 x 32/64) and short length groups of MiniLM's projections.
void small_shapes(benchmark::internal::Benchmark* b) {
    b->ArgNames({"m", "n", "k", "threads"});
    for (auto s : std::vector<std::vector<long>>{{128, 128, 64}, {128, 64, 128}, {32, 384, 384}, {64, 384, 384},
                                                 {128, 384, 384}, {256, 384, 384}, {256, 1536, 384}})
        b->Args({s[0], s[1], s[2], bench::threads()});
    b->Unit(benchmark::kMicrosecond)->UseRealTime();
}

template <class B, class... Provider>
void BM_hyperadapt_gemm(benchmark::State& state, Provider... provider) {
    const auto m = static_cast<std::size_t>(state.range(0)), n = static_cast<std::size_t>(state.range(1)),
               k = static_cast<std::size_t>(state.range(2));
    B b(typename B::options{.threads = static_cast<int>(state.range(3))}, provider...);
    std::vector<float> x(m * k, 0.5f), w(n * k, 0.25f), y(m * n);
    for (auto _ : state) {
        b.gemm(transpose::no, transpose::yes, m, n, k, 1.0f, x.data(), k, w.data(), k, 0.0f, y.data(), n);
        benchmark::DoNotOptimize(y.data());
    }
    set_flops(state);
}

void BM_raw_eigen_gemm(benchmark::State& state) {
    using mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    Eigen::setNbThreads(static_cast<int>(state.range(3)));
    mat x = mat::Constant(state.range(0), state.range(2), 0.5f), w = mat::Constant(state.range(1), state.range(2), 0.25f),
        y(state.range(0), state.range(1));
    for (auto _ : state) {
        y.noalias() = x * w.transpose();
        benchmark::DoNotOptimize(y.data());
    }
    set_flops(state);
}

BENCHMARK(BM_hyperadapt_gemm<cpu>)->Name("hyperadapt_gemm/eigen")->Apply(shapes);
BENCHMARK(BM_hyperadapt_gemm<cpu>)->Name("small_gemm/eigen")->Apply(small_shapes);
BENCHMARK(BM_raw_eigen_gemm)->Name("raw_eigen_gemm")->Apply(shapes);

#if defined(HYPERADAPT_BENCH_WITH_CBLAS)
void BM_raw_cblas_gemm(benchmark::State& state) {
    const auto m = static_cast<int>(state.range(0)), n = static_cast<int>(state.range(1)),
               k = static_cast<int>(state.range(2));
    openblas_set_num_threads(static_cast<int>(state.range(3)));
    std::vector<float> x(static_cast<std::size_t>(m) * k, 0.5f), w(static_cast<std::size_t>(n) * k, 0.25f),
        y(static_cast<std::size_t>(m) * n);
    for (auto _ : state) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, x.data(), k, w.data(), k, 0.0f, y.data(), n);
        benchmark::DoNotOptimize(y.data());
    }
    set_flops(state);
}
BENCHMARK(BM_hyperadapt_gemm<cpu_blas>)->Name("hyperadapt_gemm/cblas")->Apply(shapes);
BENCHMARK(BM_raw_cblas_gemm)->Name("raw_cblas_gemm")->Apply(shapes);
BENCHMARK(BM_hyperadapt_gemm<cpu_blas>)->Name("small_gemm/cblas")->Apply(small_shapes);
#endif
#if defined(HYPERADAPT_BENCH_WITH_ONEDNN)
// bf16 products (oneDNN, operands rounded per call, fp32 accumulation): with the default size floor, and
// with none (every product through oneDNN) to show where the floor belongs.
using bf16_gemm = bench::bf16_provider;
using bf16_gemm_no_floor = onednn_gemm<bench::bf16_provider::fp32_provider, 0>;
void BM_bf16_gemm(benchmark::State& s) {
    BM_hyperadapt_gemm<cpu_backend<bf16_gemm>>(s, bf16_gemm(compute_precision::bf16));
}
void BM_bf16_gemm_no_floor(benchmark::State& s) {
    BM_hyperadapt_gemm<cpu_backend<bf16_gemm_no_floor>>(s, bf16_gemm_no_floor(compute_precision::bf16));
}
BENCHMARK(BM_bf16_gemm)->Name("hyperadapt_gemm/onednn-bf16")->Apply(shapes);
BENCHMARK(BM_bf16_gemm_no_floor)->Name("small_gemm/onednn-bf16-no-floor")->Apply(small_shapes);
BENCHMARK(BM_bf16_gemm)->Name("small_gemm/onednn-bf16")->Apply(small_shapes);
#endif
}  // namespace

BENCHMARK_MAIN();

namespace {
// The FMA ceiling of one core, measured rather than quoted: independent chains of vector FMAs, enough of
// them to cover the instruction latency. GEMM efficiency in docs/benchmarks.md is relative to this.
void BM_fma_peak_one_core(benchmark::State& state) {
#if defined(__AVX512F__)
    using vec = float __attribute__((vector_size(64)));
#else
    using vec = float __attribute__((vector_size(32)));
#endif
    constexpr int chains = 16;
    constexpr long iters = 1 << 20;
    vec acc[chains];
    vec mul, add;
    for (std::size_t i = 0; i < sizeof(vec) / sizeof(float); ++i) {
        mul[i] = 0.9999999f;
        add[i] = 1e-7f;
    }
    for (int c = 0; c < chains; ++c)
        for (std::size_t i = 0; i < sizeof(vec) / sizeof(float); ++i) acc[c][i] = 1.0f + static_cast<float>(c) * 1e-3f;
    for (auto _ : state) {
        for (long i = 0; i < iters; ++i)
            for (int c = 0; c < chains; ++c) acc[c] = acc[c] * mul + add;
        benchmark::DoNotOptimize(acc);
    }
    const double flops = 2.0 * chains * iters * static_cast<double>(sizeof(vec) / sizeof(float));
    state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_fma_peak_one_core)->Unit(benchmark::kMillisecond);
}  // namespace

#if defined(__AVX512BF16__)
#include <immintrin.h>
namespace {
// The bf16 ceiling of one core: independent chains of vdpbf16ps (each lane: two bf16 products summed into an
// fp32 accumulator, 4 flops). The bf16 GEMM's efficiency is relative to this.
void BM_bf16_dot_peak_one_core(benchmark::State& state) {
    constexpr int chains = 16;
    constexpr long iters = 1 << 20;
    __m512 acc[chains];
    const __m512bh x = _mm512_cvtne2ps_pbh(_mm512_set1_ps(0.5f), _mm512_set1_ps(0.25f));
    const __m512bh y = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(2e-3f));
    for (int c = 0; c < chains; ++c) acc[c] = _mm512_set1_ps(static_cast<float>(c));
    for (auto _ : state) {
        for (long i = 0; i < iters; ++i)
            for (int c = 0; c < chains; ++c) acc[c] = _mm512_dpbf16_ps(acc[c], x, y);
        benchmark::DoNotOptimize(acc);
    }
    const double flops = 4.0 * chains * iters * 16.0;
    state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_bf16_dot_peak_one_core)->Unit(benchmark::kMillisecond);
}  // namespace
#endif
