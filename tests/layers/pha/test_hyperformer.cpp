#define BOOST_TEST_MODULE layers_pha_hyperformer
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "hyperadapt/io/safetensors.hpp"
#include "hyperadapt/layers/pha/hyperformer_adapter.hpp"
#include "hyperadapt/layers/pha/hyperformer_hypernet.hpp"
#include "hyperadapt/nn/mode.hpp"
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

/// The generator of a file: sizes and options from its __metadata__.config (the authors' config fields),
/// checked against the parameter shapes; the layer count from layer_id_embeddings.
hyperformer_hypernet_config file_config(const golden& g) {
    hyperformer_hypernet_config c;
    // HyperFormer++ (AdapterLayersOneHyperNetController): efficient_unique_hyper_net; HyperFormer
    // (AdapterLayersHyperNetController): unique_hyper_net.
    const auto cfg = g.meta_json("config");
    if (cfg.value("efficient_unique_hyper_net", false))
        c.variant = hyperformer_variant::hyperformer_pp;
    else if (cfg.value("unique_hyper_net", false))
        c.variant = hyperformer_variant::hyperformer;
    else
        g.fail("__metadata__ config sets neither efficient_unique_hyper_net nor unique_hyper_net");
    if ((c.variant == hyperformer_variant::hyperformer_pp) != g.has("param.adapters_block_type.weight"))
        g.fail("__metadata__ config and param.adapters_block_type.weight disagree on the HyperFormer variant");
    c.task_embedding = g.meta_field<std::size_t>("config", "task_embedding_dim");
    c.hidden = g.meta_field<std::size_t>("config", "task_hidden_dim");
    c.projection = g.meta_field<std::size_t>("config", "projected_task_embedding_dim");
    c.features = g.meta_field<std::size_t>("config", "input_dim");
    c.reduction_factor = g.meta_field<std::size_t>("config", "reduction_factor");
    c.pre_layer_norm = g.meta_field<bool>("config", "add_layer_norm_before_adapter");
    c.post_layer_norm = g.meta_field<bool>("config", "add_layer_norm_after_adapter");
    c.task_layer_norm = g.meta_field<bool>("config", "unique_hyper_net_layer_norm");
    c.layers = g.dim("param.layer_id_embeddings.weight", 0);
    if (g.has_meta("call") && g.meta_mentions("call", "num_layers=") &&
        g.meta_option_number({"call"}, "num_layers") != static_cast<double>(c.layers))
        g.fail("__metadata__ key 'call' num_layers disagrees with param.layer_id_embeddings.weight");
    if (g.meta_mentions("maths", "eps "))
        c.layer_norm_eps = g.meta_number_after("maths", "eps ");
    else  // the adapter files state the adapter's norm only; the generator's is its hard-coded LayerNorm eps
        BOOST_TEST_MESSAGE(g.name() << ": the maths line has no generator eps; the authors' hard-coded "
                                    << c.layer_norm_eps);
    return c;
}

// ---- helpers -----------------------------------------------------------------------------------------

/// The generated tensors by the files' names ("down.weight", ...).
template <class B>
tensor<B, double>& member(hyperformer_adapter_weights<B, double>& w, const std::string& n) {
    if (n == "down.weight") return w.down_weight;
    if (n == "down.bias") return w.down_bias;
    if (n == "up.weight") return w.up_weight;
    if (n == "up.bias") return w.up_bias;
    if (n == "pre_norm.weight") return w.pre_norm_weight;
    if (n == "pre_norm.bias") return w.pre_norm_bias;
    if (n == "post_norm.weight") return w.post_norm_weight;
    return w.post_norm_bias;
}
const std::vector<std::string> field_names = {"down.weight",     "down.bias",     "up.weight",        "up.bias",
                                              "pre_norm.weight", "pre_norm.bias", "post_norm.weight", "post_norm.bias"};

