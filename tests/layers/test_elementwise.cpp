#define BOOST_TEST_MODULE layers_elementwise
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <numbers>
#include <string>
#include <type_traits>
#include <vector>

#include "hyperadapt/layers/activations.hpp"
#include "hyperadapt/layers/dropout.hpp"
#include "hyperadapt/layers/layer_norm.hpp"
#include "hyperadapt/layers/pha/pha_ops.hpp"
#include "hyperadapt/testing/gradcheck.hpp"
#include "support/backends.hpp"
#include "support/max_keeping_nan.hpp"

using namespace hyperadapt;
using hyperadapt::test::layer_backends;
using hyperadapt::test::random_tensor;
using hyperadapt::test::copy_parameters;
using hyperadapt::test::to_double;

namespace {
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
}  // namespace

// ---- gradients -------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE_TEMPLATE(layer_norm_gradients_match_finite_differences, B, layer_backends) {
    B b;
    layer_norm<B, double> ln(b, 6, "encoder.layer.0.output.LayerNorm");
    b.fill_uniform(6, 3, 0, 0.5, 1.5, ln.weight().value.data());
    b.fill_uniform(6, 4, 0, -0.5, 0.5, ln.bias().value.data());
    auto x = random_tensor<B, double>(b, {2, 3, 6}, 5);
    auto r = testing::check_layer(ln, x);
    BOOST_TEST(r.ok, r.report);
    BOOST_TEST(r.checked == 36u + 6u + 6u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(gelu_gradients_match_finite_differences, B, layer_backends) {
    B b;
    gelu<B, double> act(b, "encoder.layer.0.intermediate.intermediate_act_fn");
    auto x = random_tensor<B, double>(b, {4, 7}, 6, -3.0, 3.0);
    auto r = testing::check_layer(act, x);
    BOOST_TEST(r.ok, r.report);
    BOOST_TEST(r.checked == 28u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(tanh_gradients_match_finite_differences, B, layer_backends) {
    B b;
    tanh_activation<B, double> act(b, "pooler.activation");
    auto x = random_tensor<B, double>(b, {3, 5}, 7, -2.0, 2.0);
    auto r = testing::check_layer(act, x);
    BOOST_TEST(r.ok, r.report);
    BOOST_TEST(r.checked == 15u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(dropout_gradients_match_finite_differences, B, layer_backends) {
    B b;
    dropout<B, double> drop(b, 0.3, "embeddings.dropout");
    auto x = random_tensor<B, double>(b, {5, 8}, 8);
    auto r = testing::check_layer(drop, x);
    BOOST_TEST(r.ok, r.report);
    BOOST_TEST(r.checked == 40u);
}

// ---- dropout semantics -----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE_TEMPLATE(dropout_is_a_function_of_the_seed, B, layer_backends) {
    B b;
    dropout<B, float> drop(b, 0.25f);
    auto x = random_tensor<B, float>(b, {64, 33}, 9);
    typename dropout<B, float>::context c1, c2, c3;
    rng_stream r1(42), r2(42), r3(43);
    const auto y1 = drop.forward(x, c1, run_mode::train(r1)).to_host();
    const auto y2 = drop.forward(x, c2, run_mode::train(r2)).to_host();
    const auto y3 = drop.forward(x, c3, run_mode::train(r3)).to_host();
    BOOST_TEST(y1 == y2, boost::test_tools::per_element());  // bit-identical
    std::size_t differing = 0;
    for (std::size_t i = 0; i < y1.size(); ++i) differing += y1[i] != y3[i];
    BOOST_TEST(differing > y1.size() / 10);
    BOOST_TEST(r1.offset() == x.size());  // the stream advanced by one counter per element
}

BOOST_AUTO_TEST_CASE_TEMPLATE(dropout_is_identity_at_inference_and_for_p_zero, B, layer_backends) {
    B b;
    auto x = random_tensor<B, float>(b, {7, 9}, 10);
    dropout<B, float> drop(b, 0.5f);
    typename dropout<B, float>::context ctx;
    const auto y = drop.forward(x, ctx, run_mode::inference());
    BOOST_TEST(y.to_host() == x.to_host(), boost::test_tools::per_element());
    const auto dy = random_tensor<B, float>(b, {7, 9}, 11);
    BOOST_TEST(drop.backward(dy, ctx).to_host() == dy.to_host(), boost::test_tools::per_element());

    dropout<B, float> none(b, 0.0f);
    rng_stream rng(1);
    BOOST_TEST(none.forward(x, ctx, run_mode::train(rng)).to_host() == x.to_host(),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(dropout_drops_fraction_p_and_scales_survivors, B, layer_backends) {
    B b;
    const double p = 0.1;
    dropout<B, double> drop(b, p);
    const std::size_t n = 100000;
    auto x = random_tensor<B, double>(b, {n}, 12, 0.5, 1.5);  // no zeros, so a zero output means dropped
    typename dropout<B, double>::context ctx;
    rng_stream rng(2024);
    const auto y = drop.forward(x, ctx, run_mode::train(rng)).to_host();
    const auto xh = x.to_host();
    std::size_t dropped = 0;
    double worst_scale_error = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (y[i] == 0.0) {
            ++dropped;
            continue;
        }
        worst_scale_error = hyperadapt::test::max_keeping_nan(worst_scale_error, std::abs(y[i] - xh[i] / (1 - p)));
    }
    // Binomial(1e5, 0.1) has standard deviation ~95; 5 sigma is ~0.005 of n.
    const double fraction = static_cast<double>(dropped) / static_cast<double>(n);
    BOOST_TEST(std::abs(fraction - p) < 0.005, "dropped fraction " << fraction);
    BOOST_TEST(worst_scale_error < 1e-15);

    // backward applies the same mask and scale
    const auto dx = drop.backward(tensor<B, double>::filled(b, {n}, 1.0), ctx).to_host();
    for (std::size_t i = 0; i < n; ++i)
        if ((dx[i] == 0.0) != (y[i] == 0.0) || (dx[i] != 0.0 && std::abs(dx[i] - 1 / (1 - p)) > 1e-15)) {
            BOOST_FAIL("backward mask differs from forward at " << i);
        }
}

BOOST_AUTO_TEST_CASE(dropout_rejects_bad_probability_and_missing_rng) {
    cpu b;
    BOOST_CHECK_THROW(dropout<cpu>(b, 1.0f), config_error);
    BOOST_CHECK_THROW(dropout<cpu>(b, -0.1f), config_error);
    dropout<cpu> drop(b, 0.1f, "embeddings.dropout");
    dropout<cpu>::context ctx;
    tensor<cpu, float> x = tensor<cpu, float>::zeros(b, {2, 2});
    try {
        (void)drop.forward(x, ctx, run_mode{true, nullptr});
        BOOST_FAIL("expected error");
    } catch (const error& e) {
        BOOST_TEST(std::string(e.what()).find("embeddings.dropout") != std::string::npos, e.what());
    }
}

BOOST_AUTO_TEST_CASE(layer_norm_wrong_width_names_layer_and_shapes) {
    cpu b;
    layer_norm<cpu, float> ln(b, 8, "embeddings.LayerNorm");
    layer_norm<cpu, float>::context ctx;
    try {
        (void)ln.forward(tensor<cpu, float>::zeros(b, {2, 3, 7}), ctx);
        BOOST_FAIL("expected shape_error");
    } catch (const shape_error& e) {
        const std::string msg = e.what();
        BOOST_TEST(msg.find("embeddings.LayerNorm") != std::string::npos, msg);
        BOOST_TEST(msg.find("(2, 3, 7)") != std::string::npos, msg);
        BOOST_TEST(msg.find("8") != std::string::npos, msg);
    }
}

BOOST_AUTO_TEST_CASE(layer_norm_matches_hand_computation) {
    cpu b;
    layer_norm<cpu, double> ln(b, 4, "LayerNorm", 1e-5);
    const std::vector<double> w{1, 2, 0.5, -1}, bias{0, 1, 0, 0.5}, x{1, 2, 3, 4};
    b.copy_from_host(w.data(), ln.weight().value.data(), 4);
    b.copy_from_host(bias.data(), ln.bias().value.data(), 4);
    const auto y = ln.apply(tensor<cpu, double>::from_host(b, {1, 4}, x)).to_host();
    const double mean = 2.5, var = 1.25, rs = 1 / std::sqrt(var + 1e-5);
    for (std::size_t i = 0; i < 4; ++i) BOOST_TEST(y[i] == (x[i] - mean) * rs * w[i] + bias[i], boost::test_tools::tolerance(1e-12));
}

// ---- float and double agree ------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE_TEMPLATE(float_and_double_forwards_agree, B, layer_backends) {
    B b;
    const auto x = random_tensor<B, float>(b, {6, 5, 16}, 13, -3.0f, 3.0f);
    {
        layer_norm<B, double> ld(b, 16);
        layer_norm<B, float> lf(b, 16);
        b.fill_uniform(16, 14, 0, 0.5, 1.5, ld.weight().value.data());
        b.fill_uniform(16, 15, 0, -0.5, 0.5, ld.bias().value.data());
        BOOST_TEST(float_double_gap(lf, ld, x) < 1e-5);
    }
    {
        gelu<B, double> ld(b);
        gelu<B, float> lf(b);
        BOOST_TEST(float_double_gap(lf, ld, x) < 1e-5);
    }
    {
        tanh_activation<B, double> ld(b);
        tanh_activation<B, float> lf(b);
        BOOST_TEST(float_double_gap(lf, ld, x) < 1e-5);
    }
    {
        dropout<B, double> ld(b, 0.1);
        dropout<B, float> lf(b, 0.1f);
        BOOST_TEST(float_double_gap(lf, ld, x) < 1e-5);
    }
}

// ---- NaN never hides ---------------------------------------------------------------------------------------
BOOST_AUTO_TEST_CASE_TEMPLATE(dropout_keeps_non_finite_values_at_dropped_positions, B, layer_backends) {
    // As PyTorch's x * mask: a dropped NaN or infinity is NaN, a dropped finite value is +0 (never -0, so
    // finite results are bit-identical to before).
    B b;
    const std::size_t n = 4000;
    const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
    auto xh = random_tensor<B, double>(b, {n}, 13).to_host();  // about half negative
    for (std::size_t i = 0; i < n; i += 4) xh[i] = i % 8 ? nan : (i % 16 ? inf : -inf);
    const auto x = tensor<B, double>::from_host(b, {n}, xh);
    dropout<B, double> drop(b, 0.5);
    typename dropout<B, double>::context ctx;
    rng_stream rng(8);
    const auto y = drop.forward(x, ctx, run_mode::train(rng)).to_host();
    const auto dx = drop.backward(x, ctx).to_host();  // the same mask on a gradient
    std::size_t dropped = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (i % 4 == 0) {
            BOOST_TEST(!std::isfinite(y[i]), "element " << i << " of a non-finite input gave " << y[i]);
            BOOST_TEST(!std::isfinite(dx[i]));
            dropped += std::isnan(y[i]) && !std::isnan(xh[i]);  // infinity dropped: inf - inf
        } else if (y[i] == 0.0) {
            BOOST_TEST(!std::signbit(y[i]), "element " << i << ": a dropped " << xh[i] << " gave -0");
            BOOST_TEST((dx[i] == 0.0 && !std::signbit(dx[i])));
        }
    }
    BOOST_TEST(dropped > 0u);  // some infinities were dropped, and came out NaN rather than 0
}

BOOST_AUTO_TEST_CASE(pha_relu_keeps_nan_as_torch_does) {
    cpu b;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const std::vector<float> xs{-1.0f, 0.0f, 2.0f, nan}, dys{1.0f, 2.0f, 3.0f, 4.0f};
    const auto x = tensor<cpu, float>::from_host(b, {4}, xs);
    const auto dy = tensor<cpu, float>::from_host(b, {4}, dys);
    tensor<cpu, float> y(b, {4}), dx(b, {4});
    pha_ops::relu_forward(b, 4, x.data(), y.data());
    pha_ops::relu_backward(b, 4, x.data(), dy.data(), dx.data());
    const auto yh = y.to_host(), dxh = dx.to_host();
    BOOST_TEST(yh[0] == 0.0f);
    BOOST_TEST(yh[1] == 0.0f);
    BOOST_TEST(yh[2] == 2.0f);
    BOOST_TEST(std::isnan(yh[3]));  // torch.relu(nan) is nan
    BOOST_TEST(dxh[0] == 0.0f);
    BOOST_TEST(dxh[1] == 0.0f);  // the subgradient 0 at 0
    BOOST_TEST(dxh[2] == 3.0f);
    BOOST_TEST(dxh[3] == 4.0f);  // torch's threshold_backward: x <= 0 is false for NaN, dy passes
}

// ---- relu and gelu_new primitives ----------------------------------------------------------------------------
namespace {
/// Zeros of both signs, +-1e4, NaN and infinities, then a spread over [-8, 8); more values than
/// detail::parallel_threshold, so the threaded path runs too.
template <class T>
std::vector<T> activation_inputs(std::size_t n, std::uint64_t seed) {
    const T nan = std::numeric_limits<T>::quiet_NaN(), inf = std::numeric_limits<T>::infinity();
    std::vector<T> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<T>(-8.0 + 16.0 * detail::uniform01(seed, i));
    const T specials[] = {T(0), -T(0), T(1e4), T(-1e4), nan, inf, -inf};
    for (std::size_t i = 0; i < std::size(specials); ++i) {
        v[i] = specials[i];
        v[n - 1 - i] = specials[i];  // the last thread's chunk as well
    }
    return v;
}

double relu_reference(double x) { return std::isnan(x) ? x : std::max(x, 0.0); }
double relu_grad_reference(double x, double dy) { return x > 0 || std::isnan(x) ? dy : 0.0; }

/// transformers 3.5.1's gelu_new, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), and its derivative.
double gelu_new_reference(double x) {
    const double c = std::sqrt(2.0 / std::numbers::pi);
    return 0.5 * x * (1.0 + std::tanh(c * (x + 0.044715 * std::pow(x, 3))));
}
double gelu_new_grad_reference(double x, double dy) {
    const double c = std::sqrt(2.0 / std::numbers::pi), t = std::tanh(c * (x + 0.044715 * std::pow(x, 3)));
    return dy * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * x * x));
}

/// got[i] is NaN exactly where want[i] is, equal to want[i] where that is infinite, and otherwise within
/// tol * scale[i] of it (scale: the size of the rounding errors the element's arithmetic can make).
template <class T>
void check_against_reference(const std::vector<T>& got, const std::vector<double>& want,
                             const std::vector<double>& scale, const std::vector<T>& x, double tol,
                             const std::string& what) {
    BOOST_TEST_REQUIRE(got.size() == want.size());
    std::size_t bad = 0, first = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        const double g = got[i], w = want[i];
        const bool ok = std::isnan(w) ? std::isnan(g) : g == w || std::abs(g - w) <= tol * scale[i];
        if (!ok && bad++ == 0) first = i;
    }
    BOOST_TEST(bad == 0u, what << ": " << bad << " of " << got.size() << " elements differ; first [" << first
                               << "] x = " << x[first] << ": got " << got[first] << ", want " << want[first]);
}

/// NaN equals NaN.
template <class T>
bool same_values(const std::vector<T>& a, const std::vector<T>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (!(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i])))) return false;
    return true;
}

