// make_variant_goldens <folder>: writes golden files of every module the reference tests read, with other
// shapes, seeds, task counts and orders, and option values than the authors' files, computed by the library's
// own modules and described by __metadata__ in the authors' style (same keys, same phrasing of the facts the
// tests read). Running the reference tests with HYPERADAPT_REFERENCE_DIR=<folder> then checks their wiring —
// that every size, option and task order is taken from the file — not the maths, which the authors' files check.
// CTest runs it as the reference_variant_goldens fixture (tests/CMakeLists.txt).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>
#include <map>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/io/safetensors.hpp"
#include "hyperadapt/layers/camtl/block_diagonal_bias.hpp"
#include "hyperadapt/layers/camtl/conditional_adapter.hpp"
#include "hyperadapt/layers/camtl/conditional_attention.hpp"
#include "hyperadapt/layers/camtl/conditional_bottleneck.hpp"
#include "hyperadapt/layers/camtl/conditional_encoder.hpp"
#include "hyperadapt/layers/camtl/conditional_encoder_layer.hpp"
#include "hyperadapt/layers/camtl/conditional_layer_norm.hpp"
#include "hyperadapt/layers/camtl/film.hpp"
#include "hyperadapt/layers/pha/hyperformer_adapter.hpp"
#include "hyperadapt/layers/pha/hyperformer_hypernet.hpp"
#include "hyperadapt/layers/pha/hypernet.hpp"
#include "hyperadapt/layers/pha/retriever.hpp"
#include "hyperadapt/layers/pha/task_adapter.hpp"
#include "hyperadapt/loss/pha_contrastive.hpp"
#include "hyperadapt/nn/mode.hpp"
#include "hyperadapt/train/samplers/mt_uncertainty.hpp"

namespace {

using namespace hyperadapt;
namespace fs = std::filesystem;
using B = cpu;
using T = tensor<B, double>;

constexpr std::uint64_t variant_seed = 20261203;

const std::string camtl = "CAMTL/CA-MTL@1e6ebb7e36b4024a7f7b1682b08a9531f13d7836 ";
const std::string pha = "Bumble666/PHA@bbb41697a60d368e452bc6f1e619f804d8c0e2cd ";
const std::string hyperformer = "rabeehk/hyperformer@56b0f993eeec62f5a8c962704739912b5f039a9b ";

std::vector<std::size_t> dims(const shape& s) {
    std::vector<std::size_t> v;
    for (std::size_t i = 0; i < s.rank(); ++i) v.push_back(s[i]);
    return v;
}

/// Uniform values in [lo, hi) from a counter-based stream: each tensor its own seed.
class random_source {
public:
    explicit random_source(B& b, std::uint64_t seed) : b_(b), seed_(seed) {}
    T uniform(shape s, double lo = -1.0, double hi = 1.0) {
        T t(b_, s);
        b_.fill_uniform(t.size(), seed_++, 0, lo, hi, t.data());
        return t;
    }
    /// Every parameter of `m` random (the authors' files redraw them too, so that no path is trivially zero).
    template <class M>
    void parameters(M& m, double scale = 0.5) {
        m.visit_parameters([&](const std::string&, parameter<B, double>& p) {
            b_.fill_uniform(p.size(), seed_++, 0, -scale, scale, p.value.data());
        });
    }

private:
    B& b_;
    std::uint64_t seed_;
};

/// One golden file being written: tensors under the authors' names and the __metadata__ strings.
class golden_writer {
public:
    golden_writer(std::string source, std::uint64_t seed) {
        w_.set_metadata("format", "hyperadapt reference golden v1: float64 values (F64), integer values (I64), little-endian");
        w_.set_metadata("reference_set", "variant");
        w_.set_metadata("generator", "tests/tools/make_variant_goldens.cpp: the library's own modules (checks the "
                                     "reference tests' wiring, not the maths)");
        w_.set_metadata("generator_seed", std::to_string(seed));
        w_.set_metadata("source", std::move(source));
        w_.set_metadata("mode", "eval(); float64");
    }
    void meta(const std::string& key, const std::string& value) { w_.set_metadata(key, value); }
    void put(const std::string& name, const T& t) { w_.add<double>(name, dims(t.shape()), t.to_host()); }
    void put(const std::string& name, std::vector<std::size_t> shape, const std::vector<double>& v) {
        w_.add<double>(name, std::move(shape), v);
    }
    void put_scalar(const std::string& name, double v) { w_.add<double>(name, {}, std::vector<double>{v}); }
    void put_ints(const std::string& name, std::vector<std::size_t> shape, const std::vector<std::int64_t>& v) {
        w_.add<std::int64_t>(name, std::move(shape), v);
    }
    /// "param.<n>" and "grad.param.<n>" for every parameter of `m` (named without a prefix, as the files).
    template <class M>
    void parameters_and_gradients(M& m) {
        m.visit_parameters([&](const std::string& n, parameter<B, double>& p) {
            put("param." + n, p.value);
            put("grad.param." + n, p.grad);
        });
    }
    void write(const fs::path& dir, const std::string& name) {
        w_.write(dir / (name + ".safetensors"));
        std::cout << name << ".safetensors: " << w_.size() << " tensors\n";
    }

private:
    io::safetensors_writer w_;
};

std::vector<std::int64_t> to_i64(const std::vector<std::int32_t>& v) { return {v.begin(), v.end()}; }
tensor<B, std::int32_t> ids(B& b, const std::vector<std::int32_t>& v) {
    return tensor<B, std::int32_t>::from_host(b, {v.size()}, v);
}
std::string json_ids(const std::vector<std::int32_t>& v) { return nlohmann::json(v).dump(); }

/// {"task": position of its first example}: which condition row the authors' ConditionalLayerNorm reads.
std::string first_sample_per_task(const std::vector<std::int32_t>& tasks) {
    std::map<std::string, std::size_t> first;
    for (std::size_t i = 0; i < tasks.size(); ++i) first.emplace(std::to_string(tasks[i]), i);
    return nlohmann::json(first).dump();
}

/// Rows of a [T, d] table picked by task id: conditions equal within a task, as in the model.
T rows_by_task(B& b, const T& table, const std::vector<std::int32_t>& tasks) {
    const auto h = table.to_host();
    const std::size_t d = table.shape()[1];
    std::vector<double> out;
    for (auto t : tasks)
        out.insert(out.end(), h.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(t) * d),
                   h.begin() + static_cast<std::ptrdiff_t>((static_cast<std::size_t>(t) + 1) * d));
    return T::from_host(b, {tasks.size(), d}, out);
}

/// Copies `parts` one after another into a tensor of shape `s`.
T stack(B& b, const std::vector<T>& parts, shape s) {
    std::vector<double> all;
    for (const auto& p : parts) {
        const auto h = p.to_host();
        all.insert(all.end(), h.begin(), h.end());
    }
    return T::from_host(b, s, all);
}
T layer_slice(const T& t, std::size_t l, shape s) {
    const std::size_t per = s.size();
    return t.reshaped({t.size() / per, per}).row_range(l, 1).reshaped(s);
}