/// parts[l] is (T, per); the file stacks them as [T, L, ...]: row t of layer l goes to [t, l].
template <class B>
tensor<B, double> stack_task_major(B& b, const std::vector<tensor<B, double>>& parts, shape s) {
    const std::size_t layers = parts.size(), tasks = parts[0].shape()[0], per = parts[0].size() / tasks;
    std::vector<double> all(tasks * layers * per);
    for (std::size_t l = 0; l < layers; ++l) {
        const auto h = parts[l].to_host();
        for (std::size_t t = 0; t < tasks; ++t)
            std::copy_n(h.begin() + static_cast<std::ptrdiff_t>(t * per), per,
                        all.begin() + static_cast<std::ptrdiff_t>((t * layers + l) * per));
    }
    return tensor<B, double>::from_host(b, s, all);
}

/// The inverse: rows [t, l] of a [T, L, ...] tensor as a (T, per) tensor.
template <class B>
tensor<B, double> layer_rows(B& b, const tensor<B, double>& t, std::size_t l, std::size_t tasks, std::size_t layers) {
    const std::size_t per = t.size() / (tasks * layers);
    const auto h = t.to_host();
    std::vector<double> out(tasks * per);
    for (std::size_t k = 0; k < tasks; ++k)
        std::copy_n(h.begin() + static_cast<std::ptrdiff_t>((k * layers + l) * per), per,
                    out.begin() + static_cast<std::ptrdiff_t>(k * per));
    return tensor<B, double>::from_host(b, {tasks, per}, out);
}

/// Rows [l * n, (l + 1) * n) of a tensor stacked over layers, with the per-layer shape `s`.
template <class B>
tensor<B, double> layer_slice(const tensor<B, double>& t, std::size_t l, shape s) {
    const std::size_t per = s.size();
    return t.reshaped({t.size() / per, per}).row_range(l, 1).reshaped(s);
}

/// Copies `parts` one after another into a flat tensor.
template <class B, class T>
tensor<B, T> concat(B& b, const std::vector<tensor<B, T>>& parts) {
    std::vector<T> all;
    for (const auto& p : parts) {
        const auto h = p.to_host();
        all.insert(all.end(), h.begin(), h.end());
    }
    return tensor<B, T>::from_host(b, {all.size()}, all);
}

/// Splits a flat tensor into pieces shaped like `like` (clones, so each piece owns its memory).
template <class B>
std::vector<tensor<B, double>> split(B& b, const tensor<B, double>& flat, const std::vector<tensor<B, double>>& like) {
    const auto h = flat.to_host();
    std::vector<tensor<B, double>> out;
    std::size_t at = 0;
    for (const auto& t : like) {
        out.push_back(tensor<B, double>::from_host(
            b, t.shape(), std::vector<double>(h.begin() + static_cast<std::ptrdiff_t>(at),
                                              h.begin() + static_cast<std::ptrdiff_t>(at + t.size()))));
        at += t.size();
    }
    return out;
}

/// The non-empty generated tensors, in field_names order.
template <class B>
std::vector<tensor<B, double>> present(hyperformer_adapter_weights<B, double>& w) {
    std::vector<tensor<B, double>> v;
    for (const auto& n : field_names)
        if (!member(w, n).empty()) v.push_back(member(w, n));
    return v;
}

/// Fills the non-empty fields of `w` from `pieces` (in present() order).
template <class B>
hyperformer_adapter_weights<B, double> assign(const hyperformer_adapter_weights<B, double>& like,
                                              const std::vector<tensor<B, double>>& pieces) {
    hyperformer_adapter_weights<B, double> w = like, out;
    std::size_t k = 0;
    for (const auto& n : field_names)
        if (!member(w, n).empty()) member(out, n) = pieces.at(k++);
    return out;
}

