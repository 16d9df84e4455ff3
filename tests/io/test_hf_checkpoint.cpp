#define BOOST_TEST_MODULE io_hf_checkpoint
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#if defined(HYPERADAPT_TEST_WITH_TEXT)
#include "hyperadapt/data/registry.hpp"
#include "hyperadapt/text/wordpiece.hpp"
#endif
#include "hyperadapt/io/hf_checkpoint.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/models/bert.hpp"
#include "support/backends.hpp"
#include "support/temp_dir.hpp"
#include "support/max_keeping_nan.hpp"

using namespace hyperadapt;
using namespace hyperadapt::io;
using hyperadapt::test::layer_backends;
using hyperadapt::test::shared_data_dir;
using hyperadapt::test::temp_dir;
namespace utf = boost::unit_test;

namespace {

const bert_config tiny{.vocab_size = 20, .hidden = 8, .layers = 2, .heads = 2, .intermediate = 12, .max_position = 10};

/// Every parameter (LayerNorm gains and biases included) gets distinct values, so a parameter loaded into
/// the wrong place cannot go unnoticed.
template <class B, class T>
void randomize(B& b, bert_model<B, T>& m, std::uint64_t seed) {
    m.visit_parameters([&](const std::string&, parameter<B, T>& p) { b.fill_uniform(p.size(), seed++, 0, T(-1), T(1), p.value.data()); });
}

template <class B, class T>
std::map<std::string, std::vector<T>> snapshot(bert_model<B, T>& m) {
    std::map<std::string, std::vector<T>> s;
    m.visit_parameters([&](const std::string& n, parameter<B, T>& p) { s[n] = p.value.to_host(); });
    return s;
}

template <class T>
bool bit_equal(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

/// A checkpoint file holding the given model's tensors under their names, renamed and extended by `edit`.
template <class B>
void write_edited(bert_model<B, float>& m, const std::filesystem::path& file,
                  const std::function<bool(std::string&)>& rename, safetensors_writer extra = {}) {
    m.visit_parameters([&](const std::string& n, parameter<B, float>& p) {
        std::string name = n;
        if (!rename(name)) return;
        std::vector<std::size_t> dims;
        for (std::size_t i = 0; i < p.value.shape().rank(); ++i) dims.push_back(p.value.shape()[i]);
        extra.add(name, dims, p.value.to_host());
    });
    extra.set_metadata("format", "pt");
    extra.write(file);
}

void write_text(const std::filesystem::path& p, const std::string& s) { hyperadapt::test::write_bytes(p, s); }

/// Expects io_error whose message contains every fragment (and prints it).
template <class F>
void expect_io_error(F&& f, std::initializer_list<std::string> fragments) {
    try {
        f();
        BOOST_ERROR("no io_error");
    } catch (const io_error& e) {
        const std::string msg = e.what();
        BOOST_TEST_MESSAGE("  " << msg);
        for (const auto& s : fragments) BOOST_TEST(msg.find(s) != std::string::npos, "'" << s << "' missing in: " << msg);
    }
}

// ---- the fetched MiniLM checkpoint (scripts/fetch_model.sh) ------------------------------------------------

std::filesystem::path model_dir() {
    if (const char* env = std::getenv("HYPERADAPT_MODEL_DIR")) return env;
    return HYPERADAPT_MODEL_DIR_DEFAULT;
}

boost::test_tools::assertion_result model_present(utf::test_unit_id) {
    const bool ok = std::filesystem::exists(model_dir() / "model.safetensors") &&
                    std::filesystem::exists(model_dir() / "config.json");
    boost::test_tools::assertion_result r(ok);
    if (!ok) {
        // Printed at every log level, so a skipped parity check is visible in ctest's output.
        std::cout << "SKIPPED: no all-MiniLM-L6-v2 checkpoint in " << model_dir().string()
                  << " (run scripts/fetch_model.sh, or set HYPERADAPT_MODEL_DIR)" << std::endl;
        r.message() << "no model in " << model_dir().string();
    }
    return r;
}

struct parity {
    double last_hidden = 0, last_hidden_unpadded = 0, pooled = 0;
};

/// Runs the model on a reference file's ids and returns the largest absolute differences to its outputs.
template <class B>
parity compare_with_reference(B& b, bert_model<B, float>& m, const std::filesystem::path& ref_file) {
    safetensors_reader ref(ref_file);
    const auto& ids_entry = ref.at("input_ids");
    const std::size_t batch = ids_entry.shape.at(0), seq = ids_entry.shape.at(1), hidden = m.config().hidden;
    const auto ids = ref.read<std::int32_t>("input_ids");
    const auto types = ref.read<std::int32_t>("token_type_ids");
    const auto mask32 = ref.read<std::int32_t>("attention_mask");
    const std::vector<std::uint8_t> mask(mask32.begin(), mask32.end());
    const auto want_hidden = ref.read<float>("last_hidden_state");
    const auto want_pooled = ref.read<float>("pooler_output");

    typename bert_model<B, float>::context ctx;
    const auto out = m.forward(tensor<B, std::int32_t>::from_host(b, {batch, seq}, ids),
                               tensor<B, std::int32_t>::from_host(b, {batch, seq}, types),
                               attention_mask<B>::from_host(b, {batch, seq}, mask), ctx, run_mode::inference());
    const auto got_hidden = out.last_hidden.to_host();
    const auto got_pooled = out.pooled.to_host();
    BOOST_REQUIRE_EQUAL(got_hidden.size(), want_hidden.size());
    BOOST_REQUIRE_EQUAL(got_pooled.size(), want_pooled.size());
    parity p;
    for (std::size_t i = 0; i < got_hidden.size(); ++i) {
        const double d = std::abs(double(got_hidden[i]) - double(want_hidden[i]));
        p.last_hidden = std::max(p.last_hidden, d);
        if (mask[i / hidden]) p.last_hidden_unpadded = std::max(p.last_hidden_unpadded, d);
    }
    for (std::size_t i = 0; i < got_pooled.size(); ++i)
        p.pooled = hyperadapt::test::max_keeping_nan(p.pooled, std::abs(double(got_pooled[i]) - double(want_pooled[i])));
    std::cout << "MiniLM parity (" << B::gemm_provider::name << ", " << ref_file.filename().string() << ", " << batch
              << " pairs x " << seq << " tokens): max |diff| last_hidden " << p.last_hidden << " (unpadded "
              << p.last_hidden_unpadded << "), pooled " << p.pooled << std::endl;
    return p;
}

}  // namespace

// ---- config.json ---------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(reads_a_hugging_face_bert_config) {
    temp_dir dir;
    write_text(dir / "config.json", R"({
      "_name_or_path": "nreimers/MiniLM-L6-H384-uncased", "architectures": ["BertModel"],
      "attention_probs_dropout_prob": 0.1, "gradient_checkpointing": false, "hidden_act": "gelu",
      "hidden_dropout_prob": 0.2, "hidden_size": 384, "initializer_range": 0.02, "intermediate_size": 1536,
      "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert", "num_attention_heads": 12,
      "num_hidden_layers": 6, "pad_token_id": 0, "position_embedding_type": "absolute",
      "transformers_version": "4.8.2", "type_vocab_size": 2, "use_cache": true, "vocab_size": 30522})");
    for (const auto& where : {dir.path(), dir / "config.json"}) {
        const auto c = read_bert_config(where);
        BOOST_TEST(c.vocab_size == 30522u);
        BOOST_TEST(c.hidden == 384u);
        BOOST_TEST(c.layers == 6u);
        BOOST_TEST(c.heads == 12u);
        BOOST_TEST(c.intermediate == 1536u);
        BOOST_TEST(c.max_position == 512u);
        BOOST_TEST(c.type_vocab_size == 2u);
        BOOST_TEST(c.hidden_dropout == 0.2);
        BOOST_TEST(c.attention_dropout == 0.1);
        BOOST_TEST(c.layer_norm_eps == 1e-12);
        BOOST_TEST((c.pad_token_id == 0));
    }
    // Absent fields take BertConfig's defaults.
    write_text(dir / "config.json", R"({"hidden_size": 64, "num_attention_heads": 4})");
    const auto c = read_bert_config(dir.path());
    BOOST_TEST(c.hidden == 64u);
    BOOST_TEST(c.layers == 12u);
    BOOST_TEST(c.vocab_size == 30522u);
    BOOST_TEST((c.pad_token_id == 0));
    // pad_token_id reaches the word embeddings' padding row; null means none.
    write_text(dir / "config.json", R"({"vocab_size": 20, "hidden_size": 8, "num_attention_heads": 2,
      "num_hidden_layers": 1, "intermediate_size": 12, "max_position_embeddings": 10, "pad_token_id": 3})");
    const auto p3 = read_bert_config(dir.path());
    BOOST_TEST((p3.pad_token_id == 3));
    cpu b;
    bert_model<cpu, float> m3(b, p3);
    BOOST_TEST((m3.embeddings().word_embeddings().padding_idx() == 3));
    write_text(dir / "config.json", R"({"vocab_size": 20, "hidden_size": 8, "num_attention_heads": 2,
      "num_hidden_layers": 1, "intermediate_size": 12, "max_position_embeddings": 10, "pad_token_id": null})");
    const auto none = read_bert_config(dir.path());
    BOOST_TEST(!none.pad_token_id.has_value());
    bert_model<cpu, float> m_none(b, none);
    BOOST_TEST(!m_none.embeddings().word_embeddings().padding_idx().has_value());
}

