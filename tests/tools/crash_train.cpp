// crash_train: a small training run with periodic checkpoints, for scripts/crash_safety.sh, which kills it
// with SIGKILL at random moments and checks that the run resumes from the newest complete checkpoint and
// reproduces an uninterrupted run's losses bit for bit.
//
//   crash_train train --dir DIR [--steps N] [--every K] [--keep KEEP] [--vocab V]
//       Resumes from the newest checkpoint in DIR that validates (checkpoint_directory::resume), or starts
//       fresh; trains up to step N, saving every K steps. Prints, one line each, flushed at once:
//         resumed <step> <file>      or   fresh
//         skipped <reason>                (a checkpoint that failed validation; the reason names the file)
//         step <n> loss <hex float>       (the loss of optimizer step n, exact: printf's %a)
//         saved <n> <file>                (after the save has returned: the file is complete)
//   crash_train check FILE [--vocab V]
//       Loads one checkpoint into a fresh model; prints "valid <step>" (exit 0) or "invalid <reason>" (exit 1).
//
// The model is a two-layer BERT with a classifier; the word-embedding table (V x 32 floats, with its two AdamW
// moments) makes a save take long enough that random kills land inside saves too. Any error is printed as
// "crash_train: <what>" with exit status 1; bad usage exits with 2.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/layers/heads.hpp"
#include "hyperadapt/loss/cross_entropy.hpp"
#include "hyperadapt/models/bert.hpp"
#include "hyperadapt/optim/adamw.hpp"
#include "hyperadapt/optim/clip.hpp"
#include "hyperadapt/optim/schedule.hpp"
#include "hyperadapt/train/checkpoint.hpp"
#include "support/encoder_classifier.hpp"

namespace {
using namespace hyperadapt;
using ids = tensor<cpu, std::int32_t>;

constexpr std::size_t batch = 4, length = 8, pool = 64, classes = 3, hidden = 32;

struct classifier : test::encoder_classifier<cpu> {
    classifier(cpu& b, std::size_t vocab)
        : encoder_classifier(b, {.vocab_size = vocab, .hidden = hidden, .layers = 2, .heads = 2, .intermediate = 64,
                                 .max_position = length},
                             1, classes) {}
};

/// Model, optimizer, schedule and the state a checkpoint carries. Batches come from a fixed pool of examples
/// drawn by the "data" stream; dropout masks from the "dropout" stream.
struct run {
    cpu& b;
    std::size_t vocab;
    classifier model;
    adamw<cpu, float> opt;
    linear_warmup_schedule schedule;
    training_state state;

    run(cpu& backend, std::size_t vocab_size, std::int64_t total_steps)
        : b(backend), vocab(vocab_size), model(backend, vocab_size), opt(model, {.lr = 1e-3, .weight_decay = 0.01}),
          schedule(1e-3, std::min<std::int64_t>(4, total_steps), total_steps) {
        state.rng["data"] = rng_stream(77);
        state.rng["dropout"] = rng_stream(78);
    }

    double step() {
        std::vector<std::int32_t> tok(batch * length), lab(batch);
        std::vector<std::uint8_t> msk(batch * length, 1);
        const std::uint64_t first = state.rng["data"].take(batch);
        for (std::size_t i = 0; i < batch; ++i) {
            const std::uint64_t ex = hyperadapt::detail::counter_hash(77, first + i) % pool;
            for (std::size_t j = 0; j < length; ++j)
                tok[i * length + j] = static_cast<std::int32_t>(1 + (ex * 131 + j * 17) % (vocab - 1));
            for (std::size_t j = 5 + ex % 3; j < length; ++j) msk[i * length + j] = 0;
            lab[i] = static_cast<std::int32_t>(ex % classes);
        }
        auto tokens = ids::from_host(b, {batch, length}, tok);
        auto labels = ids::from_host(b, {batch}, lab);
        auto mask = attention_mask<cpu>::from_host(b, {batch, length}, msk);
        bert_model<cpu, float>::context ectx;
        classification_head<cpu, float>::context hctx;
        cross_entropy_loss<cpu, float> ce(b);
        cross_entropy_loss<cpu, float>::context lctx;
        const run_mode mode = run_mode::train(state.rng["dropout"]);
        auto out = model.encoder.forward(tokens, ids{}, mask, ectx, mode);
        const double loss = ce.forward(model.head.forward(out.pooled, hctx, mode), labels, lctx);
        model.visit_parameters([](const std::string&, parameter<cpu, float>& p) { p.zero_grad(); });
        model.encoder.backward({}, model.head.backward(ce.backward(lctx), hctx), ectx);
        clip_grad_norm(model, 1.0);
        opt.set_lr(schedule.lr(state.step));
        opt.step();
        ++state.step;
        return loss;
    }
};

/// Every line goes out at once: the killer may strike right after it.
template <class... A>
void say(const char* format, A... args) {
    std::printf(format, args...);
    std::fflush(stdout);
}

struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// "--name value" options after the command (and, for check, the file).
struct options {
    std::map<std::string, std::string> values;