/// Gives every parameter of `m` random values so no gradient check passes by symmetry.
template <class B, class M>
void randomize(B& b, M& m, std::uint64_t seed, double scale = 0.5) {
    m.visit_parameters([&](const std::string&, parameter<B, double>& p) {
        b.fill_uniform(p.size(), seed++, 0, -scale, scale, p.value.data());
    });
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

constexpr hyperformer_block blocks[] = {hyperformer_block::feed_forward, hyperformer_block::self_attention};
const char* block_name(hyperformer_block p) {
    return p == hyperformer_block::feed_forward ? "feed_forward" : "self_attention";
}

/// One generator reference file: every output.* and grad.* from the file's inputs and parameters.
template <class B>
void check_generator_file(const golden& g) {
    B b;
    const auto& r = g.reader();
    const auto cfg = file_config(g);
    comparison cmp(label<B>(g));
    hyperformer_hypernet<B, double> gen(b, cfg);
    load_parameters(b, r, gen);
    auto z = load(b, r, "input.task_embeddings");  // (T, D): the tasks form the batch
    const std::size_t tasks = g.dim("input.task_embeddings", 0), layers = cfg.layers;
    using C = typename hyperformer_hypernet<B, double>::context;
    std::vector<std::vector<C>> ctx(layers, std::vector<C>(2));
    using WS = hyperformer_adapter_weights<B, double>;
    std::vector<std::vector<WS>> w(layers, std::vector<WS>(2));
    for (std::size_t l = 0; l < layers; ++l)
        for (auto p : blocks) {
            const auto k = static_cast<std::size_t>(p);
            w[l][k] = gen.forward(z, l, p, ctx[l][k]);
        }
    for (auto p : blocks)
        for (const auto& n : field_names) {
            const std::string key = std::string(block_name(p)) + "." + n;
            const bool in_file = r.find("output." + key) != nullptr;
            BOOST_TEST(in_file == !member(w[0][static_cast<std::size_t>(p)], n).empty(), g.name() << " " << key);
            if (!in_file) continue;
            std::vector<tensor<B, double>> parts;
            for (std::size_t l = 0; l < layers; ++l) parts.push_back(member(w[l][static_cast<std::size_t>(p)], n));
            cmp.check(r, "output." + key, stack_task_major(b, parts, r.at("output." + key).to_shape()));
        }
    auto dz = tensor<B, double>::zeros(b, z.shape());
    for (std::size_t l = 0; l < layers; ++l)
        for (auto p : blocks) {
            hyperformer_adapter_weights<B, double> dw;
            for (const auto& n : field_names) {
                const std::string key = "probe.R." + std::string(block_name(p)) + "." + n;
                if (r.find(key) != nullptr) member(dw, n) = layer_rows(b, load(b, r, key), l, tasks, layers);
            }
            auto gr = gen.backward(dw, ctx[l][static_cast<std::size_t>(p)]);
            b.axpy(gr.size(), 1.0, gr.data(), dz.data());
        }
    cmp.check(r, "grad.input.task_embeddings", dz);
    cmp.template check_parameter_gradients<B>(r, gen);
    BOOST_TEST(cmp.tensors == g.output_and_gradient_count(), g.name());
}

}  // namespace

// ==== (a) agreement with the authors' code ============================================================

BOOST_AUTO_TEST_CASE(reference_copies_match_the_shared_data) {
    check_repository_copies({"hyperformer"});
}

// HyperFormer and HyperFormer++ generators, with or without the pre-norm: the variant and options from each
// file's config.
BOOST_AUTO_TEST_CASE_TEMPLATE(generators_match_reference, B, layer_backends) {
    for (const auto& path : module_files({"hyperformer_generator", "hyperformerpp_generator"})) {
        const golden g(path);
        g.require_meta_mentions("source", "HyperNetController.forward");
        check_generator_file<B>(g);
    }
}