BOOST_AUTO_TEST_CASE(refuses_configs_it_cannot_compute_with_clear_messages) {
    temp_dir dir;
    const auto p = dir / "config.json";
    auto with = [&](const std::string& json, std::initializer_list<std::string> fragments) {
        write_text(p, json);
        std::vector<std::string> f(fragments);
        f.push_back(p.string());
        try {
            (void)read_bert_config(p);
            BOOST_ERROR("no error for " << json);
        } catch (const io_error& e) {
            BOOST_TEST_MESSAGE("  " << e.what());
            for (const auto& s : f) BOOST_TEST(std::string(e.what()).find(s) != std::string::npos, "'" << s << "' missing in: " << e.what());
        }
    };
    with(R"({"model_type": "roberta"})", {"model_type 'roberta' is not supported", "BERT"});
    with(R"({"model_type": "bert", "hidden_act": "gelu_new"})", {"hidden_act 'gelu_new' is not supported", "erf"});
    with(R"({"hidden_act": "relu"})", {"hidden_act 'relu'"});
    with(R"({"position_embedding_type": "relative_key"})", {"position_embedding_type 'relative_key' is not supported"});
    with(R"({"is_decoder": true})", {"is_decoder = true is not supported"});
    with(R"({"hidden_size": 100, "num_attention_heads": 12})", {"hidden_size 100 is not divisible by num_attention_heads 12"});
    with(R"({"hidden_size": "384"})", {"'hidden_size' must be a positive integer, got \"384\""});
    with(R"({"num_hidden_layers": -1})", {"'num_hidden_layers' must be a positive integer, got -1"});
    with(R"({"vocab_size": 0})", {"'vocab_size' must be a positive integer"});
    with(R"({"layer_norm_eps": 0})", {"'layer_norm_eps' must be a number in (0, 1)"});
    with(R"({"hidden_dropout_prob": 1.5})", {"'hidden_dropout_prob' must be a number in [0, 1)"});
    with(R"({"vocab_size": 100, "pad_token_id": 100})", {"'pad_token_id' must be null or an integer in [0, vocab_size 100), got 100"});
    with(R"({"pad_token_id": -1})", {"'pad_token_id' must be null or an integer", "got -1"});
    with(R"({"pad_token_id": "0"})", {"'pad_token_id' must be null or an integer", "got \"0\""});
    with(R"({"hidden_size": 384,)", {"not valid JSON"});
    with(R"([1, 2])", {"not a JSON object"});
    BOOST_CHECK_EXCEPTION((void)read_bert_config(dir / "nothing.json"), io_error, [&](const io_error& e) {
        return std::string(e.what()).find("nothing.json: cannot open") != std::string::npos;
    });
}

