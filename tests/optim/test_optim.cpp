#define BOOST_TEST_MODULE optim
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/nn/parameters.hpp"
#include "hyperadapt/optim/adamw.hpp"
#include "hyperadapt/optim/clip.hpp"
#include "hyperadapt/optim/schedule.hpp"

using namespace hyperadapt;
namespace tt = boost::test_tools;

namespace {

/// A weight (decayed), a bias (not decayed) and a frozen weight, with names as a Linear would give them.
template <class B, class T>
struct toy_module {
    using backend_type = B;
    using value_type = T;

    parameter<B, T> weight, bias, frozen;

    explicit toy_module(B& b)
        : weight(b, {3}), bias(b, {2}, /*decay=*/false), frozen(b, {2}) {
        set(weight.value, {0.5, -1.0, 2.0});
        set(bias.value, {0.1, -0.2});
        set(frozen.value, {1.0, 2.0});
        frozen.freeze();
    }
    [[nodiscard]] std::string name() const { return "toy"; }
    template <class F>
    void visit_parameters(F&& f) {
        f("toy.weight", weight);
        f("toy.bias", bias);
        f("toy.frozen", frozen);
    }
    static void set(tensor<B, T>& t, const std::vector<double>& v) {
        std::vector<T> h(v.begin(), v.end());
        t.backend().copy_from_host(h.data(), t.data(), h.size());
    }
};

std::vector<double> to_double(const auto& t) {
    const auto h = t.to_host();
    return {h.begin(), h.end()};
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double rel) {
    BOOST_TEST_REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < got.size(); ++i) BOOST_TEST(got[i] == want[i], tt::tolerance(rel));
}

// Reference: torch.optim.AdamW's single-tensor update written out in float64 (exp_avg.lerp_, exp_avg_sq
// mul/addcmul, step_size = lr / bc1, denom = sqrt(v) / sqrt(bc2) + eps) for lr 0.01, 0.02, 0.005 over
// three steps, betas (0.9, 0.999), eps 1e-8, weight_decay 0.1.
const std::vector<std::vector<double>> grad_w{{0.1, -0.2, 0.3}, {-0.3, 0.1, 0.0}, {0.05, 0.4, -0.1}};
const std::vector<std::vector<double>> grad_b{{1.0, -0.5}, {0.2, 0.2}, {-1.0, 0.3}};
const std::vector<double> lrs{0.01, 0.02, 0.005};
const std::vector<std::vector<double>> want_w{{0.4895000009999999, -0.9890000004999999, 1.9880000003333334},
                                              {0.4984047972220132, -0.9816952600427351, 1.9706228358818307},
                                              {0.4995430857170143, -0.9834910712763475, 1.9681918477273959}};
const std::vector<std::vector<double>> want_b{{0.0900000001, -0.19000000020000002},
                                              {0.07393918075415544, -0.1830878834233022},
                                              {0.07396155488727847, -0.18347676938355476}};
const std::vector<double> want_w_m{-0.013899999999999996, 0.032799999999999996, 0.014299999999999995};
const std::vector<double> want_w_v{0.00010239001000000008, 0.00020991004000000022, 9.982009000000009e-05};
const std::vector<double> want_b_m{-0.0009999999999999731, 0.007499999999999993};
const std::vector<double> want_b_v{0.002037961000000002, 0.0003794602500000004};

template <class T>
void run_reference_steps(double rel) {
    cpu b;
    toy_module<cpu, T> m(b);
    adamw<cpu, T> opt(m, {.lr = 0.01, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1});
    const auto frozen_before = m.frozen.value.to_host();
    for (std::size_t s = 0; s < 3; ++s) {
        zero_grad(m);
        toy_module<cpu, T>::set(m.weight.grad, grad_w[s]);
        toy_module<cpu, T>::set(m.bias.grad, grad_b[s]);
        opt.set_lr(lrs[s]);
        opt.step();
        check_close(to_double(m.weight.value), want_w[s], rel);
        check_close(to_double(m.bias.value), want_b[s], rel);
    }
    BOOST_TEST(opt.step_count() == 3);
    const auto* sw = opt.find_state("toy.weight");
    const auto* sb = opt.find_state("toy.bias");
    BOOST_TEST_REQUIRE(sw != nullptr);
    BOOST_TEST_REQUIRE(sb != nullptr);
    BOOST_TEST(sw->step == 3);
    check_close(to_double(sw->m), want_w_m, rel);
    check_close(to_double(sw->v), want_w_v, rel);
    check_close(to_double(sb->m), want_b_m, rel);
    check_close(to_double(sb->v), want_b_v, rel);
    BOOST_TEST(m.frozen.value.to_host() == frozen_before, tt::per_element());
    BOOST_TEST(opt.find_state("toy.frozen") == nullptr);
    BOOST_TEST(opt.state_size() == 2u);
}

}  // namespace

BOOST_AUTO_TEST_CASE(adamw_matches_torch_reference_in_double) { run_reference_steps<double>(1e-12); }

BOOST_AUTO_TEST_CASE(adamw_matches_torch_reference_in_float) { run_reference_steps<float>(2e-5); }

BOOST_AUTO_TEST_CASE(adamw_applies_no_decay_where_decay_is_false) {
    cpu b;
    toy_module<cpu, double> m(b);
    // With zero gradients Adam's step is 0 (m = v = 0), so only weight decay can move a parameter.
    adamw<cpu, double> opt(m, {.lr = 0.1, .weight_decay = 0.5});
    opt.step();
    check_close(to_double(m.weight.value), {0.5 * 0.95, -1.0 * 0.95, 2.0 * 0.95}, 1e-14);
    BOOST_TEST(to_double(m.bias.value) == std::vector<double>({0.1, -0.2}), tt::per_element());
}

