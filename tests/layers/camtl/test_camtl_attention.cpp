#define BOOST_TEST_MODULE layers_camtl_attention
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyperadapt/io/safetensors.hpp"
#include "hyperadapt/layers/camtl/block_diagonal_bias.hpp"
#include "hyperadapt/layers/camtl/conditional_attention.hpp"
#include "hyperadapt/layers/camtl/conditional_encoder.hpp"
#include "hyperadapt/layers/camtl/conditional_encoder_layer.hpp"
#include "hyperadapt/nn/parameters.hpp"
#include "hyperadapt/testing/gradcheck.hpp"
#include "support/backends.hpp"
#include "support/golden_file.hpp"
#include "support/host_round_trips.hpp"
#include "support/reference_data.hpp"
#include "support/max_keeping_nan.hpp"

using namespace hyperadapt;
using hyperadapt::test::layer_backends;
using hyperadapt::test::random_tensor;

namespace {

// ---- reference files ------------------------------------------------------------------------------------
// The authors' modules evaluated in float64: every golden file of a module in reference_dir() (tests/data/reference,
// or HYPERADAPT_REFERENCE_DIR; support/golden_file.hpp), with every size and option taken from the file. A tensor
// agrees when max |ours - theirs| <= 1e-9 * max |theirs|; attention key-bias gradients are exactly zero in exact
// arithmetic (rounding noise in the file), so they get an absolute floor instead.
using test::reference::golden;
using test::reference::module_files;
constexpr double relative_tolerance = 1e-9;
constexpr double key_bias_floor = 1e-10;

template <class B>
class reference_case {
public:
    reference_case(B& b, const std::filesystem::path& path)
        : b_(b), file_(path), name_(file_.name() + " [" + B::gemm_provider::name + "]") {}

    [[nodiscard]] const std::string& name() const { return name_; }
    [[nodiscard]] const golden& file() const { return file_; }
    [[nodiscard]] bool has(const std::string& t) const { return file_.has(t); }
    std::vector<double> values(const std::string& t) const { return file_.values(t); }
    tensor<B, double> get(const std::string& t) const {
        const auto& e = file_.reader().at(t);
        return tensor<B, double>::from_host(b_, e.to_shape(), file_.reader().read<double>(e));
    }

    /// Task ids (I64 in the file) as the int32 tensor the layers take.
    tensor<B, std::int32_t> ids(const std::string& t) const {
        const auto v = file_.ints(t);
        std::vector<std::int32_t> out(v.begin(), v.end());
        return tensor<B, std::int32_t>::from_host(b_, {out.size()}, out);
    }
    /// The task-id input: the layers' argument is task_id, the encoders' task_type.
    [[nodiscard]] std::string ids_name() const {
        if (has("input.task_id")) return "input.task_id";
        if (has("input.task_type")) return "input.task_type";
        file_.fail("neither input.task_id nor input.task_type is in the file");
    }
    /// The file's one output (layers and encoders return one tensor).
    [[nodiscard]] std::string single_output() const {
        const auto outputs = file_.names_with_prefix("output.");
        if (outputs.size() != 1) file_.fail("expected one output.* tensor, found " + std::to_string(outputs.size()));
        return outputs.front();
    }

    /// The layer sizes and options of the file's __metadata__.config, checked against input.hidden_states; the
    /// conditional layer norms condition the bias too when the file has ln_bias_modulation parameters.
    camtl_layer_config layer_config() const {
        camtl_layer_config c;
        c.seq_len = file_.meta_field<std::size_t>("config", "max_seq_length");
        c.hidden = file_.meta_field<std::size_t>("config", "hidden_size");
        c.heads = file_.meta_field<std::size_t>("config", "num_attention_heads");
        c.intermediate = file_.meta_field<std::size_t>("config", "intermediate_size");
        c.layer_norm_eps = file_.meta_field<double>("config", "layer_norm_eps");
        c.attention_dropout = file_.meta_field<double>("config", "attention_probs_dropout_prob");
        c.hidden_dropout = file_.meta_field<double>("config", "hidden_dropout_prob");
        const auto act = file_.meta_field<std::string>("config", "hidden_act");
        if (act != "gelu") file_.fail("__metadata__ config hidden_act '" + act + "': only gelu is implemented");
        file_.require_shape("input.hidden_states", {file_.dim("input.hidden_states", 0), c.seq_len, c.hidden},
                            "config max_seq_length and hidden_size");
        for (const auto& n : file_.names_with_prefix("param."))
            if (n.find("ln_bias_modulation") != std::string::npos) c.norm_variant = cln_variant::gain_and_bias;
        // The authors' ConditionalLayerNorm reads the first example of each task (the default, first_of_task).
        return c;
    }
    std::size_t num_layers() const { return file_.meta_field<std::size_t>("config", "num_hidden_layers"); }

    /// The padding mask from input.padding_mask; checks that input.attention_mask is (1 - mask) * -10000, and that
    /// every example has a real token (an all-padding row is where the two mask conventions would differ).
    attention_mask<B> mask() const {
        const auto pm = file_.ints("input.padding_mask");
        const auto additive = values("input.attention_mask");
        BOOST_REQUIRE_EQUAL(additive.size(), pm.size());
        const std::size_t nb = file_.dim("input.padding_mask", 0), seq = file_.dim("input.padding_mask", 1);
        std::vector<std::uint8_t> m(pm.size());
        for (std::size_t i = 0; i < pm.size(); ++i) {
            m[i] = pm[i] != 0;
            BOOST_TEST(additive[i] == (1.0 - static_cast<double>(pm[i])) * -10000.0);
        }
        for (std::size_t bi = 0; bi < nb; ++bi)
            BOOST_TEST_REQUIRE(std::any_of(m.begin() + static_cast<std::ptrdiff_t>(bi * seq),
                                           m.begin() + static_cast<std::ptrdiff_t>((bi + 1) * seq), [](auto v) { return v; }),
                               name_ << ": example " << bi << " has no real token");
        return attention_mask<B>::from_host(b_, {nb, seq}, m);
    }

