#pragma once
// 00_train_encoder's task, model and training loop, over a backend policy: the same code on the CPU
// (00_train_encoder.cpp) and, in a build with CUDA, on the GPU (00_train_encoder_cuda.cu, nvcc). Read
// 00_train_encoder.cpp's opening comment first.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "hyperadapt/layers/heads.hpp"
#include "hyperadapt/loss/cross_entropy.hpp"
#include "hyperadapt/models/bert.hpp"
#include "hyperadapt/nn/parameters.hpp"
#include "hyperadapt/optim/adamw.hpp"
#include "hyperadapt/optim/clip.hpp"
#include "hyperadapt/optim/schedule.hpp"

namespace train_encoder {

namespace ha = hyperadapt;

// ---- the synthetic task -----------------------------------------------------------------------------
constexpr std::int32_t pad_token = 0, cls_token = 1, marker_a = 2, marker_b = 3, first_filler = 4;
constexpr std::size_t vocab = 32, window = 16, min_length = 6;

struct dataset {
    std::vector<std::int32_t> tokens;  // (n, window)
    std::vector<std::uint8_t> mask;    // (n, window): 1 = real token
    std::vector<std::int32_t> labels;  // (n): 1 when A comes before B
    [[nodiscard]] std::size_t size() const { return labels.size(); }
};

/// n examples. std::mt19937_64's output sequence is fixed by the standard, and only its raw output is used
/// (the standard distributions are implementation-defined), so the data are the same on every platform.
inline dataset make_dataset(std::size_t n, std::uint64_t seed) {
    std::mt19937_64 gen(seed);
    auto below = [&](std::size_t k) { return static_cast<std::size_t>(gen() % k); };
    dataset d;
    d.tokens.assign(n * window, pad_token);
    d.mask.assign(n * window, 0);
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t len = min_length + below(window - min_length + 1);
        const std::size_t a = 1 + below(len - 1);
        std::size_t b = 1 + below(len - 2);
        if (b >= a) ++b;  // a distinct position, uniform over the rest
        std::int32_t* t = &d.tokens[i * window];
        t[0] = cls_token;
        for (std::size_t j = 1; j < len; ++j)
            t[j] = first_filler + static_cast<std::int32_t>(below(vocab - first_filler));
        t[a] = marker_a;
        t[b] = marker_b;
        for (std::size_t j = 0; j < len; ++j) d.mask[i * window + j] = 1;
        d.labels.push_back(a < b ? 1 : 0);
    }
    return d;
}

template <class B>
struct batch {
    ha::tensor<B, std::int32_t> tokens;
    ha::attention_mask<B> mask;
    ha::tensor<B, std::int32_t> labels;
};

template <class B>
batch<B> make_batch(B& b, const dataset& d, const std::vector<std::size_t>& order, std::size_t first, std::size_t count) {
    using ids = ha::tensor<B, std::int32_t>;
    std::vector<std::int32_t> tok(count * window), lab(count);
    std::vector<std::uint8_t> msk(count * window);
    for (std::size_t r = 0; r < count; ++r) {
        const std::size_t i = order[first + r];
        std::copy_n(&d.tokens[i * window], window, &tok[r * window]);
        std::copy_n(&d.mask[i * window], window, &msk[r * window]);
        lab[r] = d.labels[i];
    }
    return {ids::from_host(b, {count, window}, tok), ha::attention_mask<B>::from_host(b, {count, window}, msk),
            ids::from_host(b, {count}, lab)};
}

// ---- the model: an encoder and a task head, as one parameterized object ---------------------------------
template <class B>
class sequence_classifier {
public:
    using backend_type = B;
    using value_type = float;
    struct context {
        typename ha::bert_model<B, float>::context encoder;
        typename ha::classification_head<B, float>::context head;
    };

    sequence_classifier(B& b, const ha::bert_config& cfg, std::size_t labels)
        : encoder_(b, cfg), head_(b, cfg.hidden, labels, static_cast<float>(cfg.hidden_dropout)) {}

    template <class Rng>
    void initialize(Rng& rng) {
        encoder_.initialize(rng);
        head_.initialize(rng, static_cast<float>(encoder_.config().initializer_range));
    }

    [[nodiscard]] std::string name() const { return ""; }

    /// Logits (batch, labels).
    ha::tensor<B, float> forward(const batch<B>& x, context& ctx, ha::run_mode mode) const {
        const auto out = encoder_.forward(x.tokens, ha::tensor<B, std::int32_t>{}, x.mask, ctx.encoder, mode);
        return head_.forward(out.pooled, ctx.head, mode);
    }
    void backward(const ha::tensor<B, float>& dlogits, context& ctx) {
        encoder_.backward({}, head_.backward(dlogits, ctx.head), ctx.encoder);
    }

    template <class F>
    void visit_parameters(F&& f) {
        encoder_.visit_parameters(f);
        head_.visit_parameters(f);
    }

private:
    ha::bert_model<B, float> encoder_;
    ha::classification_head<B, float> head_;
};

