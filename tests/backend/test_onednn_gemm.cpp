#define BOOST_TEST_MODULE backend_onednn_gemm
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/backend/cpu_onednn.hpp"
#include "hyperadapt/layers/heads.hpp"
#include "hyperadapt/loss/cross_entropy.hpp"
#include "hyperadapt/models/bert.hpp"
#include "hyperadapt/nn/parameters.hpp"
#include "hyperadapt/optim/adamw.hpp"
#include "hyperadapt/optim/clip.hpp"
#include "hyperadapt/optim/schedule.hpp"
#include "support/encoder_classifier.hpp"
#include "support/max_keeping_nan.hpp"

using namespace hyperadapt;
using hyperadapt::test::max_keeping_nan;

namespace {

// Every product in bf16 (no size floor), so that small test shapes exercise oneDNN.
using all_bf16 = onednn_gemm<eigen_gemm, 0>;
using bf16_cpu = cpu_backend<all_bf16>;

float bf16_value(float x) {
    const std::uint32_t u = static_cast<std::uint32_t>(detail::to_bf16(x)) << 16;
    float r;
    std::memcpy(&r, &u, sizeof r);
    return r;
}

std::vector<float> random_values(std::size_t n, std::uint64_t seed) {
    std::vector<float> v(n);
    cpu b;
    b.fill_uniform(n, seed, 0, -1.0f, 1.0f, v.data());
    return v;
}

struct gemm_case {
    transpose ta, tb;
    std::size_t m, n, k, pad;
    float alpha, beta;
};

/// C = alpha op(A) op(B) + beta C in double from the given operands (no rounding but the final one).
std::vector<double> reference(const gemm_case& g, const std::vector<float>& a, std::size_t lda,
                              const std::vector<float>& b, std::size_t ldb, const std::vector<float>& c0,
                              std::size_t ldc, bool round_operands, std::vector<double>* abs_sum) {
    std::vector<double> c(g.m * ldc, 0.0);
    if (abs_sum) abs_sum->assign(g.m * ldc, 0.0);
    const auto op = [&](float x) { return static_cast<double>(round_operands ? bf16_value(x) : x); };
    for (std::size_t i = 0; i < g.m; ++i)
        for (std::size_t j = 0; j < g.n; ++j) {
            double s = 0, s_abs = 0;
            for (std::size_t p = 0; p < g.k; ++p) {
                const double x = op(g.ta == transpose::yes ? a[p * lda + i] : a[i * lda + p]);
                const double y = op(g.tb == transpose::yes ? b[j * ldb + p] : b[p * ldb + j]);
                s += x * y;
                s_abs += std::abs(x * y);
            }
            c[i * ldc + j] = g.alpha * s + g.beta * static_cast<double>(c0[i * ldc + j]);
            if (abs_sum) (*abs_sum)[i * ldc + j] = std::abs(g.alpha) * s_abs + std::abs(g.beta * c0[i * ldc + j]);
        }
    return c;
}

}  // namespace

