#define BOOST_TEST_MODULE layers_multitask_heads
#include <boost/test/unit_test.hpp>

#include <span>
#include <vector>

#include "hyperadapt/layers/multitask_heads.hpp"
#include "hyperadapt/testing/gradcheck.hpp"
#include "support/backends.hpp"

using namespace hyperadapt;
using hyperadapt::test::layer_backends;
using hyperadapt::test::random_tensor;

BOOST_AUTO_TEST_CASE_TEMPLATE(mixed_task_loss_gradients, B, layer_backends) {
    B b;
    multitask_heads<B, double> heads(b, 6, {{"rte", 2}, {"stsb", 1}, {"cola", 3}}, 0.2);
    rng_stream init(1);
    heads.initialize(init, 0.5);
    auto pooled = random_tensor<B, double>(b, {7, 6}, 3);
    const std::vector<std::int32_t> task{0, 1, 2, 0, 1, 0, 2}, labels{1, -1, 2, 0, -1, 1, 0};
    const std::vector<float> scores{0, 3.5f, 0, 0, 1.25f, 0, 0};
    typename multitask_heads<B, double>::context ctx;
    // The checker differentiates r * y for a random r; y is the scalar batch loss here.
    auto r = testing::check_gradients<B>(
        b, {{"pooled", &pooled}}, [&](auto&& f) { heads.visit_parameters(f); },
        [&] {
            rng_stream rr(4);
            const double l = heads.forward_loss(pooled, task, labels, scores, ctx, run_mode::train(rr));
            return tensor<B, double>::from_host(b, {1}, std::vector<double>{l});
        },
        [&](const tensor<B, double>& dy) {
            return std::vector<tensor<B, double>>{heads.backward(ctx, dy.to_host()[0])};
        });
    BOOST_TEST(r.ok, r.report);
}

BOOST_AUTO_TEST_CASE(each_task_counts_equally) {
    cpu b;
    multitask_heads<cpu, double> heads(b, 4, {{"a", 2}, {"b", 2}}, 0.0);
    rng_stream init(2);
    heads.initialize(init, 0.5);
    auto pooled = random_tensor<cpu, double>(b, {5, 4}, 9);
    multitask_heads<cpu, double>::context ctx, c1, c2;
    const double all = heads.forward_loss(pooled, {0, 0, 0, 0, 1}, {1, 0, 1, 1, 0}, {0, 0, 0, 0, 0}, ctx, {});
    const double a = heads.forward_loss(pooled.row_range(0, 4).clone(), {0, 0, 0, 0}, {1, 0, 1, 1}, {0, 0, 0, 0}, c1, {});
    const double bb = heads.forward_loss(pooled.row_range(4, 1).clone(), {1}, {0}, {0}, c2, {});
    BOOST_TEST(std::abs(all - 0.5 * (a + bb)) < 1e-12);
}

