// predictor<B>::predict on real GLUE sentences, text in (tokenization included), as a user calls it: batch 1
// (latency: one sentence per call) and batch 32 (throughput: 32 consecutive sentences per call), fp32 on the
// build's fp32 GEMMs and bf16 products (onednn_gemm) where the build has oneDNN. The model directory and the
// sentences come from the environment (benchmarks/compare_predict.sh makes both):
//   HYPERADAPT_PREDICT_MODEL   a model directory (models/model_directory.hpp)
//   HYPERADAPT_PREDICT_TEXTS   one sentence per line
//   HYPERADAPT_PREDICT_TASK    the task (default: the model's first)
// Counters: sentences/s; the median, 90th-percentile and largest latency of one call (ms) in the batch-1 case.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_backends.hpp"
#include "hyperadapt/serve/predictor.hpp"

namespace {
using namespace hyperadapt;

std::string env(const char* name) {
    const char* v = std::getenv(name);
    if (!v || !*v) throw std::runtime_error(std::string(name) + " is not set (benchmarks/compare_predict.sh sets it)");
    return v;
}

const std::vector<text_input>& sentences() {
    static const std::vector<text_input> all = [] {
        std::vector<text_input> v;
        std::ifstream f(env("HYPERADAPT_PREDICT_TEXTS"));
        for (std::string line; std::getline(f, line);)
            if (!line.empty()) v.push_back({line});
        if (v.empty()) throw std::runtime_error("HYPERADAPT_PREDICT_TEXTS holds no sentence");
        return v;
    }();
    return all;
}

template <class P>
void run(benchmark::State& state, const P& p, std::size_t batch) {
    const auto& all = sentences();
    const char* task_env = std::getenv("HYPERADAPT_PREDICT_TASK");
    const std::string task = task_env && *task_env ? task_env : p.card().tasks.at(0).name;
    std::size_t at = 0, done = 0;
    std::vector<double> ms;
    for (auto _ : state) {
        if (at + batch > all.size()) at = 0;
        const auto t0 = std::chrono::steady_clock::now();
        auto y = p.predict(task, std::span<const text_input>(all.data() + at, batch));
        benchmark::DoNotOptimize(y);
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        at += batch;
        done += batch;
    }
    state.counters["sentences/s"] = benchmark::Counter(static_cast<double>(done), benchmark::Counter::kIsRate);
    std::sort(ms.begin(), ms.end());
    if (!ms.empty()) {
        state.counters["p50_ms"] = ms[ms.size() / 2];
        state.counters["p90_ms"] = ms[ms.size() * 9 / 10];
        state.counters["max_ms"] = ms.back();
    }
}

void BM_predict_fp32(benchmark::State& state) {
    using policy = cpu_backend<
#if defined(HYPERADAPT_BENCH_WITH_CBLAS)
        cblas_gemm
#else
        eigen_gemm
#endif
        >;
    const auto p = predictor<policy>::load(env("HYPERADAPT_PREDICT_MODEL"),
                                           policy(policy::options{.threads = static_cast<int>(state.range(0))}),
                                           {.max_batch = static_cast<std::size_t>(state.range(1))});
    run(state, p, static_cast<std::size_t>(state.range(1)));
}
BENCHMARK(BM_predict_fp32)
    ->Args({2, 1})->Args({2, 32})->ArgNames({"threads", "batch"})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);

#if defined(HYPERADAPT_BENCH_WITH_ONEDNN)
void BM_predict_bf16(benchmark::State& state) {
    using policy = bench::bf16_cpu;
    const auto p = predictor<policy>::load(env("HYPERADAPT_PREDICT_MODEL"),
                                           policy(policy::options{.threads = static_cast<int>(state.range(0))}, bench::bf16()),
                                           {.max_batch = static_cast<std::size_t>(state.range(1))});
    run(state, p, static_cast<std::size_t>(state.range(1)));
}
BENCHMARK(BM_predict_bf16)
    ->Args({2, 1})->Args({2, 32})->ArgNames({"threads", "batch"})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);
#endif
}  // namespace

BENCHMARK_MAIN();