/// The padding mask of the given lengths and the additive mask the encoder passes: (1 - mask) * -10000.
struct masks {
    attention_mask<B> mask;
    std::vector<std::int64_t> padding;
    std::vector<double> additive;
};
masks make_masks(B& b, std::size_t seq, const std::vector<std::size_t>& lengths) {
    masks m{attention_mask<B>(), {}, {}};
    std::vector<std::uint8_t> v;
    for (auto len : lengths)
        for (std::size_t j = 0; j < seq; ++j) {
            v.push_back(j < len ? 1 : 0);
            m.padding.push_back(j < len ? 1 : 0);
            m.additive.push_back(j < len ? 0.0 : -10000.0);
        }
    m.mask = attention_mask<B>::from_host(b, {lengths.size(), seq}, v);
    return m;
}

// ---- CA-MTL ------------------------------------------------------------------------------------------------

void film_files(B& b, const fs::path& dir) {
    struct variant {
        std::string name;
        std::size_t in, out, batch, len;
        bool norm;
        double eps;
    };
    for (const auto& v : {variant{"camtl_film_in12_out20", 12, 20, 5, 7, false, 0},
                          variant{"camtl_film_layernorm_in16_out8_eps1e-3", 16, 8, 2, 3, true, 1e-3}}) {
        random_source rnd(b, variant_seed + v.in);
        golden_writer g(camtl + "src/model/encoders/conditional_modules.py::FiLM.forward", variant_seed + v.in);
        film<B, double> m(b, v.in, v.out, "", {.layer_norm = v.norm, .layer_norm_eps = v.eps});
        rnd.parameters(m);
        auto x = rnd.uniform({v.batch, v.len, v.out}), c = rnd.uniform({v.batch, v.in});
        typename film<B, double>::context ctx;
        const auto y = m.forward(x, c, ctx);
        const auto r = rnd.uniform(y.shape());
        const auto gr = m.backward(r, ctx);
        const std::string ln = v.norm ? "True" : "False";
        g.meta("call", "FiLM(input_size=" + std::to_string(v.in) + ", output_size=" + std::to_string(v.out) +
                           ", num_film_layers=1, layer_norm=" + ln + ").forward(x_cond=input.x_cond, x_to_film=input.x_to_film)");
        g.meta("options", "num_film_layers=1, layer_norm=" + ln);
        g.meta("maths", std::string("gb = gb_weights(x_cond).unsqueeze(1); gamma, beta = chunk(gb, 2, dim=-1) (first half "
                                    "gamma); out = (1 + gamma) * x_to_film + beta") +
                            (v.norm ? "; then nn.LayerNorm(output_size) (eps " + nlohmann::json(v.eps).dump() + ")" : ""));
        g.meta("shapes_meaning", "x_cond [B, input_size] conditioning vectors (one per sample); x_to_film [B, L, "
                                 "output_size] features to modulate; output.out [B, L, output_size]");
        g.put("input.x_to_film", x);
        g.put("input.x_cond", c);
        g.put("output.out", y);
        g.put("probe.R", r);
        g.put("grad.input.x_to_film", gr.input);
        g.put("grad.input.x_cond", gr.condition);
        g.parameters_and_gradients(m);
        g.write(dir, v.name);
    }
}

void cln_files(B& b, const fs::path& dir) {
    struct variant {
        std::string name;
        std::size_t d, cond;
        cln_variant kind;
        double eps;
        std::vector<std::int32_t> tasks;
    };
    for (const auto& v : {variant{"camtl_cln_d12_c9_four_tasks", 12, 9, cln_variant::gain_only, 1e-5, {2, 0, 3, 2, 1, 0}},
                          variant{"camtl_cln_gain_and_bias_d8", 8, 8, cln_variant::gain_and_bias, 1e-12, {1, 1, 0}}}) {
        random_source rnd(b, variant_seed + v.d);
        golden_writer g(camtl + "src/model/encoders/conditional_modules.py::ConditionalLayerNorm.forward",
                        variant_seed + v.d);
        conditional_layer_norm<B, double> m(b, v.d, v.cond, "", {.variant = v.kind, .eps = v.eps});
        rnd.parameters(m);
        const std::size_t nb = v.tasks.size();
        auto x = rnd.uniform({nb, 3, v.d}), c = rnd.uniform({nb, v.cond});  // rows differ even within a task
        typename conditional_layer_norm<B, double>::context ctx;
        const auto y = m.forward(x, c, ids(b, v.tasks), ctx);
        const auto r = rnd.uniform(y.shape());
        const auto gr = m.backward(r, ctx);
        g.meta("call", "ConditionalLayerNorm(normalized_shape=" + std::to_string(v.d) +
                           ", condition_size=" + std::to_string(v.cond) + ", eps=" + nlohmann::json(v.eps).dump() +
                           ").forward(input_=input.input_, condition=input.condition, task_id=input.task_id)");
        g.meta("options", "eps=" + nlohmann::json(v.eps).dump());
        g.meta("first_sample_per_task", first_sample_per_task(v.tasks));
        g.meta("maths", "for each t in torch.unique(task_id) (ascending): c = condition[task_id==t][0:1]; the gain "
                        "(and, with ln_bias_modulation, the bias) conditioned on c; F.layer_norm over d");
        g.meta("shapes_meaning", "input_ [B, L, d]; condition [B, c] (z' per sample); task_id [B] int; output.out [B, L, d]");
        g.put("input.input_", x);
        g.put("input.condition", c);
        g.put_ints("input.task_id", {nb}, to_i64(v.tasks));
        g.put("output.out", y);
        g.put("probe.R", r);
        g.put("grad.input.input_", gr.input);
        g.put("grad.input.condition", gr.condition);
        g.parameters_and_gradients(m);
        g.write(dir, v.name);
    }
}

