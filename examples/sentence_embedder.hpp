#pragma once
// 01_embed_sentences' model half, over a backend policy: BERT loaded from a Hugging Face checkpoint, its last
// hidden states mean-pooled over the attention mask and L2-normalised, as sentence-transformers computes them for
// all-MiniLM-L6-v2. The example's CPU translation unit instantiates it on the CPU policy, its CUDA one
// (01_embed_sentences_cuda.cu, nvcc, a build with -DHYPERADAPT_ENABLE_CUDA=ON) on cuda_backend; main() holds a
// sentence_embedder and never names either.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "hyperadapt/io/hf_checkpoint.hpp"
#include "hyperadapt/models/bert.hpp"
#include "hyperadapt/nn/anomaly.hpp"
#include "hyperadapt/text/wordpiece.hpp"

namespace hyperadapt::examples {

class sentence_embedder {
public:
    virtual ~sentence_embedder() = default;
    [[nodiscard]] virtual std::size_t hidden() const = 0;
    /// What the checkpoint load found (io::load_report::str()).
    [[nodiscard]] virtual std::string load_report() const = 0;
    /// Where it runs, for the log: "cpu, 2 threads" or "cuda:0 (NVIDIA H100 80GB HBM3)".
    [[nodiscard]] virtual std::string device() const = 0;
    /// Unit-length mean-pooled embeddings, (sentences, hidden) row-major. A sentence whose embedding is not
    /// finite is an error naming it and the first module whose output was not.
    [[nodiscard]] virtual std::vector<float> embed(const text::bert_tokenizer& tok, const std::vector<std::string>& sentences,
                                                   std::size_t max_length) = 0;
};

template <class B>
class sentence_embedder_on final : public sentence_embedder {
public:
    /// `make_backend` returns the policy object (a factory: backends neither copy nor move).
    template <class MakeBackend>
    sentence_embedder_on(const std::filesystem::path& model_dir, MakeBackend&& make_backend, std::string device)
        : backend_(make_backend()), model_(backend_, io::read_bert_config(model_dir)), device_(std::move(device)) {
        report_ = io::load_pretrained(model_, model_dir).str();
    }

    [[nodiscard]] std::size_t hidden() const override { return model_.config().hidden; }
    [[nodiscard]] std::string load_report() const override { return report_; }
    [[nodiscard]] std::string device() const override { return device_; }
    B& backend() noexcept { return backend_; }

    std::vector<float> embed(const text::bert_tokenizer& tok, const std::vector<std::string>& sentences,
                             std::size_t max_length) override {
        constexpr std::size_t batch_size = 32;  // sentences per forward pass; padding is to each batch's longest
        const std::size_t hidden = model_.config().hidden;
        std::vector<float> out(sentences.size() * hidden);
        for (std::size_t first = 0; first < sentences.size(); first += batch_size) {
            const std::size_t n = std::min(batch_size, sentences.size() - first);
            std::vector<std::string_view> texts(sentences.begin() + static_cast<std::ptrdiff_t>(first),
                                                sentences.begin() + static_cast<std::ptrdiff_t>(first + n));
            const auto enc = tok.encode_batch(texts, {.max_length = max_length,
                                                      .truncation = text::truncation_strategy::longest_first,
                                                      .padding = text::padding_strategy::longest});
            const auto ids = tensor<B, std::int32_t>::from_host(backend_, enc.shape(), enc.input_ids);
            const auto types = tensor<B, std::int32_t>::from_host(backend_, enc.shape(), enc.token_type_ids);
            const auto mask = attention_mask<B>::from_host(backend_, enc.shape(), enc.attention_mask);
            typename bert_model<B, float>::context ctx;
            const auto result = model_.forward(ids, types, mask, ctx, run_mode::inference());
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
                    refuse_non_finite(ids, types, mask, first + i, sentences[first + i]);
            }
        }
        return out;
    }

private:
    /// Throws for sentence `index`, whose embedding is not finite, naming the first module of the model whose
    /// output was not (the batch runs again with an anomaly detector).
    [[noreturn]] void refuse_non_finite(const tensor<B, std::int32_t>& ids, const tensor<B, std::int32_t>& types,
                                        const attention_mask<B>& mask, std::size_t index,
                                        const std::string& sentence) const {
        const std::string which = "sentence " + std::to_string(index + 1) + " (\"" + sentence.substr(0, 60) +
                                  (sentence.size() > 60 ? "..." : "") + "\") has a non-finite embedding";
        anomaly_detector detect;
        typename bert_model<B, float>::context ctx;
        try {
            (void)model_.forward(ids, types, mask, ctx, run_mode::inference().detecting_anomalies(detect));
        } catch (const anomaly_error& e) {
            throw std::runtime_error(which + ": " + e.what() + " (does the checkpoint hold a NaN or infinite weight?)");
        }
        throw std::runtime_error(which + ": every module's output was finite, the mean pooling overflowed");
    }

    B backend_;
    bert_model<B, float> model_;
    std::string device_, report_;
};

/// The embedder on GPU `gpu` (01_embed_sentences_cuda.cu); without CUDA in the build, a config_error that says so.
std::unique_ptr<sentence_embedder> make_sentence_embedder_cuda(const std::filesystem::path& model_dir, int gpu);

}  // namespace hyperadapt::examples
