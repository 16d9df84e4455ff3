// BERT encoder layer, forward and forward+backward, at MiniLM (384/12/1536) and BERT-base (768/12/3072)
// shapes, batch 16 x seq 128, dropout 0.1 in training; fp32, and bf16 products (onednn_gemm over OpenBLAS for
// the products under its size floor) where the build has oneDNN. Reports tokens/s and GFLOP/s.
#include <benchmark/benchmark.h>

#include "bench_backends.hpp"
#include "hyperadapt/layers/encoder_layer.hpp"

namespace {
using namespace hyperadapt;

struct shape_case {
    std::size_t hidden, intermediate;
};

double layer_forward_flops(double tokens, double seq, double h, double f) {
    // QKV + output projection + FFN (2 flops per MAC), plus QK^T and PV.
    return 2.0 * tokens * (4.0 * h * h + 2.0 * h * f) + 4.0 * tokens * seq * h;
}

template <class B>
void run(benchmark::State& state, bool train, typename B::gemm_provider provider = {}) {
    const std::size_t h = static_cast<std::size_t>(state.range(0)), f = 4 * h, batch = 16, seq = 128;
    const int threads = static_cast<int>(state.range(1));
    B backend(typename B::options{.threads = threads}, provider);
    encoder_layer<B, float> layer(backend, {.hidden = h, .heads = 12, .intermediate = f}, "encoder.layer.0");
    rng_stream init(1);
    layer.initialize(init);
    tensor<B, float> x(backend, {batch, seq, h});
    backend.fill_normal(x.size(), 2, 0, 0.0f, 1.0f, x.data());
    std::vector<std::uint8_t> m(batch * seq, 1);
    auto mask = attention_mask<B>::from_host(backend, {batch, seq}, m);
    tensor<B, float> dy(backend, {batch, seq, h});
    backend.fill_normal(dy.size(), 3, 0, 0.0f, 1.0f, dy.data());
    rng_stream rng(4);
    for (auto _ : state) {
        typename encoder_layer<B, float>::context ctx;
        auto y = layer.forward(x, {.mask = &mask}, ctx, train ? run_mode::train(rng) : run_mode::inference());
        if (train) {
            layer_condition_gradients<B, float> none;
            auto dx = layer.backward(dy, ctx, none);
            benchmark::DoNotOptimize(dx.data());
        }
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    const double tokens = static_cast<double>(batch * seq);
    const double flops = layer_forward_flops(static_cast<double>(batch * seq), static_cast<double>(seq), static_cast<double>(h), static_cast<double>(f)) * (train ? 3.0 : 1.0);
    state.counters["tokens/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void args(benchmark::internal::Benchmark* b) {
    for (long h : {384L, 768L}) b->Args({h, bench::threads()});
    b->ArgNames({"hidden", "threads"})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
}

void BM_encoder_forward_eigen(benchmark::State& s) { run<cpu>(s, false); }
void BM_encoder_train_eigen(benchmark::State& s) { run<cpu>(s, true); }
BENCHMARK(BM_encoder_forward_eigen)->Apply(args);
BENCHMARK(BM_encoder_train_eigen)->Apply(args);
#if defined(HYPERADAPT_BENCH_WITH_CBLAS)
void BM_encoder_forward_cblas(benchmark::State& s) { run<cpu_blas>(s, false); }
void BM_encoder_train_cblas(benchmark::State& s) { run<cpu_blas>(s, true); }
BENCHMARK(BM_encoder_forward_cblas)->Apply(args);
BENCHMARK(BM_encoder_train_cblas)->Apply(args);
#endif
#if defined(HYPERADAPT_BENCH_WITH_ONEDNN)
void BM_encoder_forward_bf16(benchmark::State& s) { run<bench::bf16_cpu>(s, false, bench::bf16()); }
void BM_encoder_train_bf16(benchmark::State& s) { run<bench::bf16_cpu>(s, true, bench::bf16()); }
BENCHMARK(BM_encoder_forward_bf16)->Apply(args);
BENCHMARK(BM_encoder_train_bf16)->Apply(args);
#endif
}  // namespace

BENCHMARK_MAIN();
