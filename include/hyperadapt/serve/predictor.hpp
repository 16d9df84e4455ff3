#pragma once
// Text in, a task's prediction out, from a model directory (models/model_directory.hpp):
//
//   auto p = hyperadapt::predictor<hyperadapt::cpu>::load("my-model", hyperadapt::cpu{});
//   auto y = p.predict("sst2", {"a gripping, funny film"});          // label, label name, probabilities
//   auto z = p.predict("stsb", {"A man plays.", "A man is playing."}); // the score on the task's own scale
//
// The predictor owns its backend and the model, tokenizes with the directory's vocabulary and settings, runs
// the rows of a call in batches of at most options::max_batch, each in length groups (the cost follows the
// real tokens), and is safe to call from several threads: calls take turns on the model (a server batches
// concurrent requests into one call; serve/ has that).
#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hyperadapt/data/multitask_batch.hpp"
#include "hyperadapt/models/model_directory.hpp"
#include "hyperadapt/nn/mode.hpp"
#include "hyperadapt/text/wordpiece.hpp"

namespace hyperadapt {

/// One example: a sentence, or a sentence pair.
struct text_input {
    std::string text;
    std::optional<std::string> pair{};
};

/// A task's answer for one example.
struct prediction {
    int label = -1;                     ///< classification: the most probable label id; -1 for regression
    std::string label_name;             ///< classification: its name in the task's files
    std::vector<double> probabilities;  ///< classification: softmax of the head's logits, in label-id order
    double value = 0;                   ///< regression: the score on the task's own scale (STS-B: 0-5)
};

namespace detail {
/// The predictor's view of a model kind: one virtual call per batch.
template <class B, class T>
class served_model {
public:
    virtual ~served_model() = default;
    /// Per-row head outputs (logits, or the unscaled regression value).
    virtual std::vector<std::vector<T>> outputs(const multitask_batch<B, T>& b) const = 0;
    /// Per-row sentence representation the heads read, (rows, hidden) on the host.
    virtual std::vector<T> pooled(const multitask_batch<B, T>& b) const = 0;
};

template <class Model>
class served final : public served_model<typename Model::backend_type, typename Model::value_type> {
    using B = typename Model::backend_type;
    using T = typename Model::value_type;

public:
    served(B& backend, const std::filesystem::path& dir, const model_load_options& lo)
        : model_(load_pretrained<Model>(backend, dir, nullptr, lo)) {}
    std::vector<std::vector<T>> outputs(const multitask_batch<B, T>& b) const override {
        return model_.outputs(b, run_mode::inference());
    }
    std::vector<T> pooled(const multitask_batch<B, T>& b) const override {
        typename Model::context ctx;
        return model_.pooled(b, ctx, run_mode::inference()).to_host();
    }

private:
    Model model_;
};
}  // namespace detail

template <class B, class T = float>
class predictor {
public:
    struct options {
        std::size_t max_batch = 32;  ///< rows per forward pass
        /// An adapter set's backbone (models/model_directory.hpp, model_load_options); empty: the directory's own.
        std::filesystem::path backbone{};
    };

    /// Loads the model directory `dir` (or the adapter set `dir` onto options::backbone) onto `backend`
    /// (io_error naming the file and the fact when the directory is not a model this library can load).
    static predictor load(const std::filesystem::path& dir, std::unique_ptr<B> backend, options o = {});
    /// The same on a default backend.
    static predictor load(const std::filesystem::path& dir) { return load(dir, std::make_unique<B>(), options{}); }
    /// The same on a backend moved in (a CPU backend; the CUDA backend, which owns a stream and handles and does
    /// not move, comes as a unique_ptr).
    static predictor load(const std::filesystem::path& dir, B backend, options o = {})
        requires std::move_constructible<B>
    {
        return load(dir, std::make_unique<B>(std::move(backend)), std::move(o));
    }

    [[nodiscard]] const model_card& card() const noexcept { return card_; }
    [[nodiscard]] const std::vector<task_card>& tasks() const noexcept { return card_.tasks; }

    /// The task's predictions for `inputs`, in order. config_error for an unknown task, or a pair given to a
    /// single-sentence task (and the reverse).
    std::vector<prediction> predict(const std::string& task, std::span<const text_input> inputs) const {
        const std::size_t tid = card_.task_id(task);
        const task_card& t = card_.tasks[tid];
        std::vector<prediction> out;
        out.reserve(inputs.size());
        run(tid, inputs, [&](const multitask_batch<B, T>& batch) {
            for (const auto& y : model_->outputs(batch)) out.push_back(to_prediction(t, y));
        });
        return out;
    }
    prediction predict(const std::string& task, const text_input& input) const {
        return predict(task, std::span<const text_input>(&input, 1)).front();
    }

    /// The sentence representations the task's head reads, one row of card().backbone.hidden per input (for
    /// a task-conditioned model they depend on the task).
    std::vector<std::vector<T>> embed(const std::string& task, std::span<const text_input> inputs) const {
        const std::size_t tid = card_.task_id(task);
        const std::size_t hidden = card_.backbone.hidden;
        std::vector<std::vector<T>> out;
        out.reserve(inputs.size());
        run(tid, inputs, [&](const multitask_batch<B, T>& batch) {
            const auto h = model_->pooled(batch);
            for (std::size_t r = 0; r < batch.size(); ++r)
                out.emplace_back(h.begin() + static_cast<std::ptrdiff_t>(r * hidden),
                                 h.begin() + static_cast<std::ptrdiff_t>((r + 1) * hidden));
        });
        return out;
    }

private:
    predictor(model_card card, std::unique_ptr<B> backend, text::bert_tokenizer tok, options o)
        : card_(std::move(card)), backend_(std::move(backend)), tokenizer_(std::move(tok)), options_(o) {}

