// WordPiece tokenization throughput on one thread over the SST-2 and QNLI dev sentences of the shared data
// (11,798 sentences, 1.3 MB): the same set benchmarks/text/tokenizer_hf.py gives Hugging Face's Rust
// tokenizer. Reports sentences/s and MB/s (10^6 bytes of UTF-8 input).
//   bench_tokenizer [--benchmark_filter=...]      shared data from HYPERADAPT_SHARED_DATA or the build default
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "hyperadapt/text/wordpiece.hpp"

namespace {
namespace fs = std::filesystem;
using namespace hyperadapt::text;

/// Column `col` of every data row of a GLUE TSV (header skipped, quoting disabled).
void read_column(const fs::path& file, std::size_t col, std::vector<std::string>& out) {
    std::ifstream in(file, std::ios::binary);
    std::string line;
    bool header = true;
    while (std::getline(in, line)) {
        if (std::exchange(header, false)) continue;
        std::size_t start = 0;
        for (std::size_t c = 0; c < col && start != std::string::npos; ++c) {
            start = line.find('\t', start);
            if (start != std::string::npos) ++start;
        }
        if (start == std::string::npos) continue;
        out.push_back(line.substr(start, line.find('\t', start) - start));
    }
}

void report(benchmark::State& state, std::size_t sentences, std::size_t bytes) {
    state.counters["sentences/s"] = benchmark::Counter(static_cast<double>(sentences * state.iterations()),
                                                       benchmark::Counter::kIsRate);
    state.counters["MB/s"] = benchmark::Counter(static_cast<double>(bytes * state.iterations()) / 1e6,
                                                benchmark::Counter::kIsRate);
}

}  // namespace

int main(int argc, char** argv) {
    const char* env = std::getenv("HYPERADAPT_SHARED_DATA");
    const fs::path data = env ? env : HYPERADAPT_SHARED_DATA_DEFAULT;
    const fs::path vocab_file = data / "vocab" / "bert-base-uncased-vocab.txt";
    if (!fs::exists(vocab_file) || !fs::exists(data / "glue" / "SST-2" / "dev.tsv") ||
        !fs::exists(data / "glue" / "QNLI" / "dev.tsv")) {
        std::printf("SKIPPED: shared data not found at %s (set HYPERADAPT_SHARED_DATA)\n", data.string().c_str());
        return 0;
    }
    std::vector<std::string> sentences;
    read_column(data / "glue" / "SST-2" / "dev.tsv", 0, sentences);
    read_column(data / "glue" / "QNLI" / "dev.tsv", 1, sentences);
    read_column(data / "glue" / "QNLI" / "dev.tsv", 2, sentences);
    std::size_t bytes = 0;
    for (const auto& s : sentences) bytes += s.size();
    const std::vector<std::string_view> views(sentences.begin(), sentences.end());
    const auto tok = bert_tokenizer::from_file(vocab_file);

    // The ids alone (tokenizer.encode(text, add_special_tokens=False)), one sentence at a time.
    benchmark::RegisterBenchmark("tokenize_one_by_one", [&](benchmark::State& state) {
        tokenizer_workspace ws;
        std::vector<std::int32_t> ids;
        std::size_t tokens = 0;
        for (auto _ : state) {
            for (const auto s : views) {
                ids.clear();
                tok.tokenize(s, ids, ws);
                tokens += ids.size();
            }
            benchmark::DoNotOptimize(tokens);
        }
        report(state, views.size(), bytes);
        state.counters["tokens/sentence"] = static_cast<double>(tokens) / static_cast<double>(views.size() * state.iterations());
    });
    // [CLS] ... [SEP] with ids, token types and mask per sentence (what Encoding holds in the Rust library).
    benchmark::RegisterBenchmark("encode_one_by_one", [&](benchmark::State& state) {
        for (auto _ : state) {
            for (const auto s : views) benchmark::DoNotOptimize(tok.encode(s));
        }
        report(state, views.size(), bytes);
    });
    // Padded (32, longest) int32/uint8 arrays for a tensor, truncated to 128.
    benchmark::RegisterBenchmark("encode_batch_32", [&](benchmark::State& state) {
        const encode_options o{.max_length = 128, .truncation = truncation_strategy::longest_first,
                               .padding = padding_strategy::longest};
        for (auto _ : state) {
            for (std::size_t i = 0; i < views.size(); i += 32) {
                const auto n = std::min<std::size_t>(32, views.size() - i);
                benchmark::DoNotOptimize(tok.encode_batch(std::span(views).subspan(i, n), o));
            }
        }
        report(state, views.size(), bytes);
    });
    std::printf("%zu sentences, %zu bytes (SST-2 dev + QNLI dev questions and sentences)\n", views.size(), bytes);
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
