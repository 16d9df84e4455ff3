// 01_embed_sentences: sentence embeddings with a pretrained Hugging Face checkpoint, as sentence-transformers
// computes them for all-MiniLM-L6-v2: WordPiece tokens -> BERT -> mean of the token vectors over the
// attention mask -> L2 normalisation. Cosine similarity is then a dot product.
//
// What it shows: read_bert_config + load_pretrained (hyperadapt/io/hf_checkpoint.hpp), the WordPiece
// tokenizer (hyperadapt/text/wordpiece.hpp), batched inference with padding masks.
//
//   01_embed_sentences [--model DIR] [--similarity] [--threads T] [FILE | -]
//
// FILE (or "-" for standard input) holds one sentence per line; blank lines are skipped. Output: one line
// per sentence with its embedding, or with --similarity the cosine matrix. Without FILE it embeds six
// built-in sentences and checks the cosines against those transformers 4.40.2 gives for the same pipeline
// (exit status 1 on a mismatch). DIR defaults to $HYPERADAPT_MODEL_DIR, else the folder
// scripts/fetch_model.sh fills.
//
// A sentence whose embedding is not finite (a checkpoint with a NaN or infinite weight) is an error, never
// printed: the batch is run again with an anomaly_detector (hyperadapt/nn/anomaly.hpp), and the message names
// the first module whose output was not finite.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/io/hf_checkpoint.hpp"
#include "hyperadapt/models/bert.hpp"
#include "hyperadapt/nn/anomaly.hpp"
#include "hyperadapt/text/wordpiece.hpp"

namespace ha = hyperadapt;
using backend_t = ha::cpu;

namespace {

struct arguments {
    std::filesystem::path model;
    std::string input;  // empty: built-in demo
    bool similarity = false;
    int threads = 0;
};

std::filesystem::path default_model_dir() {
    if (const char* env = std::getenv("HYPERADAPT_MODEL_DIR")) return env;
    return HYPERADAPT_MODEL_DIR_DEFAULT;
}

arguments parse(int argc, char** argv) {
    arguments a;
    a.model = default_model_dir();
    for (int i = 1; i < argc; ++i) {
        const std::string_view s = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw std::runtime_error(std::string(s) + " needs a value");
            return argv[++i];
        };
        if (s == "--model")
            a.model = value();
        else if (s == "--similarity")
            a.similarity = true;
        else if (s == "--threads")
            a.threads = std::stoi(value());
        else if (s == "--help" || s == "-h")
            throw std::runtime_error("usage: 01_embed_sentences [--model DIR] [--similarity] [--threads T] [FILE | -]");
        else if (a.input.empty() && (s == "-" || s.substr(0, 2) != "--"))
            a.input = s;
        else
            throw std::runtime_error("unknown argument " + std::string(s));
    }
    return a;
}

std::vector<std::string> read_lines(std::istream& in) {
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.find_first_not_of(" \t") != std::string::npos) lines.push_back(line);
    }
    return lines;
}

/// all-MiniLM-L6-v2's sentence-transformers setting: sentences longer than 256 tokens are cut.
std::size_t max_seq_length(const std::filesystem::path& model_dir) {
    const auto p = model_dir / "sentence_bert_config.json";
    if (!std::filesystem::exists(p)) return 256;
    std::ifstream in(p);
    const auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    return j.is_object() && j.contains("max_seq_length") && j["max_seq_length"].is_number_unsigned()
               ? j["max_seq_length"].get<std::size_t>()
               : 256;
}