BOOST_AUTO_TEST_CASE(bf16_products_are_the_fp32_sums_of_bf16_rounded_operands) {
    if (!all_bf16::bf16_supported()) {
        BOOST_TEST_MESSAGE("no AVX-512 here: the refusal is tested instead");
        return;
    }
    bf16_cpu be(bf16_cpu::options{}, all_bf16(compute_precision::bf16));
    const std::vector<gemm_case> cases{
        {transpose::no, transpose::no, 37, 29, 53, 0, 1.0f, 0.0f},
        {transpose::no, transpose::yes, 64, 48, 96, 3, 1.0f, 1.0f},
        {transpose::yes, transpose::no, 33, 70, 41, 5, 0.5f, 0.0f},
        {transpose::yes, transpose::yes, 50, 31, 77, 1, -2.0f, -0.5f},
        {transpose::no, transpose::no, 128, 96, 300, 7, 1.0f, 1.0f},
    };
    std::uint64_t seed = 10;
    for (const auto& g : cases) {
        const std::size_t a_rows = g.ta == transpose::yes ? g.k : g.m, a_cols = g.ta == transpose::yes ? g.m : g.k;
        const std::size_t b_rows = g.tb == transpose::yes ? g.n : g.k, b_cols = g.tb == transpose::yes ? g.k : g.n;
        const std::size_t lda = a_cols + g.pad, ldb = b_cols + g.pad, ldc = g.n + g.pad;
        const auto a = random_values(a_rows * lda, seed++), b = random_values(b_rows * ldb, seed++);
        const auto c0 = random_values(g.m * ldc, seed++);
        auto c = c0;
        be.gemm(g.ta, g.tb, g.m, g.n, g.k, g.alpha, a.data(), lda, b.data(), ldb, g.beta, c.data(), ldc);

        std::vector<double> abs_sum;
        const auto rounded = reference(g, a, lda, b, ldb, c0, ldc, true, &abs_sum);
        const auto exact = reference(g, a, lda, b, ldb, c0, ldc, false, nullptr);
        // fp32 accumulation of k products and the output rounding: k * 2^-24 of the absolute sum, doubled.
        const double fp32_bound = 2.0 * static_cast<double>(g.k + 2) * std::ldexp(1.0, -24);
        double worst_vs_rounded = 0, worst_vs_exact = 0;
        bool padding_kept = true;
        for (std::size_t i = 0; i < g.m; ++i) {
            for (std::size_t j = 0; j < g.n; ++j) {
                const std::size_t e = i * ldc + j;
                const double scale = abs_sum[e] > 0 ? abs_sum[e] : 1.0;
                worst_vs_rounded = max_keeping_nan(worst_vs_rounded, std::abs(c[e] - rounded[e]) / scale);
                worst_vs_exact = max_keeping_nan(worst_vs_exact, std::abs(c[e] - exact[e]) / scale);
            }
            for (std::size_t j = g.n; j < ldc; ++j) padding_kept = padding_kept && c[i * ldc + j] == c0[i * ldc + j];
        }
        const std::string what = std::to_string(g.m) + "x" + std::to_string(g.n) + "x" + std::to_string(g.k) +
                                 (g.ta == transpose::yes ? " A^T" : "") + (g.tb == transpose::yes ? " B^T" : "");
        BOOST_TEST(worst_vs_rounded <= fp32_bound, what << ": " << worst_vs_rounded << " of the absolute sum from the "
                                                        << "product of bf16-rounded operands (bound " << fp32_bound << ")");
        // Rounding both operands to 8 significant bits moves a product by up to 2^-8 of it (2^-7 of the
        // absolute sum at most); random operands show ~1e-3, far above what fp32 products would (~1e-7).
        BOOST_TEST(worst_vs_exact <= std::ldexp(1.0, -7), what);
        BOOST_TEST(worst_vs_exact > 1e-4, what << ": indistinguishable from an fp32 product (" << worst_vs_exact << ")");
        BOOST_TEST(padding_kept, what << ": wrote past n into C's row padding");
    }
}

// Attention's products: a grid of examples x heads, each operand at its own strides (heads interleaved in a
// row, as the fused QKV projection leaves them). In bf16 the whole grid is one oneDNN product.
BOOST_AUTO_TEST_CASE(bf16_product_grids_match_each_product_of_rounded_operands) {
    if (!all_bf16::bf16_supported()) return;
    bf16_cpu be(bf16_cpu::options{}, all_bf16(compute_precision::bf16));
    const std::size_t outer = 3, inner = 4, m = 20, n = 20, k = 16, width = inner * k * 3 + 5;
    // Q and K rows of `width` floats per position; head j's slice starts at j * k (Q) and inner * k + j * k (K).
    const auto x = random_values(outer * m * width, 40);
    const grid_strides sx{static_cast<std::ptrdiff_t>(m * width), static_cast<std::ptrdiff_t>(k)};
    const grid_strides sc{static_cast<std::ptrdiff_t>(inner * m * n), static_cast<std::ptrdiff_t>(m * n)};
    const auto c0 = random_values(outer * inner * m * n, 41);
    for (const float beta : {0.0f, 1.0f}) {
        auto c = c0;
        be.gemm_batched_grid(transpose::no, transpose::yes, m, n, k, 0.25f, x.data(), width, sx,
                             x.data() + inner * k, width, sx, beta, c.data(), n, sc, outer, inner);
        double worst = 0;
        for (std::size_t i = 0; i < outer; ++i)
            for (std::size_t j = 0; j < inner; ++j)
                for (std::size_t r = 0; r < m; ++r)
                    for (std::size_t q = 0; q < n; ++q) {
                        double s = 0, s_abs = 0;
                        for (std::size_t p = 0; p < k; ++p) {
                            const double qa = bf16_value(x[(i * m + r) * width + j * k + p]);
                            const double ka = bf16_value(x[(i * m + q) * width + inner * k + j * k + p]);
                            s += qa * ka;
                            s_abs += std::abs(qa * ka);
                        }
                        const std::size_t e = (i * inner + j) * m * n + r * n + q;
                        const double want = 0.25 * s + beta * static_cast<double>(c0[e]);
                        const double scale = 0.25 * s_abs + std::abs(beta * static_cast<double>(c0[e]));
                        worst = max_keeping_nan(worst, std::abs(c[e] - want) / (scale > 0 ? scale : 1.0));
                    }
        BOOST_TEST(worst <= 2.0 * (k + 2) * std::ldexp(1.0, -24), "beta " << beta << ": " << worst);
    }
}

