#define BOOST_TEST_MODULE layers_heads
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "hyperadapt/layers/heads.hpp"
#include "hyperadapt/layers/pooler.hpp"
#include "hyperadapt/testing/gradcheck.hpp"
#include "support/backends.hpp"
#include "support/max_keeping_nan.hpp"

using namespace hyperadapt;
using hyperadapt::test::layer_backends;
using hyperadapt::test::random_tensor;
using hyperadapt::test::copy_parameters;
using hyperadapt::test::to_double;

namespace {
/// Worst |f - d| / (|d| + 0.1): relative where values are O(1), absolute near zero.
double worst_relative(const std::vector<float>& f, const std::vector<double>& d) {
    BOOST_TEST_REQUIRE(f.size() == d.size());
    double worst = 0;
    for (std::size_t i = 0; i < f.size(); ++i)
        worst = hyperadapt::test::max_keeping_nan(worst, std::abs(static_cast<double>(f[i]) - d[i]) / (std::abs(d[i]) + 0.1));
    return worst;
}

/// Runs both precisions of a unary layer in training mode with the same dropout seed.
template <class LF, class LD, class B>
double float_double_gap(LF& lf, LD& ld, const tensor<B, float>& xf) {
    copy_parameters(ld, lf);
    typename LF::context cf;
    typename LD::context cd;
    rng_stream rf(11), rd(11);
    const auto yf = lf.forward(xf, cf, run_mode::train(rf)).to_host();
    const auto yd = ld.forward(to_double(xf), cd, run_mode::train(rd)).to_host();
    return worst_relative(yf, yd);
}

std::vector<std::string> parameter_names(auto& layer) {
    std::vector<std::string> names;
    layer.visit_parameters([&](const std::string& n, auto&) { names.push_back(n); });
    return names;
}

template <class B, class L>
void randomize(B& b, L& dense, std::uint64_t seed) {
    rng_stream rng(seed);
    dense.initialize(rng, 0.5);
    b.fill_uniform(dense.bias().size(), seed + 1, 0, -0.5, 0.5, dense.bias().value.data());
}
}  // namespace

static_assert(unary_layer<pooler<cpu, double>>);
static_assert(unary_layer<classification_head<cpu, double>>);
static_assert(unary_layer<regression_head<cpu, float>>);

// ---- pooler ----------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE_TEMPLATE(pooler_gradients_match_finite_differences, B, layer_backends) {
    B b;
    pooler<B, double> pool(b, 5);
    randomize(b, pool.dense(), 1);
    auto x = random_tensor<B, double>(b, {2, 3, 5}, 2);
    // Only position 0 reaches the output, so most of x has a true gradient of zero; the pooler's own
    // parameters still make the check non-vacuous.
    auto r = testing::check_layer(pool, x);
    BOOST_TEST(r.ok, r.report);
    BOOST_TEST(r.checked == 30u + 25u + 5u);
}

BOOST_AUTO_TEST_CASE(pooler_uses_the_first_token_and_routes_gradient_back_to_it) {
    cpu b;
    pooler<cpu, double> pool(b, 2, "bert.pooler");
    const std::vector<double> w{1, -1, 0.5, 2}, bias{0.1, -0.2};
    b.copy_from_host(w.data(), pool.dense().weight().value.data(), 4);
    b.copy_from_host(bias.data(), pool.dense().bias().value.data(), 2);
    // (batch 2, seq 3, hidden 2); only rows 0 and 3 matter
    const std::vector<double> x{0.3, 0.4, 9, 9, 9, 9, -0.5, 0.2, 9, 9, 9, 9};
    pooler<cpu, double>::context ctx;
    const auto y = pool.forward(tensor<cpu, double>::from_host(b, {2, 3, 2}, x), ctx).to_host();
    const std::vector<double> want{std::tanh(0.3 - 0.4 + 0.1), std::tanh(0.15 + 0.8 - 0.2),
                                   std::tanh(-0.5 - 0.2 + 0.1), std::tanh(-0.25 + 0.4 - 0.2)};
    for (std::size_t i = 0; i < 4; ++i) BOOST_TEST(y[i] == want[i], boost::test_tools::tolerance(1e-14));

    const auto dx = pool.backward(tensor<cpu, double>::filled(b, {2, 2}, 1.0), ctx);
    BOOST_TEST((dx.shape() == shape{2, 3, 2}));
    const auto dh = dx.to_host();
    for (std::size_t i = 0; i < dh.size(); ++i) {
        const bool first_token = (i / 2) % 3 == 0;
        if (first_token)
            BOOST_TEST(dh[i] != 0.0);
        else
            BOOST_TEST(dh[i] == 0.0);
    }
    const double d0 = 1 - want[0] * want[0], d1 = 1 - want[1] * want[1];  // dx = (dy * tanh') W
    BOOST_TEST(dh[0] == d0 * 1 + d1 * 0.5, boost::test_tools::tolerance(1e-14));
    BOOST_TEST(dh[1] == d0 * -1 + d1 * 2, boost::test_tools::tolerance(1e-14));
    BOOST_TEST((parameter_names(pool) == std::vector<std::string>{"bert.pooler.dense.weight", "bert.pooler.dense.bias"}));

    // The first tokens' rows as a batch uploads them (data/multitask_batch.hpp): the same outputs and gradients;
    // rows of another length are refused.
    const auto rows = tensor<cpu, std::int32_t>::from_host(b, {2}, std::vector<std::int32_t>{0, 3});
    pooler<cpu, double>::context given;
    BOOST_TEST(pool.forward(tensor<cpu, double>::from_host(b, {2, 3, 2}, x), given, {}, &rows).to_host() == y,
               boost::test_tools::per_element());
    BOOST_TEST(pool.backward(tensor<cpu, double>::filled(b, {2, 2}, 1.0), given).to_host() == dh,
               boost::test_tools::per_element());
    const auto three = tensor<cpu, std::int32_t>::from_host(b, {3}, std::vector<std::int32_t>{0, 3, 6});
    BOOST_CHECK_THROW((void)pool.forward(tensor<cpu, double>::from_host(b, {2, 3, 2}, x), given, {}, &three), shape_error);
}