BOOST_AUTO_TEST_CASE(written_config_reads_back_identically) {
    temp_dir dir;
    bert_config c = tiny;
    c.hidden_dropout = 0.15;
    c.layer_norm_eps = 1e-7;
    write_bert_config(c, dir / "config.json");
    const auto r = read_bert_config(dir.path());
    BOOST_TEST(r.vocab_size == c.vocab_size);
    BOOST_TEST(r.hidden == c.hidden);
    BOOST_TEST(r.layers == c.layers);
    BOOST_TEST(r.heads == c.heads);
    BOOST_TEST(r.intermediate == c.intermediate);
    BOOST_TEST(r.max_position == c.max_position);
    BOOST_TEST(r.type_vocab_size == c.type_vocab_size);
    BOOST_TEST(r.hidden_dropout == c.hidden_dropout);
    BOOST_TEST(r.attention_dropout == c.attention_dropout);
    BOOST_TEST(r.layer_norm_eps == c.layer_norm_eps);
    BOOST_TEST(r.initializer_range == c.initializer_range);
    BOOST_TEST((r.pad_token_id == 0));
    const auto text = hyperadapt::test::read_bytes(dir / "config.json");
    BOOST_TEST(text.find("\"model_type\": \"bert\"") != std::string::npos);
    BOOST_TEST(text.find("\"BertModel\"") != std::string::npos);
    BOOST_TEST(text.find("\"pad_token_id\": 0") != std::string::npos);
    c.pad_token_id = 7;
    write_bert_config(c, dir / "config.json");
    BOOST_TEST((read_bert_config(dir.path()).pad_token_id == 7));
    c.pad_token_id = std::nullopt;
    write_bert_config(c, dir / "config.json");
    BOOST_TEST(hyperadapt::test::read_bytes(dir / "config.json").find("\"pad_token_id\": null") != std::string::npos);
    BOOST_TEST(!read_bert_config(dir.path()).pad_token_id.has_value());
}