template <class B>
double accuracy(B& b, const sequence_classifier<B>& model, const dataset& d) {
    std::vector<std::size_t> order(d.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::size_t correct = 0;
    constexpr std::size_t chunk = 128;
    for (std::size_t first = 0; first < d.size(); first += chunk) {
        const std::size_t n = std::min(chunk, d.size() - first);
        const batch<B> x = make_batch(b, d, order, first, n);
        typename sequence_classifier<B>::context ctx;
        const auto logits = model.forward(x, ctx, ha::run_mode::inference()).to_host();
        for (std::size_t r = 0; r < n; ++r) {
            const std::int32_t predicted = logits[2 * r + 1] > logits[2 * r] ? 1 : 0;
            correct += predicted == d.labels[first + r] ? 1 : 0;
        }
    }
    return static_cast<double>(correct) / static_cast<double>(d.size());
}

struct flags {
    int epochs = 6;
    std::uint64_t seed = 42;
    // The model is small enough that thread start-up costs about what a second thread saves.
    int threads = 1;
    std::string device = "cpu";  // cpu | cuda
    int gpu = 0;                 // with --device cuda
};

/// Trains on backend `b` and prints each epoch's loss, gradient norm, learning rate and held-out accuracy.
/// `where`: the device, for the opening lines.
template <class B>
void train(B& b, const flags& opt, const std::string& where) {
    const auto start = std::chrono::steady_clock::now();
    const ha::bert_config cfg{.vocab_size = vocab, .hidden = 64, .layers = 2, .heads = 4, .intermediate = 128,
                              .max_position = window, .type_vocab_size = 2};
    sequence_classifier<B> model(b, cfg, 2);
    ha::rng_stream init(opt.seed);
    model.initialize(init);

    const dataset train_set = make_dataset(4096, opt.seed * 2 + 1), held_out = make_dataset(1024, opt.seed * 2 + 2);
    constexpr std::size_t batch_size = 32;
    const std::size_t steps_per_epoch = train_set.size() / batch_size;
    const auto total_steps = static_cast<std::int64_t>(steps_per_epoch) * opt.epochs;

    const double base_lr = 1e-3;
    ha::adamw<B, float> optimizer(model, {.lr = base_lr, .weight_decay = 0.01});
    const auto schedule = ha::linear_warmup_schedule::with_warmup_proportion(base_lr, 0.1, total_steps);
    ha::cross_entropy_loss<B, float> loss_fn(b);
    ha::rng_stream dropout_rng(opt.seed + 1000);
    std::mt19937_64 shuffle_gen(opt.seed + 2000);

    const auto counts = ha::count_parameters(model);
    std::printf("hyperadapt 00_train_encoder: %zu-layer encoder, hidden %zu, %zu heads, %zu parameters\n",
                cfg.layers, cfg.hidden, cfg.heads, counts.total);
    std::printf("task: does marker A come before marker B? (padded windows of %zu tokens)\n", window);
    std::printf("data: %zu train / %zu held-out, batch %zu, %d epochs, seed %llu, %s\n", train_set.size(),
                held_out.size(), batch_size, opt.epochs, static_cast<unsigned long long>(opt.seed), where.c_str());

    std::vector<std::size_t> order(train_set.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::int64_t step = 0;
    for (int epoch = 1; epoch <= opt.epochs; ++epoch) {
        for (std::size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[shuffle_gen() % (i + 1)]);
        double loss_sum = 0, norm_sum = 0;
        for (std::size_t s = 0; s < steps_per_epoch; ++s, ++step) {
            const batch<B> x = make_batch(b, train_set, order, s * batch_size, batch_size);
            typename sequence_classifier<B>::context ctx;
            typename ha::cross_entropy_loss<B, float>::context loss_ctx;
            const auto logits = model.forward(x, ctx, ha::run_mode::train(dropout_rng));
            loss_sum += loss_fn.forward(logits, x.labels, loss_ctx);
            ha::zero_grad(model);
            model.backward(loss_fn.backward(loss_ctx), ctx);
            norm_sum += ha::clip_grad_norm(model, 1.0);
            optimizer.set_lr(schedule(step));
            optimizer.step();
        }
        const double n = static_cast<double>(steps_per_epoch);
        std::printf("epoch %2d  train loss %.4f  grad norm %.3f  lr %.2e  held-out accuracy %.3f\n", epoch,
                    loss_sum / n, norm_sum / n, schedule(step - 1), accuracy(b, model, held_out));
    }

    const double acc = accuracy(b, model, held_out);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("final held-out accuracy: %.3f (%zu examples), %.1f s\n", acc, held_out.size(), seconds);
}

/// The same on GPU `opt.gpu` (00_train_encoder_cuda.cu); without CUDA in the build, a config_error saying so.
void train_on_gpu(const flags& opt);

}  // namespace train_encoder
