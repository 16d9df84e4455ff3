// The anomaly mode (hyperadapt/nn/anomaly.hpp): a NaN planted in one named parameter is reported, in the
// forward pass, by the module that owns it; a NaN that appears only in the backward pass is reported by the
// module whose input gradient it first reaches; without a detector nothing is checked and the NaN reaches
// the outputs (it is never turned into plausible numbers on the way). BERT, CA-MTL and every PHA variant.
#define BOOST_TEST_MODULE nn_anomaly
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "hyperadapt/layers/activations.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/models/bert.hpp"
#include "hyperadapt/nn/anomaly.hpp"
#include "hyperadapt/nn/compose.hpp"
#include "models/model_parity.hpp"
#include "support/backends.hpp"

using namespace hyperadapt;
using hyperadapt::test::layer_backends;

namespace {

const bert_config tiny{.vocab_size = 30, .hidden = 16, .layers = 3, .heads = 2, .intermediate = 24,
                       .max_position = 8};
constexpr std::size_t head_dim = 8;

template <class B>
struct bert_inputs {
    tensor<B, std::int32_t> ids, types;
    attention_mask<B> mask;
    explicit bert_inputs(B& b) {
        const std::vector<std::int32_t> i{2, 7, 9, 4, 11, 3, 5, 8, 12, 6, 1, 0};
        const std::vector<std::int32_t> t{0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0};
        const std::vector<std::uint8_t> m{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};  // the second sentence is padded
        ids = tensor<B, std::int32_t>::from_host(b, {2, 6}, i);
        types = tensor<B, std::int32_t>::from_host(b, {2, 6}, t);
        mask = attention_mask<B>::from_host(b, {2, 6}, m);
    }
};

template <class B>
bert_model<B, float> make_bert(B& b) {
    bert_model<B, float> m(b, tiny);
    rng_stream init(3);
    m.initialize(init);
    return m;
}

/// Sets element `index` of the parameter called `name` to `value`.
template <class M>
void plant(M& m, const std::string& name, std::size_t index,
           float value = std::numeric_limits<float>::quiet_NaN()) {
    bool found = false;
    m.visit_parameters([&](const std::string& n, auto& p) {
        if (n != name) return;
        using T = typename decltype(p.value)::value_type;
        const T v = static_cast<T>(value);
        p.value.backend().copy_from_host(&v, p.value.data() + index, 1);
        found = true;
    });
    BOOST_TEST_REQUIRE(found, "no parameter " << name);
}

template <class B, class T>
std::size_t count_non_finite(const tensor<B, T>& t) {
    std::size_t n = 0;
    for (const T v : t.to_host()) n += !std::isfinite(v);
    return n;
}

/// Runs f, which must throw anomaly_error, and returns the error.
template <class F>
anomaly_error expect_anomaly(F&& f) {
    try {
        f();
    } catch (const anomaly_error& e) {
        return e;
    }
    BOOST_FAIL("no anomaly_error was thrown");
    throw std::logic_error("unreachable");
}

}  // namespace