// The file runs one task per batch (HyperFormer's batches are single-task). Both ways of feeding the
// adapter must reproduce it: one weight set for the whole batch (condition (1, D)), and the task embedding
// repeated per example (condition (batch, D)), whose condition gradient is then summed over the rows.
BOOST_AUTO_TEST_CASE_TEMPLATE(generator_and_adapter_match_reference, B, layer_backends) {
    for (const auto& path : module_files({"hyperformer_adapter", "hyperformerpp_adapter"}))
        for (bool shared_weights : {true, false}) {
            B b;
            const golden g(path);
            g.require_meta_mentions("source", "::MetaLayersAdapterController.forward");
            const auto& r = g.reader();
            comparison cmp(label<B>(g) + (shared_weights ? " shared weights" : " per-example weights"));
            const auto cfg = file_config(g);
            const auto act = g.meta_field<std::string>("config", "non_linearity");
            if (act != "gelu_new") g.fail("__metadata__ config non_linearity '" + act + "': only gelu_new is implemented");
            // ff_inputs / sa_inputs [n_layers, B, L, d]; the adapter's norm eps from the maths line
            // (F.layer_norm's default, "eps=1e-5").
            const std::size_t layers = g.dim("input.ff_inputs", 0), nb = g.dim("input.ff_inputs", 1),
                              len = g.dim("input.ff_inputs", 2), d = g.dim("input.ff_inputs", 3),
                              dz = g.dim("input.task_embedding", 0);
            if (layers > cfg.layers) g.fail("input.ff_inputs has more layers than param.layer_id_embeddings.weight");
            hyperformer_hypernet<B, double> gen(b, cfg);
            hyperformer_adapter<B, double> adapter(b, d, cfg.bottleneck(), "",
                                                   {.pre_layer_norm = cfg.pre_layer_norm,
                                                    .post_layer_norm = cfg.post_layer_norm,
                                                    .layer_norm_eps = g.meta_option_number({"maths"}, "eps")});
            load_parameters(b, r, gen);
            auto z1 = load(b, r, "input.task_embedding").reshaped({1, dz});
            auto z = shared_weights ? z1 : concat(b, std::vector<tensor<B, double>>(nb, z1)).reshaped({nb, dz});
            const std::string inputs[] = {"input.ff_inputs", "input.sa_inputs"};
            const std::string outputs[] = {"feed_forward", "self_attention"};
            using GC = typename hyperformer_hypernet<B, double>::context;
            using AC = typename hyperformer_adapter<B, double>::context;
            std::vector<GC> gctx(2 * layers);
            std::vector<AC> actx(2 * layers);
            auto dz_all = tensor<B, double>::zeros(b, z.shape());
            for (auto p : blocks) {
                const auto k = static_cast<std::size_t>(p);
                auto y = load(b, r, inputs[k]);
                auto probe = load(b, r, "probe.R." + outputs[k]);
                std::vector<tensor<B, double>> out, dy;
                for (std::size_t l = 0; l < layers; ++l)
                    out.push_back(adapter.forward(layer_slice(y, l, {nb, len, d}),
                                                  gen.forward(z, l, p, gctx[k * layers + l]), actx[k * layers + l]));
                for (std::size_t l = 0; l < layers; ++l) {
                    auto ga = adapter.backward(layer_slice(probe, l, {nb, len, d}), actx[k * layers + l]);
                    dy.push_back(ga.input);
                    auto gr = gen.backward(ga.weights, gctx[k * layers + l]);
                    b.axpy(gr.size(), 1.0, gr.data(), dz_all.data());
                }
                cmp.check(r, "output." + outputs[k], concat(b, out).reshaped({layers, nb, len, d}));
                cmp.check(r, "grad." + inputs[k], concat(b, dy).reshaped({layers, nb, len, d}));
            }
            auto dz_sum = tensor<B, double>::zeros(b, {dz});
            b.accumulate_column_sums(z.shape()[0], dz, dz_all.data(), dz_sum.data());
            cmp.check(r, "grad.input.task_embedding", dz_sum);
            cmp.template check_parameter_gradients<B>(r, gen);
            BOOST_TEST(cmp.tensors == g.output_and_gradient_count(), g.name());
        }
}