    [[nodiscard]] std::optional<std::string> text(const std::string& name) const {
        auto it = values.find(name);
        if (it == values.end()) return std::nullopt;
        return it->second;
    }
    [[nodiscard]] std::int64_t integer(const std::string& name, std::int64_t fallback, std::int64_t min) const {
        const auto t = text(name);
        if (!t) return fallback;
        std::size_t used = 0;
        std::int64_t v = 0;
        try {
            v = std::stoll(*t, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != t->size() || v < min)
            throw usage_error("--" + name + " must be an integer >= " + std::to_string(min) + ", got '" + *t + "'");
        return v;
    }
};

options parse(int argc, char** argv, int first, const std::vector<std::string_view>& known) {
    options o;
    for (int i = first; i < argc; i += 2) {
        const std::string_view arg = argv[i];
        bool ok = arg.size() > 2 && arg.substr(0, 2) == "--";
        if (ok) {
            ok = false;
            for (auto k : known) ok = ok || arg.substr(2) == k;
        }
        if (!ok) throw usage_error("unknown argument '" + std::string(arg) + "'");
        if (i + 1 >= argc) throw usage_error(std::string(arg) + " needs a value");
        o.values[std::string(arg.substr(2))] = argv[i + 1];
    }
    return o;
}

int train(const options& o) {
    const auto dir = o.text("dir");
    if (!dir) throw usage_error("train needs --dir DIR");
    const std::int64_t steps = o.integer("steps", 40, 1);
    const std::int64_t every = o.integer("every", 4, 1);
    const auto keep = static_cast<std::size_t>(o.integer("keep", 2, 1));
    const auto vocab = static_cast<std::size_t>(o.integer("vocab", 20000, 2));

    cpu b;
    run r(b, vocab, steps);
    checkpoint_directory ckpts(*dir, keep);
    std::vector<std::string> skipped;
    const auto resumed = ckpts.resume(r.model, r.opt, &skipped);
    for (const auto& why : skipped) say("skipped %s\n", why.c_str());
    if (resumed) {
        r.state = *resumed;
        say("resumed %lld %s\n", static_cast<long long>(r.state.step), ckpts.file_for(r.state.step).c_str());
    } else {
        say("fresh\n");
    }
    while (r.state.step < steps) {
        const double loss = r.step();
        say("step %lld loss %a\n", static_cast<long long>(r.state.step), loss);
        if (r.state.step % every == 0 || r.state.step == steps) {
            const auto file = ckpts.save(r.model, r.opt, r.state);
            say("saved %lld %s\n", static_cast<long long>(r.state.step), file.c_str());
        }
    }
    return 0;
}

int check(const std::filesystem::path& file, const options& o) {
    const auto vocab = static_cast<std::size_t>(o.integer("vocab", 20000, 2));
    cpu b;
    run r(b, vocab, 1);
    try {
        const auto state = load_training_checkpoint(file, r.model, r.opt);
        say("valid %lld\n", static_cast<long long>(state.step));
        return 0;
    } catch (const io_error& e) {
        say("invalid %s\n", e.what());
        return 1;
    }
}
}  // namespace

int main(int argc, char** argv) {
    try {
        const std::string_view command = argc > 1 ? argv[1] : "";
        if (command == "train") return train(parse(argc, argv, 2, {"dir", "steps", "every", "keep", "vocab"}));
        if (command == "check" && argc > 2) return check(argv[2], parse(argc, argv, 3, {"vocab"}));
        throw usage_error("expected 'train --dir DIR [--steps N] [--every K] [--keep KEEP] [--vocab V]' or "
                          "'check FILE [--vocab V]'");
    } catch (const usage_error& e) {
        std::fprintf(stderr, "crash_train: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "crash_train: %s\n", e.what());
        return 1;
    }
}