// ---- weights -------------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE_TEMPLATE(save_then_load_is_bit_exact, B, layer_backends) {
    B b;
    temp_dir dir;
    bert_model<B, float> a(b, tiny);
    randomize(b, a, 11);
    save_pretrained(a, dir / "ckpt");
    BOOST_TEST(std::filesystem::exists(dir / "ckpt" / "config.json"));
    BOOST_TEST(safetensors_reader(dir / "ckpt" / "model.safetensors").metadata().at("format") == "pt");

    bert_model<B, float> m(b, read_bert_config(dir / "ckpt"));
    const auto report = load_pretrained(m, dir / "ckpt");
    BOOST_TEST(report.complete(), report.str());
    BOOST_TEST(report.mapping.empty());
    BOOST_TEST(report.unexpected.empty());
    BOOST_TEST(report.loaded.size() == 5u + 2u * 16u + 2u);
    const auto want = snapshot(a), got = snapshot(m);
    for (const auto& [name, values] : want) BOOST_TEST(bit_equal(values, got.at(name)), name);

    // The same forward results, bit for bit (the query/key/value views landed in the fused buffer).
    std::vector<std::int32_t> ids{1, 5, 7, 2, 3, 9, 4, 0};
    auto in = tensor<B, std::int32_t>::from_host(b, {2, 4}, ids);
    typename bert_model<B, float>::context ca, cm;
    const auto oa = a.forward(in, {}, {}, ca, run_mode::inference());
    const auto om = m.forward(in, {}, {}, cm, run_mode::inference());
    BOOST_TEST(bit_equal(oa.last_hidden.to_host(), om.last_hidden.to_host()));
    BOOST_TEST(bit_equal(oa.pooled.to_host(), om.pooled.to_host()));

    // double models: F64 keeps every bit; the default F32 rounds once.
    bert_model<B, double> d(b, tiny), d64(b, tiny), d32(b, tiny);
    randomize(b, d, 40);
    save_safetensors(d, dir / "d64.safetensors", {.scalar = dtype::f64});
    save_safetensors(d, dir / "d32.safetensors");
    BOOST_TEST(load_pretrained(d64, dir / "d64.safetensors").complete());
    BOOST_TEST(load_pretrained(d32, dir / "d32.safetensors").complete());
    const auto wd = snapshot(d), g64 = snapshot(d64), g32 = snapshot(d32);
    for (const auto& [name, values] : wd) {
        BOOST_TEST(bit_equal(values, g64.at(name)), name);
        const auto& r = g32.at(name);
        for (std::size_t i = 0; i < values.size(); ++i)
            if (r[i] != double(float(values[i]))) BOOST_FAIL(name << "[" << i << "] not rounded to float once");
    }
}

