#define BOOST_TEST_MODULE loss
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "hyperadapt/backend/contrastive_losses.hpp"
#include "hyperadapt/loss/cross_entropy.hpp"
#include "hyperadapt/loss/mse.hpp"
#include "hyperadapt/loss/pha_contrastive.hpp"
#include "hyperadapt/testing/gradcheck.hpp"
#include "support/backends.hpp"

using namespace hyperadapt;
using hyperadapt::test::layer_backends;
using hyperadapt::test::random_tensor;

namespace {
template <class B>
tensor<B, std::int32_t> labels(B& b, shape s, std::vector<std::int32_t> values) {
    return tensor<B, std::int32_t>::from_host(b, s, values);
}

template <class B>
tensor<B, float> to_float(const tensor<B, double>& x) {
    const auto h = x.to_host();
    std::vector<float> f(h.size());
    for (std::size_t i = 0; i < h.size(); ++i) f[i] = static_cast<float>(h[i]);
    return tensor<B, float>::from_host(x.backend(), x.shape(), f);
}

/// Worst |f - d| / (|d| + 0.1): relative where values are O(1), absolute near zero; NaN if any is NaN.
double worst_relative(const std::vector<float>& f, const std::vector<double>& d) {
    BOOST_TEST_REQUIRE(f.size() == d.size());
    double worst = 0;
    for (std::size_t i = 0; i < f.size(); ++i) {
        const double e = std::abs(static_cast<double>(f[i]) - d[i]) / (std::abs(d[i]) + 0.1);
        if (e > worst || std::isnan(e)) worst = e;
        if (std::isnan(worst)) break;
    }
    return worst;
}

template <class B>
tensor<B, double> scalar(B& b, double v) {
    return tensor<B, double>::from_host(b, {1}, std::vector<double>{v});
}

/// Gradient check of the loss as a function of the logits; the projection dy becomes backward's scale.
template <class B>
testing::gradcheck_result check_cross_entropy(B& b, tensor<B, double> logits, const tensor<B, std::int32_t>& y) {
    cross_entropy_loss<B, double> loss(b);
    typename cross_entropy_loss<B, double>::context ctx;
    return testing::check_gradients<B>(
        b, {{"logits", &logits}}, [](auto&&) {}, [&] { return scalar(b, loss.forward(logits, y, ctx)); },
        [&](const tensor<B, double>& dy) {
            return std::vector<tensor<B, double>>{loss.backward(ctx, dy.to_host()[0])};
        });
}

double log_sum_exp(std::initializer_list<double> xs) {
    double s = 0;
    for (double x : xs) s += std::exp(x);
    return std::log(s);
}
}  // namespace