/// Each primitive against the reference, then again in place as the PHA modules call them (relu's y = x, every
/// backward's dx = dy), which must give the same values.
template <class B, class T>
void check_activation_primitives(double tol) {
    B b;
    const std::size_t n = detail::parallel_threshold + 3001;
    const auto xs = activation_inputs<T>(n, 31);
    auto dys = activation_inputs<T>(n, 32);
    dys[n / 2] = std::numeric_limits<T>::quiet_NaN();  // a NaN gradient passes through where x > 0
    const auto x = tensor<B, T>::from_host(b, {n}, xs), dy = tensor<B, T>::from_host(b, {n}, dys);
    tensor<B, T> y(b, {n}), t(b, {n}), dx(b, {n});
    std::vector<double> want(n), forward_scale(n), backward_scale(n);
    for (std::size_t i = 0; i < n; ++i) {  // gelu_new's backward multiplies its rounding errors by dy
        forward_scale[i] = 1.0 + std::abs(static_cast<double>(xs[i]));
        backward_scale[i] = forward_scale[i] * (1.0 + std::abs(static_cast<double>(dys[i])));
    }
    const std::string type = std::is_same_v<T, float> ? " (float)" : " (double)";
    const auto run_in_place = [&](const std::vector<T>& values, auto&& primitive) {
        auto io = tensor<B, T>::from_host(b, {n}, values);
        primitive(io.data());
        return io.to_host();
    };

    b.relu_forward(n, x.data(), y.data());
    for (std::size_t i = 0; i < n; ++i) want[i] = relu_reference(xs[i]);
    check_against_reference(y.to_host(), want, forward_scale, xs, 0.0, "relu_forward" + type);
    BOOST_TEST(same_values(run_in_place(xs, [&](T* io) { b.relu_forward(n, io, io); }), y.to_host()),
               "relu_forward in place" << type);

    b.relu_backward(n, x.data(), dy.data(), dx.data());
    for (std::size_t i = 0; i < n; ++i) want[i] = relu_grad_reference(xs[i], dys[i]);
    check_against_reference(dx.to_host(), want, backward_scale, xs, 0.0, "relu_backward" + type);
    BOOST_TEST(same_values(run_in_place(dys, [&](T* io) { b.relu_backward(n, x.data(), io, io); }), dx.to_host()),
               "relu_backward in place" << type);

    b.gelu_new_forward(n, x.data(), y.data(), t.data());
    for (std::size_t i = 0; i < n; ++i) want[i] = gelu_new_reference(xs[i]);
    check_against_reference(y.to_host(), want, forward_scale, xs, tol, "gelu_new_forward" + type);

    b.gelu_new_backward(n, x.data(), t.data(), dy.data(), dx.data());
    for (std::size_t i = 0; i < n; ++i) want[i] = gelu_new_grad_reference(xs[i], dys[i]);
    check_against_reference(dx.to_host(), want, backward_scale, xs, tol, "gelu_new_backward" + type);
    BOOST_TEST(same_values(run_in_place(dys, [&](T* io) { b.gelu_new_backward(n, x.data(), t.data(), io, io); }),
                           dx.to_host()),
               "gelu_new_backward in place" << type);
}
}  // namespace

