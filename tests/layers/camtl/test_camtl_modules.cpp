#define BOOST_TEST_MODULE layers_camtl_modules
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
#include "hyperadapt/layers/camtl/conditional_adapter.hpp"
#include "hyperadapt/layers/camtl/conditional_alignment.hpp"
#include "hyperadapt/layers/camtl/conditional_bottleneck.hpp"
#include "hyperadapt/layers/camtl/conditional_layer_norm.hpp"
#include "hyperadapt/layers/camtl/film.hpp"
#include "hyperadapt/layers/camtl/task_embedding.hpp"
#include "hyperadapt/nn/parameters.hpp"
#include "hyperadapt/testing/gradcheck.hpp"
#include "support/backends.hpp"
#include "support/reference_data.hpp"
#include "support/temp_dir.hpp"

using namespace hyperadapt;
using hyperadapt::io::safetensors_reader;
using hyperadapt::test::layer_backends;
using hyperadapt::test::random_tensor;

namespace {

// ---- reference files ---------------------------------------------------------------------------------
// Every golden file of a module in reference_dir() (tests/data/reference, or HYPERADAPT_REFERENCE_DIR); all
// sizes and options come from the file (support/golden_file.hpp).

using namespace hyperadapt::test::reference;

const std::vector<std::string> film_files{"camtl_film"}, cln_files{"camtl_cln"}, bottleneck_files{"camtl_bottleneck"},
    adapter_files{"camtl_adapter9"};

/// The authors' ConditionalLayerNorm conditions only the gain; a file whose module also conditions the bias
/// says so with the ln_bias_modulation parameters.
cln_variant cln_variant_of(const golden& g, const std::string& prefix) {
    return g.has("param." + prefix + "ln_bias_modulation.gb_weights.weight") ? cln_variant::gain_and_bias
                                                                             : cln_variant::gain_only;
}

/// Checks the file's first_sample_per_task ({"task": position}) against input.task_id: the reference reads the
/// condition row of the first example of each task, and the file says which rows those are.
void check_first_sample_per_task(const golden& g, const std::string& ids_name) {
    const auto ids = g.indices(ids_name);
    std::map<std::string, std::size_t> first;
    for (std::size_t i = 0; i < ids.size(); ++i) first.emplace(std::to_string(ids[i]), i);
    const auto stated = g.meta_json("first_sample_per_task").get<std::map<std::string, std::size_t>>();
    if (stated != first) g.fail("__metadata__ key 'first_sample_per_task' disagrees with " + ids_name);
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

std::vector<double> row(const std::vector<double>& v, std::size_t r, std::size_t width) {
    return {v.begin() + static_cast<std::ptrdiff_t>(r * width), v.begin() + static_cast<std::ptrdiff_t>((r + 1) * width)};
}

}  // namespace

// ==== (a) agreement with the authors' code ============================================================

BOOST_AUTO_TEST_CASE(reference_copies_match_the_shared_data) {
    check_repository_copies({"camtl_film", "camtl_cln", "camtl_bottleneck", "camtl_adapter9"});
}

BOOST_AUTO_TEST_CASE_TEMPLATE(film_matches_reference, B, layer_backends) {
    for (const auto& path : module_files(film_files)) {
        B b;
        const golden g(path);
        g.require_meta_mentions("source", "::FiLM.forward");
        const auto& r = g.reader();
        comparison cmp(label<B>(g));
        // FiLM(layer_norm=...): the option in the metadata, and the LayerNorm's parameters in the file.
        film_options o{.layer_norm = g.meta_option_bool({"options", "call"}, "layer_norm")};
        if (o.layer_norm != g.has("param.layer_norm.weight"))
            g.fail("__metadata__ key 'options' says layer_norm=" + g.meta_option_any({"options", "call"}, "layer_norm") +
                   " but param.layer_norm.weight is " + (o.layer_norm ? "missing" : "present"));
        if (g.meta_option_number({"options", "call"}, "num_film_layers") != 1.0)
            g.fail("__metadata__ key 'options': only num_film_layers=1 is implemented (as CA-MTL uses)");
        if (o.layer_norm) o.layer_norm_eps = g.meta_number_after("maths", "(eps");
        film<B, double> m(b, g.dim("input.x_cond", -1), g.dim("input.x_to_film", -1), "", o);
        load_parameters(b, r, m);
        auto x = load(b, r, "input.x_to_film");
        auto c = load(b, r, "input.x_cond");
        typename film<B, double>::context ctx;
        cmp.check(r, "output.out", m.forward(x, c, ctx));
        auto gr = m.backward(load(b, r, "probe.R"), ctx);
        cmp.check(r, "grad.input.x_to_film", gr.input);
        cmp.check(r, "grad.input.x_cond", gr.condition);
        cmp.template check_parameter_gradients<B>(r, m);
        BOOST_TEST(cmp.tensors == g.output_and_gradient_count(), g.name());
    }
}

// Each file says which condition row each task reads (first_sample_per_task); camtl_cln_distinct_condition
// draws every row independently, so only the first example of each task can reproduce it.
BOOST_AUTO_TEST_CASE_TEMPLATE(cln_matches_reference, B, layer_backends) {
    for (const auto& path : module_files(cln_files)) {
        B b;
        const golden g(path);
        g.require_meta_mentions("source", "::ConditionalLayerNorm.forward");
        const auto& r = g.reader();
        comparison cmp(label<B>(g));
        check_first_sample_per_task(g, "input.task_id");
        const cln_options o{.variant = cln_variant_of(g, ""),
                            .condition_rows = cln_condition_rows::first_of_task,
                            .eps = g.meta_option_number({"options", "call"}, "eps")};
        conditional_layer_norm<B, double> m(b, g.dim("input.input_", -1), g.dim("input.condition", -1), "", o);
        load_parameters(b, r, m);
        auto x = load(b, r, "input.input_");
        auto c = load(b, r, "input.condition");
        auto t = load_ids(b, r, "input.task_id");
        typename conditional_layer_norm<B, double>::context ctx;
        cmp.check(r, "output.out", m.forward(x, c, t, ctx));
        auto gr = m.backward(load(b, r, "probe.R"), ctx);
        cmp.check(r, "grad.input.input_", gr.input);
        cmp.check(r, "grad.input.condition", gr.condition);
        cmp.template check_parameter_gradients<B>(r, m);
        BOOST_TEST(cmp.tensors == g.output_and_gradient_count(), g.name());
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(bottleneck_matches_reference, B, layer_backends) {
    for (const auto& path : module_files(bottleneck_files)) {
        B b;
        const golden g(path);
        g.require_meta_mentions("source", "::ConditionalBottleNeck.forward");
        const auto& r = g.reader();
        comparison cmp(label<B>(g));
        conditional_bottleneck<B, double> m(b, g.dim("input.hidden_states", -1), "");
        // ConditionalBottleNeck's width is hidden_size // 3 in the authors' code, as in the library.
        BOOST_TEST_REQUIRE(m.bottleneck_features() == g.dim("param.down_proj_layer.weight", 0), g.name());
        load_parameters(b, r, m);
        auto h = load(b, r, "input.hidden_states");
        auto c = load(b, r, "input.x_cond");
        typename conditional_bottleneck<B, double>::context ctx;
        cmp.check(r, "output.out", m.forward(h, c, ctx));
        auto gr = m.backward(load(b, r, "probe.R"), ctx);
        cmp.check(r, "grad.input.hidden_states", gr.hidden_states);
        cmp.check(r, "grad.input.x_cond", gr.condition);
        cmp.template check_parameter_gradients<B>(r, m);
        BOOST_TEST(cmp.tensors == g.output_and_gradient_count(), g.name());
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(adapter9_matches_reference, B, layer_backends) {
    for (const auto& path : module_files(adapter_files)) {
        B b;
        const golden g(path);
        g.require_meta_mentions("source", "::BertAdapter9.forward");
        const auto& r = g.reader();
        comparison cmp(label<B>(g));
        const std::size_t d = g.meta_field<std::size_t>("config", "hidden_size");
        g.require_shape("input.hidden_states",
                        {g.dim("input.hidden_states", 0), g.dim("input.hidden_states", 1), d}, "config hidden_size");
        // The authors' ConditionalLayerNorm reads the first example of each task (first_of_task); the CLN
        // files state it, the adapter's file has no CLN of another kind.
        const cln_options o{.variant = cln_variant_of(g, "condlayernorm."),
                            .condition_rows = cln_condition_rows::first_of_task,
                            .eps = g.meta_field<double>("config", "layer_norm_eps")};
        conditional_adapter<B, double> m(b, d, "", o);
        load_parameters(b, r, m);
        auto res = load(b, r, "input.bert_layer_input");
        auto h = load(b, r, "input.hidden_states");
        auto z = load(b, r, "input.task_embedding");
        auto t = load_ids(b, r, "input.task_id");
        typename conditional_adapter<B, double>::context ctx;
        cmp.check(r, "output.out", m.forward(res, h, z, t, ctx));
        auto gr = m.backward(load(b, r, "probe.R"), ctx);
        cmp.check(r, "grad.input.bert_layer_input", gr.bert_layer_input);
        cmp.check(r, "grad.input.hidden_states", gr.hidden_states);
        cmp.check(r, "grad.input.task_embedding", gr.task_embedding);
        cmp.template check_parameter_gradients<B>(r, m);
        BOOST_TEST(cmp.tensors == g.output_and_gradient_count(), g.name());
    }
}

// A golden file that lacks a fact the test needs, or contradicts itself, is an error naming the file and the
// metadata key or tensor, never a fall-back to a constant.
BOOST_AUTO_TEST_CASE(missing_or_contradictory_golden_facts_name_the_file_and_key) {
    const hyperadapt::test::temp_dir dir;
    io::safetensors_writer w;
    w.add<double>("input.x_cond", {2, 3}, std::vector<double>(6, 1.0));
    w.add<std::int64_t>("input.task_id", {3}, std::vector<std::int64_t>{1, 0, 1});
    w.set_metadata("options", "num_film_layers=1, layer_norm=maybe");
    w.set_metadata("config", "{\"hidden_size\": 4");
    w.set_metadata("first_sample_per_task", "{\"0\": 1, \"1\": 2}");
    const auto path = dir / "camtl_broken.safetensors";
    w.write(path);
    const golden g(path);
    auto says = [&](const std::vector<std::string>& fragments) {
        return [&, fragments](const golden_error& e) {
            const std::string what = e.what();
            bool ok = what.find(path.string()) != std::string::npos;
            for (const auto& f : fragments) ok = ok && what.find(f) != std::string::npos;
            BOOST_TEST_MESSAGE(what);
            return ok;
        };
    };
    BOOST_CHECK_EXCEPTION((void)g.meta("maths"), golden_error, says({"'maths'"}));
    BOOST_CHECK_EXCEPTION((void)g.meta_option_bool({"options", "call"}, "layer_norm"), golden_error,
                          says({"layer_norm=maybe", "not a boolean"}));
    BOOST_CHECK_EXCEPTION((void)g.meta_option_number({"options", "call"}, "eps"), golden_error,
                          says({"'options', 'call'", "eps=<value>"}));
    BOOST_CHECK_EXCEPTION((void)g.meta_field<std::size_t>("config", "hidden_size"), golden_error,
                          says({"'config'", "not JSON"}));
    BOOST_CHECK_EXCEPTION((void)g.dim("input.x_cond", 2), golden_error, says({"input.x_cond", "rank 2"}));
    BOOST_CHECK_EXCEPTION(check_first_sample_per_task(g, "input.task_id"), golden_error,
                          says({"first_sample_per_task", "input.task_id"}));
    BOOST_TEST(g.meta_option_number({"options"}, "num_film_layers") == 1.0);
    BOOST_TEST(g.dim("input.x_cond", -1) == 3u);
    // A folder without any file of a module is an error too (a mistyped HYPERADAPT_REFERENCE_DIR cannot pass).
    BOOST_TEST(golden_files({"camtl_film"}, dir.path()).empty());
    BOOST_CHECK_THROW((void)golden_files({"camtl_film"}, dir / "absent"), golden_error);
}

BOOST_AUTO_TEST_CASE(parameter_names_under_a_prefix) {
    cpu b;
    conditional_adapter<cpu, float> m(b, 24, "encoder.layer.11.adapter");
    const std::vector<std::string> want{
        "encoder.layer.11.adapter.bottleneck.emb_transf.weight",
        "encoder.layer.11.adapter.bottleneck.emb_transf.bias",
        "encoder.layer.11.adapter.bottleneck.hidden_modulation.gb_weights.weight",
        "encoder.layer.11.adapter.bottleneck.hidden_modulation.gb_weights.bias",
        "encoder.layer.11.adapter.bottleneck.down_proj_layer.weight",
        "encoder.layer.11.adapter.bottleneck.down_proj_layer.bias",
        "encoder.layer.11.adapter.bottleneck.up_proj_layer.weight",
        "encoder.layer.11.adapter.bottleneck.up_proj_layer.bias",
        "encoder.layer.11.adapter.condlayernorm.weight",
        "encoder.layer.11.adapter.condlayernorm.bias",
        "encoder.layer.11.adapter.condlayernorm.ln_weight_modulation.gb_weights.weight",
        "encoder.layer.11.adapter.condlayernorm.ln_weight_modulation.gb_weights.bias"};
    BOOST_TEST(parameter_names(m) == want, boost::test_tools::per_element());

    task_embedding<cpu, float> te(b, 9, 24, "task_embedding", "bert.encoder.task_transformation");
    const std::vector<std::string> want_te{"task_embedding.weight", "bert.encoder.task_transformation.weight",
                                           "bert.encoder.task_transformation.bias"};
    BOOST_TEST(parameter_names(te) == want_te, boost::test_tools::per_element());

    conditional_alignment<cpu, float> al(b, 24);
    const std::vector<std::string> want_al{"conditional_alignment.gb_weights.weight",
                                           "conditional_alignment.gb_weights.bias"};
    BOOST_TEST(parameter_names(al) == want_al, boost::test_tools::per_element());

    conditional_layer_norm<cpu, float> paper(b, 24, 24, "LayerNorm", {.variant = cln_variant::gain_and_bias});
    const std::vector<std::string> want_paper{
        "LayerNorm.weight", "LayerNorm.bias", "LayerNorm.ln_weight_modulation.gb_weights.weight",
        "LayerNorm.ln_weight_modulation.gb_weights.bias", "LayerNorm.ln_bias_modulation.gb_weights.weight",
        "LayerNorm.ln_bias_modulation.gb_weights.bias"};
    BOOST_TEST(parameter_names(paper) == want_paper, boost::test_tools::per_element());
}

// ==== (b) finite-difference gradient checks ===========================================================

BOOST_AUTO_TEST_CASE_TEMPLATE(film_gradients, B, layer_backends) {
    B b;
    for (bool with_norm : {false, true})
        for (bool rank3 : {true, false}) {
            film<B, double> m(b, 5, 6, "film", {.layer_norm = with_norm});
            randomize(b, m, 11);
            auto x = rank3 ? random_tensor<B, double>(b, {3, 4, 6}, 3) : random_tensor<B, double>(b, {3, 6}, 3);
            auto c = random_tensor<B, double>(b, {3, 5}, 4);
            typename film<B, double>::context ctx;
            auto r = testing::check_gradients<B>(
                b, {{"x", &x}, {"condition", &c}}, [&](auto&& f) { m.visit_parameters(f); },
                [&] {
                    ctx = {};
                    return m.forward(x, c, ctx);
                },
                [&](const tensor<B, double>& dy) {
                    auto g = m.backward(dy, ctx);
                    return std::vector<tensor<B, double>>{g.input, g.condition};
                });
            BOOST_TEST(r.ok, "layer_norm " << with_norm << ", rank 3 " << rank3 << ":\n" << r.report);
        }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(conditional_layer_norm_gradients, B, layer_backends) {
    B b;
    const std::vector<cln_options> variants{
        {},  // the code: gain only, first example per task
        {.condition_rows = cln_condition_rows::per_sample},
        {.variant = cln_variant::gain_and_bias},
        {.variant = cln_variant::gain_and_bias, .condition_rows = cln_condition_rows::per_sample, .eps = 1e-5}};
    for (std::size_t v = 0; v < variants.size(); ++v)
        for (bool rank3 : {true, false}) {
            conditional_layer_norm<B, double> m(b, 6, 5, "cln", variants[v]);
            randomize(b, m, 21);
            // Gains away from zero keep the normalisation well conditioned for the finite differences.
            b.fill_uniform(6, 99, 0, 0.5, 1.5, m.weight().value.data());
            auto x = rank3 ? random_tensor<B, double>(b, {5, 3, 6}, 3) : random_tensor<B, double>(b, {5, 6}, 3);
            auto c = random_tensor<B, double>(b, {5, 5}, 4);  // distinct rows, even within a task
            auto t = ids(b, {2, 0, 1, 0, 2});
            typename conditional_layer_norm<B, double>::context ctx;
            auto r = testing::check_gradients<B>(
                b, {{"x", &x}, {"condition", &c}}, [&](auto&& f) { m.visit_parameters(f); },
                [&] {
                    ctx = {};
                    return m.forward(x, c, t, ctx);
                },
                [&](const tensor<B, double>& dy) {
                    auto g = m.backward(dy, ctx);
                    return std::vector<tensor<B, double>>{g.input, g.condition};
                });
            BOOST_TEST(r.ok, "variant " << v << ", rank 3 " << rank3 << ":\n" << r.report);
        }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(conditional_bottleneck_gradients, B, layer_backends) {
    B b;
    conditional_bottleneck<B, double> m(b, 7, "bottleneck");  // width 7 // 3 = 2
    BOOST_TEST(m.bottleneck_features() == 2u);
    randomize(b, m, 31);
    auto h = random_tensor<B, double>(b, {3, 4, 7}, 3);
    auto c = random_tensor<B, double>(b, {3, 7}, 4);
    typename conditional_bottleneck<B, double>::context ctx;
    auto r = testing::check_gradients<B>(
        b, {{"hidden_states", &h}, {"condition", &c}}, [&](auto&& f) { m.visit_parameters(f); },
        [&] {
            ctx = {};
            return m.forward(h, c, ctx);
        },
        [&](const tensor<B, double>& dy) {
            auto g = m.backward(dy, ctx);
            return std::vector<tensor<B, double>>{g.hidden_states, g.condition};
        });
    BOOST_TEST(r.ok, r.report);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(conditional_alignment_gradients, B, layer_backends) {
    B b;
    conditional_alignment<B, double> m(b, 6);
    randomize(b, m, 41);
    auto e = random_tensor<B, double>(b, {3, 4, 6}, 3);
    auto z = random_tensor<B, double>(b, {3, 6}, 4);
    typename conditional_alignment<B, double>::context ctx;
    auto r = testing::check_gradients<B>(
        b, {{"embeddings", &e}, {"z", &z}}, [&](auto&& f) { m.visit_parameters(f); },
        [&] {
            ctx = {};
            return m.forward(e, z, ctx);
        },
        [&](const tensor<B, double>& dy) {
            auto g = m.backward(dy, ctx);
            return std::vector<tensor<B, double>>{g.embeddings, g.task_embedding};
        });
    BOOST_TEST(r.ok, r.report);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(conditional_adapter_gradients, B, layer_backends) {
    B b;
    for (auto rows : {cln_condition_rows::first_of_task, cln_condition_rows::per_sample}) {
        conditional_adapter<B, double> m(b, 6, "adapter", {.condition_rows = rows});
        randomize(b, m, 51);
        b.fill_uniform(6, 98, 0, 0.5, 1.5, m.norm().weight().value.data());
        auto res = random_tensor<B, double>(b, {4, 3, 6}, 3);
        auto h = random_tensor<B, double>(b, {4, 3, 6}, 4);
        auto z = random_tensor<B, double>(b, {4, 6}, 5);
        auto t = ids(b, {1, 0, 1, 2});
        typename conditional_adapter<B, double>::context ctx;
        auto r = testing::check_gradients<B>(
            b, {{"bert_layer_input", &res}, {"hidden_states", &h}, {"task_embedding", &z}},
            [&](auto&& f) { m.visit_parameters(f); },
            [&] {
                ctx = {};
                return m.forward(res, h, z, t, ctx);
            },
            [&](const tensor<B, double>& dy) {
                auto g = m.backward(dy, ctx);
                return std::vector<tensor<B, double>>{g.bert_layer_input, g.hidden_states, g.task_embedding};
            });
        BOOST_TEST(r.ok, r.report);
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(task_embedding_gradients, B, layer_backends) {
    B b;
    task_embedding<B, double> m(b, 4, 5);
    randomize(b, m, 61);
    auto t = ids(b, {3, 0, 3, 1});
    typename task_embedding<B, double>::context ctx;
    // Both outputs enter the loss: y = z + z'.
    auto r = testing::check_gradients<B>(
        b, {}, [&](auto&& f) { m.visit_parameters(f); },
        [&] {
            ctx = {};
            auto o = m.forward(t, ctx);
            tensor<B, double> y(b, o.z.shape());
            b.add(y.size(), o.z.data(), o.z_prime.data(), y.data());
            return y;
        },
        [&](const tensor<B, double>& dy) {
            m.backward(dy, dy, ctx);
            return std::vector<tensor<B, double>>{};
        });
    BOOST_TEST(r.ok, r.report);
    // z' alone (dz empty), and z alone (dz' empty: the transformation gets no gradient).
    for (bool prime : {true, false}) {
        auto r1 = testing::check_gradients<B>(
            b, {}, [&](auto&& f) { m.visit_parameters(f); },
            [&] {
                ctx = {};
                auto o = m.forward(t, ctx);
                return prime ? o.z_prime : o.z;
            },
            [&](const tensor<B, double>& dy) {
                if (prime)
                    m.backward({}, dy, ctx);
                else
                    m.backward(dy, {}, ctx);
                return std::vector<tensor<B, double>>{};
            },
            {.allow_zero_gradient = !prime});
        BOOST_TEST(r1.ok, "z' only " << prime << ":\n" << r1.report);
    }
}

// ==== (c) mixed-task batches ==========================================================================

BOOST_AUTO_TEST_CASE_TEMPLATE(mixed_task_batch_rows_get_their_own_modulation, B, layer_backends) {
    B b;
    const std::size_t d = 8, seq = 3;
    task_embedding<B, double> te(b, 3, d);
    randomize(b, te, 71);
    film<B, double> f(b, d, d, "film");
    randomize(b, f, 81);
    conditional_bottleneck<B, double> cb(b, d, "bottleneck");
    randomize(b, cb, 91);
    // Every example carries the same features; only its task differs.
    std::vector<double> one = random_tensor<B, double>(b, {seq, d}, 5).to_host(), all;
    const std::vector<std::int32_t> tasks{0, 1, 0, 2};
    for (std::size_t i = 0; i < tasks.size(); ++i) all.insert(all.end(), one.begin(), one.end());
    auto x = tensor<B, double>::from_host(b, {tasks.size(), seq, d}, all);
    typename task_embedding<B, double>::context tc;
    auto z = te.forward(ids(b, tasks), tc);
    typename film<B, double>::context fc;
    typename conditional_bottleneck<B, double>::context bc;
    for (const auto& y : {f.forward(x, z.z_prime, fc).to_host(), cb.forward(x, z.z_prime, bc).to_host()}) {
        const std::size_t w = seq * d;
        BOOST_TEST(row(y, 0, w) == row(y, 2, w), boost::test_tools::per_element());  // same task
        BOOST_TEST((row(y, 0, w) != row(y, 1, w)));
        BOOST_TEST((row(y, 0, w) != row(y, 3, w)));
        BOOST_TEST((row(y, 1, w) != row(y, 3, w)));
    }
    // Per-example results equal the same example run alone with its own task.
    for (std::size_t i = 0; i < tasks.size(); ++i) {
        auto xi = tensor<B, double>::from_host(b, {1, seq, d}, one);
        typename task_embedding<B, double>::context tci;
        auto zi = te.forward(ids(b, {tasks[i]}), tci);
        typename film<B, double>::context fci;
        const auto alone = f.forward(xi, zi.z_prime, fci).to_host();
        const auto batched = row(f.forward(x, z.z_prime, fc).to_host(), i, seq * d);
        BOOST_TEST(hyperadapt::test::max_abs_diff(alone, batched) < 1e-14);
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(cln_first_example_of_each_task_drives_the_task, B, layer_backends) {
    B b;
    const std::size_t d = 6, seq = 2;
    std::vector<double> one = random_tensor<B, double>(b, {seq, d}, 5).to_host(), all;
    const std::vector<std::int32_t> tasks{2, 0, 1, 0, 2};
    for (std::size_t i = 0; i < tasks.size(); ++i) all.insert(all.end(), one.begin(), one.end());
    auto x = tensor<B, double>::from_host(b, {tasks.size(), seq, d}, all);
    auto c = random_tensor<B, double>(b, {tasks.size(), d}, 6);  // every row distinct
    const std::size_t w = seq * d;
    for (auto rows : {cln_condition_rows::first_of_task, cln_condition_rows::per_sample}) {
        conditional_layer_norm<B, double> m(b, d, d, "cln", {.condition_rows = rows});
        randomize(b, m, 7);
        typename conditional_layer_norm<B, double>::context ctx;
        const auto y = m.forward(x, c, ids(b, tasks), ctx).to_host();
        if (rows == cln_condition_rows::first_of_task) {
            // Examples 3 and 4 repeat tasks 0 and 2: they use the conditions of examples 1 and 0.
            BOOST_TEST(row(y, 3, w) == row(y, 1, w), boost::test_tools::per_element());
            BOOST_TEST(row(y, 4, w) == row(y, 0, w), boost::test_tools::per_element());
            BOOST_TEST((row(y, 0, w) != row(y, 1, w)));
            BOOST_TEST((row(y, 1, w) != row(y, 2, w)));
            // Only the rows read get a condition gradient.
            auto dy = random_tensor<B, double>(b, x.shape(), 8);
            const auto dc = m.backward(dy, ctx).condition.to_host();
            for (std::size_t i : {3u, 4u}) BOOST_TEST(row(dc, i, d) == std::vector<double>(d, 0.0), boost::test_tools::per_element());
            for (std::size_t i : {0u, 1u, 2u}) BOOST_TEST((row(dc, i, d) != std::vector<double>(d, 0.0)));
            // Given what the batch builder worked out (layer_condition::tasks), the layer reads it instead of
            // copying the ids back and uploading its rows, and computes the same; a plan that contradicts the
            // ids is refused.
            const std::vector<std::int32_t> first{1, 2, 0};  // tasks 0, 1, 2 first appear in rows 1, 2, 0
            const auto first_rows = ids(b, first);
            typename conditional_layer_norm<B, double>::context known_ctx;
            const auto yk = m.forward(x, c, ids(b, tasks), known_ctx, {}, {tasks, first, &first_rows}).to_host();
            BOOST_TEST(yk == y, boost::test_tools::per_element());
            BOOST_TEST(m.backward(dy, known_ctx).condition.to_host() == dc, boost::test_tools::per_element());
            const std::vector<std::int32_t> wrong{0, 2, 1};
            const auto wrong_rows = ids(b, wrong);
            BOOST_CHECK_EXCEPTION((void)m.forward(x, c, ids(b, tasks), known_ctx, {}, {tasks, wrong, &wrong_rows}),
                                  error, [](const error& e) {
                                      return std::string(e.what()).find("cln: the batch's first rows per task") !=
                                             std::string::npos;
                                  });
        } else {
            BOOST_TEST((row(y, 3, w) != row(y, 1, w)));
            BOOST_TEST((row(y, 4, w) != row(y, 0, w)));
        }
    }
}

BOOST_AUTO_TEST_CASE(float_adapter_agrees_with_double) {
    cpu b;
    conditional_adapter<cpu, double> md(b, 12, "adapter");
    conditional_adapter<cpu, float> mf(b, 12, "adapter");
    randomize(b, md, 101, 0.3);
    std::vector<std::vector<double>> values;
    md.visit_parameters([&](const std::string&, parameter<cpu, double>& p) { values.push_back(p.value.to_host()); });
    std::size_t k = 0;
    mf.visit_parameters([&](const std::string&, parameter<cpu, float>& p) {
        std::vector<float> v(values[k].begin(), values[k].end());
        b.copy_from_host(v.data(), p.value.data(), v.size());
        ++k;
    });
    auto to_float = [&](const tensor<cpu, double>& t) {
        auto h = t.to_host();
        std::vector<float> f(h.begin(), h.end());
        return tensor<cpu, float>::from_host(b, t.shape(), f);
    };
    auto res = random_tensor<cpu, double>(b, {3, 4, 12}, 1);
    auto h = random_tensor<cpu, double>(b, {3, 4, 12}, 2);
    auto z = random_tensor<cpu, double>(b, {3, 12}, 3);
    auto t = ids(b, {1, 0, 1});
    typename conditional_adapter<cpu, double>::context cd;
    typename conditional_adapter<cpu, float>::context cf;
    const auto yd = md.forward(res, h, z, t, cd).to_host();
    const auto yf = mf.forward(to_float(res), to_float(h), to_float(z), t, cf).to_host();
    for (std::size_t i = 0; i < yd.size(); ++i) BOOST_TEST(std::abs(yd[i] - static_cast<double>(yf[i])) < 1e-4);
}

BOOST_AUTO_TEST_CASE(frozen_parameters_get_no_gradient_and_inputs_still_do) {
    cpu b;
    conditional_layer_norm<cpu, double> m(b, 6, 6, "cln", {.variant = cln_variant::gain_and_bias});
    randomize(b, m, 3);
    freeze(m, "cln\\.(weight|bias)$|ln_weight_modulation");
    auto x = random_tensor<cpu, double>(b, {2, 3, 6}, 1);
    auto c = random_tensor<cpu, double>(b, {2, 6}, 2);
    typename conditional_layer_norm<cpu, double>::context ctx;
    (void)m.forward(x, c, ids(b, {0, 1}), ctx);
    auto g = m.backward(random_tensor<cpu, double>(b, x.shape(), 3), ctx);
    BOOST_TEST(!m.weight().trainable());
    BOOST_TEST(!m.bias().trainable());
    BOOST_TEST(g.condition.to_host() != std::vector<double>(12, 0.0));
    BOOST_TEST((g.input.shape() == x.shape()));
}

// ==== (d) shape errors name the module ================================================================

BOOST_AUTO_TEST_CASE(bad_shapes_throw_shape_error_naming_the_module) {
    cpu b;
    using T = float;
    auto t = [&](shape s) { return tensor<cpu, T>::zeros(b, s); };

    film<cpu, T> f(b, 4, 6, "encoder.film");
    typename film<cpu, T>::context fc;
    expect_shape_error([&] { (void)f.forward(t({2, 3, 5}), t({2, 4}), fc); }, "encoder.film");
    expect_shape_error([&] { (void)f.forward(t({2, 3, 6}), t({3, 4}), fc); }, "encoder.film");
    expect_shape_error([&] { (void)f.forward(t({2, 3, 6}), t({2, 5}), fc); }, "encoder.film");
    expect_shape_error([&] { (void)f.forward(t({6}), t({1, 4}), fc); }, "encoder.film");
    (void)f.forward(t({2, 3, 6}), t({2, 4}), fc);
    expect_shape_error([&] { (void)f.backward(t({2, 4, 6}), fc); }, "encoder.film");

    conditional_layer_norm<cpu, T> n(b, 6, 4, "layer.7.output.LayerNorm");
    typename conditional_layer_norm<cpu, T>::context nc;
    const std::string nn = "layer.7.output.LayerNorm";
    expect_shape_error([&] { (void)n.forward(t({2, 3, 5}), t({2, 4}), ids(b, {0, 1}), nc); }, nn);
    expect_shape_error([&] { (void)n.forward(t({2, 3, 6}), t({2, 6}), ids(b, {0, 1}), nc); }, nn);
    expect_shape_error([&] { (void)n.forward(t({2, 3, 6}), t({2, 4}), ids(b, {0, 1, 2}), nc); }, nn);
    expect_shape_error([&] { (void)n.forward(t({2, 3, 6}), t({2, 4}), {}, nc); }, nn);  // ids required

    conditional_bottleneck<cpu, T> cb(b, 6, "layer.11.adapter.bottleneck");
    typename conditional_bottleneck<cpu, T>::context bc;
    expect_shape_error([&] { (void)cb.forward(t({2, 3, 7}), t({2, 6}), bc); }, "layer.11.adapter.bottleneck");
    expect_shape_error([&] { (void)cb.forward(t({2, 3, 6}), t({1, 6}), bc); }, "layer.11.adapter.bottleneck");

    conditional_adapter<cpu, T> ad(b, 6, "layer.11.adapter");
    typename conditional_adapter<cpu, T>::context ac;
    expect_shape_error([&] { (void)ad.forward(t({2, 4, 6}), t({2, 3, 6}), t({2, 6}), ids(b, {0, 1}), ac); },
                       "layer.11.adapter");
    expect_shape_error([&] { (void)ad.forward(t({2, 3, 6}), t({2, 3, 6}), t({2, 5}), ids(b, {0, 1}), ac); },
                       "layer.11.adapter.bottleneck");
    expect_shape_error([&] { (void)ad.forward(t({2, 3, 6}), t({2, 3, 6}), t({2, 6}), ids(b, {0}), ac); },
                       "layer.11.adapter.condlayernorm");

    conditional_alignment<cpu, T> al(b, 6);
    typename conditional_alignment<cpu, T>::context alc;
    expect_shape_error([&] { (void)al.forward(t({2, 6}), t({2, 6}), alc); }, "conditional_alignment");
    expect_shape_error([&] { (void)al.forward(t({2, 3, 6}), t({3, 6}), alc); }, "conditional_alignment");

    task_embedding<cpu, T> te(b, 3, 6);
    typename task_embedding<cpu, T>::context tc;
    expect_shape_error([&] { (void)te.forward(tensor<cpu, std::int32_t>::from_host(b, {1, 2}, std::vector<std::int32_t>{0, 1}), tc); },
                       "task_embedding");
    BOOST_CHECK_THROW((void)te.forward(ids(b, {0, 3}), tc), error);  // id out of range
    (void)te.forward(ids(b, {0, 2}), tc);
    expect_shape_error([&] { te.backward(t({3, 6}), {}, tc); }, "task_embedding");
}

BOOST_AUTO_TEST_CASE(bad_configurations_throw_config_error) {
    cpu b;
    BOOST_CHECK_THROW((conditional_bottleneck<cpu, float>(b, 2, "bottleneck")), config_error);  // 2 // 3 == 0
    BOOST_CHECK_THROW((film<cpu, float>(b, 0, 4, "film")), config_error);
    BOOST_CHECK_THROW((conditional_layer_norm<cpu, float>(b, 4, 4, "cln", {.eps = 0})), config_error);
}