BOOST_AUTO_TEST_CASE_TEMPLATE(checks_change_no_result_of_a_finite_pass, B, layer_backends) {
    B b;
    auto m = make_bert(b);
    const bert_inputs<B> in(b);
    anomaly_detector detect;
    typename bert_model<B, float>::context plain_ctx, checked_ctx;
    rng_stream r1(5), r2(5);
    const auto plain = m.forward(in.ids, in.types, in.mask, plain_ctx, run_mode::train(r1));
    const auto checked = m.forward(in.ids, in.types, in.mask, checked_ctx, run_mode::train(r2).detecting_anomalies(detect));
    BOOST_TEST(plain.last_hidden.to_host() == checked.last_hidden.to_host());
    BOOST_TEST(plain.pooled.to_host() == checked.pooled.to_host());
    const std::size_t forward_checks = detect.checked();
    // embeddings, 4 per layer (attention.self, attention.output, intermediate, output), pooler
    BOOST_TEST(forward_checks == 1 + 4 * tiny.layers + 1);
    const auto dh = tensor<B, float>::filled(b, checked.last_hidden.shape(), 0.01f);
    const auto dp = tensor<B, float>::filled(b, checked.pooled.shape(), 0.02f);
    m.backward(dh, dp, checked_ctx);
    BOOST_TEST(detect.checked() > forward_checks + 4 * tiny.layers);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(nan_in_a_query_weight_is_named_by_its_attention_in_forward, B, layer_backends) {
    B b;
    auto m = make_bert(b);
    const bert_inputs<B> in(b);
    // Row head_dim of the query weight is the first query feature of head 1: every score of head 1 is NaN.
    plant(m, "encoder.layer.1.attention.self.query.weight", head_dim * tiny.hidden + 3);

    // Off: nothing is checked, and the NaN reaches every output (no all-NaN softmax row passes for a masked one).
    anomaly_detector unused;
    typename bert_model<B, float>::context ctx;
    const auto out = m.forward(in.ids, in.types, in.mask, ctx, run_mode::inference());
    BOOST_TEST(count_non_finite(out.last_hidden) == out.last_hidden.size());
    BOOST_TEST(count_non_finite(out.pooled) == out.pooled.size());
    BOOST_TEST(unused.checked() == 0u);

    anomaly_detector detect;
    const auto e = expect_anomaly(
        [&] { (void)m.forward(in.ids, in.types, in.mask, ctx, run_mode::inference().detecting_anomalies(detect)); });
    BOOST_TEST(e.module() == "encoder.layer.1.attention.self");
    BOOST_TEST((e.pass() == anomaly_pass::forward));
    BOOST_TEST(e.tensor_name() == "output");
    BOOST_TEST((e.tensor_shape() == shape{2, 6, 16}));
    BOOST_TEST(e.index() == head_dim);  // token 0 of sentence 0, head 1's first context feature
    BOOST_TEST(std::isnan(e.value()));
    const std::string what = e.what();
    BOOST_TEST(what.find("forward") != std::string::npos, what);
    BOOST_TEST(what.find("encoder.layer.1.attention.self") != std::string::npos, what);
    BOOST_TEST(what.find("element 8 = (0, 0, 8)") != std::string::npos, what);
    // The embeddings and layer 0 were checked before (6 checks), then the failing one.
    BOOST_TEST(detect.checked() == 1 + 4 + 1);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(infinity_in_a_feed_forward_weight_is_named_by_that_module, B, layer_backends) {
    B b;
    auto m = make_bert(b);
    const bert_inputs<B> in(b);
    plant(m, "encoder.layer.2.output.dense.weight", 5, std::numeric_limits<float>::infinity());
    anomaly_detector detect;
    typename bert_model<B, float>::context ctx;
    const auto e = expect_anomaly(
        [&] { (void)m.forward(in.ids, in.types, in.mask, ctx, run_mode::inference().detecting_anomalies(detect)); });
    BOOST_TEST(e.module() == "encoder.layer.2.output");
    BOOST_TEST((e.pass() == anomaly_pass::forward));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(nan_that_appears_only_in_backward_is_named_in_backward, B, layer_backends) {
    B b;
    auto m = make_bert(b);
    const bert_inputs<B> in(b);
    anomaly_detector detect;
    typename bert_model<B, float>::context ctx;
    rng_stream rng(7);
    const auto out = m.forward(in.ids, in.types, in.mask, ctx, run_mode::train(rng).detecting_anomalies(detect));
    BOOST_TEST(count_non_finite(out.last_hidden) == 0u);
    // The forward is finite; the weight changes before backward, which multiplies the gradient by it.
    plant(m, "encoder.layer.1.intermediate.dense.weight", 17);
    const auto dh = tensor<B, float>::filled(b, out.last_hidden.shape(), 0.01f);
    const auto e = expect_anomaly([&] { m.backward(dh, {}, ctx); });
    BOOST_TEST(e.module() == "encoder.layer.1.intermediate");
    BOOST_TEST((e.pass() == anomaly_pass::backward));
    BOOST_TEST(e.tensor_name() == "input gradient");
    BOOST_TEST(std::string(e.what()).find("backward") != std::string::npos);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_non_finite_gradient_from_the_caller_is_not_blamed_on_a_layer, B, layer_backends) {
    B b;
    auto m = make_bert(b);
    const bert_inputs<B> in(b);
    anomaly_detector detect;
    typename bert_model<B, float>::context ctx;
    rng_stream rng(7);
    const auto out = m.forward(in.ids, in.types, in.mask, ctx, run_mode::train(rng).detecting_anomalies(detect));
    auto dp = tensor<B, float>::filled(b, out.pooled.shape(), 0.5f);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    b.copy_from_host(&nan, dp.data() + 19, 1);
    const auto e = expect_anomaly([&] { m.backward({}, dp, ctx); });
    BOOST_TEST(e.module() == "pooler_output");
    BOOST_TEST(e.index() == 19u);
}

BOOST_AUTO_TEST_CASE(a_pass_without_the_detector_forgets_an_earlier_one) {
    cpu b;
    auto m = make_bert(b);
    const bert_inputs<cpu> in(b);
    anomaly_detector detect;
    typename bert_model<cpu, float>::context ctx;
    rng_stream rng(7);
    (void)m.forward(in.ids, in.types, in.mask, ctx, run_mode::train(rng).detecting_anomalies(detect));
    const std::size_t checks = detect.checked();
    const auto out = m.forward(in.ids, in.types, in.mask, ctx, run_mode::train(rng));  // same context, off
    plant(m, "encoder.layer.1.intermediate.dense.weight", 17);
    BOOST_CHECK_NO_THROW(m.backward(tensor<cpu, float>::filled(b, out.last_hidden.shape(), 0.01f), {}, ctx));
    BOOST_TEST(detect.checked() == checks);
}

BOOST_AUTO_TEST_CASE(detector_on_a_tensor_reports_the_first_non_finite_element) {
    cpu b;
    std::vector<double> v(24, 1e200);  // the sum of squares overflows: the element scan must clear it
    anomaly_detector detect;
    auto t = tensor<cpu, double>::from_host(b, {2, 3, 4}, v);
    BOOST_CHECK_NO_THROW(detect.check(anomaly_pass::forward, "big", "", "output", t));
    v[13] = -std::numeric_limits<double>::infinity();
    v[20] = std::numeric_limits<double>::quiet_NaN();
    t = tensor<cpu, double>::from_host(b, {2, 3, 4}, v);
    const auto e = expect_anomaly([&] { detect.check(anomaly_pass::backward, "heads", "cola", "input gradient", t); });
    BOOST_TEST(e.module() == "heads.cola");
    BOOST_TEST(e.index() == 13u);
    BOOST_TEST(e.value() == -std::numeric_limits<double>::infinity());
    BOOST_TEST(std::string(e.what()) ==
               "anomaly detected in backward: heads.cola: non-finite input gradient (-inf at element 13 = (1, 0, 1) "
               "of shape (2, 3, 4))");
    BOOST_TEST(detect.checked() == 2u);
    // Integer tensors carry no NaN: counted, never scanned.
    const std::vector<std::int32_t> ids{1, 2};
    BOOST_CHECK_NO_THROW(
        detect.check(anomaly_pass::forward, "ids", "", "output", tensor<cpu, std::int32_t>::from_host(b, {2}, ids)));
}

BOOST_AUTO_TEST_CASE(a_sequential_composition_checks_every_element_by_name) {
    cpu b;
    sequential mlp("mlp", linear<cpu>(b, 4, 6, "mlp.fc1"), gelu<cpu>(b, "mlp.act"), linear<cpu>(b, 6, 3, "mlp.fc2"));
    rng_stream init(2);
    mlp.get<0>().initialize(init, 0.5f);
    mlp.get<2>().initialize(init, 0.5f);
    const auto x = test::random_tensor<cpu, float>(b, {5, 4}, 9);
    anomaly_detector detect;
    decltype(mlp)::context ctx;
    const auto y = mlp.forward(x, ctx, run_mode::inference().detecting_anomalies(detect));
    BOOST_TEST(detect.checked() == 3u);
    // A weight that only the backward pass multiplies by: fc2's input gradient is the first non-finite one.
    plant(mlp, "mlp.fc2.weight", 4);
    auto e = expect_anomaly([&] { (void)mlp.backward(tensor<cpu, float>::filled(b, y.shape(), 1.0f), ctx); });
    BOOST_TEST(e.module() == "mlp.fc2");
    BOOST_TEST((e.pass() == anomaly_pass::backward));
    // And in forward.
    e = expect_anomaly([&] { (void)mlp.forward(x, ctx, run_mode::inference().detecting_anomalies(detect)); });
    BOOST_TEST(e.module() == "mlp.fc2");
    BOOST_TEST((e.pass() == anomaly_pass::forward));
    BOOST_TEST(e.index() == 0u);  // fc2's weight (3, 6): element 4 is in row 0, so every output's column 0
}

// ---- the multi-task models: CA-MTL and every PHA variant ----------------------------------------------
namespace {

/// The module that owns a parameter: its name without ".query.weight" (or the like).
std::string owner(const std::string& parameter_name, const std::string& suffix) {
    return parameter_name.substr(0, parameter_name.size() - suffix.size());
}

/// The first parameter whose name contains `part` and ends with `suffix`.
template <class M>
std::string find_parameter(M& m, const std::string& part, const std::string& suffix) {
    std::string found;
    m.visit_parameters([&](const std::string& n, auto&) {
        if (found.empty() && n.find(part) != std::string::npos && n.size() > suffix.size() &&
            n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0)
            found = n;
    });
    BOOST_TEST_REQUIRE(!found.empty(), "no parameter with '" << part << "' ending in '" << suffix << "'");
    return found;
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_multitask_model_names_the_layer_in_forward_and_backward) {
    using namespace hyperadapt::parity;
    cpu b;
    const auto tasks = tiny_tasks();
    for (const auto kind : all_models) {
        BOOST_TEST_CONTEXT(name_of(kind)) {
            const auto values = initial_values(b, kind);
            with_model<float>(b, kind, [&](auto& m) {
                using model_t = std::remove_reference_t<decltype(m)>;
                load_values(m, b, values);
                const auto batch = make_batch<cpu, float>(b, tasks, rows_of_step(0));

                // Forward: a NaN query weight in layer 1 (CA-MTL's top layer calls it new_attention.self).
                const std::string query = find_parameter(m, "encoder.layer.1.", "attention.self.query.weight");
                plant(m, query, 5);
                {
                    typename model_t::context ctx;
                    rng_stream rng(4);
                    const double loss = m.forward_loss(batch, ctx, run_mode::train(rng));  // off: no check
                    BOOST_TEST(std::isnan(loss), "the loss is " << loss << " with a NaN query weight");
                }
                anomaly_detector detect;
                typename model_t::context ctx;
                rng_stream rng(4);
                auto e = expect_anomaly(
                    [&] { (void)m.forward_loss(batch, ctx, run_mode::train(rng).detecting_anomalies(detect)); });
                BOOST_TEST(e.module() == owner(query, ".query.weight"));
                BOOST_TEST((e.pass() == anomaly_pass::forward));

                // Backward: a finite forward, then a NaN in layer 0's intermediate weight, which only the
                // backward pass multiplies by.
                load_values(m, b, values);
                rng = rng_stream(4);
                const double loss = m.forward_loss(batch, ctx, run_mode::train(rng).detecting_anomalies(detect));
                BOOST_TEST(std::isfinite(loss));
                const std::string up = find_parameter(m, "encoder.layer.0.", "intermediate.dense.weight");
                plant(m, up, 7);
                zero_grad(m);
                e = expect_anomaly([&] { m.backward(ctx); });
                BOOST_TEST(e.module() == owner(up, ".dense.weight"));
                BOOST_TEST((e.pass() == anomaly_pass::backward));
            });
        }
    }
}
