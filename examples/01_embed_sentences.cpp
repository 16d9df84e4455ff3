// 01_embed_sentences: sentence embeddings with a pretrained Hugging Face checkpoint, as sentence-transformers
// computes them for all-MiniLM-L6-v2: WordPiece tokens -> BERT -> mean of the token vectors over the
// attention mask -> L2 normalisation. Cosine similarity is then a dot product.
//
// What it shows: read_bert_config + load_pretrained (hyperadapt/io/hf_checkpoint.hpp), the WordPiece
// tokenizer (hyperadapt/text/wordpiece.hpp), batched inference with padding masks.
//
//   01_embed_sentences [--model DIR] [--similarity] [--threads T] [--device cpu|cuda] [--gpu N] [FILE | -]
//
// --device cuda runs the model on GPU N (a build with -DHYPERADAPT_ENABLE_CUDA=ON: 01_embed_sentences_cuda.cu
// instantiates the same code, sentence_embedder.hpp, on the CUDA backend); tokenizing and printing stay here.
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
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/io/json.hpp"
#include "hyperadapt/text/wordpiece.hpp"
#include "sentence_embedder.hpp"

namespace ha = hyperadapt;

namespace {

struct arguments {
    std::filesystem::path model;
    std::string input;  // empty: built-in demo
    bool similarity = false;
    int threads = 0;
    std::string device = "cpu";  // cpu | cuda
    int gpu = 0;                 // with --device cuda
};

/// A whole number in [lo, hi] for `option`, or an error naming the option and the value.
int int_option(std::string_view option, const std::string& v, int lo, int hi) {
    std::size_t used = 0;
    long long x = 0;
    try {
        x = std::stoll(v, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used != v.size() || v.empty() || x < lo || x > hi)
        throw std::runtime_error(std::string(option) + " " + v + ": expected a whole number from " + std::to_string(lo) +
                                 " to " + std::to_string(hi));
    return static_cast<int>(x);
}

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
            a.threads = int_option(s, value(), 1, 1024);
        else if (s == "--device") {
            a.device = value();
            if (a.device != "cpu" && a.device != "cuda")
                throw std::runtime_error("--device " + a.device + ": expected cpu or cuda");
        } else if (s == "--gpu")
            a.gpu = int_option(s, value(), 0, 1023);
        else if (s == "--help" || s == "-h")
            throw std::runtime_error(
                "usage: 01_embed_sentences [--model DIR] [--similarity] [--threads T] [--device cpu|cuda] [--gpu N] [FILE | -]");
        else if (a.input.empty() && (s == "-" || s.substr(0, 2) != "--"))
            a.input = s;
        else
            throw std::runtime_error("unknown argument " + std::string(s));
    }
    if (a.device != "cuda" && a.gpu != 0) throw std::runtime_error("--gpu needs --device cuda");
    if (a.device == "cuda" && a.threads != 0) throw std::runtime_error("--threads is for --device cpu");
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

#if !defined(HYPERADAPT_EXAMPLE_WITH_CUDA)
std::unique_ptr<ha::examples::sentence_embedder> ha::examples::make_sentence_embedder_cuda(const std::filesystem::path&, int) {
    throw ha::config_error("--device cuda: this build has no CUDA (configure with -DHYPERADAPT_ENABLE_CUDA=ON on a machine "
                           "with the CUDA toolkit, then rebuild)");
}
#endif

int main(int argc, char** argv) {
    try {
        const auto args = parse(argc, argv);
        if (!std::filesystem::exists(args.model / "model.safetensors")) {
            std::cerr << "01_embed_sentences: no checkpoint in " << args.model.string()
                      << " (run scripts/fetch_model.sh, or pass --model DIR)\n";
            return 2;
        }
        std::unique_ptr<ha::examples::sentence_embedder> embedder;
        if (args.device == "cuda") {
            embedder = ha::examples::make_sentence_embedder_cuda(args.model, args.gpu);
        } else {
            ha::cpu::options opts;
            if (args.threads > 0) opts.threads = args.threads;
            embedder = std::make_unique<ha::examples::sentence_embedder_on<ha::cpu>>(
                args.model, [&] { return ha::cpu(opts); }, "cpu");
        }
        std::cerr << "loaded " << args.model.string() << " (" << embedder->device() << "): " << embedder->load_report()
                  << "\n";
        const auto tok = ha::text::bert_tokenizer::from_file(args.model / "vocab.txt");
        const std::size_t hidden = embedder->hidden(), max_length = max_seq_length(args.model);

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
        const auto emb = embedder->embed(tok, sentences, max_length);
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