BOOST_AUTO_TEST_CASE_TEMPLATE(relu_and_gelu_new_primitives_match_a_double_reference, B, layer_backends) {
    check_activation_primitives<B, float>(2e-6);
    check_activation_primitives<B, double>(1e-14);
}

BOOST_AUTO_TEST_CASE(layer_norm_gelu_and_tanh_propagate_nan_within_the_row) {
    cpu b;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> xs(12, 0.5f);
    for (std::size_t i = 0; i < 12; ++i) xs[i] = static_cast<float>(i) / 7.0f;
    xs[5] = nan;  // row 1 of (3, 4)
    const auto x = tensor<cpu, float>::from_host(b, {3, 4}, xs);
    layer_norm<cpu, float> norm(b, 4, "ln");
    norm.weight().value.fill(1.0f);
    norm.bias().value.zero();
    typename layer_norm<cpu, float>::context ctx;
    const auto y = norm.forward(x, ctx, run_mode::inference()).to_host();
    for (std::size_t i = 0; i < 12; ++i) BOOST_TEST(std::isnan(y[i]) == (i / 4 == 1), "element " << i);
    tensor<cpu, float> g(b, {12}), t(b, {12});
    b.gelu_forward(12, x.data(), g.data());
    b.tanh_forward(12, x.data(), t.data());
    BOOST_TEST(std::isnan(g.to_host()[5]));
    BOOST_TEST(std::isnan(t.to_host()[5]));
}