// ---- cross entropy ---------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE_TEMPLATE(cross_entropy_gradients_match_finite_differences, B, layer_backends) {
    B b;
    auto r = check_cross_entropy(b, random_tensor<B, double>(b, {5, 4}, 1, -3.0, 3.0),
                                 labels(b, {5}, {3, 0, -1, 1, 3}));
    BOOST_TEST(r.ok, r.report);
    BOOST_TEST(r.checked == 20u);
    // token classification: (batch, seq, classes) logits with (batch, seq) labels
    r = check_cross_entropy(b, random_tensor<B, double>(b, {2, 3, 5}, 2, -3.0, 3.0),
                            labels(b, {2, 3}, {4, -1, -1, 0, 2, 1}));
    BOOST_TEST(r.ok, r.report);
    BOOST_TEST(r.checked == 30u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(cross_entropy_matches_hand_computation, B, layer_backends) {
    B b;
    cross_entropy_loss<B, double> loss(b, "tasks.mnli.loss");
    typename cross_entropy_loss<B, double>::context ctx;
    const std::vector<double> logits{1, 2, 3, 0, 0, 0, 5, -1, 0, 0.5, -0.5, 2};
    const double value =
        loss.forward(tensor<B, double>::from_host(b, {4, 3}, logits), labels(b, {4}, {2, 0, -1, 1}), ctx);
    // row 2 is ignored: the mean runs over three rows
    const double want = (log_sum_exp({1, 2, 3}) - 3 + std::log(3.0) + log_sum_exp({0.5, -0.5, 2}) + 0.5) / 3;
    BOOST_TEST(value == want, boost::test_tools::tolerance(1e-14));
    BOOST_TEST(ctx.loss == value);
    BOOST_TEST(ctx.counted == 3u);

    const auto d = loss.backward(ctx, 2.0).to_host();  // scale 2
    const int label_of[4] = {2, 0, -1, 1};
    for (std::size_t r = 0; r < 4; ++r) {
        const double z = std::exp(logits[3 * r]) + std::exp(logits[3 * r + 1]) + std::exp(logits[3 * r + 2]);
        for (std::size_t c = 0; c < 3; ++c) {
            const double g = label_of[r] < 0 ? 0.0
                                             : 2.0 / 3 * (std::exp(logits[3 * r + c]) / z -
                                                          (static_cast<int>(c) == label_of[r] ? 1.0 : 0.0));
            BOOST_TEST(d[3 * r + c] == g, boost::test_tools::tolerance(1e-14));
        }
    }
}

BOOST_AUTO_TEST_CASE(cross_entropy_with_every_label_ignored_is_zero) {
    cpu b;
    cross_entropy_loss<cpu, double> loss(b);
    cross_entropy_loss<cpu, double>::context ctx;
    BOOST_TEST(loss.forward(random_tensor<cpu, double>(b, {2, 3}, 3), labels(b, {2}, {-1, -1}), ctx) == 0.0);
    const auto d = loss.backward(ctx).to_host();
    BOOST_TEST(d == std::vector<double>(6, 0.0), boost::test_tools::per_element());
}

// forward_rows + finish (several losses copied back at once, layers/multitask_heads.hpp) give forward's loss and
// gradient bit for bit; finish refuses row losses of another count and a context without forward_rows.
BOOST_AUTO_TEST_CASE(cross_entropy_in_two_halves_equals_forward) {
    cpu b;
    cross_entropy_loss<cpu, float> loss(b);
    const auto x = random_tensor<cpu, float>(b, {4, 3}, 6);
    const std::vector<std::int32_t> host{2, -1, 0, 1};
    const auto y = labels(b, {4}, host);
    cross_entropy_loss<cpu, float>::context whole, halves;
    const double l = loss.forward(x, y, whole);
    tensor<cpu, float> rows(b, {4});
    loss.forward_rows(x, y, host, halves, rows.data());
    const auto row_losses = rows.to_host();
    BOOST_TEST(row_losses[1] == 0.0f);  // the ignored row
    BOOST_TEST(loss.finish(halves, row_losses) == l);
    BOOST_TEST(halves.counted == 3u);
    BOOST_TEST(loss.backward(halves).to_host() == loss.backward(whole).to_host(), boost::test_tools::per_element());
    BOOST_CHECK_THROW((void)loss.finish(halves, std::span<const float>(row_losses).first(3)), shape_error);
    cross_entropy_loss<cpu, float>::context fresh;
    BOOST_CHECK_THROW((void)loss.finish(fresh, row_losses), error);
}

BOOST_AUTO_TEST_CASE(cross_entropy_honours_a_custom_negative_ignore_index) {
    cpu b;
    cross_entropy_loss<cpu, double> loss(b, "ner", -100);  // Hugging Face's token-classification convention
    cross_entropy_loss<cpu, double>::context ctx;
    const auto x = random_tensor<cpu, double>(b, {3, 4}, 4);
    const double with_ignored = loss.forward(x, labels(b, {3}, {1, -100, 2}), ctx);
    BOOST_TEST(ctx.counted == 2u);
    BOOST_CHECK_THROW((void)loss.forward(x, labels(b, {3}, {1, -1, 2}), ctx), error);
    BOOST_CHECK_THROW(cross_entropy_loss<cpu>(b, "ce", 0), config_error);
    const double rows_0_and_2 = loss.forward(x.row_range(0, 1), labels(b, {1}, {1}), ctx) / 2 +
                                loss.forward(x.row_range(2, 1), labels(b, {1}, {2}), ctx) / 2;
    BOOST_TEST(with_ignored == rows_0_and_2, boost::test_tools::tolerance(1e-14));
}

BOOST_AUTO_TEST_CASE(cross_entropy_bad_labels_name_loss_label_and_classes) {
    cpu b;
    cross_entropy_loss<cpu, float> loss(b, "tasks.cola.loss");
    cross_entropy_loss<cpu, float>::context ctx;
    const auto x = tensor<cpu, float>::zeros(b, {3, 2});
    for (const std::int32_t bad : {2, -2}) {
        try {
            (void)loss.forward(x, labels(b, {3}, {0, bad, 1}), ctx);
            BOOST_FAIL("expected error for label " << bad);
        } catch (const error& e) {
            const std::string msg = e.what();
            BOOST_TEST(msg.find("tasks.cola.loss") != std::string::npos, msg);
            BOOST_TEST(msg.find("label " + std::to_string(bad)) != std::string::npos, msg);
            BOOST_TEST(msg.find("2 classes") != std::string::npos, msg);
        }
    }
    try {
        (void)loss.forward(x, labels(b, {2}, {0, 1}), ctx);
        BOOST_FAIL("expected shape_error");
    } catch (const shape_error& e) {
        const std::string msg = e.what();
        BOOST_TEST(msg.find("tasks.cola.loss") != std::string::npos, msg);
        BOOST_TEST(msg.find("(2)") != std::string::npos, msg);
        BOOST_TEST(msg.find("(3)") != std::string::npos, msg);
    }
    BOOST_CHECK_THROW((void)loss.backward(cross_entropy_loss<cpu, float>::context{}), error);
}

// ---- mean squared error ----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE_TEMPLATE(mse_gradients_match_finite_differences, B, layer_backends) {
    B b;
    auto pred = random_tensor<B, double>(b, {6, 1}, 5);
    const auto target = random_tensor<B, double>(b, {6}, 6);
    mse_loss<B, double> loss(b);
    typename mse_loss<B, double>::context ctx;
    auto r = testing::check_gradients<B>(
        b, {{"pred", &pred}}, [](auto&&) {}, [&] { return scalar(b, loss.forward(pred, target, ctx)); },
        [&](const tensor<B, double>& dy) {
            return std::vector<tensor<B, double>>{loss.backward(ctx, dy.to_host()[0])};
        });
    BOOST_TEST(r.ok, r.report);
    BOOST_TEST(r.checked == 6u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(mse_matches_hand_computation, B, layer_backends) {
    B b;
    mse_loss<B, double> loss(b);
    typename mse_loss<B, double>::context ctx;
    const auto pred = tensor<B, double>::from_host(b, {4, 1}, std::vector<double>{1, 2, 3, 4});
    const auto target = tensor<B, double>::from_host(b, {4}, std::vector<double>{0, 2, 5, 4});
    BOOST_TEST(loss.forward(pred, target, ctx) == 1.25);
    const auto d = loss.backward(ctx, 2.0);
    BOOST_TEST((d.shape() == shape{4, 1}));
    BOOST_TEST(d.to_host() == (std::vector<double>{1, 0, -2, 0}), boost::test_tools::per_element());
    BOOST_TEST(pred.to_host() == (std::vector<double>{1, 2, 3, 4}), boost::test_tools::per_element());
}

// forward in two halves (the heads copy every task's differences back at once): the differences land where the
// caller says, finish gives forward's loss from their host copy, and backward is forward's.
BOOST_AUTO_TEST_CASE_TEMPLATE(mse_forward_rows_and_finish_equal_forward, B, layer_backends) {
    B b;
    mse_loss<B, double> loss(b);
    typename mse_loss<B, double>::context whole, halves;
    const auto pred = tensor<B, double>::from_host(b, {4, 1}, std::vector<double>{1, 2, 3, 4});
    const auto target = tensor<B, double>::from_host(b, {4}, std::vector<double>{0, 2, 5, 4.5});
    auto out = tensor<B, double>::zeros(b, {6});
    loss.forward_rows(pred, target, halves, out.data() + 1);
    const auto host = out.to_host();
    BOOST_TEST(host == (std::vector<double>{0, 1, 0, -2, -0.5, 0}), boost::test_tools::per_element());
    BOOST_TEST(loss.finish(halves, std::span<const double>(host).subspan(1, 4)) == 1.3125);
    BOOST_TEST(loss.forward(pred, target, whole) == 1.3125);
    BOOST_TEST(loss.backward(halves, 2.0).to_host() == loss.backward(whole, 2.0).to_host(), boost::test_tools::per_element());
    BOOST_CHECK_THROW((void)loss.finish(halves, std::span<const double>(host).subspan(0, 3)), shape_error);
    typename mse_loss<B, double>::context none;
    BOOST_CHECK_THROW((void)loss.finish(none, std::span<const double>(host).subspan(1, 4)), error);
}

BOOST_AUTO_TEST_CASE(mse_shape_mismatch_names_loss_and_both_shapes) {
    cpu b;
    mse_loss<cpu, float> loss(b, "tasks.stsb.loss");
    mse_loss<cpu, float>::context ctx;
    try {
        (void)loss.forward(tensor<cpu, float>::zeros(b, {4, 1}), tensor<cpu, float>::zeros(b, {3}), ctx);
        BOOST_FAIL("expected shape_error");
    } catch (const shape_error& e) {
        const std::string msg = e.what();
        BOOST_TEST(msg.find("tasks.stsb.loss") != std::string::npos, msg);
        BOOST_TEST(msg.find("(4, 1)") != std::string::npos, msg);
        BOOST_TEST(msg.find("(3)") != std::string::npos, msg);
    }
    BOOST_CHECK_THROW((void)loss.forward(tensor<cpu, float>{}, tensor<cpu, float>{}, ctx), shape_error);
    BOOST_CHECK_THROW((void)loss.backward(mse_loss<cpu, float>::context{}), error);
}

// ---- float and double agree ------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE_TEMPLATE(float_and_double_losses_agree, B, layer_backends) {
    B b;
    const auto xd = random_tensor<B, double>(b, {16, 5}, 7, -4.0, 4.0);
    const auto xf = to_float(xd);
    const auto xr = tensor<B, double>::from_host(b, xd.shape(), [&] {  // xd rounded to float, exactly
        const auto h = xf.to_host();
        return std::vector<double>(h.begin(), h.end());
    }());
    std::vector<std::int32_t> y(16);
    for (std::size_t i = 0; i < 16; ++i) y[i] = static_cast<std::int32_t>(i % 6) - 1;  // includes ignored rows
    const auto yl = labels(b, {16}, y);
    {
        cross_entropy_loss<B, double> ld(b);
        cross_entropy_loss<B, float> lf(b);
        typename cross_entropy_loss<B, double>::context cd;
        typename cross_entropy_loss<B, float>::context cf;
        const double vd = ld.forward(xr, yl, cd), vf = lf.forward(xf, yl, cf);
        BOOST_TEST(std::abs(vf - vd) / vd < 1e-5);
        BOOST_TEST(worst_relative(lf.backward(cf).to_host(), ld.backward(cd).to_host()) < 1e-5);
    }
    {
        const auto td = random_tensor<B, double>(b, {16, 5}, 8, -4.0, 4.0);
        const auto tf = to_float(td);
        const auto tr = tensor<B, double>::from_host(b, td.shape(), [&] {
            const auto h = tf.to_host();
            return std::vector<double>(h.begin(), h.end());
        }());
        mse_loss<B, double> ld(b);
        mse_loss<B, float> lf(b);
        typename mse_loss<B, double>::context cd;
        typename mse_loss<B, float>::context cf;
        const double vd = ld.forward(xr, tr, cd), vf = lf.forward(xf, tf, cf);
        BOOST_TEST(std::abs(vf - vd) / vd < 1e-5);
        BOOST_TEST(worst_relative(lf.backward(cf).to_host(), ld.backward(cd).to_host()) < 1e-5);
    }
}

// ---- NaN never hides ---------------------------------------------------------------------------------------
BOOST_AUTO_TEST_CASE_TEMPLATE(cross_entropy_is_nan_when_a_counted_row_has_a_nan_logit, B, layer_backends) {
    B b;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    cross_entropy_loss<B, double> loss(b);
    typename cross_entropy_loss<B, double>::context ctx;
    for (const std::size_t where : {std::size_t{0}, std::size_t{2}, std::size_t{3}}) {  // first, middle, last
        auto x = random_tensor<B, double>(b, {3, 4}, 21).to_host();
        x[4 + where] = nan;  // row 1
        const auto logits = tensor<B, double>::from_host(b, {3, 4}, x);
        BOOST_TEST(std::isnan(loss.forward(logits, labels(b, {3}, {0, 1, 2}), ctx)), "NaN at class " << where);
        const auto d = loss.backward(ctx).to_host();
        for (std::size_t c = 0; c < 4; ++c) BOOST_TEST(std::isnan(d[4 + c]));
        // The same row ignored: the loss and the other rows' gradients are those of the finite rows.
        BOOST_TEST(std::isfinite(loss.forward(logits, labels(b, {3}, {0, -1, 2}), ctx)));
        for (const double v : loss.backward(ctx).to_host()) BOOST_TEST(std::isfinite(v));
    }
    // Every logit of a row NaN: the max shift must not drop them all (it would give a -inf shift).
    const auto all_nan = tensor<B, double>::filled(b, {1, 3}, nan);
    BOOST_TEST(std::isnan(loss.forward(all_nan, labels(b, {1}, {1}), ctx)));
}

BOOST_AUTO_TEST_CASE(mse_is_nan_when_a_prediction_is_nan) {
    cpu b;
    mse_loss<cpu, double> loss(b);
    mse_loss<cpu, double>::context ctx;
    const std::vector<double> p{0.5, std::numeric_limits<double>::quiet_NaN(), 1.5}, t{1.0, 1.0, 1.0};
    BOOST_TEST(std::isnan(loss.forward(tensor<cpu, double>::from_host(b, {3}, p),
                                       tensor<cpu, double>::from_host(b, {3}, t), ctx)));
    const auto d = loss.backward(ctx).to_host();
    BOOST_TEST(std::isfinite(d[0]));
    BOOST_TEST(std::isnan(d[1]));
}

BOOST_AUTO_TEST_CASE(pha_contrastive_losses_are_nan_when_an_embedding_is_nan) {
    cpu b;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    auto f = random_tensor<cpu, float>(b, {4, 6}, 31).to_host();
    const auto k = random_tensor<cpu, float>(b, {2, 6}, 32);
    const auto tasks = labels(b, {4}, {0, 1, 0, 1});
    pha_instance_loss<cpu, float> ins(b);
    pha_prototype_loss<cpu, float> pro(b);
    pha_instance_loss<cpu, float>::context ci;
    pha_prototype_loss<cpu, float>::context cp;
    BOOST_TEST(std::isfinite(ins.forward(tensor<cpu, float>::from_host(b, {4, 6}, f), tasks, ci)));
    f[2 * 6 + 3] = nan;  // example 2
    const auto features = tensor<cpu, float>::from_host(b, {4, 6}, f);
    BOOST_TEST(std::isnan(ins.forward(features, tasks, ci)));
    BOOST_TEST(std::isnan(pro.forward(features, tasks, k, cp)));
    std::size_t nans = 0;
    for (const float v : pro.backward(cp).features.to_host()) nans += std::isnan(v);
    BOOST_TEST(nans >= 6u);  // at least example 2's row
    // A NaN prototype that only sits in other rows' denominators still reaches their losses.
    auto kh = k.to_host();
    kh[1 * 6] = nan;
    const auto finite = random_tensor<cpu, float>(b, {4, 6}, 33);
    BOOST_TEST(std::isnan(pro.forward(finite, labels(b, {4}, {0, 0, 0, 0}), tensor<cpu, float>::from_host(b, {2, 6}, kh),
                                      cp)));
}

// The backend primitive (backend/contrastive_losses.hpp) that a PHA model's step calls is the loss classes'
// arithmetic: the same losses and, per row, the same T gradients as pha_bert's host path makes of the classes'
// (instance + prototype, each rounded to T, added in T), bit for bit, for either denominator, either loss alone,
// rows without a positive, and a batch without any anchor.
BOOST_AUTO_TEST_CASE_TEMPLATE(contrastive_primitive_equals_the_loss_classes_bit_for_bit, B, layer_backends) {
    B b;
    const auto run = [&]<class T>(T, std::vector<std::int32_t> tasks, std::size_t prototypes, bool instance,
                                  bool prototype, pha_denominator denominator, const std::string& what) {
        const std::size_t rows = tasks.size(), dim = 5;
        const auto features = random_tensor<B, T>(b, {rows, dim}, 41 + rows);
        const auto k = random_tensor<B, T>(b, {prototypes, dim}, 43 + prototypes);
        const pha_contrastive_options o{.temperature = 0.07, .weight = 0.3, .denominator = denominator};
        // The classes, combined as pha_bert's host path combines them.
        const auto t = labels(b, {rows}, tasks);
        double want_ins = 0, want_pro = 0;
        std::vector<T> want_df(rows * dim, T(0)), want_dk;
        if (instance) {
            pha_instance_loss<B, T> loss(b, o);
            typename pha_instance_loss<B, T>::context c;
            want_ins = loss.forward(features, t, c);
            const auto d = loss.backward_values(c);
            want_df.assign(d.begin(), d.end());
        }
        if (prototype) {
            pha_prototype_loss<B, T> loss(b, o);
            typename pha_prototype_loss<B, T>::context c;
            want_pro = loss.forward(features, t, k, c);
            const auto g = loss.backward_values(c);
            for (std::size_t i = 0; i < want_df.size(); ++i)
                want_df[i] = instance ? want_df[i] + static_cast<T>(g.features[i]) : static_cast<T>(g.features[i]);
            want_dk.assign(g.prototypes.begin(), g.prototypes.end());
        }
        // The primitive.
        tensor<B, T> df(b, {rows, dim}), dk(b, {prototypes, dim});
        tensor<B, double> losses(b, {2});
        b.contrastive_losses(rows, dim, prototypes, features.data(), t.data(), k.data(),
                             contrastive_settings{.temperature = o.temperature,
                                                  .weight = o.weight,
                                                  .instance = instance,
                                                  .prototype = prototype,
                                                  .exclude_positive = denominator == pha_denominator::exclude_positive},
                             losses.data(), df.data(), dk.data());
        const auto got = losses.to_host();
        BOOST_TEST(got[0] == want_ins, what << ": instance loss " << got[0] << " against " << want_ins);
        BOOST_TEST(got[1] == want_pro, what << ": prototype loss " << got[1] << " against " << want_pro);
        const auto gdf = df.to_host();
        std::size_t differ = 0;
        for (std::size_t i = 0; i < gdf.size(); ++i) differ += !(gdf[i] == want_df[i]);
        BOOST_TEST(differ == 0u, what << ": " << differ << " feature gradient values differ");
        if (prototype) {
            const auto gdk = dk.to_host();
            differ = 0;
            for (std::size_t i = 0; i < gdk.size(); ++i) differ += !(gdk[i] == want_dk[i]);
            BOOST_TEST(differ == 0u, what << ": " << differ << " prototype gradient values differ");
        }
    };
    const std::vector<std::int32_t> mixed{0, 1, 0, 2, 1, 0, 3};  // task 2 and 3: one row each, no positive
    for (const auto d : {pha_denominator::exclude_positive, pha_denominator::standard}) {
        const std::string den = d == pha_denominator::standard ? " (standard denominator)" : "";
        run(float{}, mixed, 4, true, true, d, "float, both losses" + den);
        run(double{}, mixed, 4, true, true, d, "double, both losses" + den);
        run(float{}, mixed, 4, false, true, d, "float, prototype loss only" + den);
        run(double{}, {0, 1, 2}, 3, true, true, d, "double, no anchor" + den);
    }
    run(float{}, mixed, 4, true, false, pha_denominator::exclude_positive, "float, instance loss only");
}