void bottleneck_and_adapter_files(B& b, const fs::path& dir) {
    {
        random_source rnd(b, variant_seed + 100);
        golden_writer g(camtl + "src/model/encoders/conditional_modules.py::ConditionalBottleNeck.forward", variant_seed + 100);
        const std::size_t d = 18;
        conditional_bottleneck<B, double> m(b, d, "");
        rnd.parameters(m);
        auto h = rnd.uniform({3, 5, d}), c = rnd.uniform({3, d});
        typename conditional_bottleneck<B, double>::context ctx;
        const auto y = m.forward(h, c, ctx);
        const auto r = rnd.uniform(y.shape());
        const auto gr = m.backward(r, ctx);
        g.meta("call", "ConditionalBottleNeck(config(hidden_size=18)).forward(x_cond=input.x_cond, hidden_states=input.hidden_states)");
        g.meta("shapes_meaning", "x_cond [B, d] (z'); hidden_states [B, L, d]; output.out [B, L, d]; bottleneck width d//3");
        g.put("input.hidden_states", h);
        g.put("input.x_cond", c);
        g.put("output.out", y);
        g.put("probe.R", r);
        g.put("grad.input.hidden_states", gr.hidden_states);
        g.put("grad.input.x_cond", gr.condition);
        g.parameters_and_gradients(m);
        g.write(dir, "camtl_bottleneck_d18");
    }
    {
        random_source rnd(b, variant_seed + 101);
        golden_writer g(camtl + "src/model/encoders/ca_mtl_base.py::BertAdapter9.forward", variant_seed + 101);
        const std::size_t d = 15;
        const double eps = 1e-6;
        const std::vector<std::int32_t> tasks{1, 1, 0, 2};
        conditional_adapter<B, double> m(b, d, "", {.eps = eps});
        rnd.parameters(m);
        auto res = rnd.uniform({4, 3, d}), h = rnd.uniform({4, 3, d});
        auto z = rows_by_task(b, rnd.uniform({3, d}), tasks);
        typename conditional_adapter<B, double>::context ctx;
        const auto y = m.forward(res, h, z, ids(b, tasks), ctx);
        const auto r = rnd.uniform(y.shape());
        const auto gr = m.backward(r, ctx);
        g.meta("call", "BertAdapter9(config).forward(bert_layer_input=input.bert_layer_input, hidden_states=input.hidden_states, "
                       "task_embedding=input.task_embedding, task_id=input.task_id)");
        g.meta("config", nlohmann::json{{"hidden_size", d}, {"layer_norm_eps", eps}}.dump());
        g.meta("shapes_meaning", "bert_layer_input [B, L, d]; hidden_states [B, L, d]; task_embedding [B, d] (z', equal rows "
                                 "within a task); task_id [B]; output.out [B, L, d]");
        g.put("input.bert_layer_input", res);
        g.put("input.hidden_states", h);
        g.put("input.task_embedding", z);
        g.put_ints("input.task_id", {tasks.size()}, to_i64(tasks));
        g.put("output.out", y);
        g.put("probe.R", r);
        g.put("grad.input.bert_layer_input", gr.bert_layer_input);
        g.put("grad.input.hidden_states", gr.hidden_states);
        g.put("grad.input.task_embedding", gr.task_embedding);
        g.parameters_and_gradients(m);
        g.write(dir, "camtl_adapter9_d15_eps1e-6");
    }
}

void cbda_files(B& b, const fs::path& dir) {
    for (auto [l, d] : {std::pair<std::size_t, std::size_t>{6, 36}, {12, 24}, {7, 21}}) {
        random_source rnd(b, variant_seed + l * 1000 + d);
        golden_writer g(camtl + "src/model/encoders/conditional_modules.py::CBDA.forward (constructed as in "
                                "src/model/encoders/ca_mtl_base.py::MyBertSelfAttention9.__init__)",
                        variant_seed + l * 1000 + d);
        block_diagonal_bias<B, double> m(b, l, d, "");
        rnd.parameters(m);
        const auto geo = cbda_geometry::make(l, d);
        std::vector<std::size_t> sizes(geo.chunks, geo.block_size);
        sizes.back() = geo.last_block;
        auto z = rnd.uniform({3, d});
        typename block_diagonal_bias<B, double>::context ctx;
        const auto y = m.forward(z, ctx);
        const auto r = rnd.uniform(y.shape());
        const auto dz = m.backward(r, ctx);
        g.meta("call", "CBDA(input_size=d=" + std::to_string(d) + ", output_size=ceil(L/N)=" + std::to_string(geo.block_size) +
                           ", blocks=N=d//L=" + std::to_string(geo.blocks) + ").forward(x_cond=input.x_cond, x_to_film=input.x_to_film)");
        g.meta("options", "num_film_layers=1, layer_norm=False (as in the encoders)");
        g.meta("geometry", "L=" + std::to_string(l) + ", d=" + std::to_string(d) + ", N=d//L=" + std::to_string(geo.blocks) +
                               ", s=ceil(L/N)=" + std::to_string(geo.block_size) + "; torch.chunk(A'(z)[b], N, dim=0) returned " +
                               std::to_string(geo.chunks) + " row-chunks of sizes " + nlohmann::json(sizes).dump());
        g.meta("shapes_meaning", "x_cond [B, d] task embeddings z'; x_to_film [L, s] the matrix A; output.M [B, L, L]");
        g.put("input.x_cond", z);
        g.put("input.x_to_film", m.matrix().value);
        g.put("param.gb_weights.weight", m.projection().weight().value);
        g.put("param.gb_weights.bias", m.projection().bias().value);
        g.put("output.M", y);
        g.put("probe.R", r);
        g.put("grad.input.x_cond", dz);
        g.put("grad.input.x_to_film", m.matrix().grad);
        g.put("grad.param.gb_weights.weight", m.projection().weight().grad);
        g.put("grad.param.gb_weights.bias", m.projection().bias().grad);
        g.write(dir, "camtl_cbda_L" + std::to_string(l) + "_d" + std::to_string(d));
    }
}

void self_attention_file(B& b, const fs::path& dir) {
    random_source rnd(b, variant_seed + 200);
    golden_writer g(camtl + "src/model/encoders/ca_mtl_base.py::MyBertSelfAttention9.forward", variant_seed + 200);
    const std::size_t seq = 6, d = 24, heads = 3;
    const std::vector<std::size_t> lengths{6, 2, 5};
    conditional_self_attention<B, double> m(b, seq, d, heads, 0.1, "");
    rnd.parameters(m);
    auto x = rnd.uniform({3, seq, d});
    auto z = rows_by_task(b, rnd.uniform({2, d}), {1, 0, 1});
    auto mk = make_masks(b, seq, lengths);
    typename conditional_self_attention<B, double>::context ctx;
    const auto y = m.forward(x, mk.mask, z, ctx, run_mode::inference());
    const auto probs = ctx.attention.probs.clone();
    const auto r = rnd.uniform(y.shape());
    const auto gr = m.backward(r, ctx);
    g.meta("call", "MyBertSelfAttention9(config).forward(hidden_states=input.hidden_states, attention_mask=input.attention_mask, "
                   "head_mask=None, encoder_hidden_states=None, encoder_attention_mask=None, task_embedding=input.task_embedding)");
    g.meta("config", nlohmann::json{{"hidden_size", d}, {"num_attention_heads", heads}, {"max_seq_length", seq},
                                    {"attention_probs_dropout_prob", 0.1}, {"output_attentions", true}}.dump());
    g.meta("padding", "sequence lengths per sample " + nlohmann::json(lengths).dump());
    g.meta("outputs_not_in_loss", "output.attention_probs");
    g.meta("shapes_meaning", "hidden_states [B, L, d]; attention_mask [B,1,1,L] additive; padding_mask [B, L]; "
                             "task_embedding [B, d] = z'; output.context [B, L, d]; output.attention_probs [B, heads, L, L]");
    g.put("input.hidden_states", x);
    g.put("input.attention_mask", {3, 1, 1, seq}, mk.additive);
    g.put_ints("input.padding_mask", {3, seq}, mk.padding);
    g.put("input.task_embedding", z);
    g.put("output.context", y);
    g.put("output.attention_probs", probs);
    g.put("probe.R", r);
    g.put("grad.input.hidden_states", gr.input);
    g.put("grad.input.task_embedding", gr.condition);
    g.parameters_and_gradients(m);
    g.write(dir, "camtl_self_attention_L6_d24_h3");
}

