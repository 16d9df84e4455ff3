#define BOOST_TEST_MODULE layers_dense_gelu
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "hyperadapt/layers/dense_gelu.hpp"
#include "hyperadapt/layers/dropout.hpp"
#include "hyperadapt/layers/encoder_layer.hpp"
#include "hyperadapt/testing/gradcheck.hpp"
#include "support/backends.hpp"

// The fused element-wise primitives (bias + GELU, dropout + residual; backend/concepts.hpp) against the plain
// primitives they replace: the same layers on a CPU backend that hides the fused ones must give the same
// outputs and gradients, at sizes where the CPU backend splits the work into several pieces.

using namespace hyperadapt;
using hyperadapt::test::random_tensor;

namespace {
/// The CPU backend without its fused primitives: layers take their unfused path on it.
struct unfused_cpu : cpu {
    unfused_cpu() : cpu(cpu::options{.threads = 2}) {}
    template <class T>
    void bias_gelu_forward(std::size_t, std::size_t, const T*, T*, T*) = delete;
    template <class T>
    void bias_gelu_backward(std::size_t, std::size_t, const T*, const T*, T*, T*) = delete;
    template <class T>
    void bias_gelu_forward_backward(std::size_t, std::size_t, const T*, const T*, T*, T*, T*) = delete;
    template <class T>
    void dropout_add_forward(std::size_t, T, std::uint64_t, std::uint64_t, const T*, const T*, T*) = delete;
    template <class T>
    void dropout_forward_backward(std::size_t, T, std::uint64_t, std::uint64_t, const T*, const T*, T*, T*) = delete;
};
static_assert(elementwise_backend<unfused_cpu> && !fused_primitives<unfused_cpu, float> &&
              !fused_primitives<unfused_cpu, double>);
static_assert(fused_primitives<cpu, float> && fused_primitives<cpu, double>);

/// Worst |a - b| / (|b| + 1).
template <class A, class C>
double worst_gap(const std::vector<A>& a, const std::vector<C>& b) {
    BOOST_TEST_REQUIRE(a.size() == b.size());
    double worst = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double e = std::abs(static_cast<double>(a[i]) - b[i]) / (std::abs(static_cast<double>(b[i])) + 1.0);
        if (!(e <= worst)) worst = e;  // NaN wins
    }
    return worst;
}

/// Copies every parameter value of `from` into `to` (same layer on another backend), in visiting order.
template <class From, class To>
void copy_values(From& from, To& to) {
    std::vector<std::vector<float>> values;
    from.visit_parameters([&](const std::string&, auto& p) { values.push_back(p.value.to_host()); });
    std::size_t next = 0;
    to.visit_parameters([&](const std::string&, auto& p) {
        const auto& v = values.at(next++);
        p.value.backend().copy_from_host(v.data(), p.value.data(), v.size());
    });
}

/// Every parameter gradient, in visiting order.
template <class L>
std::vector<std::vector<double>> gradients_of(L& l) {
    std::vector<std::vector<double>> g;
    l.visit_parameters([&](const std::string&, auto& p) {
        const auto h = p.grad.empty() ? decltype(p.grad.to_host()){} : p.grad.to_host();
        g.emplace_back(h.begin(), h.end());
    });
    return g;
}

template <class B>
tensor<B, float> on(B& b, const tensor<cpu, float>& x) {
    return tensor<B, float>::from_host(b, x.shape(), x.to_host());
}
}  // namespace

BOOST_AUTO_TEST_CASE(dense_gelu_gradients_match_finite_differences) {
    cpu b;
    dense_gelu<cpu, double> layer(b, 6, 9, "encoder.layer.0.intermediate.dense");
    rng_stream rng(4);
    layer.initialize(rng, 0.5);
    b.fill_uniform(9, 5, 0, -0.5, 0.5, layer.dense().bias().value.data());
    auto x = random_tensor<cpu, double>(b, {2, 3, 6}, 6, -2.0, 2.0);
    auto r = testing::check_layer(layer, x);
    BOOST_TEST(r.ok, r.report);
    BOOST_TEST(r.checked == 36u + 54u + 9u);
}

