#define BOOST_TEST_MODULE layers_pha_modules
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "hyperadapt/io/safetensors.hpp"
#include "hyperadapt/layers/pha/hypernet.hpp"
#include "hyperadapt/layers/pha/retriever.hpp"
#include "hyperadapt/layers/pha/task_adapter.hpp"
#include "hyperadapt/loss/pha_contrastive.hpp"
#include "hyperadapt/nn/parameters.hpp"
#include "hyperadapt/testing/gradcheck.hpp"
#include "support/backends.hpp"
#include "support/reference_data.hpp"

using namespace hyperadapt;
using hyperadapt::io::safetensors_reader;
using hyperadapt::test::layer_backends;
using hyperadapt::test::random_tensor;

namespace {

// ---- reference files ---------------------------------------------------------------------------------
// Every golden file of a module in reference_dir() (tests/data/reference, or HYPERADAPT_REFERENCE_DIR); all
// sizes and options come from the file (support/golden_file.hpp).

using namespace hyperadapt::test::reference;

/// The contrastive losses' temperature and weight: the metadata's "temperature: 0.1 (hard-coded: ...); result
/// multiplied by 0.1 inside the method".
pha_contrastive_options contrastive_options_of(const golden& g) {
    pha_contrastive_options o;
    o.temperature = g.meta_number_after("temperature", "");
    o.weight = g.meta_number_after("temperature", "multiplied by");
    return o;
}

/// The ParameterGenerator's sizes, all from the parameter shapes; its LayerNorm eps from the maths line.
prototypical_hypernet_config hypernet_config_of(const golden& g) {
    prototypical_hypernet_config c;
    c.condition = g.dim("input.hidden_inputs", 1);
    c.layers = g.dim("param.layer_embed.weight", 0);
    c.layer_embedding = g.dim("param.layer_embed.weight", 1);
    c.hidden = g.dim("param.decoder.linear1.weight", 0);
    c.projection = g.dim("param.decoder.linear2.weight", 0);
    c.features = g.dim("param.decoder.bias_up.weight", 0);
    c.bottleneck = g.dim("param.decoder.bias_down.weight", 0);
    if (g.has_meta("maths")) {
        c.layer_norm_eps = g.meta_number_after("maths", "eps");
    } else {
        // The generator-and-adapter files restate only the sizes; the eps is the ParameterGenerator's
        // hard-coded nn.LayerNorm(..., eps=1e-6), which pha_param_generator's maths line records.
        BOOST_TEST_MESSAGE(g.name() << ": no maths line; the ParameterGenerator's hard-coded LayerNorm eps "
                                    << c.layer_norm_eps);
    }
    if (g.has_meta("options")) {  // "d=12, r=4, num_hidden_layers=3": must agree with the shapes
        BOOST_TEST(g.meta_option_number({"options"}, "d") == static_cast<double>(c.features), g.name());
        BOOST_TEST(g.meta_option_number({"options"}, "r") == static_cast<double>(c.bottleneck), g.name());
        BOOST_TEST(g.meta_option_number({"options"}, "num_hidden_layers") == static_cast<double>(c.layers), g.name());
    }
    return c;
}

/// PHA's AdapterLayer returns A(x) (no residual) as the maths line says; a file of a residual adapter must say
/// "x + ".
task_adapter_options adapter_options_of(const golden& g, bool own_weights) {
    if (!g.meta_mentions("maths", "no residual"))
        g.fail("__metadata__ key 'maths' does not say 'no residual' (only PHA's residual-free AdapterLayer is read)");
    return {.own_weights = own_weights, .residual = false};
}

// ---- helpers -----------------------------------------------------------------------------------------

/// Gives every parameter of `m` random values so no gradient check passes by symmetry.
template <class B, class M>
void randomize(B& b, M& m, std::uint64_t seed, double scale = 0.5) {
    m.visit_parameters([&](const std::string&, parameter<B, double>& p) {
        b.fill_uniform(p.size(), seed++, 0, -scale, scale, p.value.data());
    });
}

template <class B>
tensor<B, std::int32_t> ids(B& b, std::vector<std::int32_t> v) {
    return tensor<B, std::int32_t>::from_host(b, {v.size()}, v);
}

/// Runs f and checks that it throws shape_error whose message names `module`.
void expect_shape_error(const std::function<void()>& f, const std::string& module) {
    try {
        f();
        BOOST_FAIL("expected shape_error naming " << module);
    } catch (const shape_error& e) {
        const std::string what = e.what();
        BOOST_TEST(what.rfind(module + ":", 0) == 0, "message '" << what << "' does not start with '" << module << ":'");
    }
}


}  // namespace

