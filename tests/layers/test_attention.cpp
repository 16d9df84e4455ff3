#define BOOST_TEST_MODULE layers_attention
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "hyperadapt/layers/attention.hpp"
#include "hyperadapt/layers/encoder_layer.hpp"
#include "hyperadapt/testing/gradcheck.hpp"
#include "support/backends.hpp"

using namespace hyperadapt;
using hyperadapt::test::layer_backends;
using hyperadapt::test::random_tensor;

namespace {
template <class B>
attention_mask<B> make_mask(B& b, std::size_t nb, std::size_t seq, const std::vector<std::size_t>& lengths) {
    std::vector<std::uint8_t> m(nb * seq, 0);
    for (std::size_t i = 0; i < nb; ++i)
        for (std::size_t j = 0; j < lengths[i]; ++j) m[i * seq + j] = 1;
    return attention_mask<B>::from_host(b, {nb, seq}, m);
}

/// Gives every parameter of `l` random values so no gradient check passes by symmetry.
template <class B, class L>
void randomize(B& b, L& l, std::uint64_t seed, double scale = 0.5) {
    l.visit_parameters([&](const std::string&, parameter<B, double>& p) {
        b.fill_uniform(p.size(), seed++, 0, -scale, scale, p.value.data());
    });
}
}  // namespace