/// A CA-MTL layer or encoder on a mixed-task batch with padding: the files of the layers and encoders.
template <class M>
void layer_file(B& b, const fs::path& dir, M& m, const camtl_layer_config& c, std::size_t layers, const std::string& source,
                const std::string& call, const std::string& ids_name, const std::string& output, const std::string& name,
                std::uint64_t seed) {
    random_source rnd(b, seed);
    golden_writer g(camtl + source, seed);
    rnd.parameters(m);
    const std::vector<std::int32_t> tasks{2, 0, 2};
    const std::vector<std::size_t> lengths{c.seq_len, 2, c.seq_len - 1};
    auto x = rnd.uniform({3, c.seq_len, c.hidden});
    auto z = rows_by_task(b, rnd.uniform({3, c.hidden}), tasks);
    auto mk = make_masks(b, c.seq_len, lengths);
    typename M::context ctx;
    const auto task_ids = ids(b, tasks);
    const layer_condition<B, double> condition{.mask = &mk.mask, .task_ids = &task_ids, .task_embedding = &z};
    const auto y = m.forward(x, condition, ctx, run_mode::inference());
    const auto r = rnd.uniform(y.shape());
    layer_condition_gradients<B, double> dc;
    const auto dx = m.backward(r, ctx, dc);
    const auto& dz = dc.task_embedding;
    nlohmann::json config{{"hidden_size", c.hidden},
                          {"num_attention_heads", c.heads},
                          {"intermediate_size", c.intermediate},
                          {"hidden_act", "gelu"},
                          {"max_seq_length", c.seq_len},
                          {"layer_norm_eps", c.layer_norm_eps},
                          {"hidden_dropout_prob", c.hidden_dropout},
                          {"attention_probs_dropout_prob", c.attention_dropout},
                          {"is_decoder", false},
                          {"output_attentions", false}};
    if (layers > 0) config["num_hidden_layers"] = layers;
    g.meta("call", call);
    g.meta("config", config.dump());
    g.meta("padding", "sequence lengths " + nlohmann::json(lengths).dump());
    g.meta("shapes_meaning", "hidden_states [B, L, d]; attention_mask [B,1,1,L] additive ((1-padding_mask)*-10000); "
                             "task_embedding [B, d]; " + ids_name + " [B]; padding_mask [B, L] (informational); output." +
                                 output + " [B, L, d]");
    g.put("input.hidden_states", x);
    g.put("input.attention_mask", {3, 1, 1, c.seq_len}, mk.additive);
    g.put_ints("input.padding_mask", {3, c.seq_len}, mk.padding);
    g.put("input.task_embedding", z);
    g.put_ints("input." + ids_name, {tasks.size()}, to_i64(tasks));
    g.put("output." + output, y);
    g.put("probe.R", r);
    g.put("grad.input.hidden_states", dx);
    g.put("grad.input.task_embedding", dz);
    g.parameters_and_gradients(m);
    g.write(dir, name);
}

void layer_and_encoder_files(B& b, const fs::path& dir) {
    const camtl_layer_config c{.seq_len = 6, .hidden = 18, .heads = 3, .intermediate = 10, .attention_dropout = 0.1,
                               .hidden_dropout = 0.1, .layer_norm_eps = 1e-7};
    const std::string layer_call = ".forward(hidden_states=input.hidden_states, attention_mask=input.attention_mask, "
                                   "head_mask=None, task_embedding=input.task_embedding, task_id=input.task_id)[0]";
    {
        bert_layer9<B, double> m(b, c, "");
        layer_file(b, dir, m, c, 0, "src/model/encoders/ca_mtl_base.py::BertLayer9.forward", "BertLayer9(config)" + layer_call,
                   "task_id", "layer_output", "camtl_bertlayer9_L6_d18", variant_seed + 300);
    }
    {
        my_bert_layer9<B, double> m(b, c, "");
        layer_file(b, dir, m, c, 0, "src/model/encoders/ca_mtl_base.py::MyBertLayer9.forward",
                   "MyBertLayer9(config)" + layer_call, "task_id", "layer_output", "camtl_layer9_L6_d18", variant_seed + 301);
    }
    {
        my_bert_adapter_layer9<B, double> m(b, c, "");
        layer_file(b, dir, m, c, 0, "src/model/encoders/ca_mtl_base.py::MyBertAdapterLayer9.forward",
                   "MyBertAdapterLayer9(config)" + layer_call, "task_id", "layer_output", "camtl_adapterlayer9_L6_d18",
                   variant_seed + 302);
    }
    const std::string encoder_call = "(config, tasks).forward(hidden_states=input.hidden_states, attention_mask="
                                     "input.attention_mask, task_type=input.task_type, task_embedding=input.task_embedding)[0]";
    {
        camtl_base_encoder<B, double> m(b, c, 3, "");
        layer_file(b, dir, m, c, 3, "src/model/encoders/ca_mtl_base.py::MyBertEncoder9.forward",
                   "MyBertEncoder9" + encoder_call, "task_type", "sequence_output", "camtl_encoder9_3layers",
                   variant_seed + 303);
    }
    {
        camtl_large_encoder<B, double> m(b, c, 3, "");
        layer_file(b, dir, m, c, 3, "src/model/encoders/ca_mtl_large.py::MyBertEncoder10.forward",
                   "MyBertEncoder10" + encoder_call, "task_type", "sequence_output", "camtl_encoder10_3layers",
                   variant_seed + 304);
    }
}