BOOST_AUTO_TEST_CASE(adamw_unfrozen_parameter_starts_its_own_bias_correction) {
    cpu b;
    toy_module<cpu, double> m(b);
    adamw<cpu, double> opt(m, {.lr = 0.01, .weight_decay = 0.0});
    opt.step();
    opt.step();
    BOOST_TEST(opt.find_state("toy.frozen") == nullptr);
    m.frozen.unfreeze();
    toy_module<cpu, double>::set(m.frozen.grad, {1.0, -1.0});
    opt.step();
    const auto* s = opt.find_state("toy.frozen");
    BOOST_TEST_REQUIRE(s != nullptr);
    BOOST_TEST(s->step == 1);
    // First step with bias correction: update = lr * g / (|g| + eps) = lr * sign(g).
    check_close(to_double(m.frozen.value), {1.0 - 0.01, 2.0 + 0.01}, 1e-9);
    BOOST_TEST(opt.step_count() == 3);
}

BOOST_AUTO_TEST_CASE(adamw_state_is_writable_by_name_for_checkpoints) {
    cpu b;
    toy_module<cpu, double> m(b);
    adamw<cpu, double> opt(m);
    auto& st = opt.state("toy.weight");
    BOOST_TEST(st.m.size() == 3u);
    st.step = 7;
    BOOST_TEST(opt.find_state("toy.weight")->step == 7);
    std::vector<std::string> names;
    opt.visit_state([&](const std::string& n, const adamw_moments<cpu, double>&) { names.push_back(n); });
    BOOST_TEST(names == std::vector<std::string>{"toy.weight"}, tt::per_element());
    BOOST_CHECK_THROW(opt.state("toy.nope"), config_error);
}

BOOST_AUTO_TEST_CASE(adamw_rejects_bad_options) {
    cpu b;
    toy_module<cpu, double> m(b);
    BOOST_CHECK_THROW((adamw<cpu, double>(m, {.lr = -1})), config_error);
    BOOST_CHECK_THROW((adamw<cpu, double>(m, {.beta1 = 1.0})), config_error);
    BOOST_CHECK_THROW((adamw<cpu, double>(m, {.beta2 = -0.1})), config_error);
    BOOST_CHECK_THROW((adamw<cpu, double>(m, {.weight_decay = std::nan("")})), config_error);
    adamw<cpu, double> opt(m);
    BOOST_CHECK_THROW(opt.set_lr(-0.5), config_error);
}

BOOST_AUTO_TEST_CASE(schedule_warms_up_then_decays_linearly_to_zero) {
    const linear_warmup_schedule s(1e-3, 10, 100);
    BOOST_TEST(s(0) == 0.0);
    BOOST_TEST(s(1) == 1e-4, tt::tolerance(1e-12));
    BOOST_TEST(s(5) == 5e-4, tt::tolerance(1e-12));
    BOOST_TEST(s(10) == 1e-3, tt::tolerance(1e-12));
    BOOST_TEST(s(55) == 5e-4, tt::tolerance(1e-12));
    BOOST_TEST(s(99) == 1e-3 / 90, tt::tolerance(1e-12));
    BOOST_TEST(s(100) == 0.0);
    BOOST_TEST(s(150) == 0.0);
    const linear_warmup_schedule none(2e-5, 0, 4);
    BOOST_TEST(none(0) == 2e-5, tt::tolerance(1e-12));
    BOOST_TEST(none(2) == 1e-5, tt::tolerance(1e-12));
    const auto p = linear_warmup_schedule::with_warmup_proportion(1.0, 0.1, 1000);
    BOOST_TEST(p.warmup_steps() == 100);
    BOOST_CHECK_THROW(linear_warmup_schedule(1e-3, 11, 10), config_error);
    BOOST_CHECK_THROW(linear_warmup_schedule(-1.0, 0, 10), config_error);
}

BOOST_AUTO_TEST_CASE(clip_returns_pre_clip_norm_and_scales_gradients) {
    cpu b;
    toy_module<cpu, double> m(b);
    toy_module<cpu, double>::set(m.weight.grad, {3.0, 4.0, 0.0});
    toy_module<cpu, double>::set(m.bias.grad, {12.0, 0.0});
    const double norm = clip_grad_norm(m, 6.5);
    BOOST_TEST(norm == 13.0, tt::tolerance(1e-14));
    const double coef = 6.5 / (13.0 + 1e-6);
    check_close(to_double(m.weight.grad), {3 * coef, 4 * coef, 0.0}, 1e-14);
    check_close(to_double(m.bias.grad), {12 * coef, 0.0}, 1e-14);
    BOOST_TEST(gradient_norm(m) == 6.5, tt::tolerance(1e-6));

    const double again = clip_grad_norm(m, 100.0);  // below the limit: untouched
    BOOST_TEST(again == 13.0 * coef, tt::tolerance(1e-14));
    check_close(to_double(m.weight.grad), {3 * coef, 4 * coef, 0.0}, 1e-14);
}

BOOST_AUTO_TEST_CASE(clip_handles_bad_input) {
    cpu b;
    toy_module<cpu, double> m(b);
    BOOST_CHECK_THROW(clip_grad_norm(m, 0.0), config_error);
    toy_module<cpu, double>::set(m.weight.grad, {std::numeric_limits<double>::infinity(), 0.0, 0.0});
    BOOST_CHECK_THROW(clip_grad_norm(m, 1.0, /*error_if_nonfinite=*/true), error);
    BOOST_TEST(std::isinf(clip_grad_norm(m, 1.0)));
}