// ==== (b) finite-difference gradient checks ==========================================================

BOOST_AUTO_TEST_CASE_TEMPLATE(adapter_gradients, B, layer_backends) {
    B b;
    const std::size_t d = 6, rr = 3, nb = 3;
    for (bool pre : {false, true})
        for (bool post : {false, true})
            for (bool rank3 : {true, false})
                for (bool shared_weights : {false, true}) {
                    hyperformer_adapter<B, double> m(b, d, rr, "adapter", {.pre_layer_norm = pre, .post_layer_norm = post});
                    auto y = rank3 ? random_tensor<B, double>(b, {nb, 4, d}, 1) : random_tensor<B, double>(b, {nb, d}, 1);
                    const std::size_t g = shared_weights ? 1 : nb;
                    hyperformer_adapter_weights<B, double> w;
                    w.down_weight = random_tensor<B, double>(b, {g, rr * d}, 2);
                    w.down_bias = random_tensor<B, double>(b, {g, rr}, 3);
                    w.up_weight = random_tensor<B, double>(b, {g, d * rr}, 4);
                    w.up_bias = random_tensor<B, double>(b, {g, d}, 5);
                    if (pre) {
                        w.pre_norm_weight = random_tensor<B, double>(b, {g, d}, 6, 0.5, 1.5);
                        w.pre_norm_bias = random_tensor<B, double>(b, {g, d}, 7);
                    }
                    if (post) {
                        w.post_norm_weight = random_tensor<B, double>(b, {g, d}, 8, 0.5, 1.5);
                        w.post_norm_bias = random_tensor<B, double>(b, {g, d}, 9);
                    }
                    std::vector<testing::gradcheck_input<B>> in{{"y", &y}};
                    for (const auto& n : field_names)
                        if (!member(w, n).empty()) in.push_back({n, &member(w, n)});
                    typename hyperformer_adapter<B, double>::context ctx;
                    auto r = testing::check_gradients<B>(
                        b, in, [&](auto&& f) { m.visit_parameters(f); },
                        [&] {
                            ctx = {};
                            return m.forward(y, w, ctx);
                        },
                        [&](const tensor<B, double>& dy) {
                            auto gr = m.backward(dy, ctx);
                            std::vector<tensor<B, double>> out{gr.input};
                            for (auto& t : present(gr.weights)) out.push_back(t);
                            return out;
                        });
                    BOOST_TEST(r.ok, "pre " << pre << ", post " << post << ", rank 3 " << rank3 << ", shared "
                                            << shared_weights << ":\n"
                                            << r.report);
                }
}