void mt_uncertainty_file(B& b, const fs::path& dir) {
    // Another task order (STS-B first, MRPC third), five tasks, unequal candidate counts, a batch of 5 and
    // another epsilon than the authors' 1e-5.
    const std::vector<std::string> tasks{"sts-b", "qqp", "mrpc", "rte", "mnli"};
    const std::vector<std::size_t> classes{1, 2, 2, 2, 3}, per_task{3, 2, 4, 3, 2};
    const std::size_t select = 5, stsb = 0, mrpc = 2;
    const double epsilon = 1e-4;
    random_source rnd(b, variant_seed + 400);
    golden_writer g(camtl + "src/mtl_trainer.py::MultiTaskTrainer._create_custom_dataloader.<locals>.MtUcertaintyIterator.__next__ "
                            "(scaling, STS-B copy, topk) + src/model/ca_mtl.py::CaMtl.forward + src/model/decoder.py::Decoder.calculate_entropy",
                    variant_seed + 400);
    std::vector<std::vector<double>> logits;
    std::vector<std::int64_t> task_of;
    nlohmann::json per_task_json = nlohmann::json::object();
    for (std::size_t t = 0; t < tasks.size(); ++t) {
        logits.push_back(rnd.uniform({per_task[t], classes[t]}, -3.0, 3.0).to_host());
        g.put("input.logits." + std::to_string(t), {per_task[t], classes[t]}, logits.back());
        task_of.insert(task_of.end(), per_task[t], static_cast<std::int64_t>(t));
        per_task_json[tasks[t]] = per_task[t];
    }
    const std::vector<std::span<const double>> blocks(logits.begin(), logits.end());
    const std::vector<score_borrowing> borrow{{stsb, mrpc}};
    mt_uncertainty_options o;
    o.epsilon = epsilon;
    const auto r = mt_uncertainty_scores(blocks, classes, select, o, borrow);
    auto o32 = o;
    o32.precision = mt_uncertainty_precision::float32;
    const auto r32 = mt_uncertainty_scores(blocks, classes, select, o32, borrow);
    std::vector<mt_uncertainty_task> sampler_tasks;
    for (std::size_t t = 0; t < tasks.size(); ++t) sampler_tasks.push_back({tasks[t], per_task[t], classes[t]});
    apply_camtl_borrowing(sampler_tasks);
    mt_uncertainty_sampler s(sampler_tasks, select, rng_stream(1), o);
    auto as_i64 = [](const std::vector<std::size_t>& v) { return std::vector<std::int64_t>(v.begin(), v.end()); };
    std::string ties = "[";
    const std::size_t n_ties = std::min(per_task[stsb], per_task[mrpc]);
    std::size_t stsb_at = 0, mrpc_at = 0;
    for (std::size_t t = 0; t < stsb; ++t) stsb_at += per_task[t];
    for (std::size_t t = 0; t < mrpc; ++t) mrpc_at += per_task[t];
    for (std::size_t k = 0; k < n_ties; ++k)
        ties += (k ? ", (" : "(") + std::to_string(stsb_at + k) + ", " + std::to_string(mrpc_at + k) + ")";
    ties += "]";
    g.meta("tasks", nlohmann::json(tasks).dump());
    g.meta("num_classes", nlohmann::json(classes).dump());
    g.meta("per_task_candidates", per_task_json.dump());
    g.meta("train_batch_size_b", std::to_string(select));
    g.meta("stsb_copy", "sts-b index " + std::to_string(stsb) + ", mrpc index " + std::to_string(mrpc) + ": " +
                            std::to_string(n_ties) + " STS-B candidates copied from MRPC");
    g.meta("exact_ties", "candidate pairs with identical non-zero scores (from the STS-B copy): " + ties);
    g.meta("candidate_order", "candidates are the concatenation of one batch per task in task order");
    g.meta("mode", "no gradients; float64");
    g.meta("shapes_meaning", "N candidates; logits.<t> [n_t, C_t]; normalized_entropy [N] = H(softmax(logits))/(log C_t + " +
                                 nlohmann::json(epsilon).dump() +
                                 ") (0 for the regression task); scores [N] = normalized_entropy * task_mean/max_task_mean, "
                                 "then the STS-B copy; selected_indices [b] = topk");
    g.put_ints("input.candidate_task_ids", {task_of.size()}, task_of);
    g.put_ints("input.num_classes", {classes.size()}, as_i64(classes));
    g.put_ints("input.select_size", {}, {static_cast<std::int64_t>(select)});
    g.put("output.normalized_entropy", {task_of.size()}, r.normalized_entropy);
    g.put("output.task_mean_per_candidate", {task_of.size()}, r.task_mean_per_candidate);
    g.put("output.task_means", {tasks.size()}, r.task_means);
    g.put_scalar("output.max_task_mean", r.max_task_mean);
    g.put("output.scores", {task_of.size()}, r.scores);
    g.put_ints("output.selected_indices", {r.selected.size()}, as_i64(r.selected));
    g.put("output.selected_scores", {r.selected.size()}, r.selected_scores);
    g.put("output.scores_float32", {task_of.size()}, r32.scores);
    g.put_ints("output.selected_indices_float32", {r32.selected.size()}, as_i64(r32.selected));
    g.put_ints("output.epoch_length_mt_uncertainty", {}, {static_cast<std::int64_t>(s.steps_per_epoch())});
    g.put_ints("output.epoch_length_uniform_mt_sampling", {}, {static_cast<std::int64_t>(s.steps_per_epoch(1.0, true))});
    g.write(dir, "camtl_mt_uncertainty_five_tasks_stsb_first");
}

// ---- PHA -----------------------------------------------------------------------------------------------------

