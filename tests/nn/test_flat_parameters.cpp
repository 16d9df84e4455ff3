#define BOOST_TEST_MODULE nn_flat_parameters
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/layers/attention.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/nn/flat_parameters.hpp"
#include "hyperadapt/nn/parameters.hpp"
#include "hyperadapt/optim/adamw.hpp"
#include "hyperadapt/optim/clip.hpp"
#include "support/backends.hpp"

using namespace hyperadapt;
using hyperadapt::test::random_tensor;

namespace {

constexpr std::size_t nb = 2, seq = 4, hidden = 8, heads = 2, classes = 3;

/// Self-attention (whose query, key and value share one storage) and a classifier on its output: enough to
/// see that the fused layout survives the move and that a training step is unchanged by it.
struct attention_model {
    using backend_type = cpu;
    using value_type = double;

    self_attention<cpu, double> attention;
    linear<cpu, double> classifier;

    explicit attention_model(cpu& b)
        : attention(b, hidden, heads, 0.0, "encoder.layer.0.attention.self"), classifier(b, hidden, classes, "classifier") {
        std::uint64_t seed = 7;
        visit_parameters([&](const std::string&, parameter<cpu, double>& p) {
            b.fill_uniform(p.size(), seed++, 0, -0.5, 0.5, p.value.data());
        });
    }
    [[nodiscard]] std::string name() const { return "attention_model"; }
    template <class F>
    void visit_parameters(F&& f) {
        attention.visit_parameters(f);
        classifier.visit_parameters(f);
    }

    /// Forward and backward of sum(dy * f(x)): accumulates every trainable gradient.
    tensor<cpu, double> forward_backward(const tensor<cpu, double>& x, const tensor<cpu, double>& dy) {
        typename self_attention<cpu, double>::context actx;
        typename linear<cpu, double>::context lctx;
        rng_stream rng(3);
        const auto a = attention.forward(x, {}, {}, actx, run_mode::train(rng));
        const auto y = classifier.forward(a.reshaped({nb * seq, hidden}), lctx);
        const auto da = classifier.backward(dy, lctx);
        attention.backward(da.reshaped({nb, seq, hidden}), actx);
        return y;
    }
};

std::map<std::string, std::vector<double>> values_of(attention_model& m) {
    std::map<std::string, std::vector<double>> v;
    m.visit_parameters([&](const std::string& n, parameter<cpu, double>& p) { v[n] = p.value.to_host(); });
    return v;
}

/// Whether [p, p + n) lies in flat's array.
bool inside(const tensor<cpu, double>& flat, const double* p, std::size_t n) {
    return !flat.empty() && p >= flat.data() && p + n <= flat.data() + flat.size();
}

std::size_t aligned_to(std::size_t n, std::size_t a) { return (n + a - 1) / a * a; }

}  // namespace

BOOST_AUTO_TEST_CASE(values_and_gradients_move_into_one_buffer_each_keeping_the_fused_layout) {
    cpu b;
    attention_model m(b);
    const auto before = values_of(m);
    const auto x = random_tensor<cpu, double>(b, {nb, seq, hidden}, 1);
    const auto dy = random_tensor<cpu, double>(b, {nb * seq, classes}, 2);
    const auto y_before = m.forward_backward(x, dy).to_host();

    flat_parameters flat(m);  // the model's backend and value type
    static_assert(std::is_same_v<decltype(flat), flat_parameters<cpu, double>>);
    BOOST_TEST((values_of(m) == before));
    const tensor<cpu, double>& values = flat.values();
    const tensor<cpu, double>& grads = flat.gradients();
    std::size_t total = 0;
    m.visit_parameters([&](const std::string& name, parameter<cpu, double>& p) {
        BOOST_TEST(inside(values, p.value.data(), p.size()), name);
        BOOST_TEST(inside(grads, p.grad.data(), p.size()), name);
        total += p.size();
    });
    BOOST_TEST(values.size() >= total);
    // Storage blocks (query/key/value weights, their biases, the classifier's weight, its bias) each start on
    // 64 bytes, and the attention's parts stay one after another.
    auto& att = m.attention;
    BOOST_TEST(att.key_weight().value.data() == att.query_weight().value.data() + hidden * hidden);
    BOOST_TEST(att.value_weight().value.data() == att.query_weight().value.data() + 2 * hidden * hidden);
    BOOST_TEST(reinterpret_cast<std::uintptr_t>(m.classifier.bias().value.data()) % 64 == 0u);
    BOOST_TEST(reinterpret_cast<std::uintptr_t>(m.classifier.bias().grad.data()) % 64 == 0u);
    // The gradient accumulated before the move moved with it; the same forward gives the same bits.
    const double norm_before = gradient_norm(m);
    BOOST_TEST(flat.gradient_norm() == norm_before);
    flat.zero_grad();
    BOOST_TEST(gradient_norm(m) == 0.0);
    BOOST_TEST(m.forward_backward(x, dy).to_host() == y_before);
    BOOST_TEST(flat.gradient_norm() == norm_before);
    BOOST_TEST(flat.gradient_layouts() == 1u);
}

