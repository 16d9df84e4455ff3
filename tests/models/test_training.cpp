#define BOOST_TEST_MODULE models_training
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/layers/heads.hpp"
#include "hyperadapt/loss/cross_entropy.hpp"
#include "hyperadapt/models/bert.hpp"
#include "hyperadapt/nn/parameters.hpp"
#include "hyperadapt/optim/adamw.hpp"
#include "hyperadapt/optim/clip.hpp"
#include "hyperadapt/optim/schedule.hpp"
#include "support/encoder_classifier.hpp"

using namespace hyperadapt;
namespace tt = boost::test_tools;

namespace {

using ids = tensor<cpu, std::int32_t>;

/// A 2-layer encoder and a classification head, trained end to end as one parameterized object.
using classifier = test::encoder_classifier<cpu>;

bert_config small_config(double dropout) {
    return {.vocab_size = 24, .hidden = 32, .layers = 2, .heads = 2, .intermediate = 64, .max_position = 8,
            .type_vocab_size = 2, .hidden_dropout = dropout, .attention_dropout = dropout};
}

/// A fixed batch of 8 sequences of 8 tokens, two of them padded, with arbitrary labels to memorise.
struct fixed_batch {
    ids tokens, labels;
    attention_mask<cpu> mask;

    explicit fixed_batch(cpu& b) {
        std::vector<std::int32_t> tok(64), lab{0, 1, 1, 0, 1, 0, 0, 1};
        std::vector<std::uint8_t> msk(64, 1);
        for (std::size_t i = 0; i < 64; ++i) tok[i] = static_cast<std::int32_t>(1 + (i * 7 + i / 8 * 3) % 23);
        for (std::size_t j = 5; j < 8; ++j) msk[1 * 8 + j] = 0;
        for (std::size_t j = 6; j < 8; ++j) msk[6 * 8 + j] = 0;
        tokens = ids::from_host(b, {8, 8}, tok);
        labels = ids::from_host(b, {8}, lab);
        mask = attention_mask<cpu>::from_host(b, {8, 8}, msk);
    }
};

/// One training step; returns the loss before the update.
double train_step(classifier& m, adamw<cpu, float>& opt, const linear_warmup_schedule& schedule,
                  cross_entropy_loss<cpu, float>& loss_fn, const fixed_batch& x, rng_stream& rng) {
    classifier::context ctx;
    cross_entropy_loss<cpu, float>::context lctx;
    const run_mode mode = run_mode::train(rng);
    const auto out = m.encoder.forward(x.tokens, ids{}, x.mask, ctx.encoder, mode);
    const auto logits = m.head.forward(out.pooled, ctx.head, mode);
    const double loss = loss_fn.forward(logits, x.labels, lctx);
    zero_grad(m);
    m.encoder.backward({}, m.head.backward(loss_fn.backward(lctx), ctx.head), ctx.encoder);
    (void)clip_grad_norm(m, 1.0);
    opt.set_lr(schedule(opt.step_count()));
    opt.step();
    return loss;
}

std::vector<double> run(std::uint64_t seed, int steps, double dropout) {
    cpu b;
    classifier m(b, small_config(dropout), seed);
    adamw<cpu, float> opt(m, {.lr = 1e-3});
    const linear_warmup_schedule schedule(1e-3, 2, steps);
    cross_entropy_loss<cpu, float> loss_fn(b);
    const fixed_batch x(b);
    rng_stream rng(seed + 1);
    std::vector<double> losses;
    for (int s = 0; s < steps; ++s) losses.push_back(train_step(m, opt, schedule, loss_fn, x, rng));
    return losses;
}

std::map<std::string, std::vector<float>> snapshot(classifier& m) {
    std::map<std::string, std::vector<float>> values;
    m.visit_parameters([&](const std::string& n, parameter<cpu, float>& p) { values[n] = p.value.to_host(); });
    return values;
}

}  // namespace

BOOST_AUTO_TEST_CASE(two_layer_encoder_overfits_a_fixed_batch) {
    cpu b;
    classifier m(b, small_config(0.0), 5);
    adamw<cpu, float> opt(m, {.lr = 2e-3, .weight_decay = 0.0});
    const int steps = 150;
    const linear_warmup_schedule schedule(2e-3, 10, steps);
    cross_entropy_loss<cpu, float> loss_fn(b);
    const fixed_batch x(b);
    rng_stream rng(6);
    double first = 0, last = 0;
    for (int s = 0; s < steps; ++s) {
        last = train_step(m, opt, schedule, loss_fn, x, rng);
        if (s == 0) first = last;
    }
    BOOST_TEST_MESSAGE("loss " << first << " -> " << last);
    BOOST_TEST(first > 0.5);
    BOOST_TEST(last < 0.05 * first, "final loss " << last << " is not below 5 % of the first " << first);
}

BOOST_AUTO_TEST_CASE(same_seed_gives_bit_identical_losses) {
    const auto a = run(17, 6, 0.1);
    const auto again = run(17, 6, 0.1);
    BOOST_TEST(a == again, tt::per_element());
    const auto other = run(18, 6, 0.1);
    BOOST_TEST(other != a);
    // Training happened: the losses are not all equal.
    BOOST_TEST(a.front() != a.back());
}

BOOST_AUTO_TEST_CASE(frozen_embeddings_and_layer_zero_stay_bit_unchanged) {
    cpu b;
    classifier m(b, small_config(0.1), 9);
    BOOST_TEST(freeze(m, "^embeddings\\.") == 5u);
    const std::size_t frozen_layer = freeze_encoder_layers(m, 0, 1);
    BOOST_TEST(frozen_layer == 16u);
    const auto frozen_names = [&] {
        std::vector<std::string> n;
        m.visit_parameters([&](const std::string& name, parameter<cpu, float>& p) {
            if (!p.trainable()) n.push_back(name);
        });
        return n;
    }();
    BOOST_TEST(frozen_names.size() == 5u + 16u);

    adamw<cpu, float> opt(m, {.lr = 1e-3});
    const linear_warmup_schedule schedule(1e-3, 0, 10);
    cross_entropy_loss<cpu, float> loss_fn(b);
    const fixed_batch x(b);
    rng_stream rng(10);
    const auto before = snapshot(m);
    for (int s = 0; s < 5; ++s) (void)train_step(m, opt, schedule, loss_fn, x, rng);
    const auto after = snapshot(m);

    std::size_t changed = 0, trainable = 0;
    m.visit_parameters([&](const std::string& name, parameter<cpu, float>& p) {
        if (!p.trainable()) {
            BOOST_TEST(after.at(name) == before.at(name), name << " is frozen but changed");
            BOOST_TEST(opt.find_state(name) == nullptr, name << " is frozen but has optimizer state");
            BOOST_TEST(p.grad.empty());
            return;
        }
        ++trainable;
        // Softmax ignores a per-row constant, so the attention key bias gets no gradient, and it has no
        // weight decay either: it is the one trainable tensor allowed to stay put.
        if (after.at(name) != before.at(name))
            ++changed;
        else
            BOOST_TEST(name.find("attention.self.key.bias") != std::string::npos, name << " did not change");
    });
    BOOST_TEST(trainable == count_parameters(m).tensors - frozen_names.size());
    BOOST_TEST(changed >= trainable - 1);
    BOOST_TEST(opt.state_size() == trainable);
}