BOOST_AUTO_TEST_CASE(config_that_disagrees_with_the_weights_names_the_tensor_and_both_shapes) {
    cpu b;
    temp_dir dir;
    bert_model<cpu, float> a(b, tiny);
    randomize(b, a, 3);
    save_pretrained(a, dir.path());
    bert_config wrong = tiny;
    wrong.intermediate = 16;
    bert_model<cpu, float> m(b, wrong);
    randomize(b, m, 99);
    const auto before = snapshot(m);
    expect_io_error([&] { (void)load_pretrained(m, dir.path()); },
                    {(dir / "model.safetensors").string(), "nothing was loaded",
                     "'encoder.layer.0.intermediate.dense.weight' is [12, 8] in the checkpoint",
                     "the model's 'encoder.layer.0.intermediate.dense.weight' is (16, 8)",
                     "'encoder.layer.1.output.dense.weight' is [8, 12]"});
    const auto after = snapshot(m);
    for (const auto& [name, values] : before) BOOST_TEST(bit_equal(values, after.at(name)), name << " was modified");

    // Non-strict: the mis-shaped tensors are skipped and reported; everything else loads.
    const auto r = load_pretrained(m, dir.path(), {.strict = false});
    BOOST_TEST(r.mismatched.size() == 6u);  // per layer: intermediate weight and bias, output weight
    BOOST_TEST(r.loaded.size() == 5u + 2u * 16u + 2u - 6u);
    BOOST_TEST(r.mismatched.front().checkpoint == (std::vector<std::size_t>{12, 8}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(task_checkpoints_with_a_prefix_and_heads_report_unexpected_and_ignored_tensors) {
    cpu b;
    temp_dir dir;
    bert_model<cpu, float> a(b, tiny);
    randomize(b, a, 5);
    // As BertForSequenceClassification saves it with transformers < 4.31: "bert." prefix, a classifier,
    // and the position_ids buffer.
    safetensors_writer extra;
    extra.add("classifier.weight", {3, 8}, std::vector<float>(24, 0.5f));
    extra.add("classifier.bias", {3}, std::vector<float>(3, 0.0f));
    std::vector<std::int64_t> positions(10);
    for (std::size_t i = 0; i < positions.size(); ++i) positions[i] = std::int64_t(i);
    extra.add("bert.embeddings.position_ids", {1, 10}, positions);
    write_edited(a, dir / "task.safetensors", [](std::string& n) { n = "bert." + n; return true; }, std::move(extra));

    bert_model<cpu, float> m(b, tiny);
    const auto r = load_pretrained(m, dir / "task.safetensors");
    BOOST_TEST_MESSAGE("  " << r.str());
    BOOST_TEST(r.complete());
    BOOST_TEST(r.mapping == "+bert");
    BOOST_TEST(r.unexpected == (std::vector<std::string>{"classifier.bias", "classifier.weight"}), boost::test_tools::per_element());
    BOOST_TEST(r.ignored == std::vector<std::string>{"bert.embeddings.position_ids"}, boost::test_tools::per_element());
    const auto want = snapshot(a), got = snapshot(m);
    for (const auto& [name, values] : want) BOOST_TEST(bit_equal(values, got.at(name)), name);
}

BOOST_AUTO_TEST_CASE(missing_tensors_throw_when_strict_and_are_reported_otherwise) {
    cpu b;
    temp_dir dir;
    bert_model<cpu, float> a(b, tiny);
    randomize(b, a, 8);
    write_edited(a, dir / "partial.safetensors",
                 [](std::string& n) { return n != "pooler.dense.bias" && n != "encoder.layer.1.attention.self.key.weight"; });
    bert_model<cpu, float> m(b, tiny);
    expect_io_error([&] { (void)load_pretrained(m, dir / "partial.safetensors"); },
                    {"partial.safetensors", "2 missing", "encoder.layer.1.attention.self.key.weight", "pooler.dense.bias"});
    randomize(b, m, 77);
    const auto kept = m.encoder_stack().layer(1).attention().layer().key_weight().value.to_host();
    const auto r = load_pretrained(m, dir / "partial.safetensors", {.strict = false});
    BOOST_TEST(r.missing == (std::vector<std::string>{"encoder.layer.1.attention.self.key.weight", "pooler.dense.bias"}),
               boost::test_tools::per_element());
    BOOST_TEST(!r.complete());
    // The missing key weight keeps its value while query and value, its neighbours in the fused buffer, load.
    BOOST_TEST(bit_equal(m.encoder_stack().layer(1).attention().layer().key_weight().value.to_host(), kept));
    BOOST_TEST(bit_equal(m.encoder_stack().layer(1).attention().layer().query_weight().value.to_host(),
                         a.encoder_stack().layer(1).attention().layer().query_weight().value.to_host()));
}

namespace {
/// A task model whose encoder sits under "bert.", as in BertForSequenceClassification.
struct classifier_model {
    using backend_type = cpu;
    using value_type = float;
    classifier_model(cpu& b, const bert_config& c) : bert(b, c), head(b, c.hidden, 3, "classifier") {}
    template <class F>
    void visit_parameters(F&& f) {
        bert.visit_parameters([&](const std::string& n, parameter<cpu, float>& p) { f(join_name("bert", n), p); });
        head.visit_parameters(f);
    }
    bert_model<cpu, float> bert;
    linear<cpu, float> head;
};
}  // namespace

BOOST_AUTO_TEST_CASE(a_prefixed_task_model_loads_a_bare_encoder_checkpoint) {
    cpu b;
    temp_dir dir;
    bert_model<cpu, float> a(b, tiny);
    randomize(b, a, 21);
    save_pretrained(a, dir.path());
    classifier_model m(b, tiny);
    expect_io_error([&] { (void)load_pretrained(m, dir.path()); }, {"2 missing", "classifier.weight", "classifier.bias"});
    const auto r = load_pretrained(m, dir.path(), {.strict = false});
    BOOST_TEST(r.mapping == "-bert");
    BOOST_TEST(r.loaded.size() == 5u + 2u * 16u + 2u);
    BOOST_TEST(r.missing == (std::vector<std::string>{"classifier.weight", "classifier.bias"}), boost::test_tools::per_element());
    BOOST_TEST(bit_equal(snapshot(m.bert).at("embeddings.word_embeddings.weight"), snapshot(a).at("embeddings.word_embeddings.weight")));
}

BOOST_AUTO_TEST_CASE(unusable_checkpoint_folders_are_io_errors) {
    cpu b;
    temp_dir dir;
    bert_model<cpu, float> m(b, tiny);
    expect_io_error([&] { (void)load_pretrained(m, dir / "absent"); }, {"absent: no such file or directory"});
    expect_io_error([&] { (void)load_pretrained(m, dir.path()); }, {dir.path().string(), "no model.safetensors"});
    write_text(dir / "pytorch_model.bin", "not really");
    expect_io_error([&] { (void)load_pretrained(m, dir.path()); }, {"only pytorch_model.bin", "safe_serialization=True"});
    // An integer tensor where a weight belongs.
    safetensors_writer w;
    w.add("pooler.dense.bias", {8}, std::vector<std::int64_t>(8, 1));
    w.write(dir / "ints.safetensors");
    expect_io_error([&] { (void)load_pretrained(m, dir / "ints.safetensors", {.strict = false}); },
                    {"ints.safetensors", "tensor 'pooler.dense.bias' has dtype I64", "needs a floating dtype"});
}

BOOST_AUTO_TEST_CASE(sharded_checkpoints_load_through_their_index) {
    cpu b;
    temp_dir dir;
    bert_model<cpu, float> a(b, tiny);
    randomize(b, a, 31);
    write_edited(a, dir / "model-00001-of-00002.safetensors", [](std::string& n) { return n.rfind("encoder.", 0) != 0; });
    write_edited(a, dir / "model-00002-of-00002.safetensors", [](std::string& n) { return n.rfind("encoder.", 0) == 0; });
    write_text(dir / "model.safetensors.index.json",
               R"({"metadata": {}, "weight_map": {"embeddings.word_embeddings.weight": "model-00001-of-00002.safetensors",
                   "encoder.layer.0.output.dense.weight": "model-00002-of-00002.safetensors"}})");
    bert_model<cpu, float> m(b, tiny);
    const auto r = load_pretrained(m, dir.path());
    BOOST_TEST(r.files.size() == 2u);
    BOOST_TEST(r.complete(), r.str());
    const auto want = snapshot(a), got = snapshot(m);
    for (const auto& [name, values] : want) BOOST_TEST(bit_equal(values, got.at(name)), name);
}

// ---- parity with Hugging Face transformers on the real all-MiniLM-L6-v2 -----------------------------------

BOOST_AUTO_TEST_SUITE(minilm, *utf::precondition(model_present))

BOOST_AUTO_TEST_CASE_TEMPLATE(matches_transformers_on_sentence_pairs, B, layer_backends) {
    B b;
    const auto config = read_bert_config(model_dir());
    BOOST_TEST(config.hidden == 384u);
    BOOST_TEST(config.layers == 6u);
    bert_model<B, float> m(b, config);
    const auto report = load_pretrained(m, model_dir());
    BOOST_TEST_MESSAGE("  " << report.str());
    BOOST_TEST(report.complete());
    BOOST_TEST(report.loaded.size() == 103u);
    BOOST_TEST(report.unexpected.empty());

    // Sentence pairs written for the project (committed) ...
    const auto own = compare_with_reference(b, m, std::filesystem::path(HYPERADAPT_TEST_DATA_DIR) / "reference" /
                                                      "minilm_pairs.safetensors");
    BOOST_TEST(own.last_hidden <= 1e-4);
    BOOST_TEST(own.pooled <= 1e-4);
}

#if defined(HYPERADAPT_TEST_WITH_TEXT)
namespace {
/// tests/reference/make_bert_reference.py's input_hash: FNV-1a 64 over the row's input_ids, then its
/// token_type_ids, each as 4 bytes int32 little-endian.
std::uint64_t input_hash(std::span<const std::int32_t> ids, std::span<const std::int32_t> types) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (const auto row : {ids, types})
        for (const std::int32_t v : row)
            for (int k = 0; k < 4; ++k) h = (h ^ ((static_cast<std::uint32_t>(v) >> (8 * k)) & 0xffu)) * 0x100000001b3ull;
    return h;
}

/// make_bert_reference.py's positions for a row of `length` real tokens.
std::vector<std::int64_t> reference_positions(std::int64_t length) {
    return {0, 1, 2, 3, 4 + (length - 5) / 4, 4 + (length - 5) * 2 / 4, 4 + (length - 5) * 3 / 4, length - 1};
}
}  // namespace
#endif