/// Throws for sentence `index`, whose embedding is not finite, naming the first module of the model whose
/// output was not (the batch runs again with an anomaly detector).
[[noreturn]] void refuse_non_finite(const ha::bert_model<backend_t, float>& model,
                                    const ha::tensor<backend_t, std::int32_t>& ids,
                                    const ha::tensor<backend_t, std::int32_t>& types,
                                    const ha::attention_mask<backend_t>& mask, std::size_t index,
                                    const std::string& sentence) {
    const std::string which = "sentence " + std::to_string(index + 1) + " (\"" + sentence.substr(0, 60) +
                              (sentence.size() > 60 ? "..." : "") + "\") has a non-finite embedding";
    ha::anomaly_detector detect;
    typename ha::bert_model<backend_t, float>::context ctx;
    try {
        (void)model.forward(ids, types, mask, ctx, ha::run_mode::inference().detecting_anomalies(detect));
    } catch (const ha::anomaly_error& e) {
        throw std::runtime_error(which + ": " + e.what() + " (does the checkpoint hold a NaN or infinite weight?)");
    }
    throw std::runtime_error(which + ": every module's output was finite, the mean pooling overflowed");
}

/// Unit-length mean-pooled embeddings, (sentences, hidden) row-major.
std::vector<float> embed(backend_t& b, const ha::bert_model<backend_t, float>& model,
                         const ha::text::bert_tokenizer& tok, const std::vector<std::string>& sentences,
                         std::size_t max_length) {
    constexpr std::size_t batch_size = 32;  // sentences per forward pass; padding is to each batch's longest
    const std::size_t hidden = model.config().hidden;
    std::vector<float> out(sentences.size() * hidden);
    for (std::size_t first = 0; first < sentences.size(); first += batch_size) {
        const std::size_t n = std::min(batch_size, sentences.size() - first);
        std::vector<std::string_view> texts(sentences.begin() + static_cast<std::ptrdiff_t>(first),
                                            sentences.begin() + static_cast<std::ptrdiff_t>(first + n));
        const auto enc = tok.encode_batch(texts, {.max_length = max_length,
                                                  .truncation = ha::text::truncation_strategy::longest_first,
                                                  .padding = ha::text::padding_strategy::longest});
        const auto ids = ha::tensor<backend_t, std::int32_t>::from_host(b, enc.shape(), enc.input_ids);
        const auto types = ha::tensor<backend_t, std::int32_t>::from_host(b, enc.shape(), enc.token_type_ids);
        const auto mask = ha::attention_mask<backend_t>::from_host(b, enc.shape(), enc.attention_mask);
        typename ha::bert_model<backend_t, float>::context ctx;
        const auto result = model.forward(ids, types, mask, ctx, ha::run_mode::inference());
        const auto h = result.last_hidden.to_host();  // (n, seq, hidden)
        for (std::size_t i = 0; i < n; ++i) {
            float* e = out.data() + (first + i) * hidden;
            double count = 0;
            for (std::size_t t = 0; t < enc.seq_len; ++t) {
                if (!enc.attention_mask[i * enc.seq_len + t]) continue;
                count += 1;
                const float* v = h.data() + (i * enc.seq_len + t) * hidden;
                for (std::size_t k = 0; k < hidden; ++k) e[k] += v[k];
            }
            double norm = 0;
            for (std::size_t k = 0; k < hidden; ++k) {
                e[k] = static_cast<float>(e[k] / std::max(count, 1e-9));
                norm += double(e[k]) * e[k];
            }
            // sentence-transformers' Normalize: x / max(||x||, 1e-12). A NaN norm stays NaN (std::max keeps
            // its first argument), and is refused just below.
            const double scale = 1.0 / std::max(std::sqrt(norm), 1e-12);
            for (std::size_t k = 0; k < hidden; ++k) e[k] = static_cast<float>(e[k] * scale);
            if (!std::isfinite(norm) || !std::isfinite(scale))
                refuse_non_finite(model, ids, types, mask, first + i, sentences[first + i]);
        }
    }
    return out;
}

std::vector<double> cosines(const std::vector<float>& emb, std::size_t n, std::size_t hidden) {
    std::vector<double> c(n * n);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) {
            double s = 0;
            for (std::size_t k = 0; k < hidden; ++k) s += double(emb[i * hidden + k]) * emb[j * hidden + k];
            c[i * n + j] = s;
        }
    return c;
}