void pha_files(B& b, const fs::path& dir) {
    {
        random_source rnd(b, variant_seed + 500);
        golden_writer g(pha + "modeling/adapter_layer.py::AdapterLayer.forward (manual path: no generated weights set)",
                        variant_seed + 500);
        task_adapter<B, double> m(b, 10, 3, "");
        rnd.parameters(m);
        auto x = rnd.uniform({2, 4, 10});
        typename task_adapter<B, double>::context ctx;
        const auto y = m.forward(x, ctx);
        const auto r = rnd.uniform(y.shape());
        const auto dx = m.backward(r, ctx);
        g.meta("call", "AdapterLayer(config(encoder_adapter_dim=3, hidden_size=10), is_encoder=True).forward(input.x)");
        g.meta("maths", "out = adapter_up_manual(relu(adapter_down_manual(x))) (no residual)");
        g.meta("shapes_meaning", "x [B, L, d]; output.out [B, L, d]");
        g.put("input.x", x);
        g.put("output.out", y);
        g.put("probe.R", r);
        g.put("grad.input.x", dx);
        g.parameters_and_gradients(m);
        g.write(dir, "pha_adapter_manual_d10_r3");
    }
    {
        random_source rnd(b, variant_seed + 501);
        golden_writer g(pha + "modeling/adapter_layer.py::AdapterLayer.apply_adapter_params + AdapterLayer.forward",
                        variant_seed + 501);
        const std::size_t d = 8, r_ = 2, nb = 4;
        task_adapter<B, double> m(b, d, r_, "", {.own_weights = false});
        auto x = rnd.uniform({nb, 3, d});
        adapter_weights<B, double> w{rnd.uniform({nb, d * r_}), rnd.uniform({nb, r_}), rnd.uniform({nb, r_ * d}),
                                     rnd.uniform({nb, d})};
        typename task_adapter<B, double>::context ctx;
        const auto y = m.forward(x, w, ctx);
        const auto r = rnd.uniform(y.shape());
        const auto gr = m.backward_generated(r, ctx);
        g.meta("call", "a = AdapterLayer(config(decoder_adapter_dim=2, hidden_size=8)); a.apply_adapter_params(bsz=4, ...); "
                       "out = a.forward(input.x)");
        g.meta("maths", "h = relu(x @ dw.view(B,d,r) + db[:,None,:]); out = h @ uw.view(B,r,d) + ub[:,None,:] (per-sample "
                        "batched matmul, no residual)");
        g.meta("shapes_meaning", "x [B, L, d]; uw [B, d*r]; dw [B, d*r]; ub [B, d]; db [B, r]; output.out [B, L, d]");
        g.put("input.x", x);
        g.put("input.dw", w.down_weight);
        g.put("input.db", w.down_bias);
        g.put("input.uw", w.up_weight);
        g.put("input.ub", w.up_bias);
        g.put("output.out", y);
        g.put("probe.R", r);
        g.put("grad.input.x", gr.input);
        g.put("grad.input.dw", gr.weights.down_weight);
        g.put("grad.input.db", gr.weights.down_bias);
        g.put("grad.input.uw", gr.weights.up_weight);
        g.put("grad.input.ub", gr.weights.up_bias);
        g.write(dir, "pha_adapter_generated_d8_r2");
    }
    {
        random_source rnd(b, variant_seed + 502);
        golden_writer g(pha + "modeling/adapter_t5.py::mean_pooling + the retriever MLP built in T5StackWithAdapter.__init__",
                        variant_seed + 502);
        instance_retriever<B, double> m(b, 10, 20, 12, "mlp");
        rnd.parameters(m);
        auto h = rnd.uniform({3, 5, 10});
        const std::vector<std::int64_t> mask_values{1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 0};
        const std::vector<std::uint8_t> mask_bytes(mask_values.begin(), mask_values.end());
        auto mask = tensor<B, std::uint8_t>::from_host(b, {3, 5}, mask_bytes);
        typename instance_retriever<B, double>::context ctx;
        const auto y = m.forward(h, mask, ctx);
        const auto r = rnd.uniform(y.shape());
        const auto dh = m.backward(r, ctx);
        g.meta("call", "out = mlp(mean_pooling(input.encoder_hidden_states, input.encoder_attention_mask))");
        g.meta("shapes_meaning", "encoder_hidden_states [B, Ls, d_model]; encoder_attention_mask [B, Ls] int 0/1; output.sample2 [B, out]");
        g.put("input.encoder_hidden_states", h);
        g.put_ints("input.encoder_attention_mask", {3, 5}, mask_values);
        g.put("output.sample2", y);
        g.put("probe.R", r);
        g.put("grad.input.encoder_hidden_states", dh);
        g.parameters_and_gradients(m);
        g.write(dir, "pha_retriever_d10_h20_o12");
    }
    const pha_contrastive_options contrastive{.temperature = 0.07, .weight = 0.5};
    const std::string temperature = "0.07 (hard-coded: torch.div(..., 0.07)); result multiplied by 0.5 inside the method";
    {
        random_source rnd(b, variant_seed + 503);
        golden_writer g(pha + "third_party/trainers/t5_trainer.py::T5Trainer._ins_ins_loss", variant_seed + 503);
        const std::vector<std::int32_t> tasks{1, 0, 1, 2, 0, 3, 1};
        pha_instance_loss<B, double> loss(b, contrastive);
        auto f = rnd.uniform({tasks.size(), 9});
        typename pha_instance_loss<B, double>::context ctx;
        const double value = loss.forward(f, ids(b, tasks), ctx);
        const double probe = 0.75;
        const auto df = loss.backward(ctx, probe);
        g.meta("call", "T5Trainer._ins_ins_loss(self=None, features=input.features, indices=input.indices)");
        g.meta("temperature", temperature);
        g.meta("batch", "task ids " + json_ids(tasks));
        g.put("input.features", f);
        g.put_ints("input.indices", {tasks.size()}, to_i64(tasks));
        g.put_scalar("output.loss", value);
        g.put_scalar("probe.R", probe);
        g.put("grad.input.features", df);
        g.write(dir, "pha_ins_ins_loss_B7_T4");
    }
    {
        random_source rnd(b, variant_seed + 504);
        golden_writer g(pha + "third_party/trainers/t5_trainer.py::T5Trainer._pro_ins_loss", variant_seed + 504);
        const std::vector<std::int32_t> tasks{2, 0, 2, 1, 0, 3};
        pha_prototype_loss<B, double> loss(b, contrastive);
        auto f = rnd.uniform({tasks.size(), 9}), k = rnd.uniform({5, 9});
        typename pha_prototype_loss<B, double>::context ctx;
        const double value = loss.forward(f, ids(b, tasks), k, ctx);
        const double probe = -1.25;
        const auto gr = loss.backward(ctx, probe);
        g.meta("call", "T5Trainer._pro_ins_loss(self=None, features=input.features, indices=input.indices, task_embed=input.task_embed)");
        g.meta("temperature", temperature);
        g.meta("maths", "l_i = -(s_{i,t_i} - log(sum_t exp(s_it) - exp(s_{i,t_i}))) (the positive prototype is excluded from "
                        "the denominator by subtraction)");
        g.put("input.features", f);
        g.put_ints("input.indices", {tasks.size()}, to_i64(tasks));
        g.put("input.task_embed", k);
        g.put_scalar("output.loss", value);
        g.put_scalar("probe.R", probe);
        g.put("grad.input.features", gr.features);
        g.put("grad.input.task_embed", gr.prototypes);
        g.write(dir, "pha_pro_ins_loss_B6_T5");
    }
    const prototypical_hypernet_config cfg_stated{.condition = 10, .layer_embedding = 6, .layers = 2, .hidden = 14,
                                           .projection = 8, .features = 6, .bottleneck = 3, .layer_norm_eps = 1e-5};
    const std::string options = "d=6, r=3, num_hidden_layers=2";
    const std::string maths = "u = cat([hidden_inputs, layer_embed(l)], 1); x = LayerNorm(linear2(relu(linear1(u)))) (eps 1e-05); "
                              "outputs = weight_up(x), weight_down(x), bias_up(x), bias_down(x)";
    const std::vector<std::int32_t> tasks{1, 0, 1};
    {
        random_source rnd(b, variant_seed + 505);
        golden_writer g(pha + "modeling/adapter_generators.py::ParameterGenerator.forward (+ SimpleGenerator)", variant_seed + 505);
        const auto& cfg = cfg_stated;  // another eps than the authors' 1e-6, stated in the maths line
        pha_hypernet<B, double> m(b, cfg);
        rnd.parameters(m);
        auto k = rows_by_task(b, rnd.uniform({2, cfg.condition}), tasks);
        std::vector<typename pha_hypernet<B, double>::context> ctx(cfg.layers);
        std::vector<adapter_weights<B, double>> w;
        for (std::size_t l = 0; l < cfg.layers; ++l) w.push_back(m.forward(k, l, ctx[l]));
        const std::size_t nb = tasks.size(), dr = cfg.features * cfg.bottleneck;
        auto all = [&](auto member) {
            std::vector<T> parts;
            for (auto& x : w) parts.push_back(x.*member);
            return stack(b, parts, {cfg.layers, nb, parts[0].shape()[1]});
        };
        using W = adapter_weights<B, double>;
        const T up = all(&W::up_weight), down = all(&W::down_weight), bu = all(&W::up_bias), bd = all(&W::down_bias);
        const T ru = rnd.uniform(up.shape()), rd = rnd.uniform(down.shape()), rbu = rnd.uniform(bu.shape()),
                rbd = rnd.uniform(bd.shape());
        auto dk = T::zeros(b, k.shape());
        for (std::size_t l = 0; l < cfg.layers; ++l) {
            W dw{layer_slice(rd, l, {nb, dr}), layer_slice(rbd, l, {nb, cfg.bottleneck}), layer_slice(ru, l, {nb, dr}),
                 layer_slice(rbu, l, {nb, cfg.features})};
            auto gk = m.backward(dw, ctx[l]);
            b.axpy(gk.size(), 1.0, gk.data(), dk.data());
        }
        g.meta("call", "ParameterGenerator(config(num_hidden_layers=2, decoder_adapter_dim=3), hidden_size=6).forward(hidden_inputs=input.hidden_inputs)");
        g.meta("options", options);
        g.meta("maths", maths);
        g.put("input.hidden_inputs", k);
        g.put_ints("input.task_ids", {nb}, to_i64(tasks));
        g.put("output.weight_up", up);
        g.put("output.weight_down", down);
        g.put("output.bias_up", bu);
        g.put("output.bias_down", bd);
        g.put("probe.R.weight_up", ru);
        g.put("probe.R.weight_down", rd);
        g.put("probe.R.bias_up", rbu);
        g.put("probe.R.bias_down", rbd);
        g.put("grad.input.hidden_inputs", dk);
        g.parameters_and_gradients(m);
        g.write(dir, "pha_param_generator_d6_r3_2layers");
    }
    {
        random_source rnd(b, variant_seed + 506);
        golden_writer g(pha + "modeling/adapter_generators.py::ParameterGenerator.forward -> modeling/adapter_layer.py::AdapterLayer.forward",
                        variant_seed + 506);
        // Like the authors' file, this one has no maths line: its ParameterGenerator has the authors' hard-coded
        // LayerNorm eps (1e-6), which the test takes when no maths line states another.
        auto cfg = cfg_stated;
        cfg.layer_norm_eps = 1e-6;
        pha_hypernet<B, double> gen(b, cfg);
        task_adapter<B, double> adapter(b, cfg.features, cfg.bottleneck, "", {.own_weights = false});
        rnd.parameters(gen);
        const std::size_t nb = tasks.size(), len = 4, d = cfg.features;
        auto k = rows_by_task(b, rnd.uniform({2, cfg.condition}), tasks);
        auto x = rnd.uniform({cfg.layers, nb, len, d});
        std::vector<typename pha_hypernet<B, double>::context> gctx(cfg.layers);
        std::vector<typename task_adapter<B, double>::context> actx(cfg.layers);
        std::vector<T> out, dx;
        for (std::size_t l = 0; l < cfg.layers; ++l)
            out.push_back(adapter.forward(layer_slice(x, l, {nb, len, d}), gen.forward(k, l, gctx[l]), actx[l]));
        const T y = stack(b, out, {cfg.layers, nb, len, d});
        const T probe = rnd.uniform(y.shape());
        auto dk = T::zeros(b, k.shape());
        for (std::size_t l = 0; l < cfg.layers; ++l) {
            auto ga = adapter.backward_generated(layer_slice(probe, l, {nb, len, d}), actx[l]);
            dx.push_back(ga.input);
            auto gk = gen.backward(ga.weights, gctx[l]);
            b.axpy(gk.size(), 1.0, gk.data(), dk.data());
        }
        g.meta("call", "params = ParameterGenerator(config, 6).forward(input.hidden_inputs); for each layer l: "
                       "AdapterLayer.apply_adapter_params(3, *params[l]); out[l] = AdapterLayer.forward(input.x[l])");
        g.meta("options", options);
        g.meta("shapes_meaning", "hidden_inputs [B, c]; x [n_layers, B, L, d]; task_ids [B] informational; output.out [n_layers, B, L, d]");
        g.put("input.hidden_inputs", k);
        g.put("input.x", x);
        g.put_ints("input.task_ids", {nb}, to_i64(tasks));
        g.put("output.out", y);
        g.put("probe.R", probe);
        g.put("grad.input.x", stack(b, dx, {cfg.layers, nb, len, d}));
        g.put("grad.input.hidden_inputs", dk);
        gen.visit_parameters([&](const std::string& n, parameter<B, double>& p) {
            g.put("param." + n, p.value);
            g.put("grad.param." + n, p.grad);
        });
        g.write(dir, "pha_generator_adapter_d6_r3_2layers");
    }
}