BOOST_AUTO_TEST_CASE(fused_and_unfused_dense_gelu_agree) {
    // 256 rows x 1536 columns: more than one row range in forward and column block in backward on two threads.
    cpu fused(cpu::options{.threads = 2});
    unfused_cpu plain;
    dense_gelu<cpu, float> lf(fused, 96, 1536, "intermediate.dense");
    dense_gelu<unfused_cpu, float> lp(plain, 96, 1536, "intermediate.dense");
    rng_stream rng(8);
    lf.initialize(rng, 0.3f);
    fused.fill_uniform(1536, 9, 0, -0.5f, 0.5f, lf.dense().bias().value.data());
    copy_values(lf, lp);
    const auto x = random_tensor<cpu, float>(fused, {8, 32, 96}, 10, -2.0f, 2.0f);
    const auto dy = random_tensor<cpu, float>(fused, {8, 32, 1536}, 11);
    typename dense_gelu<cpu, float>::context cf;
    typename dense_gelu<unfused_cpu, float>::context cp;
    const auto yf = lf.forward(x, cf, run_mode::inference()).to_host();
    const auto yp = lp.forward(on(plain, x), cp, run_mode::inference()).to_host();
    BOOST_TEST(worst_gap(yf, yp) < 1e-6);
    const auto dxf = lf.backward(dy, cf).to_host();
    const auto dxp = lp.backward(on(plain, dy), cp).to_host();
    BOOST_TEST(worst_gap(dxf, dxp) < 1e-6);
    const auto gf = gradients_of(lf), gp = gradients_of(lp);
    BOOST_TEST_REQUIRE(gf.size() == 2u);
    BOOST_TEST(worst_gap(gf[0], gp[0]) < 1e-5);
    BOOST_TEST(worst_gap(gf[1], gp[1]) < 1e-5);  // the bias gradient: the fused pass's column sums
    // A frozen bias gets no gradient on the fused path either.
    lf.dense().bias().freeze();
    typename dense_gelu<cpu, float>::context cf2;
    (void)lf.forward(x, cf2, run_mode::inference());
    BOOST_TEST(worst_gap(lf.backward(dy, cf2).to_host(), dxp) < 1e-6);
}

BOOST_AUTO_TEST_CASE(fused_dropout_add_keeps_the_dropout_mask) {
    cpu fused(cpu::options{.threads = 2});
    unfused_cpu plain;
    dropout<cpu, float> df(fused, 0.2f, "output.dropout");
    dropout<unfused_cpu, float> dp(plain, 0.2f, "output.dropout");
    const auto y = random_tensor<cpu, float>(fused, {16, 64, 96}, 12);
    const auto x = random_tensor<cpu, float>(fused, {16, 64, 96}, 13);
    for (const bool training : {true, false}) {
        rng_stream rf(5), rp(5);
        typename dropout<cpu, float>::context cf;
        typename dropout<unfused_cpu, float>::context cp;
        const auto y_copy = tensor<cpu, float>::from_host(fused, y.shape(), y.to_host());
        const auto of = df.forward_add(y_copy, x, cf, training ? run_mode::train(rf) : run_mode::inference()).to_host();
        const auto op = dp.forward_add(on(plain, y), on(plain, x), cp, training ? run_mode::train(rp) : run_mode::inference())
                            .to_host();
        BOOST_TEST(worst_gap(of, op) < 1e-6);
        // The backward regenerates the forward's mask.
        const auto gf = df.backward(y, cf).to_host(), gq = dp.backward(on(plain, y), cp).to_host();
        BOOST_TEST(worst_gap(gf, gq) == 0.0);
        std::size_t dropped = 0;
        for (float v : gf) dropped += v == 0.0f;
        if (training)
            BOOST_TEST((dropped > gf.size() / 10 && dropped < gf.size() * 3 / 10));
        else
            BOOST_TEST(dropped == 0u);
    }
}