BOOST_AUTO_TEST_CASE(fp32_precision_small_products_and_doubles_go_to_the_fp32_provider_bit_for_bit) {
    const std::size_t m = 40, n = 24, k = 56;  // 53,760 multiply-adds: under the default bf16 floor
    const auto a = random_values(m * k, 1), b = random_values(k * n, 2);
    std::vector<float> want(m * n), got(m * n, 0.0f);
    eigen_gemm::gemm(transpose::no, transpose::no, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, want.data(), n);

    cpu_backend<onednn_gemm<eigen_gemm>> fp32(cpu_backend<onednn_gemm<eigen_gemm>>::options{},
                                              onednn_gemm<eigen_gemm>(compute_precision::fp32));
    fp32.gemm(transpose::no, transpose::no, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, got.data(), n);
    BOOST_TEST(got == want, boost::test_tools::per_element());

    if (onednn_gemm<eigen_gemm>::bf16_supported()) {
        cpu_backend<onednn_gemm<eigen_gemm>> small(cpu_backend<onednn_gemm<eigen_gemm>>::options{},
                                                   onednn_gemm<eigen_gemm>(compute_precision::bf16));
        std::fill(got.begin(), got.end(), 0.0f);
        small.gemm(transpose::no, transpose::no, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, got.data(), n);
        BOOST_TEST(got == want, boost::test_tools::per_element());

        bf16_cpu all(bf16_cpu::options{}, all_bf16(compute_precision::bf16));
        std::vector<double> ad(a.begin(), a.end()), bd(b.begin(), b.end()), cd(m * n), cd_want(m * n);
        eigen_gemm::gemm(transpose::no, transpose::no, m, n, k, 1.0, ad.data(), k, bd.data(), n, 0.0, cd_want.data(), n);
        all.gemm(transpose::no, transpose::no, m, n, k, 1.0, ad.data(), k, bd.data(), n, 0.0, cd.data(), n);
        BOOST_TEST(cd == cd_want, boost::test_tools::per_element());
    }
}

BOOST_AUTO_TEST_CASE(precision_names_parse_and_print) {
    BOOST_TEST((parse_compute_precision("bf16").value() == compute_precision::bf16));
    BOOST_TEST((parse_compute_precision("fp32").value() == compute_precision::fp32));
    BOOST_TEST(!parse_compute_precision("fp16").has_value());
    BOOST_TEST(std::string(to_string(compute_precision::bf16)) == "bf16");
}

// ctest runs this binary a second time with ONEDNN_MAX_CPU_ISA=AVX2 (onednn_gemm_refused_below_avx512):
// oneDNN then behaves as on a CPU without AVX-512, and asking for bf16 must fail with a sentence.
BOOST_AUTO_TEST_CASE(bf16_below_avx512_is_refused_with_a_sentence) {
    if (all_bf16::bf16_supported()) {
        BOOST_TEST_MESSAGE("this CPU has AVX-512: the refusal runs under ONEDNN_MAX_CPU_ISA=AVX2");
        return;
    }
    try {
        all_bf16 p(compute_precision::bf16);
        BOOST_FAIL("bf16 accepted without AVX-512");
    } catch (const config_error& e) {
        const std::string msg = e.what();
        BOOST_TEST(msg.find("precision bf16") != std::string::npos, msg);
        BOOST_TEST(msg.find("AVX-512") != std::string::npos, msg);
    }
    // fp32 still works there.
    all_bf16 fp32(compute_precision::fp32);
    BOOST_TEST((fp32.precision() == compute_precision::fp32));
}