// ---- HyperFormer -----------------------------------------------------------------------------------------------

/// The generated tensors by the files' names ("down.weight", ...).
T& member(hyperformer_adapter_weights<B, double>& w, const std::string& n) {
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
constexpr hyperformer_block blocks[] = {hyperformer_block::feed_forward, hyperformer_block::self_attention};
std::string block_name(hyperformer_block p) { return p == hyperformer_block::feed_forward ? "feed_forward" : "self_attention"; }

nlohmann::json hyperformer_config(const hyperformer_hypernet_config& c) {
    return {{"input_dim", c.features},
            {"reduction_factor", c.reduction_factor},
            {"task_embedding_dim", c.task_embedding},
            {"task_hidden_dim", c.hidden},
            {"projected_task_embedding_dim", c.projection},
            {"add_layer_norm_before_adapter", c.pre_layer_norm},
            {"add_layer_norm_after_adapter", c.post_layer_norm},
            {"unique_hyper_net_layer_norm", c.task_layer_norm},
            {"efficient_unique_hyper_net", c.variant == hyperformer_variant::hyperformer_pp},
            {"unique_hyper_net", c.variant == hyperformer_variant::hyperformer}};
}

void hyperformer_generator_file(B& b, const fs::path& dir, const hyperformer_hypernet_config& cfg, std::size_t tasks,
                                const std::string& name, std::uint64_t seed) {
    const bool pp = cfg.variant == hyperformer_variant::hyperformer_pp;
    random_source rnd(b, seed);
    golden_writer g(hyperformer + "hyperformer/adapters/adapter_modeling.py::" +
                        (pp ? "AdapterLayersOneHyperNetController" : "AdapterLayersHyperNetController") + ".forward",
                    seed);
    hyperformer_hypernet<B, double> gen(b, cfg);
    rnd.parameters(gen);
    auto z = rnd.uniform({tasks, cfg.task_embedding});
    using C = typename hyperformer_hypernet<B, double>::context;
    using WS = hyperformer_adapter_weights<B, double>;
    std::vector<std::vector<C>> ctx(cfg.layers, std::vector<C>(2));
    std::vector<std::vector<WS>> w(cfg.layers, std::vector<WS>(2)), dw(cfg.layers, std::vector<WS>(2));
    for (std::size_t l = 0; l < cfg.layers; ++l)
        for (auto p : blocks) w[l][static_cast<std::size_t>(p)] = gen.forward(z, l, p, ctx[l][static_cast<std::size_t>(p)]);
    // Outputs stacked task-major [T, n_layers, ...], a probe per output.
    for (auto p : blocks)
        for (const auto& n : field_names) {
            const auto k = static_cast<std::size_t>(p);
            if (member(w[0][k], n).empty()) continue;
            const std::size_t per = member(w[0][k], n).size() / tasks;
            std::vector<double> all(tasks * cfg.layers * per);
            for (std::size_t l = 0; l < cfg.layers; ++l) {
                const auto h = member(w[l][k], n).to_host();
                for (std::size_t t = 0; t < tasks; ++t)
                    std::copy_n(h.begin() + static_cast<std::ptrdiff_t>(t * per), per,
                                all.begin() + static_cast<std::ptrdiff_t>((t * cfg.layers + l) * per));
            }
            std::vector<std::size_t> s{tasks, cfg.layers};
            if (n == "down.weight") s.insert(s.end(), {cfg.bottleneck(), cfg.features});
            else if (n == "up.weight") s.insert(s.end(), {cfg.features, cfg.bottleneck()});
            else s.push_back(per);
            const std::string key = block_name(p) + "." + n;
            g.put("output." + key, s, all);
            const auto probe = rnd.uniform({tasks * cfg.layers * per}).to_host();
            g.put("probe.R." + key, s, probe);
            for (std::size_t l = 0; l < cfg.layers; ++l) {
                std::vector<double> rows(tasks * per);
                for (std::size_t t = 0; t < tasks; ++t)
                    std::copy_n(probe.begin() + static_cast<std::ptrdiff_t>((t * cfg.layers + l) * per), per,
                                rows.begin() + static_cast<std::ptrdiff_t>(t * per));
                member(dw[l][k], n) = T::from_host(b, {tasks, per}, rows);
            }
        }
    auto dz = T::zeros(b, z.shape());
    for (std::size_t l = 0; l < cfg.layers; ++l)
        for (auto p : blocks) {
            auto gz = gen.backward(dw[l][static_cast<std::size_t>(p)], ctx[l][static_cast<std::size_t>(p)]);
            b.axpy(gz.size(), 1.0, gz.data(), dz.data());
        }
    g.meta("call", std::string(pp ? "AdapterLayersOneHyperNetController" : "AdapterLayersHyperNetController") +
                       "(config, num_layers=" + std::to_string(cfg.layers) +
                       ").forward(task_embedding=input.task_embeddings[t], layer_id=l)");
    g.meta("config", hyperformer_config(cfg).dump());
    g.meta("maths", "e = LayerNorm(task_hypernet(cat([task_embedding, layer_id_embeddings(l)" +
                        std::string(pp ? ", adapters_block_type(p)" : "") + "]))) (eps " +
                        nlohmann::json(cfg.layer_norm_eps).dump() + "); down/up/pre/post heads");
    g.meta("shapes_meaning", "task_embeddings [T, D]; outputs stacked as [T, n_layers, ...]");
    g.put("input.task_embeddings", z);
    g.put("grad.input.task_embeddings", dz);
    g.parameters_and_gradients(gen);
    g.write(dir, name);
}

void hyperformer_files(B& b, const fs::path& dir) {
    hyperformer_hypernet_config c;
    c.task_embedding = 8;
    c.layers = 3;
    c.hidden = 12;
    c.projection = 10;
    c.features = 12;
    c.reduction_factor = 3;
    c.layer_norm_eps = 1e-5;
    c.variant = hyperformer_variant::hyperformer;
    hyperformer_generator_file(b, dir, c, 2, "hyperformer_generator_D8_3layers", variant_seed + 600);
    c.variant = hyperformer_variant::hyperformer_pp;
    c.pre_layer_norm = true;
    c.post_layer_norm = false;
    hyperformer_generator_file(b, dir, c, 4, "hyperformerpp_generator_prenorm_only", variant_seed + 601);

    // The generator and the adapter, one task, as MetaLayersAdapterController applies it.
    random_source rnd(b, variant_seed + 602);
    golden_writer g(hyperformer + "hyperformer/adapters/adapter_modeling.py::AdapterLayersOneHyperNetController.forward -> "
                                  "hyperformer/adapters/adapter_controller.py::MetaLayersAdapterController.forward",
                    variant_seed + 602);
    c.layers = 2;
    c.pre_layer_norm = false;
    c.post_layer_norm = true;
    c.layer_norm_eps = 1e-6;
    const double adapter_eps = 1e-4;
    const std::size_t nb = 2, len = 3, d = c.features;
    hyperformer_hypernet<B, double> gen(b, c);
    hyperformer_adapter<B, double> adapter(b, d, c.bottleneck(), "",
                                           {.pre_layer_norm = false, .post_layer_norm = true, .layer_norm_eps = adapter_eps});
    rnd.parameters(gen);
    auto z = rnd.uniform({1, c.task_embedding});
    auto dz = T::zeros(b, z.shape());
    const std::string inputs[] = {"input.ff_inputs", "input.sa_inputs"};
    for (auto p : blocks) {
        const auto k = static_cast<std::size_t>(p);
        auto y = rnd.uniform({c.layers, nb, len, d});
        std::vector<typename hyperformer_hypernet<B, double>::context> gctx(c.layers);
        std::vector<typename hyperformer_adapter<B, double>::context> actx(c.layers);
        std::vector<T> out, dy;
        for (std::size_t l = 0; l < c.layers; ++l)
            out.push_back(adapter.forward(layer_slice(y, l, {nb, len, d}), gen.forward(z, l, p, gctx[l]), actx[l]));
        const T o = stack(b, out, {c.layers, nb, len, d});
        const T probe = rnd.uniform(o.shape());
        for (std::size_t l = 0; l < c.layers; ++l) {
            auto ga = adapter.backward(layer_slice(probe, l, {nb, len, d}), actx[l]);
            dy.push_back(ga.input);
            auto gz = gen.backward(ga.weights, gctx[l]);
            b.axpy(gz.size(), 1.0, gz.data(), dz.data());
        }
        g.put(inputs[k], y);
        g.put("output." + block_name(p), o);
        g.put("probe.R." + block_name(p), probe);
        g.put("grad." + inputs[k], stack(b, dy, {c.layers, nb, len, d}));
    }
    auto config = hyperformer_config(c);
    config["non_linearity"] = "gelu_new";
    config.erase("unique_hyper_net");
    g.meta("call", "for l in 0..1: blk = gen(input.task_embedding, l); output.<block>[l] = MetaLayersAdapterController(config)(input.<block>_inputs[l], blk.<block>)");
    g.meta("config", config.dump());
    g.meta("maths", "y' = y + F.layer_norm(F.linear(gelu_new(F.linear(y, down.weight, down.bias)), up.weight, up.bias), (d,), "
                    "weight=post_norm.weight, bias=post_norm.bias) with eps=" + nlohmann::json(adapter_eps).dump() + "; r = d // reduction_factor");
    g.meta("shapes_meaning", "task_embedding [D] one task; ff_inputs / sa_inputs [n_layers, B, L, d]; outputs [n_layers, B, L, d]");
    g.put("input.task_embedding", {c.task_embedding}, z.to_host());
    g.put("grad.input.task_embedding", {c.task_embedding}, dz.to_host());
    g.parameters_and_gradients(gen);
    g.write(dir, "hyperformerpp_adapter_d12_B2_eps1e-4");
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: make_variant_goldens <output folder>\n";
        return 2;
    }
    try {
        const fs::path dir = argv[1];
        fs::create_directories(dir);
        B b;
        film_files(b, dir);
        cln_files(b, dir);
        bottleneck_and_adapter_files(b, dir);
        cbda_files(b, dir);
        self_attention_file(b, dir);
        layer_and_encoder_files(b, dir);
        mt_uncertainty_file(b, dir);
        pha_files(b, dir);
        hyperformer_files(b, dir);
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "make_variant_goldens: " << e.what() << "\n";
        return 1;
    }
}