BOOST_AUTO_TEST_CASE(dropout_output_made_again_in_backward_equals_the_forward_output) {
    // Attention does not keep its dropped probabilities; backward_with_output makes them again. They must be
    // the forward's to the bit (the same mask), with the same input gradient as backward(), fused or not.
    cpu fused(cpu::options{.threads = 2});
    unfused_cpu plain;
    dropout<cpu, float> df(fused, 0.1f, "attention.self.dropout");
    dropout<unfused_cpu, float> dp(plain, 0.1f, "attention.self.dropout");
    const auto x = random_tensor<cpu, float>(fused, {4, 12, 64, 64}, 18);
    const auto dy = random_tensor<cpu, float>(fused, {4, 12, 64, 64}, 19);
    for (const bool training : {true, false}) {
        rng_stream rf(6), rp(6);
        typename dropout<cpu, float>::context cf;
        typename dropout<unfused_cpu, float>::context cp;
        const auto yf = df.forward(x, cf, training ? run_mode::train(rf) : run_mode::inference()).to_host();
        const auto yp = dp.forward(on(plain, x), cp, training ? run_mode::train(rp) : run_mode::inference()).to_host();
        const auto dx = df.backward(dy, cf).to_host();
        const auto again_f = df.backward_with_output(x, dy, cf);
        const auto again_p = dp.backward_with_output(on(plain, x), on(plain, dy), cp);
        BOOST_TEST(again_f.output.to_host() == yf);
        BOOST_TEST(again_p.output.to_host() == yp);
        BOOST_TEST(yp == yf);
        BOOST_TEST(again_f.input_gradient.to_host() == dx);
        BOOST_TEST(again_p.input_gradient.to_host() == dx);
        std::size_t zeros = 0;
        for (float v : yf) zeros += v == 0.0f;
        if (training)
            BOOST_TEST((zeros > yf.size() / 20 && zeros < yf.size() * 3 / 20));
        else
            BOOST_TEST(zeros == 0u);
    }
    rng_stream r(7);
    typename dropout<cpu, float>::context c;
    (void)df.forward(x, c, run_mode::train(r));
    BOOST_CHECK_THROW(df.backward_with_output(x.reshaped({48, 64, 64}), dy, c), shape_error);
}

BOOST_AUTO_TEST_CASE(fused_and_unfused_encoder_layers_agree_in_training) {
    // BERT-layer shape at a small width, dropout on: every fused pass of the layer against the plain passes.
    cpu fused(cpu::options{.threads = 2});
    unfused_cpu plain;
    const encoder_layer_config c{.hidden = 64, .heads = 4, .intermediate = 256, .attention_dropout = 0.1,
                                 .hidden_dropout = 0.1, .layer_norm_eps = 1e-12};
    encoder_layer<cpu, float> lf(fused, c, "encoder.layer.0");
    encoder_layer<unfused_cpu, float> lp(plain, c, "encoder.layer.0");
    rng_stream init(14);
    lf.initialize(init);
    lf.visit_parameters([&, seed = std::uint64_t{30}](const std::string& name, parameter<cpu, float>& p) mutable {
        if (name.find("bias") != std::string::npos) fused.fill_uniform(p.size(), seed++, 0, -0.2f, 0.2f, p.value.data());
    });
    copy_values(lf, lp);
    const auto x = random_tensor<cpu, float>(fused, {8, 32, 64}, 15);
    const auto dy = random_tensor<cpu, float>(fused, {8, 32, 64}, 16);
    rng_stream rf(17), rp(17);
    typename encoder_layer<cpu, float>::context cf;
    typename encoder_layer<unfused_cpu, float>::context cp;
    const auto yf = lf.forward(x, {}, cf, run_mode::train(rf)).to_host();
    const auto yp = lp.forward(on(plain, x), {}, cp, run_mode::train(rp)).to_host();
    BOOST_TEST(worst_gap(yf, yp) < 1e-5);
    layer_condition_gradients<cpu, float> nf;
    layer_condition_gradients<unfused_cpu, float> np;
    BOOST_TEST(worst_gap(lf.backward(dy, cf, nf).to_host(), lp.backward(on(plain, dy), cp, np).to_host()) < 1e-4);
    const auto gf = gradients_of(lf), gp = gradients_of(lp);
    BOOST_TEST_REQUIRE(gf.size() == gp.size());
    for (std::size_t i = 0; i < gf.size(); ++i) BOOST_TEST(worst_gap(gf[i], gp[i]) < 1e-4, "parameter " << i);
}

