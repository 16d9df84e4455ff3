#define BOOST_TEST_MODULE nn_compose
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "hyperadapt/layers/activations.hpp"
#include "hyperadapt/layers/dropout.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/nn/compose.hpp"
#include "hyperadapt/nn/parameters.hpp"
#include "hyperadapt/testing/gradcheck.hpp"
#include "support/backends.hpp"

using namespace hyperadapt;
using hyperadapt::test::cpu_backends;
using hyperadapt::test::random_tensor;
namespace tt = boost::test_tools;

namespace {
template <class B, class T>
using mlp = sequential<linear<B, T>, gelu<B, T>, linear<B, T>>;

template <class B, class T>
mlp<B, T> make_mlp(B& b) {
    mlp<B, T> m("mlp", linear<B, T>(b, 5, 7, "mlp.fc1"), gelu<B, T>(b), linear<B, T>(b, 7, 3, "mlp.fc2"));
    rng_stream rng(11);
    m.template get<0>().initialize(rng, T(0.5));
    m.template get<2>().initialize(rng, T(0.5));
    b.fill_uniform(7, 21, 0, T(-0.3), T(0.3), m.template get<0>().bias().value.data());
    b.fill_uniform(3, 22, 0, T(-0.3), T(0.3), m.template get<2>().bias().value.data());
    return m;
}
}  // namespace

static_assert(unary_layer<mlp<cpu, double>>, "a sequential of unary layers is itself a unary layer");
static_assert(unary_layer<sequential<mlp<cpu, float>, dropout<cpu, float>>>, "sequentials nest");

BOOST_AUTO_TEST_CASE_TEMPLATE(sequential_gradients_match_finite_differences, B, cpu_backends) {
    B b;
    auto m = make_mlp<B, double>(b);
    auto x = random_tensor<B, double>(b, {2, 3, 5}, 4);
    auto r = testing::check_layer(m, x);
    BOOST_TEST(r.ok, r.report);
    BOOST_TEST(r.checked == 30u + 35u + 7u + 21u + 3u);
}

BOOST_AUTO_TEST_CASE(sequential_forward_equals_the_layers_run_by_hand) {
    cpu b;
    auto m = make_mlp<cpu, double>(b);
    auto x = random_tensor<cpu, double>(b, {4, 5}, 8);
    const auto composed = m.apply(x).to_host();
    const auto by_hand = m.get<2>().apply(m.get<1>().apply(m.get<0>().apply(x))).to_host();
    BOOST_TEST(composed == by_hand, tt::per_element());
    BOOST_TEST(m.name() == "mlp");
}

BOOST_AUTO_TEST_CASE(sequential_visits_parameters_in_layer_order) {
    cpu b;
    auto m = make_mlp<cpu, float>(b);
    BOOST_TEST(parameter_names(m) ==
                   (std::vector<std::string>{"mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"}),
               tt::per_element());
    BOOST_TEST(count_parameters(m).total == 35u + 7u + 21u + 3u);
}

BOOST_AUTO_TEST_CASE(nested_sequential_with_dropout_runs_backward_in_reverse) {
    cpu b;
    sequential outer(make_mlp<cpu, double>(b), dropout<cpu, double>(b, 0.25));
    auto x = random_tensor<cpu, double>(b, {3, 5}, 9);
    auto r = testing::check_layer(outer, x);
    BOOST_TEST(r.ok, r.report);
}