    /// Tokenizes `inputs` for task `tid` and calls `use(batch)` per batch of at most max_batch rows, under the lock.
    template <class Use>
    void run(std::size_t tid, std::span<const text_input> inputs, Use&& use) const {
        const task_card& t = card_.tasks[tid];
        const text::encode_options enc{card_.tokenizer.max_length, text::truncation_strategy::longest_first,
                                       text::padding_strategy::max_length};
        for (std::size_t first = 0; first < inputs.size(); first += options_.max_batch) {
            const std::size_t n = std::min(options_.max_batch, inputs.size() - first);
            std::vector<encoded_task> tasks(card_.tasks.size());
            encoded_task& e = tasks[tid];
            e.info.name = t.name;
            e.info.kind = t.is_regression() ? data::task_kind::regression : data::task_kind::classification;
            e.info.label_names = t.label_names;
            e.seq_len = card_.tokenizer.max_length;
            std::vector<sample_ref> rows;
            for (std::size_t i = first; i < first + n; ++i) {
                const text_input& x = inputs[i];
                if (x.pair.has_value() != (t.inputs == 2))
                    throw config_error("task '" + t.name + "' takes " + (t.inputs == 2 ? "sentence pairs" : "single sentences") +
                                       ", but input " + std::to_string(i) + " is " + (x.pair ? "a pair" : "a single sentence"));
                const text::encoding c = x.pair ? tokenizer_.encode_pair(x.text, *x.pair, enc) : tokenizer_.encode(x.text, enc);
                e.input_ids.insert(e.input_ids.end(), c.input_ids.begin(), c.input_ids.end());
                e.token_type_ids.insert(e.token_type_ids.end(), c.token_type_ids.begin(), c.token_type_ids.end());
                e.attention_mask.insert(e.attention_mask.end(), c.attention_mask.begin(), c.attention_mask.end());
                e.labels.push_back(t.is_regression() ? -1 : 0);
                e.scores.push_back(0);
                rows.push_back({tid, i - first});
            }
            const std::lock_guard lock(*mutex_);
            const auto batch = make_batch<B, T>(*backend_, tasks, rows, batch_padding::length_groups);
            use(batch);
        }
    }

    static prediction to_prediction(const task_card& t, const std::vector<T>& y) {
        prediction p;
        if (t.is_regression()) {
            p.value = static_cast<double>(y.at(0));
            return p;
        }
        const double top = static_cast<double>(*std::max_element(y.begin(), y.end()));
        double sum = 0;
        for (const T v : y) sum += std::exp(static_cast<double>(v) - top);
        for (const T v : y) p.probabilities.push_back(std::exp(static_cast<double>(v) - top) / sum);
        p.label = static_cast<int>(std::max_element(y.begin(), y.end()) - y.begin());
        p.label_name = t.label_names.at(static_cast<std::size_t>(p.label));
        return p;
    }

    model_card card_;
    std::unique_ptr<B> backend_;  // stable address: the model keeps a pointer to it
    text::bert_tokenizer tokenizer_;
    options options_;
    std::unique_ptr<detail::served_model<B, T>> model_;
    std::unique_ptr<std::mutex> mutex_ = std::make_unique<std::mutex>();  // movable predictor, fixed mutex
};

template <class B, class T>
predictor<B, T> predictor<B, T>::load(const std::filesystem::path& dir, std::unique_ptr<B> owned, options o) {
    if (o.max_batch == 0) throw config_error("predictor: max_batch must be at least 1");
    if (!owned) throw config_error("predictor: no backend");
    model_card card = read_model_card(dir, o.backbone);
    text::bert_tokenizer_options to;
    to.do_lower_case = card.tokenizer.lower_case;
    to.strip_accents = card.tokenizer.strip_accents;
    to.tokenize_chinese_chars = card.tokenizer.chinese_chars;
    std::error_code ec;
    const auto vocab = std::filesystem::exists(dir / "vocab.txt", ec) || o.backbone.empty() ? dir / "vocab.txt" : o.backbone / "vocab.txt";
    auto tok = text::bert_tokenizer::from_file(vocab, to);
    if (tok.vocabulary().size() > card.backbone.vocab_size)
        throw io_error(vocab.string() + ": " + std::to_string(tok.vocabulary().size()) +
                       " tokens, more than config.json's vocab_size " + std::to_string(card.backbone.vocab_size));
    std::unique_ptr<detail::served_model<B, T>> model;
    const model_load_options lo{.backbone = o.backbone};
    if (card.kind == "camtl")
        model = std::make_unique<detail::served<camtl_model<B, T>>>(*owned, dir, lo);
    else if (card.kind == "pha")
        model = std::make_unique<detail::served<pha_bert<B, T>>>(*owned, dir, lo);
    else
        model = std::make_unique<detail::served<multitask_bert<B, T>>>(*owned, dir, lo);
    predictor p(std::move(card), std::move(owned), std::move(tok), o);
    p.model_ = std::move(model);
    return p;
}

}  // namespace hyperadapt
