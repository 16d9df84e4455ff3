#define BOOST_TEST_MODULE models_bert
#include <boost/test/unit_test.hpp>

#include "hyperadapt/models/bert.hpp"
#include "hyperadapt/testing/gradcheck.hpp"
#include "support/backends.hpp"

using namespace hyperadapt;
using hyperadapt::test::cpu_backends;

namespace {
const bert_config tiny{.vocab_size = 20, .hidden = 8, .layers = 2, .heads = 2, .intermediate = 12, .max_position = 10};

template <class B>
tensor<B, std::int32_t> ids(B& b, std::vector<std::int32_t> v, std::size_t batch) {
    const std::size_t seq = v.size() / batch;
    return tensor<B, std::int32_t>::from_host(b, {batch, seq}, v);
}
}  // namespace

BOOST_AUTO_TEST_CASE_TEMPLATE(whole_model_gradients_through_both_outputs, B, cpu_backends) {
    B b;
    bert_model<B, double> m(b, tiny);
    rng_stream init(1);
    m.initialize(init);
    // Non-trivial LayerNorm gains and biases so their gradients are not degenerate.
    m.visit_parameters([&, s = std::uint64_t{100}](const std::string& n, parameter<B, double>& p) mutable {
        if (n.find("LayerNorm") != std::string::npos || n.find("bias") != std::string::npos)
            b.fill_uniform(p.size(), s++, 0, 0.5, 1.5, p.value.data());
    });
    auto in = ids(b, {1, 2, 3, 4, 5, 6, 7, 8}, 2);
    auto types = ids(b, {0, 0, 1, 1, 0, 1, 1, 0}, 2);
    std::vector<std::uint8_t> mk{1, 1, 1, 1, 1, 1, 1, 0};
    auto mask = attention_mask<B>::from_host(b, {2, 4}, mk);
    typename bert_model<B, double>::context ctx;
    // One output tensor that concatenates both heads: pooled (2 x 8) then last_hidden (2 x 4 x 8).
    auto r = testing::check_gradients<B>(
        b, {}, [&](auto&& f) { m.visit_parameters(f); },
        [&] {
            rng_stream rr(3);
            ctx = {};
            auto o = m.forward(in, types, mask, ctx, run_mode::train(rr));
            tensor<B, double> cat(b, {2 * 8 + 2 * 4 * 8});
            b.copy(o.pooled.data(), cat.data(), 16);
            b.copy(o.last_hidden.data(), cat.data() + 16, 64);
            return cat;
        },
        [&](const tensor<B, double>& dy) {
            auto dp = dy.reshaped({10, 8}).row_range(0, 2).clone();
            auto dh = tensor<B, double>(b, {2, 4, 8});
            b.copy(dy.data() + 16, dh.data(), 64);
            m.backward(dh, dp, ctx);
            return std::vector<tensor<B, double>>{};
        },
        {.max_checks_per_tensor = 24,
         // Softmax ignores a per-row constant, so the key bias has no gradient; unused vocabulary rows and
         // position rows past seq have none either (sampled rows may land there).
         .allow_zero_gradient = true});
    BOOST_TEST(r.ok, r.report);
    BOOST_TEST(r.checked > 400u);
}

BOOST_AUTO_TEST_CASE(model_names_and_counts_match_hugging_face_layout) {
    cpu b;
    bert_model<cpu, float> m(b, tiny);
    std::size_t total = 0, n = 0;
    bool saw_pooler = false, saw_embeddings = false;
    m.visit_parameters([&](const std::string& name, parameter<cpu, float>& p) {
        total += p.size();
        ++n;
        saw_pooler |= name == "pooler.dense.weight";
        saw_embeddings |= name == "embeddings.word_embeddings.weight";
    });
    // embeddings (20+10+2)*8 + 2*8; per layer 4*(8*8+8) + 2*(8*12) + 12 + 8 + 4*8; pooler 8*8+8.
    const std::size_t per_layer = 4 * (64 + 8) + (96 + 12) + (96 + 8) + 2 * 16;
    BOOST_TEST(total == (32 * 8 + 16) + 2 * per_layer + 72);
    BOOST_TEST(n == 5u + 2u * 16u + 2u);
    BOOST_TEST(saw_pooler);
    BOOST_TEST(saw_embeddings);
}