BOOST_AUTO_TEST_CASE(pooler_wrong_shape_names_layer_and_shapes) {
    cpu b;
    pooler<cpu, float> pool(b, 8);
    pooler<cpu, float>::context ctx;
    for (const shape s : {shape{2, 8}, shape{2, 3, 7}, shape{2, 0, 8}}) {
        try {
            (void)pool.forward(tensor<cpu, float>::zeros(b, s), ctx);
            BOOST_FAIL("expected shape_error for " << s.str());
        } catch (const shape_error& e) {
            const std::string msg = e.what();
            BOOST_TEST(msg.find("pooler") != std::string::npos, msg);
            BOOST_TEST(msg.find(s.str()) != std::string::npos, msg);
            BOOST_TEST(msg.find("8)") != std::string::npos, msg);
        }
    }
}

// ---- heads -----------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE_TEMPLATE(classification_head_gradients_match_finite_differences, B, layer_backends) {
    B b;
    classification_head<B, double> head(b, 6, 3, 0.2);
    randomize(b, head.dense(), 3);
    auto x = random_tensor<B, double>(b, {4, 6}, 4);
    auto r = testing::check_layer(head, x);
    BOOST_TEST(r.ok, r.report);
    BOOST_TEST(r.checked == 24u + 18u + 3u);
    BOOST_TEST(head.num_labels() == 3u);
    BOOST_TEST((parameter_names(head) == std::vector<std::string>{"classifier.weight", "classifier.bias"}));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(regression_head_gradients_match_finite_differences, B, layer_backends) {
    B b;
    regression_head<B, double> head(b, 6, 0.1, "heads.stsb");
    randomize(b, head.dense(), 5);
    auto x = random_tensor<B, double>(b, {4, 6}, 6);
    auto r = testing::check_layer(head, x);
    BOOST_TEST(r.ok, r.report);
    BOOST_TEST(r.checked == 24u + 6u + 1u);
    BOOST_TEST((parameter_names(head) == std::vector<std::string>{"heads.stsb.weight", "heads.stsb.bias"}));
}

BOOST_AUTO_TEST_CASE(heads_apply_no_dropout_at_inference_and_check_shapes) {
    cpu b;
    classification_head<cpu, double> head(b, 3, 2, 0.5);
    randomize(b, head.dense(), 7);
    auto x = random_tensor<cpu, double>(b, {5, 3}, 8);
    classification_head<cpu, double>::context ctx;
    BOOST_TEST(head.forward(x, ctx).to_host() == head.dense().apply(x).to_host(), boost::test_tools::per_element());
    BOOST_TEST(head.apply(x).to_host() == head.dense().apply(x).to_host(), boost::test_tools::per_element());
    try {
        (void)head.forward(random_tensor<cpu, double>(b, {2, 4, 3}, 9), ctx);
        BOOST_FAIL("expected shape_error");
    } catch (const shape_error& e) {
        const std::string msg = e.what();
        BOOST_TEST(msg.find("classifier") != std::string::npos, msg);
        BOOST_TEST(msg.find("(2, 4, 3)") != std::string::npos, msg);
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(float_and_double_forwards_agree, B, layer_backends) {
    B b;
    {
        pooler<B, double> ld(b, 16);
        pooler<B, float> lf(b, 16);
        randomize(b, ld.dense(), 12);
        BOOST_TEST(float_double_gap(lf, ld, random_tensor<B, float>(b, {3, 4, 16}, 13)) < 1e-5);
    }
    {
        classification_head<B, double> ld(b, 16, 5, 0.1);
        classification_head<B, float> lf(b, 16, 5, 0.1f);
        randomize(b, ld.dense(), 14);
        BOOST_TEST(float_double_gap(lf, ld, random_tensor<B, float>(b, {7, 16}, 15)) < 1e-5);
    }
    {
        regression_head<B, double> ld(b, 16, 0.1);
        regression_head<B, float> lf(b, 16, 0.1f);
        randomize(b, ld.dense(), 16);
        BOOST_TEST(float_double_gap(lf, ld, random_tensor<B, float>(b, {7, 16}, 17)) < 1e-5);
    }
}