namespace {

/// Trains a 2-layer, 64-wide encoder on a 3-class rule over token sequences (the label is which of three
/// token ranges holds most of the sequence), fresh batches of 32 x 24 every step; returns the losses.
template <class B>
std::vector<double> training_curve(B& b, int steps) {
    using ids = tensor<B, std::int32_t>;
    const bert_config cfg{.vocab_size = 30, .hidden = 64, .layers = 2, .heads = 4, .intermediate = 128,
                          .max_position = 24, .type_vocab_size = 2, .hidden_dropout = 0.1,
                          .attention_dropout = 0.1};
    test::encoder_classifier<B> m(b, cfg, 3, 3);
    adamw<B, float> opt(m, {.lr = 1e-3});
    const linear_warmup_schedule schedule(1e-3, 10, steps);
    cross_entropy_loss<B, float> loss_fn(b);
    rng_stream rng(4);
    std::vector<double> losses;
    const std::size_t batch = 32, len = 24;
    cpu host;
    for (int s = 0; s < steps; ++s) {
        std::vector<float> u(batch * len);
        host.fill_uniform(u.size(), 100 + static_cast<std::uint64_t>(s), 0, 0.0f, 1.0f, u.data());
        std::vector<std::int32_t> tok(batch * len), lab(batch);
        std::vector<std::uint8_t> msk(batch * len, 1);
        for (std::size_t r = 0; r < batch; ++r) {
            int count[3] = {0, 0, 0};
            const std::size_t skew = r % 3;  // each row leans towards one range, so the rule is learnable
            for (std::size_t j = 0; j < len; ++j) {
                const float x = u[r * len + j];
                const auto range = static_cast<std::size_t>(x < 0.5f ? skew : (x < 0.75f ? (skew + 1) % 3 : (skew + 2) % 3));
                tok[r * len + j] = static_cast<std::int32_t>(1 + range * 9 + static_cast<std::size_t>(x * 1000) % 9);
                ++count[range];
            }
            lab[r] = static_cast<std::int32_t>(count[0] >= count[1] && count[0] >= count[2] ? 0 : (count[1] >= count[2] ? 1 : 2));
        }
        const auto x = ids::from_host(b, {batch, len}, tok);
        const auto y = ids::from_host(b, {batch}, lab);
        const auto mask = attention_mask<B>::from_host(b, {batch, len}, msk);
        typename test::encoder_classifier<B>::context ctx;
        typename cross_entropy_loss<B, float>::context lctx;
        const run_mode mode = run_mode::train(rng);
        const auto out = m.encoder.forward(x, ids{}, mask, ctx.encoder, mode);
        const auto logits = m.head.forward(out.pooled, ctx.head, mode);
        losses.push_back(loss_fn.forward(logits, y, lctx));
        zero_grad(m);
        m.encoder.backward({}, m.head.backward(loss_fn.backward(lctx), ctx.head), ctx.encoder);
        (void)clip_grad_norm(m, 1.0);
        opt.set_lr(schedule(opt.step_count()));
        opt.step();
    }
    return losses;
}

double window_mean(const std::vector<double>& v, std::size_t from, std::size_t count) {
    double s = 0;
    for (std::size_t i = from; i < from + count; ++i) s += v[i];
    return s / static_cast<double>(count);
}

}  // namespace

// The stated bound (docs/benchmarks.md, bf16 section): over 200 steps, every 20-step mean of the bf16 loss
// lies within 0.02 (absolute) of fp32's, and both fall below 60 % of their first window.
BOOST_AUTO_TEST_CASE(bf16_training_follows_the_fp32_loss_curve) {
    if (!all_bf16::bf16_supported()) {
        BOOST_TEST_MESSAGE("no AVX-512 here: bf16 training cannot run");
        return;
    }
    const int steps = 200;
    bf16_cpu fp32_backend(bf16_cpu::options{}, all_bf16(compute_precision::fp32));
    bf16_cpu bf16_backend(bf16_cpu::options{}, all_bf16(compute_precision::bf16));
    const auto fp32 = training_curve(fp32_backend, steps);
    const auto bf16 = training_curve(bf16_backend, steps);
    bool any_differs = false;
    for (int s = 0; s < steps; ++s) any_differs = any_differs || fp32[s] != bf16[s];
    BOOST_TEST(any_differs, "the bf16 run gave fp32's losses bit for bit: its products did not run in bf16");
    double worst = 0;
    for (std::size_t w = 0; w + 20 <= static_cast<std::size_t>(steps); w += 20) {
        const double f = window_mean(fp32, w, 20), h = window_mean(bf16, w, 20);
        BOOST_TEST_MESSAGE("steps " << w << "-" << w + 19 << ": fp32 " << f << ", bf16 " << h);
        worst = max_keeping_nan(worst, std::abs(f - h));
    }
    BOOST_TEST(worst <= 0.02, "20-step mean losses differ by " << worst);
    const double f0 = window_mean(fp32, 0, 20), f1 = window_mean(fp32, steps - 20, 20);
    const double h0 = window_mean(bf16, 0, 20), h1 = window_mean(bf16, steps - 20, 20);
    BOOST_TEST(f1 < 0.6 * f0, "fp32 did not learn: " << f0 << " -> " << f1);
    BOOST_TEST(h1 < 0.6 * h0, "bf16 did not learn: " << h0 << " -> " << h1);
}
