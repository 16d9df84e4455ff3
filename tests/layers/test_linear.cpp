#define BOOST_TEST_MODULE layers_linear
#include <boost/test/unit_test.hpp>

#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/testing/gradcheck.hpp"
#include "support/backends.hpp"

using namespace hyperadapt;
using hyperadapt::test::layer_backends;
using hyperadapt::test::random_tensor;

BOOST_AUTO_TEST_CASE_TEMPLATE(linear_gradients_match_finite_differences, B, layer_backends) {
    B b;
    linear<B, double> layer(b, 5, 3, "encoder.layer.0.output.dense");
    rng_stream rng(1);
    layer.initialize(rng, 0.5);
    b.fill_uniform(3, 9, 0, -0.5, 0.5, layer.bias().value.data());
    auto x = random_tensor<B, double>(b, {2, 4, 5}, 3);
    auto r = testing::check_layer(layer, x);
    BOOST_TEST(r.ok, r.report);
    BOOST_TEST(r.checked == 40u + 15u + 3u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(linear_forward_matches_direct_product, B, layer_backends) {
    B b;
    linear<B, double> layer(b, 3, 2, "fc");
    const std::vector<double> w{1, 2, 3, 4, 5, 6}, bias{0.5, -1}, x{1, 0, -1, 2, 1, 0};
    b.copy_from_host(w.data(), layer.weight().value.data(), 6);
    b.copy_from_host(bias.data(), layer.bias().value.data(), 2);
    auto y = layer.apply(tensor<B, double>::from_host(b, {2, 3}, x)).to_host();
    const std::vector<double> want{1 - 3 + 0.5, 4 - 6 - 1, 2 + 2 + 0.5, 8 + 5 - 1};
    BOOST_TEST(y == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(linear_wrong_width_names_layer_and_shapes) {
    cpu b;
    linear<cpu, float> layer(b, 8, 4, "encoder.layer.2.attention.self.query");
    tensor<cpu, float> x(b, {3, 7});
    linear<cpu, float>::context ctx;
    try {
        (void)layer.forward(x, ctx);
        BOOST_FAIL("expected shape_error");
    } catch (const shape_error& e) {
        const std::string msg = e.what();
        BOOST_TEST(msg.find("encoder.layer.2.attention.self.query") != std::string::npos, msg);
        BOOST_TEST(msg.find("(3, 7)") != std::string::npos, msg);
        BOOST_TEST(msg.find("8") != std::string::npos, msg);
    }
}

BOOST_AUTO_TEST_CASE(frozen_linear_gets_no_gradient_buffer) {
    cpu b;
    linear<cpu, float> layer(b, 4, 4, "fc");
    layer.weight().freeze();
    BOOST_TEST(layer.weight().grad.empty());
    linear<cpu, float>::context ctx;
    auto x = random_tensor<cpu, float>(b, {2, 4}, 5);
    auto y = layer.forward(x, ctx);
    auto dx = layer.backward(y, ctx);
    BOOST_TEST(dx.size() == 8u);
    BOOST_TEST(layer.weight().grad.empty());
}