BOOST_AUTO_TEST_CASE_TEMPLATE(self_attention_gradients_with_mask_and_bias, B, layer_backends) {
    B b;
    const std::size_t nb = 2, seq = 5, h = 8, heads = 2;
    self_attention<B, double> att(b, h, heads, 0.2, "encoder.layer.0.attention.self");
    randomize(b, att, 11);
    auto x = random_tensor<B, double>(b, {nb, seq, h}, 3);
    auto bias = random_tensor<B, double>(b, {nb, seq, seq}, 4);
    auto mask = make_mask(b, nb, seq, {5, 3});
    typename self_attention<B, double>::context ctx;
    auto r = testing::check_gradients<B>(
        b, {{"x", &x}, {"score_bias", &bias}}, [&](auto&& f) { att.visit_parameters(f); },
        [&] {
            rng_stream rng(5);
            ctx = {};
            return att.forward(x, mask, bias, ctx, run_mode::train(rng));
        },
        [&](const tensor<B, double>& dy) {
            auto g = att.backward(dy, ctx);
            return std::vector<tensor<B, double>>{g.input, g.score_bias};
        },
        {.known_zero_gradients = {"parameter 'encoder.layer.0.attention.self.key.bias'"}});
    BOOST_TEST(r.ok, r.report);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(encoder_layer_gradients, B, layer_backends) {
    B b;
    encoder_layer_config c{.hidden = 8, .heads = 2, .intermediate = 12, .attention_dropout = 0.1,
                           .hidden_dropout = 0.1, .layer_norm_eps = 1e-12};
    encoder_layer<B, double> layer(b, c, "encoder.layer.0");
    randomize(b, layer, 21);
    auto x = random_tensor<B, double>(b, {2, 4, 8}, 3);
    auto mask = make_mask(b, 2, 4, {4, 2});
    typename encoder_layer<B, double>::context ctx;
    auto r = testing::check_gradients<B>(
        b, {{"x", &x}}, [&](auto&& f) { layer.visit_parameters(f); },
        [&] {
            rng_stream rng(9);
            ctx = {};
            return layer.forward(x, {.mask = &mask}, ctx, run_mode::train(rng));
        },
        [&](const tensor<B, double>& dy) {
            layer_condition_gradients<B, double> none;
            return std::vector<tensor<B, double>>{layer.backward(dy, ctx, none)};
        },
        {.known_zero_gradients = {"parameter 'encoder.layer.0.attention.self.key.bias'"}});
    BOOST_TEST(r.ok, r.report);
}

BOOST_AUTO_TEST_CASE(encoder_layer_parameter_names_follow_hugging_face) {
    cpu b;
    encoder_layer<cpu, float> layer(b, {.hidden = 8, .heads = 2, .intermediate = 16}, "encoder.layer.3");
    std::vector<std::string> names;
    layer.visit_parameters([&](const std::string& n, parameter<cpu, float>&) { names.push_back(n); });
    const std::vector<std::string> want{
        "encoder.layer.3.attention.self.query.weight", "encoder.layer.3.attention.self.query.bias",
        "encoder.layer.3.attention.self.key.weight",   "encoder.layer.3.attention.self.key.bias",
        "encoder.layer.3.attention.self.value.weight", "encoder.layer.3.attention.self.value.bias",
        "encoder.layer.3.attention.output.dense.weight", "encoder.layer.3.attention.output.dense.bias",
        "encoder.layer.3.attention.output.LayerNorm.weight", "encoder.layer.3.attention.output.LayerNorm.bias",
        "encoder.layer.3.intermediate.dense.weight", "encoder.layer.3.intermediate.dense.bias",
        "encoder.layer.3.output.dense.weight", "encoder.layer.3.output.dense.bias",
        "encoder.layer.3.output.LayerNorm.weight", "encoder.layer.3.output.LayerNorm.bias"};
    BOOST_TEST(names == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(padding_changes_no_output_at_real_positions, B, layer_backends) {
    B b;
    encoder<B, double> enc(b, {.hidden = 8, .heads = 2, .intermediate = 16}, 2);
    randomize(b, enc, 31);
    const std::size_t seq = 6, real = 4;
    auto x = random_tensor<B, double>(b, {1, seq, 8}, 3);
    auto x2 = x.clone();  // same real tokens, different padding content
    b.fill_uniform(2 * 8, 77, 0, -5.0, 5.0, x2.data() + real * 8);
    auto mask = make_mask(b, 1, seq, {real});
    typename encoder<B, double>::context c1, c2;
    auto y1 = enc.forward(x, {.mask = &mask}, c1, run_mode::inference()).to_host();
    auto y2 = enc.forward(x2, {.mask = &mask}, c2, run_mode::inference()).to_host();
    // And the same real tokens alone, without any padding.
    auto x3 = x.reshaped({seq, 8}).row_range(0, real).clone().reshaped({1, real, 8});
    typename encoder<B, double>::context c3;
    auto y3 = enc.forward(x3, {}, c3, run_mode::inference()).to_host();
    for (std::size_t i = 0; i < real * 8; ++i) {
        BOOST_TEST(y1[i] == y2[i]);
        BOOST_TEST(std::abs(y1[i] - y3[i]) < 1e-12);
    }
}

BOOST_AUTO_TEST_CASE(float_and_double_encoder_layers_agree) {
    cpu b;
    encoder_layer_config c{.hidden = 16, .heads = 4, .intermediate = 32};
    encoder_layer<cpu, double> ld(b, c, "l");
    encoder_layer<cpu, float> lf(b, c, "l");
    randomize(b, ld, 41, 0.3);
    std::vector<std::vector<double>> values;
    ld.visit_parameters([&](const std::string&, parameter<cpu, double>& p) { values.push_back(p.value.to_host()); });
    std::size_t k = 0;
    lf.visit_parameters([&](const std::string&, parameter<cpu, float>& p) {
        std::vector<float> v(values[k].begin(), values[k].end());
        b.copy_from_host(v.data(), p.value.data(), v.size());
        ++k;
    });
    auto xd = random_tensor<cpu, double>(b, {2, 5, 16}, 3);
    auto xh = xd.to_host();
    std::vector<float> xf(xh.begin(), xh.end());
    auto xft = tensor<cpu, float>::from_host(b, {2, 5, 16}, xf);
    typename encoder_layer<cpu, double>::context cd;
    typename encoder_layer<cpu, float>::context cf;
    auto yd = ld.forward(xd, {}, cd, run_mode::inference()).to_host();
    auto yf = lf.forward(xft, {}, cf, run_mode::inference()).to_host();
    for (std::size_t i = 0; i < yd.size(); ++i) BOOST_TEST(std::abs(yd[i] - static_cast<double>(yf[i])) < 1e-4);
}

BOOST_AUTO_TEST_CASE(attention_rejects_bad_shapes_with_layer_name) {
    cpu b;
    self_attention<cpu, float> att(b, 8, 2, 0.0f, "encoder.layer.1.attention.self");
    typename self_attention<cpu, float>::context ctx;
    tensor<cpu, float> x(b, {2, 4, 8});
    attention_mask<cpu> bad_mask(b, {2, 5});
    try {
        (void)att.forward(x, bad_mask, {}, ctx, run_mode::inference());
        BOOST_FAIL("expected shape_error");
    } catch (const shape_error& e) {
        const std::string msg = e.what();
        BOOST_TEST(msg.find("encoder.layer.1.attention.self") != std::string::npos, msg);
        BOOST_TEST(msg.find("(2, 5)") != std::string::npos, msg);
        BOOST_TEST(msg.find("(2, 4)") != std::string::npos, msg);
    }
    BOOST_CHECK_THROW((self_attention<cpu, float>(b, 10, 3, 0.0f)), config_error);
}

// ---- NaN never hides ---------------------------------------------------------------------------------------
BOOST_AUTO_TEST_CASE_TEMPLATE(attention_softmax_propagates_nan_and_never_reads_masked_keys, B, layer_backends) {
    B b;
    const std::size_t batch = 2, heads = 1, tq = 4, tk = 5;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    auto scores = random_tensor<B, double>(b, {batch, heads, tq, tk}, 7).to_host();
    // batch 0 (key 4 is padding): row 0 all NaN, row 1 one NaN among the real keys, row 2 NaN only at the
    // padded key, row 3 finite. batch 1: every key padded, row 0 all NaN.
    for (std::size_t j = 0; j < tk; ++j) scores[0 * tk + j] = nan;
    scores[1 * tk + 2] = nan;
    scores[2 * tk + 4] = nan;
    for (std::size_t j = 0; j < tk; ++j) scores[(tq + 0) * tk + j] = nan;
    const std::vector<std::uint8_t> m{1, 1, 1, 1, 0, 0, 0, 0, 0, 0};
    const auto mask = attention_mask<B>::from_host(b, {batch, tk}, m);
    const auto run = [&](const std::vector<double>& s) {
        const auto st = tensor<B, double>::from_host(b, {batch, heads, tq, tk}, s);
        tensor<B, double> probs(b, st.shape());
        b.attention_softmax_forward(batch, heads, tq, tk, 0.5, st.data(), static_cast<const double*>(nullptr),
                                    mask.data(), probs.data());
        return probs.to_host();
    };
    const auto p = run(scores);
    for (std::size_t j = 0; j < tk; ++j) {
        BOOST_TEST(std::isnan(p[0 * tk + j]), "all-NaN row, key " << j << ": " << p[0 * tk + j]);
        BOOST_TEST(std::isnan(p[1 * tk + j]), "one NaN key, key " << j << ": " << p[1 * tk + j]);
        BOOST_TEST(p[(tq + 0) * tk + j] == 0.0);  // fully masked: nothing is read
    }
    // A NaN at a padded key changes nothing: the row equals the same row with any finite value there.
    auto finite = scores;
    finite[2 * tk + 4] = 123.0;
    const auto q = run(finite);
    for (std::size_t j = 0; j < tk; ++j) BOOST_TEST(p[2 * tk + j] == q[2 * tk + j]);
    BOOST_TEST(p[2 * tk + 4] == 0.0);
    double sum = 0;
    for (std::size_t j = 0; j < tk; ++j) sum += p[3 * tk + j];
    BOOST_TEST(sum == 1.0, boost::test_tools::tolerance(1e-15));
}

// The CPU backend runs rows whose key mask is a run of real keys then padding (every batch the library builds)
// vectorised over the real keys alone, and any other mask key by key: both must be the softmax of the
// definition, with masked keys at exactly 0, at lengths around the SIMD widths, with and without a bias.
BOOST_AUTO_TEST_CASE_TEMPLATE(attention_softmax_equals_the_definition_for_every_mask_shape, B, layer_backends) {
    B b;
    for (const std::size_t tk : {1UL, 5UL, 16UL, 17UL, 37UL, 130UL}) {
        const std::size_t batch = 5, heads = 2, tq = 3;
        // Batch elements: every key real; a prefix of real keys; none real; holes (real, padding, real, ...);
        // padding first, then real keys.
        std::vector<std::uint8_t> m(batch * tk, 0);
        for (std::size_t j = 0; j < tk; ++j) {
            m[0 * tk + j] = 1;
            m[1 * tk + j] = j < (tk + 1) / 2;
            m[3 * tk + j] = j % 3 != 1;
            m[4 * tk + j] = j >= tk / 2;
        }
        const auto mask = attention_mask<B>::from_host(b, {batch, tk}, m);
        const auto scores = random_tensor<B, double>(b, {batch, heads, tq, tk}, 11 + tk);
        const auto bias = random_tensor<B, double>(b, {batch, tq, tk}, 12 + tk);
        const auto s = scores.to_host(), bs = bias.to_host();
        for (const bool with_bias : {false, true}) {
            tensor<B, double> probs(b, scores.shape());
            b.attention_softmax_forward(batch, heads, tq, tk, 0.7, scores.data(), with_bias ? bias.data() : nullptr,
                                        mask.data(), probs.data());
            const auto p = probs.to_host();
            for (std::size_t r = 0; r < batch * heads * tq; ++r) {
                const std::size_t e = r / (heads * tq), i = r % tq;
                double mx = -std::numeric_limits<double>::infinity(), sum = 0;
                std::vector<double> logit(tk);
                for (std::size_t j = 0; j < tk; ++j) {
                    logit[j] = 0.7 * s[r * tk + j] + (with_bias ? bs[(e * tq + i) * tk + j] : 0.0);
                    if (m[e * tk + j]) mx = std::max(mx, logit[j]);
                }
                for (std::size_t j = 0; j < tk; ++j)
                    if (m[e * tk + j]) sum += std::exp(logit[j] - mx);
                for (std::size_t j = 0; j < tk; ++j) {
                    const double want = m[e * tk + j] ? std::exp(logit[j] - mx) / sum : 0.0;
                    const double got = p[r * tk + j];
                    BOOST_TEST(std::abs(got - want) <= 1e-15 * std::max(1.0, std::abs(want)),
                               "tk " << tk << ", bias " << with_bias << ", batch element " << e << ", row " << r
                                     << ", key " << j << ": " << got << " against " << want);
                    if (!m[e * tk + j]) BOOST_TEST(got == 0.0);
                }
            }
        }
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(nan_in_one_query_weight_reaches_every_output_of_its_head, B, layer_backends) {
    B b;
    const std::size_t nb = 2, seq = 4, h = 8, heads = 2, d = h / heads;
    self_attention<B, float> att(b, h, heads, 0.0f, "encoder.layer.1.attention.self");
    rng_stream init(3);
    att.initialize(init, 0.3f);
    // Row d of the query weight is head 1's first query feature: every score of head 1 becomes NaN. The
    // max shift used to drop NaN, so each such row passed for a fully masked one and head 1 output zeros.
    const float nan = std::numeric_limits<float>::quiet_NaN();
    b.copy_from_host(&nan, att.query_weight().value.data() + d * h + 1, 1);
    const auto x = random_tensor<B, float>(b, {nb, seq, h}, 5);
    const auto mask = make_mask(b, nb, seq, {4, 2});
    typename self_attention<B, float>::context ctx;
    const auto y = att.forward(x, mask, {}, ctx, run_mode::inference()).to_host();
    for (std::size_t r = 0; r < nb * seq; ++r)
        for (std::size_t c = 0; c < h; ++c) {
            const float v = y[r * h + c];
            if (c < d)
                BOOST_TEST(std::isfinite(v), "head 0, row " << r << ", feature " << c << ": " << v);
            else
                BOOST_TEST(std::isnan(v), "head 1, row " << r << ", feature " << c << ": " << v);
        }
}

BOOST_AUTO_TEST_CASE(training_forward_keeps_one_score_sized_tensor) {
    // What attention keeps from forward to backward is the step's peak memory: Q/K/V and the softmax output, not
    // a second (batch, heads, T, T) tensor for the dropped probabilities (backward makes those again). At T = 64
    // and hidden 16 a score-sized tensor is 5x Q/K/V and 16x the output, so a second one cannot hide in the slack.
    cpu b(cpu::options{.threads = 1});
    const std::size_t nb = 2, seq = 64, h = 16, heads = 4;
    self_attention<cpu, float> att(b, h, heads, 0.1f, "encoder.layer.0.attention.self");
    rng_stream init(3);
    att.initialize(init);
    const auto x = random_tensor<cpu, float>(b, {nb, seq, h}, 7);
    const std::size_t score_bytes = nb * heads * seq * seq * sizeof(float);
    const std::size_t qkv_bytes = nb * seq * 3 * h * sizeof(float), out_bytes = nb * seq * h * sizeof(float);
    typename self_attention<cpu, float>::context ctx;
    rng_stream rng(4);
    const std::size_t before = b.memory().in_use;
    const auto y = att.forward(x, {}, {}, ctx, run_mode::train(rng));
    const std::size_t kept = b.memory().in_use - before;
    BOOST_TEST(kept >= score_bytes + qkv_bytes + out_bytes);
    BOOST_TEST(kept < score_bytes * 3 / 2 + qkv_bytes + out_bytes);
    // The dropped probabilities made again give the forward's output gradient path its values: backward runs.
    const auto g = att.backward(random_tensor<cpu, float>(b, {nb, seq, h}, 8), ctx);
    BOOST_TEST((g.input.shape() == x.shape()));
}