// The generator alone: every generated tensor of both block types and both layers enters the loss, so the
// layer and block-type embeddings get gradients in every row.
BOOST_AUTO_TEST_CASE_TEMPLATE(hypernet_gradients, B, layer_backends) {
    B b;
    for (auto variant : {hyperformer_variant::hyperformer, hyperformer_variant::hyperformer_pp})
        for (bool task_ln : {true, false}) {
            hyperformer_hypernet_config cfg{.variant = variant, .task_embedding = 4, .layers = 2, .hidden = 7,
                                            .projection = 5, .features = 6, .reduction_factor = 2,
                                            .pre_layer_norm = true, .post_layer_norm = true, .task_layer_norm = task_ln};
            hyperformer_hypernet<B, double> gen(b, cfg, "gen");
            randomize(b, gen, 61);
            auto z = random_tensor<B, double>(b, {3, 4}, 1);
            std::vector<typename hyperformer_hypernet<B, double>::context> ctx(4);
            std::vector<hyperformer_adapter_weights<B, double>> w(4);
            auto r = testing::check_gradients<B>(
                b, {{"condition", &z}}, [&](auto&& f) { gen.visit_parameters(f); },
                [&] {
                    std::vector<tensor<B, double>> all;
                    for (std::size_t l = 0; l < 2; ++l)
                        for (auto p : blocks) {
                            const std::size_t k = 2 * l + static_cast<std::size_t>(p);
                            w[k] = gen.forward(z, l, p, ctx[k]);
                            for (auto& t : present(w[k])) all.push_back(t);
                        }
                    return concat(b, all);
                },
                [&](const tensor<B, double>& dy) {
                    std::vector<tensor<B, double>> like;
                    for (auto& x : w)
                        for (auto& t : present(x)) like.push_back(t);
                    const auto pieces = split(b, dy, like);
                    auto dz = tensor<B, double>::zeros(b, z.shape());
                    std::size_t at = 0;
                    for (std::size_t k = 0; k < 4; ++k) {
                        const std::size_t n = present(w[k]).size();
                        const auto first = pieces.begin() + static_cast<std::ptrdiff_t>(at);
                        const std::vector<tensor<B, double>> mine(first, first + static_cast<std::ptrdiff_t>(n));
                        auto g = gen.backward(assign(w[k], mine), ctx[k]);
                        at += n;
                        b.axpy(dz.size(), 1.0, g.data(), dz.data());
                    }
                    return std::vector<tensor<B, double>>{dz};
                });
            BOOST_TEST(r.ok, "variant " << static_cast<int>(variant) << ", task LayerNorm " << task_ln << ":\n" << r.report);
        }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(hypernet_with_adapter_gradients, B, layer_backends) {
    B b;
    for (auto variant : {hyperformer_variant::hyperformer, hyperformer_variant::hyperformer_pp}) {
        hyperformer_hypernet_config cfg{.variant = variant, .task_embedding = 4, .layers = 2, .hidden = 7,
                                        .projection = 5, .features = 6, .reduction_factor = 3,
                                        .pre_layer_norm = true, .post_layer_norm = true};
        hyperformer_hypernet<B, double> gen(b, cfg, "gen");
        hyperformer_adapter<B, double> adapter(b, cfg, "adapter");
        randomize(b, gen, 71);
        auto z = random_tensor<B, double>(b, {3, 4}, 1);
        auto y = random_tensor<B, double>(b, {3, 2, 6}, 2);
        std::vector<typename hyperformer_hypernet<B, double>::context> gctx(4);
        std::vector<typename hyperformer_adapter<B, double>::context> actx(4);
        auto r = testing::check_gradients<B>(
            b, {{"condition", &z}, {"y", &y}}, [&](auto&& f) { gen.visit_parameters(f); },
            [&] {
                std::vector<tensor<B, double>> outs;
                for (std::size_t k = 0; k < 4; ++k)
                    outs.push_back(adapter.forward(y, gen.forward(z, k / 2, blocks[k % 2], gctx[k]), actx[k]));
                return concat(b, outs);
            },
            [&](const tensor<B, double>& dout) {
                auto dz = tensor<B, double>::zeros(b, z.shape());
                auto dy = tensor<B, double>::zeros(b, y.shape());
                for (std::size_t k = 0; k < 4; ++k) {
                    auto ga = adapter.backward(layer_slice(dout, k, y.shape()).clone(), actx[k]);
                    b.axpy(dy.size(), 1.0, ga.input.data(), dy.data());
                    auto g = gen.backward(ga.weights, gctx[k]);
                    b.axpy(dz.size(), 1.0, g.data(), dz.data());
                }
                return std::vector<tensor<B, double>>{dz, dy};
            });
        BOOST_TEST(r.ok, "variant " << static_cast<int>(variant) << ":\n" << r.report);
    }
}

// ==== (c) float against double, errors, init and sizes ===============================================

BOOST_AUTO_TEST_CASE_TEMPLATE(float_forward_matches_double, B, layer_backends) {
    B b;
    for (auto variant : {hyperformer_variant::hyperformer, hyperformer_variant::hyperformer_pp}) {
        hyperformer_hypernet_config cfg{.variant = variant, .task_embedding = 8, .layers = 3, .hidden = 16,
                                        .projection = 8, .features = 32, .reduction_factor = 4,
                                        .pre_layer_norm = true, .post_layer_norm = true};
        hyperformer_hypernet<B, double> gd(b, cfg, "gen");
        hyperformer_hypernet<B, float> gf(b, cfg, "gen");
        randomize(b, gd, 81);
        hyperadapt::test::copy_parameters(gd, gf);
        hyperformer_adapter<B, double> ad(b, cfg, "adapter");
        hyperformer_adapter<B, float> af(b, cfg, "adapter");
        auto zf = random_tensor<B, float>(b, {4, 8}, 1);
        auto yf = random_tensor<B, float>(b, {4, 5, 32}, 2);
        auto zd = hyperadapt::test::to_double(zf);
        auto yd = hyperadapt::test::to_double(yf);
        typename hyperformer_hypernet<B, double>::context gcd;
        typename hyperformer_hypernet<B, float>::context gcf;
        typename hyperformer_adapter<B, double>::context acd;
        typename hyperformer_adapter<B, float>::context acf;
        auto wd = gd.forward(zd, 2, hyperformer_block::self_attention, gcd);
        auto wf = gf.forward(zf, 2, hyperformer_block::self_attention, gcf);
        for (const auto& n : field_names) {
            auto& td = member(wd, n);
            if (td.empty()) continue;
            const tensor<B, float>* tf = nullptr;
            if (n == "down.weight") tf = &wf.down_weight;
            if (n == "down.bias") tf = &wf.down_bias;
            if (n == "up.weight") tf = &wf.up_weight;
            if (n == "up.bias") tf = &wf.up_bias;
            if (n == "pre_norm.weight") tf = &wf.pre_norm_weight;
            if (n == "pre_norm.bias") tf = &wf.pre_norm_bias;
            if (n == "post_norm.weight") tf = &wf.post_norm_weight;
            if (n == "post_norm.bias") tf = &wf.post_norm_bias;
            const auto hd = td.to_host(), hf = hyperadapt::test::to_double(*tf).to_host();
            double scale = 0;
            for (double v : hd) scale = std::max(scale, std::abs(v));
            BOOST_TEST(hyperadapt::test::max_abs_diff(hd, hf) <= 1e-5 * scale, n);
        }
        const auto od = ad.forward(yd, wd, acd).to_host();
        const auto of = hyperadapt::test::to_double(af.forward(yf, wf, acf)).to_host();
        double scale = 0;
        for (double v : od) scale = std::max(scale, std::abs(v));
        BOOST_TEST(hyperadapt::test::max_abs_diff(od, of) <= 1e-5 * scale,
                   "adapter output, variant " << static_cast<int>(variant));
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(shape_errors_name_the_layer, B, layer_backends) {
    B b;
    hyperformer_hypernet_config cfg{.variant = hyperformer_variant::hyperformer_pp, .task_embedding = 4, .layers = 2,
                                    .hidden = 7, .projection = 5, .features = 6, .reduction_factor = 3};
    hyperformer_hypernet<B, double> gen(b, cfg, "encoder.hypernet");
    hyperformer_adapter<B, double> adapter(b, cfg, "encoder.block.0.layer.1.adapter");
    typename hyperformer_hypernet<B, double>::context gctx;
    typename hyperformer_adapter<B, double>::context actx;
    const auto ff = hyperformer_block::feed_forward;
    expect_shape_error([&] { (void)gen.forward(random_tensor<B, double>(b, {3, 5}, 1), 0, ff, gctx); },
                       "encoder.hypernet");
    expect_shape_error([&] { (void)gen.forward(random_tensor<B, double>(b, {4}, 1), 0, ff, gctx); },
                       "encoder.hypernet");
    BOOST_CHECK_THROW((void)gen.forward(random_tensor<B, double>(b, {3, 4}, 1), 2, ff, gctx), error);
    auto w3 = gen.forward(random_tensor<B, double>(b, {3, 4}, 1), 1, hyperformer_block::feed_forward, gctx);
    auto w2 = gen.forward(random_tensor<B, double>(b, {2, 4}, 1), 1, hyperformer_block::feed_forward, gctx);
    const std::string a = "encoder.block.0.layer.1.adapter";
    expect_shape_error([&] { (void)adapter.forward(random_tensor<B, double>(b, {3, 5, 7}, 2), w3, actx); }, a);
    expect_shape_error([&] { (void)adapter.forward(random_tensor<B, double>(b, {3, 5, 6}, 2), w2, actx); }, a);
    auto no_post = w3;
    no_post.post_norm_bias = {};
    expect_shape_error([&] { (void)adapter.forward(random_tensor<B, double>(b, {3, 5, 6}, 2), no_post, actx); }, a);
    auto mixed = w3;
    mixed.up_bias = w2.up_bias;
    expect_shape_error([&] { (void)adapter.forward(random_tensor<B, double>(b, {3, 5, 6}, 2), mixed, actx); }, a);
    auto out = adapter.forward(random_tensor<B, double>(b, {3, 5, 6}, 2), w3, actx);
    expect_shape_error([&] { (void)adapter.backward(random_tensor<B, double>(b, {3, 4, 6}, 3), actx); }, a);
    // backward needs a forward
    typename hyperformer_adapter<B, double>::context fresh;
    BOOST_CHECK_THROW((void)adapter.backward(out, fresh), error);
    BOOST_CHECK_THROW((hyperformer_hypernet<B, double>(b, hyperformer_config(16, 12, 32), "tiny")), config_error);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(published_sizes_and_init, B, layer_backends) {
    B b;
    // spec §3.3: per stack of T5-base (d 768, 12 layers, r 24). HyperFormer++: 2,581,464, so encoder + decoder
    // + 8 task embeddings (512) + T5-base's layer norms (47,616) = 5,211,056 = the paper's 5.21M; HyperFormer
    // (the code's unique_hyper_net): 5,120,624 per stack, 10.29M in all.
    const std::pair<hyperformer_hypernet_config, std::size_t> cases[] = {{hyperformerpp_config(), 2581464u},
                                                                         {hyperformer_config(), 5120624u}};
    for (const auto& [cfg, want] : cases) {
        BOOST_TEST(cfg.task_embedding == 64u);
        BOOST_TEST(cfg.hidden == 128u);
        BOOST_TEST(cfg.projection == 64u);
        BOOST_TEST(cfg.bottleneck() == 24u);
        BOOST_TEST((cfg.post_layer_norm && !cfg.pre_layer_norm));
        hyperformer_hypernet<B, float> gen(b, cfg);
        rng_stream rng(5);
        gen.initialize(rng);
        std::size_t n = 0;
        gen.visit_parameters([&](const std::string& name, parameter<B, float>& p) {
            n += p.size();
            const auto h = p.value.to_host();
            double sum = 0, sq = 0;
            for (float v : h) {
                sum += v;
                sq += double(v) * v;
            }
            const double mean = sum / double(h.size()), sd = std::sqrt(sq / double(h.size()) - mean * mean);
            const bool is_bias = name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
            if (name == "LayerNorm.weight") BOOST_TEST((mean == 1.0 && sd == 0.0), name);
            else if (is_bias) BOOST_TEST(sq == 0.0, name);  // linear_layer zeroes every bias; LayerNorm bias 0
            else if (name.find("embeddings") != std::string::npos || name.find("block_type") != std::string::npos)
                BOOST_TEST(std::abs(sd - 1.0) < 0.15, name << " sd " << sd);  // nn.Embedding: N(0, 1)
            else if (h.size() >= 1000)
                BOOST_TEST(std::abs(sd - 1e-2) < 1e-3, name << " sd " << sd);  // linear_layer: N(0, 1e-2)
        });
        BOOST_TEST(n == want);
    }
}