namespace {
/// One dense_gelu on backend B: the output of a training forward, then backward_remaking_output's output (which
/// must be that output to the bit) and its gradients against a plain backward() from a second forward.
template <class B, class T>
void check_output_made_again(B& b, std::size_t rows, std::size_t in, std::size_t out, std::uint64_t seed) {
    BOOST_TEST_CONTEXT("rows " << rows << ", " << in << " -> " << out << ", " << sizeof(T) * 8 << "-bit") {
        dense_gelu<B, T> layer(b, in, out, "intermediate.dense");
        rng_stream init(seed);
        layer.initialize(init, T(0.5));
        b.fill_uniform(out, seed + 1, 0, T(-0.5), T(0.5), layer.dense().bias().value.data());
        const auto x = tensor<B, T>::from_host(b, {rows, in}, random_tensor<cpu, T>(b, {rows, in}, seed + 2, T(-2), T(2)).to_host());
        const auto dy = tensor<B, T>::from_host(b, {rows, out}, random_tensor<cpu, T>(b, {rows, out}, seed + 3).to_host());
        typename dense_gelu<B, T>::context kept, remade;
        const auto y = layer.forward(x, kept, run_mode::inference()).to_host();
        (void)layer.forward(x, remade, run_mode::inference());
        const auto dx = layer.backward(dy, kept).to_host();
        const auto g = gradients_of(layer);
        layer.visit_parameters([](const std::string&, auto& p) { p.grad.zero(); });
        std::vector<T> again;
        const auto dx_again = layer.backward_remaking_output(dy, remade, [&](const tensor<B, T>& y2) { again = y2.to_host(); }).to_host();
        BOOST_TEST(again.size() == y.size());
        BOOST_TEST((again == y), "the output made again differs from the forward's");
        BOOST_TEST(worst_gap(dx_again, dx) < 1e-6);
        const auto g_again = gradients_of(layer);
        BOOST_TEST_REQUIRE(g_again.size() == g.size());
        for (std::size_t i = 0; i < g.size(); ++i) BOOST_TEST(worst_gap(g_again[i], g[i]) < 1e-6, "parameter " << i);
    }
}
}  // namespace

BOOST_AUTO_TEST_CASE(gelu_output_made_again_in_backward_equals_the_forward_output) {
    // The encoder layer does not keep the GELU's output for the output dense's weight gradient; the intermediate's
    // backward makes it again. It must be the forward's to the bit: fused (the pass that also makes the GELU's
    // gradient, over column blocks where the forward went by rows) and plain, at widths that are and are not whole
    // SIMD packets and whole pieces of the fused pass, on one and two threads.
    cpu one(cpu::options{.threads = 1}), two(cpu::options{.threads = 2});
    unfused_cpu plain;
    const std::size_t shapes[][3] = {{256, 96, 1536}, {7, 5, 37}, {33, 9, 130}, {64, 16, 200}, {3, 4, 64}};
    std::uint64_t seed = 40;
    for (const auto& s : shapes) {
        check_output_made_again<cpu, float>(one, s[0], s[1], s[2], seed += 4);
        check_output_made_again<cpu, float>(two, s[0], s[1], s[2], seed += 4);
        check_output_made_again<unfused_cpu, float>(plain, s[0], s[1], s[2], seed += 4);
        check_output_made_again<cpu, double>(two, s[0], s[1], s[2], seed += 4);
    }
}

BOOST_AUTO_TEST_CASE(training_forward_of_an_encoder_layer_keeps_one_intermediate_sized_tensor) {
    // The intermediate (4 x hidden per token) is a BERT layer's widest activation; a training forward keeps the
    // GELU's pre-activation for backward, not the GELU's output as well (backward makes that again). At hidden 16 and
    // intermediate 1024 one intermediate-sized tensor is 64x the layer's input, so a second one cannot hide in the
    // slack of the attention's and the norms' tensors.
    cpu b(cpu::options{.threads = 1});
    const std::size_t nb = 4, seq = 8, hidden = 16, inner = 1024;
    encoder_layer<cpu, float> layer(b, encoder_layer_config{.hidden = hidden, .heads = 2, .intermediate = inner,
                                                             .attention_dropout = 0.1, .hidden_dropout = 0.1},
                                    "encoder.layer.0");
    rng_stream init(5);
    layer.initialize(init);
    const auto x = random_tensor<cpu, float>(b, {nb, seq, hidden}, 6);
    const std::size_t inner_bytes = nb * seq * inner * sizeof(float);
    typename encoder_layer<cpu, float>::context ctx;
    rng_stream rng(7);
    const std::size_t before = b.memory().in_use;
    const auto y = layer.forward(x, {}, ctx, run_mode::train(rng));
    const std::size_t kept = b.memory().in_use - before;
    BOOST_TEST_MESSAGE("kept " << kept << " bytes; one intermediate-sized tensor is " << inner_bytes);
    BOOST_TEST(kept >= inner_bytes);
    BOOST_TEST(kept < inner_bytes * 3 / 2);
    layer_condition_gradients<cpu, float> none;
    const auto dx = layer.backward(random_tensor<cpu, float>(b, {nb, seq, hidden}, 8), ctx, none);
    BOOST_TEST((dx.shape() == x.shape()));
}