// The rows, labels and regression targets per task as a batch uploads them (data/multitask_batch.hpp): the same
// loss and gradients as the heads' own upload (a target_scale other than 1 divides on the backend instead of the
// host: the same to the last bits of double); a batch that uploaded them for another number of tasks is refused.
BOOST_AUTO_TEST_CASE(rows_labels_and_targets_the_batch_uploaded_give_the_same_loss_and_gradients) {
    cpu b;
    const std::vector<std::int32_t> task{0, 1, 2, 0, 1, 0, 2}, labels{1, -1, 2, 0, -1, 1, 0};
    const std::vector<float> scores{0, 3.5f, 0, 0, 1.25f, 0, 0};
    auto ids = [&](std::vector<std::int32_t> v) {
        return tensor<cpu, std::int32_t>::from_host(b, {v.size()}, v);
    };
    const std::vector<tensor<cpu, std::int32_t>> rows{ids({0, 3, 5}), ids({1, 4}), ids({2, 6})},
        task_labels{ids({1, 0, 1}), ids({-1, -1}), ids({2, 0})};
    const std::vector<tensor<cpu, double>> targets{{}, tensor<cpu, double>::from_host(b, {2}, std::vector<double>{3.5, 1.25}), {}};
    const auto pooled = random_tensor<cpu, double>(b, {7, 6}, 3);
    for (const double scale : {1.0, 5.0, 3.0}) {
        BOOST_TEST_CONTEXT("target_scale " << scale) {
            multitask_heads<cpu, double> heads(b, 6, {{"rte", 2}, {"stsb", 1, scale}, {"cola", 3}}, 0.0);
            rng_stream init(1);
            heads.initialize(init, 0.5);
            multitask_heads<cpu, double>::context own, given;
            const double l_own = heads.forward_loss(pooled, task, labels, scores, own, {});
            const double l_given =
                heads.forward_loss(pooled, task, labels, scores, given, {}, {}, {rows, task_labels, targets});
            const auto g_own = heads.backward(own).to_host(), g_given = heads.backward(given).to_host();
            if (scale == 1.0) {
                BOOST_TEST(l_own == l_given);
                BOOST_TEST(g_own == g_given, boost::test_tools::per_element());
            } else {
                BOOST_TEST(l_own == l_given, boost::test_tools::tolerance(1e-14));
                BOOST_TEST(g_own == g_given, boost::test_tools::tolerance(1e-14) << boost::test_tools::per_element());
            }
        }
    }
    multitask_heads<cpu, double> heads(b, 6, {{"rte", 2}, {"stsb", 1}, {"cola", 3}}, 0.0);
    multitask_heads<cpu, double>::context given;
    const std::span<const tensor<cpu, std::int32_t>> two_rows(rows.data(), 2), two_labels(task_labels.data(), 2);
    BOOST_CHECK_THROW((void)heads.forward_loss(pooled, task, labels, scores, given, {}, {}, {two_rows, two_labels, targets}),
                      shape_error);
    BOOST_CHECK_THROW((void)heads.forward_loss(pooled, task, labels, scores, given, {}, {}, {{}, task_labels, targets}),
                      shape_error);
    BOOST_CHECK_THROW((void)heads.forward_loss(pooled, task, labels, scores, given, {}, {}, {rows, task_labels, {}}),
                      shape_error);
}

BOOST_AUTO_TEST_CASE(bad_task_id_names_the_heads) {
    cpu b;
    multitask_heads<cpu, float> heads(b, 4, {{"a", 2}});
    multitask_heads<cpu, float>::context ctx;
    tensor<cpu, float> pooled = tensor<cpu, float>::zeros(b, {1, 4});
    BOOST_CHECK_THROW((void)heads.forward_loss(pooled, {3}, {0}, {0}, ctx, {}), config_error);
}

BOOST_AUTO_TEST_CASE(regression_targets_are_learned_on_a_scale) {
    // target_scale s: the loss is MSE(y, t / s) and outputs() reports s * y, so a scaled and an unscaled
    // head with the same weights differ by exactly that.
    cpu b;
    multitask_heads<cpu, double> plain(b, 4, {{"stsb", 1}}, 0.0);
    multitask_heads<cpu, double> scaled(b, 4, {{"stsb", 1, 5.0}}, 0.0);
    rng_stream init(3);
    plain.initialize(init, 0.5);
    std::vector<std::vector<double>> values;
    plain.visit_parameters([&](const std::string&, parameter<cpu, double>& p) { values.push_back(p.value.to_host()); });
    std::size_t next = 0;
    scaled.visit_parameters([&](const std::string&, parameter<cpu, double>& p) {
        b.copy_from_host(values.at(next).data(), p.value.data(), p.size());
        ++next;
    });
    const auto x = random_tensor<cpu, double>(b, {3, 4}, 9);
    const std::vector<std::int32_t> tasks{0, 0, 0}, labels{0, 0, 0};
    const std::vector<float> targets{5.0f, 2.5f, 0.0f}, scaled_targets{1.0f, 0.5f, 0.0f};
    multitask_heads<cpu, double>::context c1, c2;
    const double l_plain = plain.forward_loss(x, tasks, labels, scaled_targets, c1, run_mode::inference());
    const double l_scaled = scaled.forward_loss(x, tasks, labels, targets, c2, run_mode::inference());
    BOOST_TEST(std::abs(l_plain - l_scaled) < 1e-6);  // the float targets round once
    const auto y_plain = plain.outputs(x, tasks), y_scaled = scaled.outputs(x, tasks);
    for (std::size_t r = 0; r < 3; ++r) BOOST_TEST(std::abs(y_scaled[r][0] - 5.0 * y_plain[r][0]) < 1e-12);
    BOOST_CHECK_THROW((multitask_heads<cpu, double>(b, 4, {{"bad", 1, 0.0}})), config_error);
}