// The demo: three pairs of paraphrases. Expected cosines from transformers 4.40.2 (BertModel +
// BertTokenizer, the same mean pooling and normalisation) on the same checkpoint.
const std::vector<std::string> demo_sentences{
    "A man is playing a guitar.",           "Someone is playing an instrument.",
    "The new movie is awesome.",            "The film was really great.",
    "The stock market fell sharply today.", "Shares dropped at the close of trading.",
};
constexpr double demo_expected[6][6] = {
    {1.000000, 0.675212, 0.007870, -0.024124, -0.054027, -0.088701},
    {0.675212, 1.000000, -0.036367, -0.089329, -0.059130, -0.091849},
    {0.007870, -0.036367, 1.000000, 0.692414, -0.069783, -0.067588},
    {-0.024124, -0.089329, 0.692414, 1.000000, -0.033769, -0.077501},
    {-0.054027, -0.059130, -0.069783, -0.033769, 1.000000, 0.603079},
    {-0.088701, -0.091849, -0.067588, -0.077501, 0.603079, 1.000000},
};

void print_matrix(const std::vector<double>& c, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = 0; j < n; ++j) std::printf("%s%9.6f", j ? " " : "", c[i * n + j]);
        std::printf("\n");
    }
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const auto args = parse(argc, argv);
        if (!std::filesystem::exists(args.model / "model.safetensors")) {
            std::cerr << "01_embed_sentences: no checkpoint in " << args.model.string()
                      << " (run scripts/fetch_model.sh, or pass --model DIR)\n";
            return 2;
        }
        backend_t::options opts;
        if (args.threads > 0) opts.threads = args.threads;
        backend_t b(opts);

        ha::bert_model<backend_t, float> model(b, ha::io::read_bert_config(args.model));
        const auto report = ha::io::load_pretrained(model, args.model);
        std::cerr << "loaded " << args.model.string() << ": " << report.str() << "\n";
        const auto tok = ha::text::bert_tokenizer::from_file(args.model / "vocab.txt");
        const std::size_t hidden = model.config().hidden, max_length = max_seq_length(args.model);

        std::vector<std::string> sentences;
        if (args.input.empty()) {
            sentences = demo_sentences;
        } else if (args.input == "-") {
            sentences = read_lines(std::cin);
        } else {
            std::ifstream in(args.input);
            if (!in) throw ha::io_error(args.input + ": cannot open");
            sentences = read_lines(in);
        }
        const auto emb = embed(b, model, tok, sentences, max_length);
        const std::size_t n = sentences.size();

        if (args.input.empty()) {
            const auto c = cosines(emb, n, hidden);
            for (std::size_t i = 0; i < n; ++i) std::printf("[%zu] %s\n", i, sentences[i].c_str());
            std::printf("cosine similarities:\n");
            print_matrix(c, n);
            double worst = 0;
            for (std::size_t i = 0; i < n; ++i)
                for (std::size_t j = 0; j < n; ++j) {
                    // Not std::max: it would drop a NaN difference and print OK for NaN cosines.
                    const double d = std::abs(c[i * n + j] - demo_expected[i][j]);
                    if (d > worst || std::isnan(d)) worst = d;
                    if (std::isnan(worst)) break;
                }
            // The expected values are printed to 6 decimals; float32 inference differs by ~1e-6 more.
            const bool ok = worst <= 1e-5;  // false for NaN
            std::printf("max |cosine - transformers| = %.2e: %s\n", worst, ok ? "OK" : "MISMATCH");
            return ok ? 0 : 1;
        }
        if (args.similarity) {
            print_matrix(cosines(emb, n, hidden), n);
        } else {
            for (std::size_t i = 0; i < n; ++i) {
                for (std::size_t k = 0; k < hidden; ++k) std::printf("%s%.6f", k ? " " : "", emb[i * hidden + k]);
                std::printf("\n");
            }
        }
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "01_embed_sentences: " << e.what() << "\n";
        return 1;
    }
}