BOOST_AUTO_TEST_CASE(training_steps_give_the_same_bits_as_the_per_tensor_path) {
    cpu b;
    attention_model per_tensor(b), flat_model(b);
    flat_parameters<cpu, double> flat(flat_model);
    adamw<cpu, double> opt_a(per_tensor, {.lr = 1e-2, .weight_decay = 0.1}), opt_b(flat_model, {.lr = 1e-2, .weight_decay = 0.1});
    for (int step = 0; step < 5; ++step) {
        const auto x = random_tensor<cpu, double>(b, {nb, seq, hidden}, 10 + step);
        const auto dy = random_tensor<cpu, double>(b, {nb * seq, classes}, 20 + step);
        zero_grad(per_tensor);
        flat.zero_grad();
        per_tensor.forward_backward(x, dy);
        flat_model.forward_backward(x, dy);
        // A max norm the gradients stay under: no scaling, so the paths must agree to the bit.
        const double na = clip_grad_norm(per_tensor, 1e6), nb_ = flat.clip_grad_norm(1e6);
        BOOST_TEST(nb_ == na, boost::test_tools::tolerance(1e-14));
        opt_a.step();
        opt_b.step();
    }
    BOOST_TEST((values_of(flat_model) == values_of(per_tensor)));
    // With clipping the norms differ in the order of their sums only.
    const auto x = random_tensor<cpu, double>(b, {nb, seq, hidden}, 99);
    const auto dy = random_tensor<cpu, double>(b, {nb * seq, classes}, 98);
    zero_grad(per_tensor);
    flat.zero_grad();
    per_tensor.forward_backward(x, dy);
    flat_model.forward_backward(x, dy);
    const double na = clip_grad_norm(per_tensor, 1e-3), nf = flat.clip_grad_norm(1e-3);
    BOOST_TEST(nf == na, boost::test_tools::tolerance(1e-14));
    BOOST_TEST(gradient_norm(flat_model) == 1e-3, boost::test_tools::tolerance(1e-5));
}

BOOST_AUTO_TEST_CASE(freezing_and_unfreezing_afterwards_lays_the_gradients_out_again) {
    cpu b;
    attention_model m(b);
    flat_parameters<cpu, double> flat(m);
    const auto x = random_tensor<cpu, double>(b, {nb, seq, hidden}, 1);
    const auto dy = random_tensor<cpu, double>(b, {nb * seq, classes}, 2);
    const std::size_t all = flat.gradients().size();

    freeze(m, "key\\.bias|classifier\\.weight");
    flat.zero_grad();
    BOOST_TEST(flat.gradient_layouts() == 2u);
    BOOST_TEST(flat.gradients().size() < all);
    m.forward_backward(x, dy);
    BOOST_TEST(flat.gradient_norm() == gradient_norm(m), boost::test_tools::tolerance(1e-14));
    m.visit_parameters([&](const std::string& name, parameter<cpu, double>& p) {
        if (p.trainable()) BOOST_TEST(inside(flat.gradients(), p.grad.data(), p.size()), name);
    });

    unfreeze(m, "key\\.bias|classifier\\.weight");
    m.forward_backward(x, dy);  // the unfrozen ones accumulate into their new buffers
    const double norm = gradient_norm(m);
    BOOST_TEST(flat.gradient_norm() == norm, boost::test_tools::tolerance(1e-14));  // moved with their values
    BOOST_TEST(flat.gradient_layouts() == 3u);
    BOOST_TEST(flat.gradients().size() == all);
    flat.scale_gradients(0.5);
    BOOST_TEST(gradient_norm(m) == norm / 2, boost::test_tools::tolerance(1e-14));
}

BOOST_AUTO_TEST_CASE(a_model_flattened_again_keeps_its_gradient_buffer_to_what_trains) {
    cpu b;
    attention_model m(b);
    freeze(m, "attention\\.self\\.(query|key|value)\\.weight");  // as a frozen backbone
    std::size_t first = 0, values = 0;
    {
        flat_parameters<cpu, double> flat(m);
        first = flat.gradients().size();
        values = flat.values().size();
    }
    BOOST_TEST(first < values);
    flat_parameters<cpu, double> again(m);  // a second trainer run: everything already shares two buffers
    BOOST_TEST(again.gradients().size() == first);
    BOOST_TEST(again.values().size() == values);
    unfreeze(m, "attention\\.self\\.key\\.weight");  // frozen when `again` was made: a block of its own
    BOOST_TEST(again.gradients().size() == aligned_to(first, 8) + hidden * hidden);
    BOOST_TEST(inside(again.gradients(), m.attention.key_weight().grad.data(), hidden * hidden));
}

