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

// ---- parameter groups ----------------------------------------------------------------------------------

/// Sets fixed gradients on the toy module and steps `opt` three times with the reference rates scaled by
/// `scale` for the default group and the given group rates for group 1 (if any).
template <class Opt>
void three_steps(toy_module<cpu, double>& m, Opt& opt, double default_scale, double group_scale) {
    for (std::size_t s = 0; s < 3; ++s) {
        toy_module<cpu, double>::set(m.weight.grad, grad_w[s]);
        toy_module<cpu, double>::set(m.bias.grad, grad_b[s]);
        opt.set_group_lr(0, lrs[s] * default_scale);
        if (opt.group_count() > 1) opt.set_group_lr(1, lrs[s] * group_scale);
        opt.step();
    }
}

BOOST_AUTO_TEST_CASE(a_groups_parameters_follow_its_own_rate_and_decay) {
    cpu b;
    // The bias in a group of its own at 3x the rate: each parameter must end exactly where a one-group
    // optimizer at that parameter's rate puts it (and the weight where the reference puts it).
    toy_module<cpu, double> grouped(b), at_default(b), at_group_rate(b);
    adamw<cpu, double> g(grouped, {.lr = 0.01, .weight_decay = 0.1}, {{.pattern = "bias$", .lr = 0.03}});
    adamw<cpu, double> d(at_default, {.lr = 0.01, .weight_decay = 0.1});
    adamw<cpu, double> r(at_group_rate, {.lr = 0.03, .weight_decay = 0.1});
    BOOST_TEST(g.group_count() == 2u);
    BOOST_TEST(g.group_of("toy.bias") == 1u);
    BOOST_TEST(g.group_of("toy.weight") == 0u);
    BOOST_TEST(g.group(1).parameters == 1u);
    BOOST_TEST(g.group(0).parameters == 2u);  // the weight and the frozen one
    three_steps(grouped, g, 1.0, 3.0);
    three_steps(at_default, d, 1.0, 1.0);
    three_steps(at_group_rate, r, 3.0, 3.0);
    BOOST_TEST(to_double(grouped.weight.value) == to_double(at_default.weight.value), tt::per_element());
    BOOST_TEST(to_double(grouped.bias.value) == to_double(at_group_rate.bias.value), tt::per_element());
    BOOST_TEST(to_double(grouped.bias.value) != to_double(at_default.bias.value), tt::per_element());
    check_close(to_double(grouped.weight.value), want_w[2], 1e-12);

    // A group's own weight decay: with zero gradients only decay moves a parameter.
    toy_module<cpu, double> decayed(b);
    adamw<cpu, double> wd(decayed, {.lr = 0.1, .weight_decay = 0.5}, {{.pattern = "weight", .lr = 0.1, .weight_decay = 0.0}});
    wd.step();
    BOOST_TEST(to_double(decayed.weight.value) == std::vector<double>({0.5, -1.0, 2.0}), tt::per_element());
}

BOOST_AUTO_TEST_CASE(the_first_matching_group_wins_and_a_group_matching_nothing_is_an_error) {
    cpu b;
    toy_module<cpu, double> m(b);
    adamw<cpu, double> opt(m, {}, {{.pattern = "toy\\.b", .lr = 0.1}, {.pattern = "bias|weight", .lr = 0.2}});
    BOOST_TEST(opt.group_of("toy.bias") == 1u);  // "toy\.b" comes first
    BOOST_TEST(opt.group_of("toy.weight") == 2u);
    BOOST_TEST(opt.group_of("toy.frozen") == 0u);
    try {
        adamw<cpu, double> shadowed(m, {}, {{.pattern = "toy", .lr = 0.1}, {.pattern = "bias", .lr = 0.2}});
        BOOST_FAIL("a group that takes no parameter was accepted");
    } catch (const config_error& e) {
        BOOST_TEST(std::string(e.what()).find("'bias=0.2' takes no parameter: earlier groups") != std::string::npos, e.what());
    }
    try {
        adamw<cpu, double> typo(m, {}, {{.pattern = "toy", .lr = 0.1}, {.pattern = "adaptr", .lr = 0.2}});
        BOOST_FAIL("a group that matches no parameter was accepted");
    } catch (const config_error& e) {
        const std::string msg = e.what();
        BOOST_TEST(msg.find("'adaptr=0.2'") != std::string::npos, msg);
        BOOST_TEST(msg.find("matches no parameter") != std::string::npos, msg);
        BOOST_TEST(msg.find("toy.weight") != std::string::npos, msg);  // what names look like
    }
    BOOST_CHECK_THROW((adamw<cpu, double>(m, {}, {{.pattern = "(", .lr = 0.1}})), config_error);
    BOOST_CHECK_THROW((adamw<cpu, double>(m, {}, {{.pattern = "toy", .lr = -1}})), config_error);
    BOOST_CHECK_THROW(opt.set_group_lr(3, 0.1), config_error);
    BOOST_CHECK_THROW(opt.set_group_lr(1, -0.1), config_error);
}