// The first 16 GLUE RTE dev pairs and the first 16 MRPC dev pairs, read from the shared data with the
// library's readers, tokenized with its WordPiece (max_length 128, longest_first, padded to 128) and run at
// full length. The committed reference (tests/data/reference/minilm_glue_outputs.safetensors) holds no
// text or ids, only transformers' outputs and a hash of each row's ids, which must match ours first.
BOOST_AUTO_TEST_CASE_TEMPLATE(matches_transformers_on_32_glue_dev_pairs, B, layer_backends) {
#if !defined(HYPERADAPT_TEST_WITH_TEXT)
    std::cout << "SKIPPED: GLUE pair parity needs hyperadapt::text (utf8proc) for the WordPiece tokenizer" << std::endl;
#else
    namespace data = hyperadapt::data;
    const std::filesystem::path root = shared_data_dir();
    const auto rte_file = data::task_file("rte", root, data::split::dev);
    const auto mrpc_file = data::task_file("mrpc", root, data::split::dev);
    if (!std::filesystem::exists(rte_file) || !std::filesystem::exists(mrpc_file)) {
        std::cout << "SKIPPED: GLUE pair parity: no " << rte_file.string() << " or " << mrpc_file.string()
                  << " (set HYPERADAPT_SHARED_DATA to the folder holding glue/)" << std::endl;
        return;
    }
    safetensors_reader ref(std::filesystem::path(HYPERADAPT_TEST_DATA_DIR) / "reference" / "minilm_glue_outputs.safetensors");
    constexpr std::size_t per_task = 16, pairs = 2 * per_task, seq = 128, picks = 8;
    const auto want_pooled = ref.read<float>("pooler_output");
    const auto want_hidden = ref.read<float>("last_hidden_state");
    const auto positions = ref.read<std::int64_t>("positions");
    const auto lengths = ref.read<std::int64_t>("lengths");
    const auto hashes = ref.read<std::int64_t>("input_hash");
    const auto lines = ref.read<std::int64_t>("source_line");
    B b;
    const auto config = read_bert_config(model_dir());
    const std::size_t hidden = config.hidden;
    BOOST_REQUIRE(ref.at("last_hidden_state").shape == (std::vector<std::size_t>{pairs, picks, hidden}));
    BOOST_REQUIRE(ref.at("pooler_output").shape == (std::vector<std::size_t>{pairs, hidden}));
    BOOST_REQUIRE(ref.at("positions").shape == (std::vector<std::size_t>{pairs, picks}));
    BOOST_REQUIRE(lengths.size() == pairs && hashes.size() == pairs && lines.size() == pairs);

    // The pairs, from the files the reference was made from (same rows: source_line).
    std::vector<data::example> examples;
    for (const char* task : {"rte", "mrpc"}) {
        const auto d = data::load_task(task, root, data::split::dev);
        BOOST_REQUIRE(d.size() >= per_task);
        examples.insert(examples.end(), d.examples.begin(), d.examples.begin() + per_task);
    }
    std::vector<std::pair<std::string_view, std::string_view>> text;
    for (std::size_t i = 0; i < pairs; ++i) {
        BOOST_TEST(examples[i].line == std::size_t(lines[i]), "pair " << i);
        BOOST_REQUIRE(examples[i].text_b.has_value());
        text.emplace_back(examples[i].text_a, *examples[i].text_b);
    }
    const auto tok = hyperadapt::text::bert_tokenizer::from_file(model_dir() / "vocab.txt");
    const auto batch = tok.encode_pair_batch(text, {.max_length = seq,
                                                    .truncation = hyperadapt::text::truncation_strategy::longest_first,
                                                    .padding = hyperadapt::text::padding_strategy::max_length});
    BOOST_REQUIRE(batch.batch == pairs && batch.seq_len == seq);
    for (std::size_t i = 0; i < pairs; ++i) {
        const std::span<const std::int32_t> ids(batch.input_ids.data() + i * seq, seq),
            types(batch.token_type_ids.data() + i * seq, seq);
        BOOST_TEST(input_hash(ids, types) == static_cast<std::uint64_t>(hashes[i]), "pair " << i << ": not transformers' ids");
        BOOST_TEST(batch.lengths[i] == std::size_t(lengths[i]), "pair " << i);
        const auto want_pos = reference_positions(lengths[i]);
        BOOST_TEST(std::equal(want_pos.begin(), want_pos.end(), positions.begin() + std::ptrdiff_t(i * picks)), "pair " << i);
    }

    bert_model<B, float> m(b, config);
    BOOST_REQUIRE(load_pretrained(m, model_dir()).complete());
    typename bert_model<B, float>::context ctx;
    const auto out = m.forward(tensor<B, std::int32_t>::from_host(b, batch.shape(), batch.input_ids),
                               tensor<B, std::int32_t>::from_host(b, batch.shape(), batch.token_type_ids),
                               attention_mask<B>::from_host(b, batch.shape(), batch.attention_mask), ctx,
                               run_mode::inference());
    const auto got_hidden = out.last_hidden.to_host();
    const auto got_pooled = out.pooled.to_host();
    BOOST_REQUIRE(got_hidden.size() == pairs * seq * hidden);
    BOOST_REQUIRE(got_pooled.size() == want_pooled.size());
    double d_hidden = 0, d_pooled = 0;
    for (std::size_t i = 0; i < pairs; ++i)
        for (std::size_t k = 0; k < picks; ++k) {
            const auto pos = std::size_t(positions[i * picks + k]);
            BOOST_REQUIRE(pos < seq);
            for (std::size_t h = 0; h < hidden; ++h)
                d_hidden = hyperadapt::test::max_keeping_nan(d_hidden, std::abs(double(got_hidden[(i * seq + pos) * hidden + h]) -
                                                       double(want_hidden[(i * picks + k) * hidden + h])));
        }
    for (std::size_t i = 0; i < got_pooled.size(); ++i)
        d_pooled = hyperadapt::test::max_keeping_nan(d_pooled, std::abs(double(got_pooled[i]) - double(want_pooled[i])));
    BOOST_TEST_MESSAGE("MiniLM parity (" << B::gemm_provider::name << ", GLUE RTE+MRPC dev, " << pairs << " pairs x "
                       << seq << " tokens): max |diff| last_hidden (" << picks << " positions per pair) " << d_hidden
                       << ", pooled " << d_pooled);
    BOOST_TEST(d_hidden <= 1e-4);
    BOOST_TEST(d_pooled <= 1e-4);
#endif
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(config_json_nested_too_deep_or_not_a_file_is_an_io_error) {
    temp_dir dir;
    const auto p = dir / "config.json";
    constexpr std::size_t depth = 1'000'000;
    write_text(p, R"({"id2label": {"0": )" + std::string(depth, '[') + std::string(depth, ']') + "}}");
    BOOST_CHECK_EXCEPTION((void)read_bert_config(p), io_error, [&](const io_error& e) {
        BOOST_TEST_MESSAGE("  " << e.what());
        const std::string m = e.what();
        return m.find(p.string()) == 0 && m.find("nested deeper than 64 levels under 'id2label' > '0'") != std::string::npos;
    });
    // A field of the wrong type is described without printing it.
    write_text(p, R"({"hidden_size": [[[1]], 2]})");
    BOOST_CHECK_EXCEPTION((void)read_bert_config(p), io_error, [](const io_error& e) {
        return std::string(e.what()).find("'hidden_size' must be a positive integer, got an array of 2 elements") !=
               std::string::npos;
    });
    std::filesystem::remove(p);
    BOOST_TEST_REQUIRE(::mkfifo(p.c_str(), 0600) == 0);
    BOOST_CHECK_EXCEPTION((void)read_bert_config(dir.path()), io_error, [&](const io_error& e) {
        return std::string(e.what()) == p.string() + ": is a FIFO (named pipe), not a regular file";
    });
}