// ==== (a) agreement with the authors' code ============================================================

BOOST_AUTO_TEST_CASE(reference_copies_match_the_shared_data) {
    check_repository_copies({"pha_"});
}

// pha_adapter_*: the adapter with its own weights (param.adapter_down_manual.*) or with generated ones
// (input.dw, ...), as the file's tensors say.
BOOST_AUTO_TEST_CASE_TEMPLATE(adapter_matches_reference, B, layer_backends) {
    for (const auto& path : module_files({"pha_adapter_"})) {
        B b;
        const golden g(path);
        g.require_meta_mentions("source", "AdapterLayer");
        const auto& r = g.reader();
        comparison cmp(label<B>(g));
        const std::size_t d = g.dim("input.x", -1);
        typename task_adapter<B, double>::context ctx;
        auto x = load(b, r, "input.x");
        if (g.has("param.adapter_down_manual.weight")) {
            task_adapter<B, double> m(b, d, g.dim("param.adapter_down_manual.weight", 0), "", adapter_options_of(g, true));
            load_parameters(b, r, m);
            cmp.check(r, "output.out", m.forward(x, ctx));
            cmp.check(r, "grad.input.x", m.backward(load(b, r, "probe.R"), ctx));
            cmp.template check_parameter_gradients<B>(r, m);
        } else if (g.has("input.dw")) {
            task_adapter<B, double> m(b, d, g.dim("input.db", -1), "", adapter_options_of(g, false));
            adapter_weights<B, double> w{load(b, r, "input.dw"), load(b, r, "input.db"), load(b, r, "input.uw"),
                                         load(b, r, "input.ub")};
            cmp.check(r, "output.out", m.forward(x, w, ctx));
            auto gr = m.backward_generated(load(b, r, "probe.R"), ctx);
            cmp.check(r, "grad.input.x", gr.input);
            cmp.check(r, "grad.input.dw", gr.weights.down_weight);
            cmp.check(r, "grad.input.db", gr.weights.down_bias);
            cmp.check(r, "grad.input.uw", gr.weights.up_weight);
            cmp.check(r, "grad.input.ub", gr.weights.up_bias);
        } else {
            g.fail("neither param.adapter_down_manual.weight (own weights) nor input.dw (generated weights)");
        }
        BOOST_TEST(cmp.tensors == g.output_and_gradient_count(), g.name());
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(retriever_matches_reference, B, layer_backends) {
    for (const auto& path : module_files({"pha_retriever"})) {
        B b;
        const golden g(path);
        g.require_meta_mentions("source", "mean_pooling");
        const auto& r = g.reader();
        comparison cmp(label<B>(g));
        instance_retriever<B, double> m(b, g.dim("param.mlp.0.weight", 1), g.dim("param.mlp.0.weight", 0),
                                        g.dim("param.mlp.2.weight", 0), "mlp");
        load_parameters(b, r, m);
        auto h = load(b, r, "input.encoder_hidden_states");
        const auto& me = r.at("input.encoder_attention_mask");
        const auto mi = r.read<std::int32_t>(me);
        const std::vector<std::uint8_t> mv(mi.begin(), mi.end());
        auto mask = tensor<B, std::uint8_t>::from_host(b, me.to_shape(), mv);
        typename instance_retriever<B, double>::context ctx;
        cmp.check(r, "output.sample2", m.forward(h, mask, ctx));
        cmp.check(r, "grad.input.encoder_hidden_states", m.backward(load(b, r, "probe.R"), ctx));
        cmp.template check_parameter_gradients<B>(r, m);
        BOOST_TEST(cmp.tensors == g.output_and_gradient_count(), g.name());
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(instance_loss_matches_reference, B, layer_backends) {
    for (const auto& path : module_files({"pha_ins_ins_loss"})) {
        B b;
        const golden g(path);
        g.require_meta_mentions("source", "::T5Trainer._ins_ins_loss");
        const auto& r = g.reader();
        comparison cmp(label<B>(g));
        pha_instance_loss<B, double> loss(b, contrastive_options_of(g));
        typename pha_instance_loss<B, double>::context ctx;
        cmp.check_scalar(r, "output.loss",
                         loss.forward(load(b, r, "input.features"), load_ids(b, r, "input.indices"), ctx));
        const double probe = r.read<double>(r.at("probe.R")).at(0);
        cmp.check(r, "grad.input.features", loss.backward(ctx, probe));
        BOOST_TEST(cmp.tensors == g.output_and_gradient_count(), g.name());
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(prototype_loss_matches_reference, B, layer_backends) {
    for (const auto& path : module_files({"pha_pro_ins_loss"})) {
        B b;
        const golden g(path);
        g.require_meta_mentions("source", "::T5Trainer._pro_ins_loss");
        const auto& r = g.reader();
        comparison cmp(label<B>(g));
        auto o = contrastive_options_of(g);
        // The authors subtract the positive prototype's term from the denominator; the maths line says so.
        if (g.meta_mentions("maths", "excluded from the denominator"))
            o.denominator = pha_denominator::exclude_positive;
        else if (g.meta_mentions("maths", "standard denominator"))
            o.denominator = pha_denominator::standard;
        else
            g.fail("__metadata__ key 'maths' does not say whether the positive prototype is excluded from the denominator");
        pha_prototype_loss<B, double> loss(b, o);
        typename pha_prototype_loss<B, double>::context ctx;
        cmp.check_scalar(r, "output.loss", loss.forward(load(b, r, "input.features"), load_ids(b, r, "input.indices"),
                                                        load(b, r, "input.task_embed"), ctx));
        const double probe = r.read<double>(r.at("probe.R")).at(0);
        auto gr = loss.backward(ctx, probe);
        cmp.check(r, "grad.input.features", gr.features);
        cmp.check(r, "grad.input.task_embed", gr.prototypes);
        BOOST_TEST(cmp.tensors == g.output_and_gradient_count(), g.name());
    }
}

namespace {
/// Rows [l * n, (l + 1) * n) of a tensor stacked over layers, with the per-layer shape `s`.
template <class B>
tensor<B, double> layer_slice(const tensor<B, double>& t, std::size_t l, shape s) {
    const std::size_t per = s.size();
    return t.reshaped({t.size() / per, per}).row_range(l, 1).reshaped(s);
}
/// Copies `parts` one after another into a tensor of shape `s`.
template <class B>
tensor<B, double> stack(B& b, const std::vector<tensor<B, double>>& parts, shape s) {
    std::vector<double> all;
    for (const auto& p : parts) {
        const auto h = p.to_host();
        all.insert(all.end(), h.begin(), h.end());
    }
    return tensor<B, double>::from_host(b, s, all);
}
}  // namespace

BOOST_AUTO_TEST_CASE_TEMPLATE(pha_hypernet_matches_reference, B, layer_backends) {
    for (const auto& path : module_files({"pha_param_generator"})) {
        B b;
        const golden g(path);
        g.require_meta_mentions("source", "::ParameterGenerator.forward");
        const auto& r = g.reader();
        comparison cmp(label<B>(g));
        const auto cfg = hypernet_config_of(g);
        pha_hypernet<B, double> m(b, cfg);
        load_parameters(b, r, m);
        auto k = load(b, r, "input.hidden_inputs");
        const std::size_t nb = g.dim("input.hidden_inputs", 0), layers = cfg.layers, dr = cfg.features * cfg.bottleneck;
        std::vector<typename pha_hypernet<B, double>::context> ctx(layers);
        std::vector<adapter_weights<B, double>> w;
        for (std::size_t l = 0; l < layers; ++l) w.push_back(m.forward(k, l, ctx[l]));
        auto all = [&](auto member, std::size_t width) {
            std::vector<tensor<B, double>> parts;
            for (auto& x : w) parts.push_back(x.*member);
            return stack(b, parts, {layers, nb, width});
        };
        using W = adapter_weights<B, double>;
        cmp.check(r, "output.weight_up", all(&W::up_weight, dr));
        cmp.check(r, "output.weight_down", all(&W::down_weight, dr));
        cmp.check(r, "output.bias_up", all(&W::up_bias, cfg.features));
        cmp.check(r, "output.bias_down", all(&W::down_bias, cfg.bottleneck));
        auto ru = load(b, r, "probe.R.weight_up"), rd = load(b, r, "probe.R.weight_down"),
             rbu = load(b, r, "probe.R.bias_up"), rbd = load(b, r, "probe.R.bias_down");
        auto dk = tensor<B, double>::zeros(b, k.shape());
        for (std::size_t l = 0; l < layers; ++l) {
            W dw{layer_slice(rd, l, {nb, dr}), layer_slice(rbd, l, {nb, cfg.bottleneck}), layer_slice(ru, l, {nb, dr}),
                 layer_slice(rbu, l, {nb, cfg.features})};
            auto gr = m.backward(dw, ctx[l]);
            b.axpy(gr.size(), 1.0, gr.data(), dk.data());
        }
        cmp.check(r, "grad.input.hidden_inputs", dk);
        cmp.template check_parameter_gradients<B>(r, m);
        BOOST_TEST(cmp.tensors == g.output_and_gradient_count(), g.name());
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(pha_hypernet_and_adapter_match_reference, B, layer_backends) {
    for (const auto& path : module_files({"pha_generator_adapter"})) {
        B b;
        const golden g(path);
        g.require_meta_mentions("source", "::ParameterGenerator.forward");
        const auto& r = g.reader();
        comparison cmp(label<B>(g));
        const auto cfg = hypernet_config_of(g);
        // x [n_layers, B, L, d]: one adapter input per generated layer.
        const std::size_t layers = g.dim("input.x", 0), nb = g.dim("input.x", 1), len = g.dim("input.x", 2),
                          d = g.dim("input.x", 3);
        if (layers != cfg.layers || d != cfg.features)
            g.fail("input.x " + io::shape_string(g.shape("input.x")) + " does not match the generator's " +
                   std::to_string(cfg.layers) + " layers of width " + std::to_string(cfg.features));
        pha_hypernet<B, double> gen(b, cfg);
        task_adapter<B, double> adapter(b, d, cfg.bottleneck, "", {.own_weights = false});
        load_parameters(b, r, gen);
        auto k = load(b, r, "input.hidden_inputs");
        auto x = load(b, r, "input.x");
        auto probe = load(b, r, "probe.R");
        std::vector<typename pha_hypernet<B, double>::context> gctx(layers);
        std::vector<typename task_adapter<B, double>::context> actx(layers);
        std::vector<tensor<B, double>> out, dx;
        auto dk = tensor<B, double>::zeros(b, k.shape());
        for (std::size_t l = 0; l < layers; ++l)
            out.push_back(adapter.forward(layer_slice(x, l, {nb, len, d}), gen.forward(k, l, gctx[l]), actx[l]));
        for (std::size_t l = 0; l < layers; ++l) {
            auto ga = adapter.backward_generated(layer_slice(probe, l, {nb, len, d}), actx[l]);
            dx.push_back(ga.input);
            auto gr = gen.backward(ga.weights, gctx[l]);
            b.axpy(gr.size(), 1.0, gr.data(), dk.data());
        }
        cmp.check(r, "output.out", stack(b, out, {layers, nb, len, d}));
        cmp.check(r, "grad.input.x", stack(b, dx, {layers, nb, len, d}));
        cmp.check(r, "grad.input.hidden_inputs", dk);
        cmp.template check_parameter_gradients<B>(r, gen);
        BOOST_TEST(cmp.tensors == g.output_and_gradient_count(), g.name());
    }
}

// ==== (b) finite-difference gradient checks ==========================================================

BOOST_AUTO_TEST_CASE_TEMPLATE(adapter_with_own_weights_gradients, B, layer_backends) {
    B b;
    for (bool residual : {false, true})
        for (bool rank3 : {true, false}) {
            task_adapter<B, double> m(b, 6, 3, "adapter", {.residual = residual});
            randomize(b, m, 11);
            auto x = rank3 ? random_tensor<B, double>(b, {2, 4, 6}, 1) : random_tensor<B, double>(b, {5, 6}, 1);
            typename task_adapter<B, double>::context ctx;
            auto r = testing::check_gradients<B>(
                b, {{"x", &x}}, [&](auto&& f) { m.visit_parameters(f); },
                [&] {
                    ctx = {};
                    return m.forward(x, ctx);
                },
                [&](const tensor<B, double>& dy) { return std::vector<tensor<B, double>>{m.backward(dy, ctx)}; });
            BOOST_TEST(r.ok, "residual " << residual << ", rank 3 " << rank3 << ":\n" << r.report);
        }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(adapter_with_generated_weights_gradients, B, layer_backends) {
    B b;
    const std::size_t d = 6, rr = 3, nb = 3;
    for (bool residual : {false, true})
        for (bool rank3 : {true, false}) {
            task_adapter<B, double> m(b, d, rr, "adapter", {.own_weights = false, .residual = residual});
            auto x = rank3 ? random_tensor<B, double>(b, {nb, 4, d}, 1) : random_tensor<B, double>(b, {nb, d}, 1);
            auto dw = random_tensor<B, double>(b, {nb, d * rr}, 2);
            auto db = random_tensor<B, double>(b, {nb, rr}, 3);
            auto uw = random_tensor<B, double>(b, {nb, rr * d}, 4);
            auto ub = random_tensor<B, double>(b, {nb, d}, 5);
            typename task_adapter<B, double>::context ctx;
            auto r = testing::check_gradients<B>(
                b, {{"x", &x}, {"down_weight", &dw}, {"down_bias", &db}, {"up_weight", &uw}, {"up_bias", &ub}},
                [&](auto&& f) { m.visit_parameters(f); },
                [&] {
                    ctx = {};
                    return m.forward(x, {dw, db, uw, ub}, ctx);
                },
                [&](const tensor<B, double>& dy) {
                    auto g = m.backward_generated(dy, ctx);
                    return std::vector<tensor<B, double>>{g.input, g.weights.down_weight, g.weights.down_bias,
                                                          g.weights.up_weight, g.weights.up_bias};
                });
            BOOST_TEST(r.ok, "residual " << residual << ", rank 3 " << rank3 << ":\n" << r.report);
        }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(adapter_rejects_mismatched_generated_weights, B, layer_backends) {
    B b;
    task_adapter<B, double> m(b, 6, 3, "dec.adapter", {.own_weights = false});
    auto x = random_tensor<B, double>(b, {2, 4, 6}, 1);
    auto ok = [&](std::size_t n, std::size_t w) { return random_tensor<B, double>(b, {n, w}, 2); };
    typename task_adapter<B, double>::context ctx;
    expect_shape_error([&] { (void)m.forward(x, {ok(3, 18), ok(2, 3), ok(2, 18), ok(2, 6)}, ctx); }, "dec.adapter");
    expect_shape_error([&] { (void)m.forward(x, {ok(2, 18), ok(2, 3), ok(2, 17), ok(2, 6)}, ctx); }, "dec.adapter");
    BOOST_CHECK_THROW((void)m.forward(x, ctx), error);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(retriever_gradients, B, layer_backends) {
    B b;
    instance_retriever<B, double> m(b, 5, 6, 4, "mlp");
    randomize(b, m, 41);
    auto h = random_tensor<B, double>(b, {3, 4, 5}, 1);
    // lengths 4, 2 and 0 (an all-padding row pools to zero)
    auto mask = tensor<B, std::uint8_t>::from_host(b, {3, 4}, std::vector<std::uint8_t>{1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0});
    typename instance_retriever<B, double>::context ctx;
    auto r = testing::check_gradients<B>(
        b, {{"hidden_states", &h}}, [&](auto&& f) { m.visit_parameters(f); },
        [&] {
            ctx = {};
            return m.forward(h, mask, ctx);
        },
        [&](const tensor<B, double>& dy) { return std::vector<tensor<B, double>>{m.backward(dy, ctx)}; });
    BOOST_TEST(r.ok, r.report);
    const auto out = m.forward(h, mask, ctx).to_host();  // row 2 saw only zeros: the MLP of a zero vector
    BOOST_TEST(std::isfinite(out[8]));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(contrastive_loss_gradients, B, layer_backends) {
    B b;
    auto f = random_tensor<B, double>(b, {7, 5}, 1);
    auto k = random_tensor<B, double>(b, {4, 5}, 2);
    auto t = ids(b, {0, 2, 1, 0, 2, 3, 0});
    {
        pha_instance_loss<B, double> loss(b);
        typename pha_instance_loss<B, double>::context ctx;
        auto r = testing::check_gradients<B>(
            b, {{"features", &f}}, [](auto&&) {},
            [&] { return tensor<B, double>::filled(b, {1}, loss.forward(f, t, ctx)); },
            [&](const tensor<B, double>& dy) {
                return std::vector<tensor<B, double>>{loss.backward(ctx, dy.to_host()[0])};
            });
        BOOST_TEST(r.ok, "ins-ins:\n" << r.report);
    }
    for (auto den : {pha_denominator::exclude_positive, pha_denominator::standard}) {
        pha_prototype_loss<B, double> loss(b, {.denominator = den});
        typename pha_prototype_loss<B, double>::context ctx;
        auto r = testing::check_gradients<B>(
            b, {{"features", &f}, {"prototypes", &k}}, [](auto&&) {},
            [&] { return tensor<B, double>::filled(b, {1}, loss.forward(f, t, k, ctx)); },
            [&](const tensor<B, double>& dy) {
                auto g = loss.backward(ctx, dy.to_host()[0]);
                return std::vector<tensor<B, double>>{g.features, g.prototypes};
            });
        BOOST_TEST(r.ok, "pro-ins " << static_cast<int>(den) << ":\n" << r.report);
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(contrastive_loss_edge_cases, B, layer_backends) {
    B b;
    auto f = random_tensor<B, double>(b, {3, 5}, 1);
    pha_instance_loss<B, double> ins(b);
    typename pha_instance_loss<B, double>::context ictx;
    BOOST_TEST(ins.forward(f, ids(b, {0, 1, 2}), ictx) == 0.0);  // no anchor has a positive
    BOOST_TEST(ins.backward(ictx).to_host() == std::vector<double>(15, 0.0), boost::test_tools::per_element());
    pha_prototype_loss<B, double> pro(b);
    typename pha_prototype_loss<B, double>::context pctx;
    auto k1 = random_tensor<B, double>(b, {1, 5}, 2);
    BOOST_CHECK_THROW((void)pro.forward(f, ids(b, {0, 0, 0}), k1, pctx), config_error);
    auto k3 = random_tensor<B, double>(b, {3, 5}, 2);
    BOOST_CHECK_THROW((void)pro.forward(f, ids(b, {0, 3, 0}), k3, pctx), error);
    // the standard denominator is never below the excluded one, so its loss is the larger
    pha_prototype_loss<B, double> std_pro(b, {.denominator = pha_denominator::standard});
    BOOST_TEST(std_pro.forward(f, ids(b, {0, 1, 2}), k3, pctx) > pro.forward(f, ids(b, {0, 1, 2}), k3, pctx));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(pha_hypernet_with_adapter_gradients, B, layer_backends) {
    B b;
    prototypical_hypernet_config cfg{.condition = 5, .layer_embedding = 3, .layers = 2, .hidden = 7,
                                     .projection = 6, .features = 4, .bottleneck = 2};
    pha_hypernet<B, double> gen(b, cfg, "gen");
    task_adapter<B, double> adapter(b, 4, 2, "adapter", {.own_weights = false});
    randomize(b, gen, 51);
    auto k = random_tensor<B, double>(b, {3, 5}, 1);
    auto x = random_tensor<B, double>(b, {3, 2, 4}, 2);
    std::vector<typename pha_hypernet<B, double>::context> gctx(2);
    std::vector<typename task_adapter<B, double>::context> actx(2);
    // both layers, so layer_embed gets a gradient in both rows; the outputs are concatenated
    auto r = testing::check_gradients<B>(
        b, {{"condition", &k}, {"x", &x}}, [&](auto&& f) { gen.visit_parameters(f); },
        [&] {
            std::vector<tensor<B, double>> outs;
            for (std::size_t l = 0; l < 2; ++l) outs.push_back(adapter.forward(x, gen.forward(k, l, gctx[l]), actx[l]));
            return stack(b, outs, {2, 3, 2, 4});
        },
        [&](const tensor<B, double>& dy) {
            auto dk = tensor<B, double>::zeros(b, {3, 5});
            auto dx = tensor<B, double>::zeros(b, {3, 2, 4});
            for (std::size_t l = 0; l < 2; ++l) {
                auto ga = adapter.backward_generated(layer_slice(dy, l, {3, 2, 4}).clone(), actx[l]);
                b.axpy(dx.size(), 1.0, ga.input.data(), dx.data());
                auto g = gen.backward(ga.weights, gctx[l]);
                b.axpy(dk.size(), 1.0, g.data(), dk.data());
            }
            return std::vector<tensor<B, double>>{dk, dx};
        });
    BOOST_TEST(r.ok, r.report);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(pha_hypernet_init_and_sizes, B, layer_backends) {
    B b;
    pha_hypernet<B, float> gen(b, pha_hypernet_config());  // T5-base: d 768, r 64, 12 layers
    rng_stream rng(3);
    gen.initialize(rng);
    std::size_t n = 0;
    gen.visit_parameters([&](const std::string&, parameter<B, float>& p) { n += p.size(); });
    // spec §2.6: hypernetwork incl. layer embeddings 6,469,504
    BOOST_TEST(n == 6469504u);
    gen.visit_parameters([&](const std::string& name, parameter<B, float>& p) {
        const auto h = p.value.to_host();
        float mx = 0;
        for (float v : h) mx = std::max(mx, std::abs(v));
        if (name == "decoder.weight_down.weight") BOOST_TEST(mx <= 1e-3 * std::sqrt(3.0 / (64 * 768)));
        if (name == "decoder.weight_up.weight") BOOST_TEST(mx <= 1e-3 * std::sqrt(3.0 / (64 * 64)));
        if (name == "decoder.bias_up.weight") BOOST_TEST(mx <= 1e-3 * std::sqrt(3.0 / 64));
        if (name == "decoder.weight_up.bias") BOOST_TEST(mx == 0.0f);
    });
}

BOOST_AUTO_TEST_CASE_TEMPLATE(composed_activations, B, layer_backends) {
    B b;
    auto x = random_tensor<B, double>(b, {4, 5}, 9, -3.0, 3.0);
    tensor<B, double> t(b, x.shape());
    auto gelu_new = [&] {
        tensor<B, double> y(b, x.shape());
        pha_ops::gelu_new_forward(b, x.size(), x.data(), y.data(), t.data());
        return y;
    };
    const auto hx = x.to_host(), hy = gelu_new().to_host();
    for (std::size_t i = 0; i < hx.size(); ++i) {
        const double v = hx[i];
        const double want = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
        BOOST_TEST(std::abs(hy[i] - want) <= 1e-15);
    }
    auto r = testing::check_gradients<B>(
        b, {{"x", &x}}, [](auto&&) {}, gelu_new,
        [&](const tensor<B, double>& dy) {
            tensor<B, double> dx(b, x.shape());
            pha_ops::gelu_new_backward(b, x.size(), x.data(), t.data(), dy.data(), dx.data());
            return std::vector<tensor<B, double>>{dx};
        });
    BOOST_TEST(r.ok, "gelu_new:\n" << r.report);
}