BOOST_AUTO_TEST_CASE(a_replaced_value_is_refused_by_the_fused_attention_and_relaid_by_flat) {
    cpu b;
    attention_model m(b);
    flat_parameters<cpu, double> flat(m);
    m.attention.key_weight().value = m.attention.key_weight().value.clone();
    const auto x = random_tensor<cpu, double>(b, {nb, seq, hidden}, 1);
    const auto dy = random_tensor<cpu, double>(b, {nb * seq, classes}, 2);
    BOOST_CHECK_EXCEPTION(m.forward_backward(x, dy), error, [](const error& e) {
        const std::string w = e.what();
        return w.find("encoder.layer.0.attention.self") != std::string::npos && w.find("one after another") != std::string::npos;
    });
    BOOST_TEST(!flat.values_current());
    flat.refresh();
    BOOST_TEST(flat.values_current());
    BOOST_TEST(inside(flat.values(), m.attention.key_weight().value.data(), hidden * hidden));
}

BOOST_AUTO_TEST_CASE(adamw_keeps_its_moments_in_one_buffer_and_keeps_them_across_unfreezing) {
    cpu b;
    attention_model m(b);
    freeze(m, "classifier\\.bias");
    adamw<cpu, double> opt(m, {.lr = 1e-2});
    const auto x = random_tensor<cpu, double>(b, {nb, seq, hidden}, 1);
    const auto dy = random_tensor<cpu, double>(b, {nb * seq, classes}, 2);
    zero_grad(m);
    m.forward_backward(x, dy);
    opt.step();
    BOOST_TEST(opt.state_size() == 7u);
    BOOST_TEST(opt.find_state("classifier.bias") == nullptr);
    const auto* q = opt.find_state("encoder.layer.0.attention.self.query.weight");
    const auto* c = opt.find_state("classifier.weight");
    BOOST_TEST_REQUIRE((q && c));
    BOOST_TEST(q->m.shares_storage_with(c->m));
    BOOST_TEST(q->v.shares_storage_with(c->v));
    const auto m_before = c->m.to_host(), v_before = c->v.to_host();

    unfreeze(m, "classifier\\.bias");
    zero_grad(m);
    m.forward_backward(x, dy);
    const auto g = m.classifier.weight().grad.to_host();
    opt.step();
    const auto* cb = opt.find_state("classifier.bias");
    BOOST_TEST_REQUIRE(cb != nullptr);
    BOOST_TEST(cb->step == 1);
    BOOST_TEST(opt.find_state("classifier.weight")->step == 2);
    BOOST_TEST(cb->m.shares_storage_with(opt.find_state("classifier.weight")->m));
    // The moments that existed were copied when the buffer grew: the second step started from them.
    const auto m_after = opt.find_state("classifier.weight")->m.to_host(), v_after = opt.find_state("classifier.weight")->v.to_host();
    BOOST_TEST_REQUIRE(m_after.size() == g.size());
    for (std::size_t i = 0; i < g.size(); ++i) {
        BOOST_TEST(m_after[i] == 0.9 * m_before[i] + (1 - 0.9) * g[i], boost::test_tools::tolerance(1e-12));
        BOOST_TEST(v_after[i] == 0.999 * v_before[i] + (1 - 0.999) * g[i] * g[i], boost::test_tools::tolerance(1e-12));
    }
}

BOOST_AUTO_TEST_CASE(segmented_adamw_gives_the_bits_of_one_update_per_tensor) {
    cpu b;
    const std::vector<std::size_t> sizes{1, 17, 300, 4096, 5};
    std::vector<tensor<cpu, float>> g, p1, m1, v1, p2, m2, v2;
    std::vector<adamw_segment<float>> segments;
    std::uint64_t seed = 1;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        const std::size_t n = sizes[i];
        g.push_back(random_tensor<cpu, float>(b, {n}, seed++));
        p1.push_back(random_tensor<cpu, float>(b, {n}, seed++));
        m1.push_back(random_tensor<cpu, float>(b, {n}, seed++, -0.1f, 0.1f));
        v1.push_back(random_tensor<cpu, float>(b, {n}, seed++, 0.0f, 0.1f));
        p2.push_back(p1.back().clone());
        m2.push_back(m1.back().clone());
        v2.push_back(v1.back().clone());
    }
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        const float lr = 1e-3f * static_cast<float>(i + 1), wd = i % 2 ? 0.0f : 0.01f;
        const float bc1 = 1.0f - std::pow(0.9f, static_cast<float>(i + 1)), bc2 = 1.0f - std::pow(0.999f, static_cast<float>(i + 1));
        b.adamw_update(sizes[i], lr, 0.9f, 0.999f, 1e-8f, wd, bc1, bc2, g[i].data(), p1[i].data(), m1[i].data(), v1[i].data());
        segments.push_back(adamw_segment<float>::make(sizes[i], lr, wd, bc1, bc2, g[i].data(), p2[i].data(), m2[i].data(),
                                                      v2[i].data()));
    }
    b.adamw_update_segments(std::span<const adamw_segment<float>>(segments), 0.9f, 0.999f, 1e-8f);
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        BOOST_TEST(p2[i].to_host() == p1[i].to_host());
        BOOST_TEST(m2[i].to_host() == m1[i].to_host());
        BOOST_TEST(v2[i].to_host() == v1[i].to_host());
    }
}