BOOST_AUTO_TEST_CASE(parameter_groups_are_read_from_their_command_line_form) {
    const auto g = parse_parameter_group("hypernet|prototype=1e-3,wd=0,warmup=0.2");
    BOOST_TEST(g.pattern == "hypernet|prototype");
    BOOST_TEST(g.lr == 1e-3);
    BOOST_TEST(g.weight_decay.value() == 0.0);
    BOOST_TEST(g.warmup_proportion.value() == 0.2);
    const auto plain = parse_parameter_group("layers\\.[0-9]+\\.x=y=5e-5");  // a pattern may hold '='
    BOOST_TEST(plain.pattern == "layers\\.[0-9]+\\.x=y");
    BOOST_TEST(plain.lr == 5e-5);
    BOOST_TEST(!plain.weight_decay.has_value());
    for (const auto& round : {g, plain}) BOOST_TEST((parse_parameter_group(to_string(round)) == round));
    BOOST_TEST(to_string(parse_parameter_group("a=0.003")) == "a=0.003");
    for (const char* bad : {"adapter", "adapter=", "adapter=fast", "=1e-3", "a=1e-3,wd=-1", "a=1e-3,warmup=2",
                            "a=1e-3,momentum=0.9", "a=1e-3,wd=0,wd=1", "(=1e-3"}) {
        try {
            (void)parse_parameter_group(bad);
            BOOST_ERROR("accepted '" << bad << "'");
        } catch (const config_error& e) {
            BOOST_TEST(std::string(e.what()).find(std::string("'") + bad + "'") != std::string::npos, e.what());
        }
    }
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

// The CPU backend has accumulating_reductions, so gradient_norm adds each tensor's sum of squares into one double
// in backend memory and hands the total back once (on a GPU: one wait a step, not one per tensor). The total is
// the running host sum of sum_squares it replaced, bit for bit; frozen tensors stay out; a NaN stays a NaN.
BOOST_AUTO_TEST_CASE(gradient_norm_sums_in_backend_memory_as_the_host_did) {
    static_assert(accumulating_reductions<cpu, float> && accumulating_reductions<cpu, double>);
    cpu b;
    toy_module<cpu, float> m(b);
    toy_module<cpu, float>::set(m.weight.grad, {0.1f, -2.5f, 1e-3f});
    toy_module<cpu, float>::set(m.bias.grad, {7.25f, -0.3f});
    const double host = std::sqrt(b.sum_squares(3, m.weight.grad.data()) + b.sum_squares(2, m.bias.grad.data()));
    BOOST_TEST(gradient_norm(m) == host);  // exact: the same additions in the same order
    m.bias.freeze();
    BOOST_TEST(gradient_norm(m) == std::sqrt(b.sum_squares(3, m.weight.grad.data())));
    m.weight.freeze();
    BOOST_TEST(gradient_norm(m) == 0.0);  // nothing trains
    m.weight.unfreeze();
    toy_module<cpu, float>::set(m.weight.grad, {std::numeric_limits<float>::quiet_NaN(), 0.0f, 0.0f});
    BOOST_TEST(std::isnan(gradient_norm(m)));
}

BOOST_AUTO_TEST_CASE(clip_handles_bad_input) {
    cpu b;
    toy_module<cpu, double> m(b);
    BOOST_CHECK_THROW(clip_grad_norm(m, 0.0), config_error);
    toy_module<cpu, double>::set(m.weight.grad, {std::numeric_limits<double>::infinity(), 0.0, 0.0});
    BOOST_CHECK_THROW(clip_grad_norm(m, 1.0, /*error_if_nonfinite=*/true), error);
    BOOST_TEST(std::isinf(clip_grad_norm(m, 1.0)));
}