    /// Loads "param.<n>" into the layer parameter named prefix + "." + n (or via `rename`, from the layer's name
    /// to the file's), and requires that every parameter of the layer and every param.* of the file is used.
    template <class L>
    void load_parameters(L& layer, const std::string& prefix, const std::map<std::string, std::string>& rename = {}) {
        std::set<std::string> used;
        layer.visit_parameters([&](const std::string& n, parameter<B, double>& p) {
            const std::string key = file_key(n, prefix, rename, "param.");
            BOOST_TEST_REQUIRE(has(key), name_ << ": no tensor " << key << " for parameter " << n);
            const auto& e = file_.reader().at(key);
            BOOST_TEST_REQUIRE((e.to_shape() == p.value.shape()), name_ << ": " << key << " has shape " << e.shape_str()
                                                                        << ", parameter " << n << " has "
                                                                        << p.value.shape().str());
            const auto v = file_.reader().read<double>(e);
            b_.copy_from_host(v.data(), p.value.data(), v.size());
            used.insert(key);
        });
        for (const auto& e : file_.reader().entries())
            if (e.name.rfind("param.", 0) == 0 && !rename_target(rename, e.name))
                BOOST_TEST(used.count(e.name) == 1, name_ << ": " << e.name << " was not loaded");
    }

    /// Compares `actual` with the tensor `key`; returns max |a - r| / max |r| (absolute for key-bias gradients).
    double compare(const std::string& key, const std::vector<double>& actual) {
        const auto want = values(key);
        BOOST_TEST_REQUIRE(want.size() == actual.size(), name_ << ": " << key << " has " << want.size()
                                                               << " values, ours " << actual.size());
        ++compared_;
        double scale = 0, diff = 0;
        for (std::size_t i = 0; i < want.size(); ++i) {
            scale = std::max(scale, std::abs(want[i]));
            diff = hyperadapt::test::max_keeping_nan(diff, std::abs(want[i] - actual[i]));
        }
        const bool key_bias = key.find("key.bias") != std::string::npos && key.rfind("grad.", 0) == 0;
        if (key_bias) {
            BOOST_TEST(diff <= key_bias_floor, name_ << ": " << key << " max abs error " << diff);
            worst_key_bias_ = std::max(worst_key_bias_, diff);
            return 0;  // not a relative error: reported separately
        }
        BOOST_TEST_REQUIRE(scale > 0, name_ << ": " << key << " is all zero in the file");
        const double rel = diff / scale;
        BOOST_TEST(rel <= relative_tolerance, name_ << ": " << key << " relative error " << rel);
        worst_ = std::max(worst_, rel);
        return rel;
    }

    /// Compares every trainable parameter's gradient with "grad.param.<n>".
    template <class L>
    void compare_parameter_gradients(L& layer, const std::string& prefix,
                                     const std::map<std::string, std::string>& rename = {}) {
        layer.visit_parameters([&](const std::string& n, parameter<B, double>& p) {
            compare(file_key(n, prefix, rename, "grad.param."), p.grad.to_host());
        });
    }

    [[nodiscard]] std::size_t compared() const { return compared_; }
    [[nodiscard]] double worst() const { return worst_; }

    /// Every output.* and grad.* tensor of the file was compared; logs the worst error.
    void finish() const {
        BOOST_TEST(compared_ == file_.output_and_gradient_count(),
                   name_ << ": compared " << compared_ << " of the file's " << file_.output_and_gradient_count()
                         << " output and gradient tensors");
        BOOST_TEST_MESSAGE(name_ << ": max relative error " << worst_ << " over " << compared_ << " tensors"
                                 << " (key-bias gradients, absolute: " << worst_key_bias_ << ")");
    }

private:
    static std::string file_key(const std::string& n, const std::string& prefix,
                                const std::map<std::string, std::string>& rename, const std::string& kind) {
        if (auto it = rename.find(n); it != rename.end()) return kind + it->second;
        std::string rest = n;
        if (!prefix.empty()) {
            BOOST_TEST_REQUIRE(n.rfind(prefix + ".", 0) == 0, "parameter " << n << " is not under " << prefix);
            rest = n.substr(prefix.size() + 1);
        }
        return kind + rest;
    }
    static bool rename_target(const std::map<std::string, std::string>& rename, const std::string& key) {
        for (const auto& [from, to] : rename)
            if ("param." + to == key) return true;
        return false;
    }

    B& b_;
    golden file_;
    std::string name_;
    double worst_ = 0;
    double worst_key_bias_ = 0;
    std::size_t compared_ = 0;
};

/// Gives every parameter of `l` random values so no gradient check passes by symmetry (A is zero at init).
template <class B, class L>
void randomize(B& b, L& l, std::uint64_t seed, double scale = 0.5) {
    l.visit_parameters([&](const std::string&, parameter<B, double>& p) {
        b.fill_uniform(p.size(), seed++, 0, -scale, scale, p.value.data());
    });
}

template <class B>
attention_mask<B> make_mask(B& b, std::size_t nb, std::size_t seq, const std::vector<std::size_t>& lengths) {
    std::vector<std::uint8_t> m(nb * seq, 0);
    for (std::size_t i = 0; i < nb; ++i)
        for (std::size_t j = 0; j < lengths[i]; ++j) m[i * seq + j] = 1;
    return attention_mask<B>::from_host(b, {nb, seq}, m);
}

/// A mixed-task batch of task conditions: row i is the embedding of task tasks[i] (rows equal within a task).
template <class B>
tensor<B, double> task_conditions(B& b, std::size_t d, const std::vector<std::size_t>& tasks, std::uint64_t seed) {
    const std::size_t nt = *std::max_element(tasks.begin(), tasks.end()) + 1;
    const auto table = random_tensor<B, double>(b, {nt, d}, seed).to_host();
    std::vector<double> z(tasks.size() * d);
    for (std::size_t i = 0; i < tasks.size(); ++i)
        std::copy_n(table.begin() + static_cast<std::ptrdiff_t>(tasks[i] * d), d,
                    z.begin() + static_cast<std::ptrdiff_t>(i * d));
    return tensor<B, double>::from_host(b, {tasks.size(), d}, z);
}


}  // namespace

// ---- geometry -------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(geometry_follows_torch_chunk) {
    // (L, d) -> N, s, chunks, last block; the reference files' geometry lines.
    struct row {
        std::size_t l, d, n, s, chunks, last;
    };
    for (const row& r : {row{8, 32, 4, 2, 4, 2}, row{8, 48, 6, 2, 4, 2}, row{10, 40, 4, 3, 4, 1},
                         row{64, 768, 12, 6, 11, 4}, row{128, 768, 6, 22, 6, 18}, row{128, 1024, 8, 16, 8, 16},
                         row{8, 24, 3, 3, 3, 2}, row{8, 8, 1, 8, 1, 8}, row{4, 40, 10, 1, 4, 1}}) {
        const auto g = cbda_geometry::make(r.l, r.d);
        BOOST_TEST_CONTEXT("L=" << r.l << " d=" << r.d) {
            BOOST_TEST(g.blocks == r.n);
            BOOST_TEST(g.block_size == r.s);
            BOOST_TEST(g.chunks == r.chunks);
            BOOST_TEST(g.last_block == r.last);
        }
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(bias_is_block_diagonal_and_cropped, B, layer_backends) {
    // L=10, d=40: s=3, blocks [0,3) [3,6) [6,9) [9,10); the last block keeps A'[9, 0] only.
    B b;
    block_diagonal_bias<B, double> cbda(b, 10, 40, "l.attention.self");
    randomize(b, cbda, 3);
    auto z = random_tensor<B, double>(b, {2, 40}, 5);
    typename block_diagonal_bias<B, double>::context ctx;
    const auto m = cbda.forward(z, ctx).to_host();
    const auto a = cbda.matrix().value.to_host();
    const auto film = ctx.film.to_host();  // [1 + gamma; beta]
    for (std::size_t bi = 0; bi < 2; ++bi)
        for (std::size_t r = 0; r < 10; ++r)
            for (std::size_t j = 0; j < 10; ++j) {
                const double got = m[(bi * 10 + r) * 10 + j];
                if (r / 3 != j / 3) {
                    BOOST_TEST(got == 0.0);
                    continue;
                }
                const std::size_t c = j % 3;
                const double want = film[bi * 6 + c] * a[r * 3 + c] + film[bi * 6 + 3 + c];
                BOOST_TEST(std::abs(got - want) < 1e-14);
            }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(zero_matrix_gives_beta_down_each_block, B, layer_backends) {
    // At initialisation A = 0: M is beta repeated down each row of each block (spec §1.4).
    B b;
    block_diagonal_bias<B, double> cbda(b, 8, 24, "x");
    rng_stream rng(1);
    cbda.initialize(rng);
    b.fill_uniform(cbda.projection().bias().size(), 9, 0, -1.0, 1.0, cbda.projection().bias().value.data());
    auto z = random_tensor<B, double>(b, {1, 24}, 2);
    typename block_diagonal_bias<B, double>::context ctx;
    const auto m = cbda.forward(z, ctx).to_host();
    const auto film = ctx.film.to_host();
    for (std::size_t r = 0; r < 8; ++r)
        for (std::size_t j = 0; j < 8; ++j)
            BOOST_TEST(m[r * 8 + j] == (r / 3 == j / 3 ? film[3 + j % 3] : 0.0));
}

// ---- reference agreement --------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(reference_copies_match_the_shared_data) {
    test::reference::check_repository_copies({"camtl_cbda", "camtl_self_attention", "camtl_bertlayer9", "camtl_layer9",
                                              "camtl_adapterlayer9", "camtl_encoder"});
}

BOOST_AUTO_TEST_CASE(cbda_matches_reference) {
    for (const auto& path : module_files({"camtl_cbda"})) {
        cpu b;
        reference_case<cpu> ref(b, path);
        const golden& g = ref.file();
        g.require_meta_mentions("source", "::CBDA.forward");
        if (g.meta_option_bool({"options", "call"}, "layer_norm") || g.meta_option_number({"options", "call"}, "num_film_layers") != 1.0)
            g.fail("__metadata__ key 'options': only num_film_layers=1, layer_norm=False is implemented (the encoders')");
        const auto a = ref.get("input.x_to_film");
        const auto z = ref.get("input.x_cond");
        const std::size_t l = g.dim("input.x_to_film", 0), d = g.dim("input.x_cond", 1);
        // The geometry line records the row chunks torch.chunk returned: the library's geometry must agree.
        const std::string& geometry = g.meta("geometry");
        const auto at = geometry.find("sizes [");
        if (at == std::string::npos) g.fail("__metadata__ key 'geometry' does not list the row-chunk sizes");
        const auto sizes = nlohmann::json::parse(geometry.substr(at + 6, geometry.find(']', at) - at - 5))
                               .get<std::vector<std::size_t>>();
        const auto geo = cbda_geometry::make(l, d);
        BOOST_TEST(geo.chunks == sizes.size(), ref.name());
        BOOST_TEST(geo.last_block == sizes.back(), ref.name());
        block_diagonal_bias<cpu, double> cbda(b, l, d, "");
        BOOST_TEST((cbda.matrix().value.shape() == a.shape()));
        // The reference's CBDA takes A as an input (x_to_film); here A is the layer's own parameter.
        ref.load_parameters(cbda.projection(), "cond_block_diag_attn");
        b.copy(a.data(), cbda.matrix().value.data(), a.size());

        typename block_diagonal_bias<cpu, double>::context ctx;
        const auto m = cbda.forward(z, ctx);
        ref.compare("output.M", m.to_host());
        const auto dz = cbda.backward(ref.get("probe.R"), ctx);
        ref.compare("grad.input.x_cond", dz.to_host());
        ref.compare("grad.input.x_to_film", cbda.matrix().grad.to_host());
        ref.compare("grad.param.gb_weights.weight", cbda.projection().weight().grad.to_host());
        ref.compare("grad.param.gb_weights.bias", cbda.projection().bias().grad.to_host());
        ref.finish();
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(conditional_self_attention_matches_reference, B, layer_backends) {
    for (const auto& path : module_files({"camtl_self_attention"})) {
        B b;
        reference_case<B> ref(b, path);
        const golden& g = ref.file();
        g.require_meta_mentions("source", "SelfAttention");
        const std::size_t seq = g.meta_field<std::size_t>("config", "max_seq_length"),
                          d = g.meta_field<std::size_t>("config", "hidden_size");
        g.require_shape("input.hidden_states", {g.dim("input.hidden_states", 0), seq, d},
                        "config max_seq_length and hidden_size");
        const std::string prefix = "bert.encoder.layer.0.attention.self";
        conditional_self_attention<B, double> att(b, seq, d, g.meta_field<std::size_t>("config", "num_attention_heads"),
                                                  g.meta_field<double>("config", "attention_probs_dropout_prob"), prefix);
        ref.load_parameters(att, prefix);
        const auto x = ref.get("input.hidden_states");
        const auto z = ref.get("input.task_embedding");
        typename conditional_self_attention<B, double>::context ctx;
        const auto y = att.forward(x, ref.mask(), z, ctx, run_mode::inference());
        ref.compare("output.context", y.to_host());
        // With output_attentions the file has the probabilities (not in the loss; masked keys: exactly 0 here,
        // exp(-10000) there).
        if (g.has("output.attention_probs"))
            ref.compare("output.attention_probs", ctx.attention.probs.to_host());
        auto gr = att.backward(ref.get("probe.R"), ctx);
        ref.compare("grad.input.hidden_states", gr.input.to_host());
        ref.compare("grad.input.task_embedding", gr.condition.to_host());
        ref.compare_parameter_gradients(att, prefix);
        ref.finish();
    }
}

// ---- gradient checks (double) ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE_TEMPLATE(cbda_gradients, B, layer_backends) {
    B b;
    // Cropped last block (L=10, d=40) and fewer chunks than blocks (L=8, d=48).
    for (auto [l, d] : {std::pair<std::size_t, std::size_t>{10, 40}, {8, 48}, {6, 6}}) {
        BOOST_TEST_CONTEXT("L=" << l << " d=" << d) {
            block_diagonal_bias<B, double> cbda(b, l, d, "encoder.layer.0.attention.self");
            randomize(b, cbda, 11);
            auto z = task_conditions(b, d, {0, 2, 1, 0, 2}, 4);
            auto r = testing::check_layer(cbda, z);
            BOOST_TEST(r.ok, r.report);
            BOOST_TEST(r.checked > 0u);
        }
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(conditional_self_attention_gradients, B, layer_backends) {
    B b;
    const std::size_t nb = 4, seq = 8, d = 16, heads = 2;
    conditional_self_attention<B, double> att(b, seq, d, heads, 0.2, "encoder.layer.0.attention.self");
    randomize(b, att, 21);
    auto x = random_tensor<B, double>(b, {nb, seq, d}, 3);
    auto z = task_conditions(b, d, {1, 0, 1, 2}, 4);
    auto mask = make_mask(b, nb, seq, {8, 5, 3, 8});
    typename conditional_self_attention<B, double>::context ctx;
    auto r = testing::check_gradients<B>(
        b, {{"x", &x}, {"z", &z}}, [&](auto&& f) { att.visit_parameters(f); },
        [&] {
            rng_stream rng(5);
            ctx = {};
            return att.forward(x, mask, z, ctx, run_mode::train(rng));
        },
        [&](const tensor<B, double>& dy) {
            auto g = att.backward(dy, ctx);
            return std::vector<tensor<B, double>>{g.input, g.condition};
        },
        {.known_zero_gradients = {"parameter 'encoder.layer.0.attention.self.key.bias'"}});
    BOOST_TEST(r.ok, r.report);
}

// ---- mixed-task batches ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE_TEMPLATE(each_example_is_conditioned_on_its_own_task, B, layer_backends) {
    // A batch mixing tasks gives every example exactly what it gets alone.
    B b;
    const std::size_t seq = 8, d = 24;
    conditional_self_attention<B, double> att(b, seq, d, 2, 0.0, "a");
    randomize(b, att, 31);
    const std::vector<std::size_t> tasks{2, 0, 1, 0};
    auto x = random_tensor<B, double>(b, {4, seq, d}, 3);
    auto z = task_conditions(b, d, tasks, 8);
    auto mask = make_mask(b, 4, seq, {8, 6, 2, 7});
    typename conditional_self_attention<B, double>::context ctx;
    const auto y = att.forward(x, mask, z, ctx, run_mode::inference()).to_host();
    const auto mh = mask.to_host();
    for (std::size_t i = 0; i < 4; ++i) {
        auto xi = x.reshaped({4, seq * d}).row_range(i, 1).clone().reshaped({1, seq, d});
        auto zi = z.row_range(i, 1).clone();
        auto mi = attention_mask<B>::from_host(b, {1, seq}, std::span(mh).subspan(i * seq, seq));
        typename conditional_self_attention<B, double>::context ci;
        const auto yi = att.forward(xi, mi, zi, ci, run_mode::inference()).to_host();
        for (std::size_t k = 0; k < seq * d; ++k) BOOST_TEST(std::abs(yi[k] - y[i * seq * d + k]) < 1e-13);
    }
    // And the tasks really differ: examples 1 and 3 (task 0) share their bias, example 0 (task 2) does not.
    const auto m = ctx.bias.film.to_host();
    BOOST_TEST(std::equal(m.begin() + 6, m.begin() + 12, m.begin() + 18));
    BOOST_TEST(!std::equal(m.begin(), m.begin() + 6, m.begin() + 6));
}

// ---- configuration errors -------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(hidden_not_a_multiple_of_length_is_a_config_error) {
    cpu b;
    try {
        conditional_self_attention<cpu, float> att(b, 12, 40, 4, 0.1f, "encoder.layer.2.attention.self");
        BOOST_FAIL("expected config_error");
    } catch (const config_error& e) {
        const std::string msg = e.what();
        BOOST_TEST_MESSAGE(msg);
        BOOST_TEST(msg.find("encoder.layer.2.attention.self.cond_block_diag_attn") != std::string::npos);
        BOOST_TEST(msg.find("d = 40") != std::string::npos);
        BOOST_TEST(msg.find("L = 12") != std::string::npos);
        BOOST_TEST(msg.find("max_seq_length that divides 40 (the nearest are 10 and 20)") != std::string::npos);
    }
    // BERT-base cannot take L = 512 (spec §1.4).
    BOOST_CHECK_THROW((block_diagonal_bias<cpu, float>(b, 512, 768, "x")), config_error);
    BOOST_CHECK_THROW((block_diagonal_bias<cpu, float>(b, 0, 768, "x")), config_error);
    BOOST_CHECK_THROW((block_diagonal_bias<cpu, float>(b, 1024, 768, "x")), config_error);
}

BOOST_AUTO_TEST_CASE(static_geometry) {
    cpu b;
    block_diagonal_bias<cpu, float, 128, 768> base(b, "encoder.layer.0.attention.self");
    BOOST_TEST(base.geometry().block_size == 22u);
    BOOST_TEST((base.matrix().value.shape() == shape{128, 22}));
    conditional_self_attention<cpu, float, 8, 24> att(b, 2, 0.1f, "a");
    BOOST_TEST(att.seq_len() == 8u);
    // Static sizes and run-time sizes must agree.
    BOOST_CHECK_THROW((block_diagonal_bias<cpu, float, 128, 768>(b, 64, 768, "x")), config_error);
}

BOOST_AUTO_TEST_CASE(inputs_longer_than_the_configured_length_are_refused) {
    // L = 8 fixes the bias's geometry; shorter batches get its top-left corner (models/test_camtl_model.cpp
    // checks that against padded batches), longer ones have no bias to get.
    cpu b;
    conditional_self_attention<cpu, float> att(b, 8, 16, 2, 0.0f, "encoder.layer.0.attention.self");
    typename conditional_self_attention<cpu, float>::context ctx;
    tensor<cpu, float> x(b, {2, 10, 16}), z(b, {2, 16}), z_bad(b, {3, 16});
    x.zero();
    z.zero();
    try {
        (void)att.forward(x, {}, z, ctx, run_mode::inference());
        BOOST_FAIL("expected shape_error");
    } catch (const shape_error& e) {
        BOOST_TEST(std::string(e.what()).find("padded to at most L = 8") != std::string::npos);
    }
    tensor<cpu, float> x6 = tensor<cpu, float>::zeros(b, {2, 6, 16});
    BOOST_TEST((att.forward(x6, {}, z, ctx, run_mode::inference()).shape() == shape{2, 6, 16}));
    tensor<cpu, float> x8 = tensor<cpu, float>::zeros(b, {2, 8, 16});
    BOOST_CHECK_THROW((void)att.forward(x8, {}, z_bad, ctx, run_mode::inference()), shape_error);
}

BOOST_AUTO_TEST_CASE(a_shorter_batch_uploads_its_map_once_per_length) {
    // The (n, n) corner of the bias's map is uploaded the first time length n is seen, then kept (issue 13: no
    // upload per step); every length gets its own corner, the same values as the full map's top-left.
    using counting = test::counting_round_trips<cpu>;
    counting b;
    block_diagonal_bias<counting, double> bias(b, 8, 16, "encoder.layer.0.attention.self");
    rng_stream init(5);
    bias.initialize(init);
    b.fill_uniform(bias.matrix().size(), 9, 0, -1.0, 1.0, bias.matrix().value.data());
    const auto z = random_tensor<counting, double>(b, {2, 16}, 7);
    typename block_diagonal_bias<counting, double>::context ctx;
    const auto full = bias.forward(z, 8, ctx, run_mode::inference()).to_host();
    for (const std::size_t n : {std::size_t{5}, std::size_t{3}, std::size_t{5}, std::size_t{3}, std::size_t{5}}) {
        const auto before = b.counted;
        const auto m = bias.forward(z, n, ctx, run_mode::inference()).to_host();
        const std::size_t uploads = b.counted.from_host - before.from_host;
        BOOST_TEST(uploads <= 1u, "length " << n);
        BOOST_TEST_REQUIRE(m.size() == 2 * n * n);
        for (std::size_t e = 0; e < 2; ++e)
            for (std::size_t r = 0; r < n; ++r)
                for (std::size_t c = 0; c < n; ++c) BOOST_TEST(m[(e * n + r) * n + c] == full[(e * 8 + r) * 8 + c]);
    }
    const auto before = b.counted;
    (void)bias.forward(z, 5, ctx, run_mode::inference());
    (void)bias.forward(z, 3, ctx, run_mode::inference());
    BOOST_TEST(b.counted.from_host == before.from_host);  // both lengths seen: nothing uploaded
}

// ---- names and freezing ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(parameter_names_follow_the_reference) {
    cpu b;
    conditional_self_attention<cpu, float> att(b, 8, 24, 2, 0.1f, "encoder.layer.3.attention.self");
    std::vector<std::string> names;
    att.visit_parameters([&](const std::string& n, parameter<cpu, float>&) { names.push_back(n); });
    const std::string p = "encoder.layer.3.attention.self.";
    const std::vector<std::string> want{p + "random_weight_matrix", p + "query.weight", p + "query.bias",
                                        p + "key.weight", p + "key.bias", p + "value.weight", p + "value.bias",
                                        p + "cond_block_diag_attn.gb_weights.weight",
                                        p + "cond_block_diag_attn.gb_weights.bias"};
    BOOST_TEST(names == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(frozen_projection_still_passes_gradients_to_the_condition, B, layer_backends) {
    // The reference's frozen layers keep cond_block_diag_attn.gb_weights frozen while A and z' train.
    B b;
    conditional_self_attention<B, double> att(b, 8, 16, 2, 0.0, "encoder.layer.0.attention.self");
    randomize(b, att, 41);
    BOOST_TEST(freeze_encoder_layers(att, 0, 1, "random_weight_matrix") == 8u);
    BOOST_TEST(att.block_bias().matrix().trainable());
    BOOST_TEST(!att.block_bias().projection().weight().trainable());
    auto x = random_tensor<B, double>(b, {2, 8, 16}, 3);
    auto z = task_conditions(b, 16, {0, 1}, 4);
    typename conditional_self_attention<B, double>::context ctx;
    auto r = testing::check_gradients<B>(
        b, {{"x", &x}, {"z", &z}}, [&](auto&& f) { att.visit_parameters(f); },
        [&] {
            ctx = {};
            return att.forward(x, {}, z, ctx, run_mode::inference());
        },
        [&](const tensor<B, double>& dy) {
            auto g = att.backward(dy, ctx);
            return std::vector<tensor<B, double>>{g.input, g.condition};
        });
    BOOST_TEST(r.ok, r.report);
}

BOOST_AUTO_TEST_CASE(float_and_double_agree) {
    cpu b;
    block_diagonal_bias<cpu, double> bd(b, 10, 40, "x");
    block_diagonal_bias<cpu, float> bf(b, 10, 40, "x");
    randomize(b, bd, 51);
    std::vector<std::vector<double>> values;
    bd.visit_parameters([&](const std::string&, parameter<cpu, double>& p) { values.push_back(p.value.to_host()); });
    std::size_t k = 0;
    bf.visit_parameters([&](const std::string&, parameter<cpu, float>& p) {
        std::vector<float> v(values[k].begin(), values[k].end());
        b.copy_from_host(v.data(), p.value.data(), v.size());
        ++k;
    });
    auto zd = random_tensor<cpu, double>(b, {3, 40}, 3);
    auto zh = zd.to_host();
    std::vector<float> zf(zh.begin(), zh.end());
    const auto md = bd.apply(zd).to_host();
    const auto mf = bf.apply(tensor<cpu, float>::from_host(b, {3, 40}, zf)).to_host();
    for (std::size_t i = 0; i < md.size(); ++i) BOOST_TEST(std::abs(md[i] - static_cast<double>(mf[i])) < 1e-5);
}

// ---- encoder layers and encoders ------------------------------------------------------------------------

namespace {

/// A CA-MTL layer or encoder run through the conditioned-layer contract with the reference's inputs.
template <class M, class B, class T>
tensor<B, T> forward_conditioned(const M& model, const tensor<B, T>& x, const attention_mask<B>& mask,
                                 const tensor<B, T>& z, const tensor<B, std::int32_t>& ids, typename M::context& ctx,
                                 run_mode mode) {
    const layer_condition<B, T> c{.mask = &mask, .task_ids = &ids, .task_embedding = &z};
    return model.forward(x, c, ctx, mode);
}
/// dx and dz of a conditioned backward.
template <class M, class B, class T>
std::pair<tensor<B, T>, tensor<B, T>> backward_conditioned(M& model, const tensor<B, T>& dy, typename M::context& ctx) {
    layer_condition_gradients<B, T> dc;
    tensor<B, T> dx = model.backward(dy, ctx, dc);
    return {std::move(dx), std::move(dc.task_embedding)};
}

/// Runs `model` (a CA-MTL layer or encoder) on a reference file in double: loads the parameters by name under
/// `prefix`, compares the output, dx, dz and every parameter gradient.
template <class B, class M>
void check_against_reference(reference_case<B>& ref, M& model, const std::string& prefix) {
    ref.load_parameters(model, prefix);
    typename M::context ctx;
    const auto y = forward_conditioned(model, ref.get("input.hidden_states"), ref.mask(), ref.get("input.task_embedding"),
                                 ref.ids(ref.ids_name()), ctx, run_mode::inference());
    ref.compare(ref.single_output(), y.to_host());
    auto [dx, dz] = backward_conditioned(model, ref.get("probe.R"), ctx);
    ref.compare("grad.input.hidden_states", dx.to_host());
    ref.compare("grad.input.task_embedding", dz.to_host());
    ref.compare_parameter_gradients(model, prefix);
    ref.finish();
}

/// The encoder's layer count from the file's parameters ("param.layer.<i>.*"), checked against
/// config.num_hidden_layers, and how many of them (from the bottom) have plain layer norms.
struct encoder_layers {
    std::size_t total = 0, plain = 0;
};
encoder_layers encoder_layers_of(const golden& g) {
    std::map<std::size_t, bool> conditional;  // layer index -> has a conditional layer norm
    for (const auto& n : g.names_with_prefix("param.layer.")) {
        const auto rest = n.substr(std::string("param.layer.").size());
        const auto i = static_cast<std::size_t>(std::stoul(rest.substr(0, rest.find('.'))));
        conditional[i] = conditional[i] || n.find("ln_weight_modulation") != std::string::npos;
    }
    encoder_layers out;
    out.total = conditional.size();
    const auto stated = g.meta_field<std::size_t>("config", "num_hidden_layers");
    if (out.total != stated || (out.total > 0 && conditional.rbegin()->first + 1 != out.total))
        g.fail("__metadata__ config num_hidden_layers=" + std::to_string(stated) + " but the file has parameters of " +
               std::to_string(out.total) + " layers");
    while (out.plain < out.total && !conditional[out.plain]) ++out.plain;
    return out;
}

/// Gradient check of a layer or encoder in training mode (dropout on), with padding, a mixed-task batch and the
/// task condition as an input.
template <class B, class M>
testing::gradcheck_result check_model_gradients(B& b, M& model, std::size_t seq, std::size_t d,
                                                const std::vector<std::size_t>& tasks,
                                                const std::vector<std::size_t>& lengths, testing::gradcheck_options o) {
    const std::size_t nb = tasks.size();
    auto x = random_tensor<B, double>(b, {nb, seq, d}, 3);
    auto z = task_conditions(b, d, tasks, 4);
    auto mask = make_mask(b, nb, seq, lengths);
    std::vector<std::int32_t> id(tasks.begin(), tasks.end());
    auto ids = tensor<B, std::int32_t>::from_host(b, {nb}, id);
    typename M::context ctx;
    model.visit_parameters([&](const std::string& n, parameter<B, double>&) {
        if (n.find("key.bias") != std::string::npos) o.known_zero_gradients.push_back("parameter '" + n + "'");
    });
    return testing::check_gradients<B>(
        b, {{"x", &x}, {"z", &z}}, [&](auto&& f) { model.visit_parameters(f); },
        [&] {
            rng_stream rng(5);
            ctx = {};
            return forward_conditioned(model, x, mask, z, ids, ctx, run_mode::train(rng));
        },
        [&](const tensor<B, double>& dy) {
            auto [dx, dz] = backward_conditioned(model, dy, ctx);
            return std::vector<tensor<B, double>>{dx, dz};
        },
        o);
}

camtl_layer_config small_config() {
    return {.seq_len = 4, .hidden = 12, .heads = 2, .intermediate = 8, .attention_dropout = 0.2, .hidden_dropout = 0.1};
}

}  // namespace

BOOST_AUTO_TEST_CASE_TEMPLATE(bert_layer9_matches_reference, B, layer_backends) {
    for (const auto& path : module_files({"camtl_bertlayer9"})) {
        B b;
        reference_case<B> ref(b, path);
        ref.file().require_meta_mentions("source", "::BertLayer9.forward");
        bert_layer9<B, double> layer(b, ref.layer_config(), "bert.encoder.layer.0");
        check_against_reference(ref, layer, "bert.encoder.layer.0");
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(my_bert_layer9_matches_reference, B, layer_backends) {
    for (const auto& path : module_files({"camtl_layer9"})) {
        B b;
        reference_case<B> ref(b, path);
        ref.file().require_meta_mentions("source", "::MyBertLayer9.forward");
        my_bert_layer9<B, double> layer(b, ref.layer_config(), "encoder.layer.7");
        check_against_reference(ref, layer, "encoder.layer.7");
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(my_bert_adapter_layer9_matches_reference, B, layer_backends) {
    for (const auto& path : module_files({"camtl_adapterlayer9"})) {
        B b;
        reference_case<B> ref(b, path);
        ref.file().require_meta_mentions("source", "::MyBertAdapterLayer9.forward");
        my_bert_adapter_layer9<B, double> layer(b, ref.layer_config(), "encoder.layer.11");
        check_against_reference(ref, layer, "encoder.layer.11");
    }
}

// Base (MyBertEncoder9) or large (MyBertEncoder10) from the file's source; the layer count and how many layers
// have plain layer norms from its parameters; the large encoder's bottleneck width from its adapter layers.
BOOST_AUTO_TEST_CASE_TEMPLATE(encoder_matches_reference, B, layer_backends) {
    for (const auto& path : module_files({"camtl_encoder"})) {
        B b;
        reference_case<B> ref(b, path);
        const golden& g = ref.file();
        const auto layers = encoder_layers_of(g);
        auto c = ref.layer_config();
        if (g.meta_mentions("source", "::MyBertEncoder9.forward")) {
            camtl_base_encoder<B, double> enc(b, c, layers.total, "bert.encoder", {.plain_layers = layers.plain});
            check_against_reference(ref, enc, "bert.encoder");
        } else if (g.meta_mentions("source", "::MyBertEncoder10.forward")) {
            c.bottleneck = g.dim("param.adapter_layer.0.down_proj_layer.weight", 0);
            camtl_large_encoder<B, double> enc(b, c, layers.total, "encoder", {.plain_layers = layers.plain});
            check_against_reference(ref, enc, "encoder");
        } else {
            g.fail("__metadata__ key 'source' names neither MyBertEncoder9 nor MyBertEncoder10");
        }
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(encoder_layer_gradients, B, layer_backends) {
    B b;
    const auto c = small_config();
    const std::vector<std::size_t> tasks{1, 0, 1, 2}, lengths{4, 3, 2, 4};
    {
        bert_layer9<B, double> l(b, c, "encoder.layer.0");
        randomize(b, l, 61);
        auto r = check_model_gradients(b, l, c.seq_len, c.hidden, tasks, lengths, {});
        BOOST_TEST(r.ok, "bert_layer9: " << r.report);
    }
    {
        my_bert_layer9<B, double> l(b, c, "encoder.layer.0");
        randomize(b, l, 62);
        auto r = check_model_gradients(b, l, c.seq_len, c.hidden, tasks, lengths, {});
        BOOST_TEST(r.ok, "my_bert_layer9: " << r.report);
    }
    {
        my_bert_adapter_layer9<B, double> l(b, c, "encoder.layer.0");
        randomize(b, l, 63);
        auto r = check_model_gradients(b, l, c.seq_len, c.hidden, tasks, lengths, {});
        BOOST_TEST(r.ok, "my_bert_adapter_layer9: " << r.report);
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(conditional_layer_gradients_with_per_sample_condition_rows, B, layer_backends) {
    // The paper's CLN reading (every example its own condition row) and the gain-and-bias variant.
    B b;
    auto c = small_config();
    c.condition_rows = cln_condition_rows::per_sample;
    c.norm_variant = cln_variant::gain_and_bias;
    my_bert_adapter_layer9<B, double> l(b, c, "encoder.layer.0");
    randomize(b, l, 64);
    auto r = check_model_gradients(b, l, c.seq_len, c.hidden, {0, 1, 2}, {4, 1, 3}, {});
    BOOST_TEST(r.ok, r.report);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(encoder_gradients, B, layer_backends) {
    B b;
    const auto c = small_config();
    const std::vector<std::size_t> tasks{2, 0, 2, 1}, lengths{4, 2, 3, 4};
    {
        camtl_base_encoder<B, double> enc(b, c, 4);
        randomize(b, enc, 71, 0.4);
        auto r = check_model_gradients(b, enc, c.seq_len, c.hidden, tasks, lengths, {.max_checks_per_tensor = 40});
        BOOST_TEST(r.ok, "base: " << r.report);
    }
    {
        camtl_large_encoder<B, double> enc(b, c, 3);
        randomize(b, enc, 72, 0.4);
        auto r = check_model_gradients(b, enc, c.seq_len, c.hidden, tasks, lengths, {.max_checks_per_tensor = 40});
        BOOST_TEST(r.ok, "large: " << r.report);
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(encoder_without_own_task_transformation_takes_z_prime, B, layer_backends) {
    B b;
    const auto c = small_config();
    camtl_large_encoder<B, double> with(b, c, 2, "encoder");
    camtl_large_encoder<B, double> without(b, c, 2, "encoder", {.task_transformation = false});
    randomize(b, with, 81);
    // Same layer parameters; the transformation applied outside.
    std::map<std::string, std::vector<double>> values;
    with.visit_parameters([&](const std::string& n, parameter<B, double>& p) { values[n] = p.value.to_host(); });
    std::size_t loaded = 0;
    without.visit_parameters([&](const std::string& n, parameter<B, double>& p) {
        BOOST_TEST_REQUIRE(values.count(n) == 1u);
        b.copy_from_host(values[n].data(), p.value.data(), p.size());
        ++loaded;
    });
    BOOST_TEST(loaded + 2 == values.size());
    auto x = random_tensor<B, double>(b, {2, 4, 12}, 3);
    auto z = task_conditions(b, 12, {0, 1}, 4);
    auto ids = tensor<B, std::int32_t>::from_host(b, {2}, std::vector<std::int32_t>{0, 1});
    typename camtl_large_encoder<B, double>::context c1, c2;
    typename linear<B, double>::context lc;
    const auto y1 = forward_conditioned(with, x, {}, z, ids, c1, run_mode::inference()).to_host();
    const auto zp = with.task_transformation()->forward(z, lc);
    const auto y2 = forward_conditioned(without, x, {}, zp, ids, c2, run_mode::inference()).to_host();
    BOOST_TEST(test::max_abs_diff(y1, y2) < 1e-14);
    BOOST_TEST(without.task_transformation() == nullptr);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(encoder_mixed_task_batch_matches_single_examples, B, layer_backends) {
    // Every example of a mixed-task batch gets what it gets alone (CLN reads one row per task; rows of a task
    // are equal as in the model, where z depends on the task id only).
    B b;
    const auto c = small_config();
    camtl_base_encoder<B, double> enc(b, c, 4);
    randomize(b, enc, 91, 0.4);
    const std::vector<std::size_t> tasks{2, 0, 2, 1};
    const std::size_t nb = tasks.size(), per = c.seq_len * c.hidden;
    auto x = random_tensor<B, double>(b, {nb, c.seq_len, c.hidden}, 3);
    auto z = task_conditions(b, c.hidden, tasks, 4);
    auto mask = make_mask(b, nb, c.seq_len, {4, 2, 3, 4});
    std::vector<std::int32_t> id(tasks.begin(), tasks.end());
    auto ids = tensor<B, std::int32_t>::from_host(b, {nb}, id);
    typename camtl_base_encoder<B, double>::context ctx;
    const auto y = forward_conditioned(enc, x, mask, z, ids, ctx, run_mode::inference()).to_host();
    const auto mh = mask.to_host();
    for (std::size_t i = 0; i < nb; ++i) {
        auto xi = x.reshaped({nb, per}).row_range(i, 1).clone().reshaped({1, c.seq_len, c.hidden});
        auto zi = z.row_range(i, 1).clone();
        auto mi = attention_mask<B>::from_host(b, {1, c.seq_len}, std::span(mh).subspan(i * c.seq_len, c.seq_len));
        auto idi = tensor<B, std::int32_t>::from_host(b, {1}, std::vector<std::int32_t>{id[i]});
        typename camtl_base_encoder<B, double>::context ci;
        const auto yi = forward_conditioned(enc, xi, mi, zi, idi, ci, run_mode::inference()).to_host();
        for (std::size_t k = 0; k < per; ++k) BOOST_TEST(std::abs(yi[k] - y[i * per + k]) < 1e-12);
    }
}

BOOST_AUTO_TEST_CASE(encoder_layer_names_follow_the_reference) {
    cpu b;
    const auto c = small_config();
    camtl_base_encoder<cpu, float> enc(b, c, 4, "bert.encoder");
    std::vector<std::string> names;
    enc.visit_parameters([&](const std::string& n, parameter<cpu, float>&) { names.push_back(n); });
    BOOST_TEST(names.front() == "bert.encoder.task_transformation.weight");
    auto has = [&](const std::string& n) { return std::find(names.begin(), names.end(), n) != names.end(); };
    BOOST_TEST(has("bert.encoder.layer.0.attention.self.random_weight_matrix"));
    BOOST_TEST(has("bert.encoder.layer.1.output.LayerNorm.weight"));
    BOOST_TEST(!has("bert.encoder.layer.1.output.LayerNorm.ln_weight_modulation.gb_weights.weight"));
    BOOST_TEST(has("bert.encoder.layer.2.output.LayerNorm.ln_weight_modulation.gb_weights.weight"));
    BOOST_TEST(has("bert.encoder.layer.3.new_attention.self.cond_block_diag_attn.gb_weights.bias"));
    BOOST_TEST(has("bert.encoder.layer.3.new_intermediate.dense.weight"));
    BOOST_TEST(has("bert.encoder.layer.3.adapter.bottleneck.down_proj_layer.weight"));
    BOOST_TEST(has("bert.encoder.layer.3.adapter.condlayernorm.ln_weight_modulation.gb_weights.weight"));
    camtl_large_encoder<cpu, float> large(b, c, 2);
    names.clear();
    large.visit_parameters([&](const std::string& n, parameter<cpu, float>&) { names.push_back(n); });
    BOOST_TEST(names.back() == "encoder.adapter_layer.1.up_proj_layer.bias");
    BOOST_TEST(has("encoder.layer.1.attention.output.LayerNorm.ln_weight_modulation.gb_weights.bias"));

    // The reference's freeze (spec §1.8): layers 0..1 except the whitelisted names; the CBDA projection of a frozen
    // layer stays frozen, A trains.
    const auto frozen = freeze_encoder_layers(
        enc, 0, 2, "random_weight_matrix|film\\.gb_weights|ln_weight_modulation\\.gb_weights|adapter");
    BOOST_TEST(frozen == 2 * 18u);  // 19 parameters per plain layer, A kept
    const auto trainable = trainable_parameter_names(enc);
    auto trains = [&](const std::string& n) { return std::find(trainable.begin(), trainable.end(), n) != trainable.end(); };
    BOOST_TEST(trains("bert.encoder.layer.0.attention.self.random_weight_matrix"));
    BOOST_TEST(!trains("bert.encoder.layer.0.attention.self.cond_block_diag_attn.gb_weights.weight"));
    BOOST_TEST(trains("bert.encoder.layer.2.attention.self.cond_block_diag_attn.gb_weights.weight"));
}

BOOST_AUTO_TEST_CASE(encoder_layer_counts_are_checked) {
    cpu b;
    const auto c = small_config();
    BOOST_CHECK_THROW((camtl_base_encoder<cpu, float>(b, c, 0)), config_error);
    BOOST_CHECK_THROW((camtl_base_encoder<cpu, float>(b, c, 3, "encoder", {.plain_layers = 3})), config_error);
    BOOST_CHECK_THROW((camtl_large_encoder<cpu, float>(b, c, 2, "encoder", {.plain_layers = 3})), config_error);
    camtl_base_encoder<cpu, float> one(b, c, 1);  // just the adapter layer
    BOOST_TEST(one.size() == 1u);
    camtl_base_encoder<cpu, float> base12(b, {.seq_len = 4, .hidden = 12, .heads = 2, .intermediate = 8}, 12);
    BOOST_TEST(base12.plain_layers() == 6u);  // base: 0-5 plain, 6-10 CLN, 11 adapter
    camtl_large_encoder<cpu, float> large5(b, c, 5);
    BOOST_TEST(large5.plain_layers() == 3u);
    // The CBDA geometry is checked in every layer: L = 5 does not divide d = 12.
    auto bad = c;
    bad.seq_len = 5;
    BOOST_CHECK_THROW((camtl_base_encoder<cpu, float>(b, bad, 2)), config_error);
}
