#define BOOST_TEST_MODULE models_model_directory
#include <boost/test/unit_test.hpp>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/models/bert.hpp"
#include "hyperadapt/models/camtl.hpp"
#include "hyperadapt/models/model_directory.hpp"
#include "hyperadapt/models/multitask_bert.hpp"
#include "hyperadapt/models/pha_bert.hpp"
#include "hyperadapt/serve/predictor.hpp"
#include "hyperadapt/train/multitask_trainer.hpp"
#include "hyperadapt/train/samplers/size_proportional.hpp"
#include "hyperadapt/train/synthetic_tasks.hpp"
#include "support/temp_dir.hpp"
#include "support/tiny_model_directory.hpp"

extern char** environ;

using namespace hyperadapt;
namespace fs = std::filesystem;

namespace {
const bert_config tiny = test::tiny_backbone;
constexpr std::size_t seq = test::tiny_length;

std::vector<encoded_task> synthetic(std::size_t n, std::uint64_t seed) {
    return {synthetic_task(synthetic_kind::majority, n, seq, seed), synthetic_task(synthetic_kind::count, n, seq, seed + 1)};
}
std::vector<task_head_spec> heads() { return test::tiny_heads(); }
model_description description(const fs::path& vocab) { return test::tiny_description(vocab); }
fs::path write_vocab(const fs::path& dir) { return test::write_tiny_vocab(dir); }

/// A short training run, so that every trained part holds values no initialisation would give.
template <class Model>
void train_briefly(Model& m, cpu& b) {
    const auto train = synthetic(200, 11), dev = synthetic(40, 21);
    trainer_options t;
    t.steps = 12;
    t.lr = 3e-3;
    t.show_progress = false;
    size_proportional_sampler s({200, 200}, 16, rng_stream(3));
    (void)train_multitask(m, s, b, train, dev, t);
}

template <class Model>
std::vector<std::vector<float>> outputs_of(const Model& m, cpu& b) {
    const auto tasks = synthetic(8, 5);
    std::vector<sample_ref> rows;
    for (std::size_t i = 0; i < 8; ++i) rows.push_back({i % 2, i});
    return m.outputs(make_batch<cpu, float>(b, tasks, rows, batch_padding::length_groups), run_mode::inference());
}

template <class Model>
std::vector<std::pair<std::string, bool>> trainable_flags(Model& m) {
    std::vector<std::pair<std::string, bool>> v;
    m.visit_parameters([&](const std::string& n, parameter<cpu, float>& p) { v.emplace_back(n, p.trainable()); });
    return v;
}

template <class Model>
void check_round_trip(typename Model::options_type o, const std::string& kind) {
    test::temp_dir tmp;
    cpu b(cpu::options{.threads = 1});
    o.backbone = tiny;
    o.tasks = heads();
    Model m(b, o);
    rng_stream init(7);
    m.initialize(init);
    m.apply_freezing();
    train_briefly(m, b);
    const fs::path dir = tmp / "model";
    save_pretrained(m, dir, description(write_vocab(tmp.path())));
    for (const char* f : {"hyperadapt.json", "config.json", "model.safetensors", "task_parameters.safetensors", "vocab.txt"})
        BOOST_TEST(fs::is_regular_file(dir / f), f);
    model_card card;
    Model back = load_pretrained<Model>(b, dir, &card);
    BOOST_TEST(card.kind == kind);
    BOOST_TEST(card.tasks.size() == 2u);
    BOOST_TEST(card.tasks[0].label_names == (std::vector<std::string>{"few", "many"}));
    BOOST_TEST(card.tasks[1].target_scale == 2.0);
    BOOST_TEST(card.provenance.value("test", "") == "models_model_directory");
    BOOST_TEST((outputs_of(back, b) == outputs_of(m, b)), kind << ": outputs differ after the round trip");
    BOOST_TEST((trainable_flags(back) == trainable_flags(m)), kind << ": the freezing differs after the round trip");
}
}  // namespace

BOOST_AUTO_TEST_CASE(camtl_round_trip_gives_identical_outputs_and_freezing) {
    camtl_options o;
    o.seq_len = seq;
    o.heads_read = head_input::mean;
    check_round_trip<camtl_model<cpu, float>>(o, "camtl");
}

BOOST_AUTO_TEST_CASE(pha_round_trips_for_every_adapter_source) {
    for (const auto source : {adapter_source::prototype_hypernet, adapter_source::per_task, adapter_source::hyperformerpp}) {
        check_round_trip<pha_bert<cpu, float>>(test::tiny_pha_options(source), "pha");
    }
}

BOOST_AUTO_TEST_CASE(multitask_bert_round_trip) {
    multitask_bert_options o;
    check_round_trip<multitask_bert<cpu, float>>(o, "multitask_bert");
}

// ---- a fresh process ---------------------------------------------------------------------------------------

namespace {
std::vector<text_input> inputs() {
    return {{"w5 w6 w7 w7 w7"}, {"w9"}, {"W12 w13, w14 w15 w16 w17 w18 w19 w20 w21 w22 w23 w24 w25 w26 w27 w28"}, {"w30 w31 w30"}};
}

/// Every prediction of both tasks as text, the numbers in hex so that equal means bit-identical.
std::string predictions_text(const predictor<cpu>& p) {
    std::ostringstream s;
    const auto x = inputs();
    for (const auto& task : {"majority", "count"}) {
        for (const auto& y : p.predict(task, x)) {
            char buf[64];
            s << task << ' ' << y.label << ' ' << y.label_name;
            for (double v : y.probabilities) {
                std::snprintf(buf, sizeof buf, " %a", v);
                s << buf;
            }
            std::snprintf(buf, sizeof buf, " %a\n", y.value);
            s << buf;
        }
    }
    return s.str();
}

int run_self(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    std::string self = fs::read_symlink("/proc/self/exe").string();
    argv.push_back(self.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    if (::posix_spawn(&pid, self.c_str(), nullptr, nullptr, argv.data(), environ) != 0) return -1;
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
}  // namespace

// Run by predictions_are_identical_in_a_fresh_process in a child process: loads the directory argv[1] and
// writes its predictions to argv[2].
BOOST_AUTO_TEST_CASE(child_writes_predictions, *boost::unit_test::disabled()) {
    const auto& suite = boost::unit_test::framework::master_test_suite();
    BOOST_TEST_REQUIRE(suite.argc == 3);
    const auto p = predictor<cpu>::load(suite.argv[1], cpu(cpu::options{.threads = 1}));
    std::ofstream(suite.argv[2]) << predictions_text(p);
}

namespace {
/// Initialises and trains `m` briefly, saves it into tmp/model and checks that a child process loading the
/// directory predicts byte for byte what this one does; returns the directory.
template <class Model>
fs::path check_in_a_fresh_process(Model& m, cpu& b, const test::temp_dir& tmp, std::uint64_t seed) {
    rng_stream init(seed);
    m.initialize(init);
    m.apply_freezing();
    train_briefly(m, b);
    const fs::path dir = tmp / "model";
    save_pretrained(m, dir, description(write_vocab(tmp.path())));
    const std::string here = predictions_text(predictor<cpu>::load(dir, cpu(cpu::options{.threads = 1})));
    BOOST_TEST(here.size() > 100u);
    const fs::path out = tmp / "child.txt";
    BOOST_TEST_REQUIRE(run_self({"--run_test=child_writes_predictions", "--", dir.string(), out.string()}) == 0);
    std::ifstream f(out);
    BOOST_TEST(std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>()) == here);
    return dir;
}
}  // namespace

BOOST_AUTO_TEST_CASE(pha_predictions_are_identical_in_a_fresh_process) {
    test::temp_dir tmp;
    cpu b(cpu::options{.threads = 1});
    pha_bert_options o = test::tiny_pha_options();
    o.heads_read = head_input::mean;
    pha_bert<cpu, float> m(b, o);
    (void)check_in_a_fresh_process(m, b, tmp, 4);
}

BOOST_AUTO_TEST_CASE(predictions_are_identical_in_a_fresh_process) {
    test::temp_dir tmp;
    cpu b(cpu::options{.threads = 1});
    camtl_options o;
    o.backbone = tiny;
    o.tasks = heads();
    o.seq_len = seq;
    o.heads_read = head_input::mean;
    camtl_model<cpu, float> m(b, o);
    const fs::path dir = check_in_a_fresh_process(m, b, tmp, 3);

    // The predictor reads text as the tokenizer does: the same ids give the same outputs as the model's own.
    const auto p = predictor<cpu>::load(dir, cpu(cpu::options{.threads = 1}));
    const auto y = p.predict("count", text_input{"w5 w6 w7"});
    encoded_task e;
    e.info.name = "majority";
    encoded_task c;
    c.info.name = "count";
    c.info.kind = data::task_kind::regression;
    c.seq_len = seq;
    c.input_ids.assign(seq, 0);
    c.token_type_ids.assign(seq, 0);
    c.attention_mask.assign(seq, 0);
    const std::vector<std::int32_t> ids{1, 5, 6, 7, 2};
    for (std::size_t i = 0; i < ids.size(); ++i) c.input_ids[i] = ids[i], c.attention_mask[i] = 1;
    c.labels = {-1};
    c.scores = {0};
    const std::vector<encoded_task> tasks{e, c};
    const std::vector<sample_ref> rows{{1, 0}};
    const auto direct = m.outputs(make_batch<cpu, float>(b, tasks, rows, batch_padding::length_groups), run_mode::inference());
    BOOST_TEST(y.value == static_cast<double>(direct[0][0]));
    BOOST_TEST(y.label == -1);
}

// ---- refusals ------------------------------------------------------------------------------------------------

namespace {
/// A saved tiny PHA model in tmp/model.
fs::path saved_pha(const test::temp_dir& tmp, cpu& b) {
    pha_bert_options o = test::tiny_pha_options();
    pha_bert<cpu, float> m(b, o);
    rng_stream init(5);
    m.initialize(init);
    m.apply_freezing();
    const fs::path dir = tmp / "model";
    save_pretrained(m, dir, description(write_vocab(tmp.path())));
    return dir;
}

std::string read_text(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {(std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>()};
}
void write_text(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

/// The message of the io_error or config_error that `f` throws ("" if none).
template <class F>
std::string refusal(F&& f) {
    try {
        f();
    } catch (const error& e) {
        return e.what();
    }
    return "";
}
bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

/// Edits hyperadapt.json with `edit`, expects load_pretrained<pha_bert> to refuse naming every part.
template <class Edit>
void expect_card_refused(Edit&& edit, const std::vector<std::string>& parts) {
    test::temp_dir tmp;
    cpu b(cpu::options{.threads = 1});
    const fs::path dir = saved_pha(tmp, b);
    auto j = nlohmann::json::parse(read_text(dir / "hyperadapt.json"));
    edit(j);
    write_text(dir / "hyperadapt.json", j.dump(2));
    const auto why = refusal([&] { (void)load_pretrained<pha_bert<cpu, float>>(b, dir); });
    BOOST_TEST_CONTEXT("message: " << why) {
        BOOST_TEST(!why.empty());
        for (const auto& p : parts) BOOST_TEST(has(why, p), "names '" << p << "'");
    }
}
}  // namespace

BOOST_AUTO_TEST_CASE(a_corrupted_weight_file_is_refused_by_its_checksum) {
    for (const char* file : {"model.safetensors", "task_parameters.safetensors"}) {
        test::temp_dir tmp;
        cpu b(cpu::options{.threads = 1});
        const fs::path dir = saved_pha(tmp, b);
        std::string bytes = read_text(dir / file);
        bytes[bytes.size() - 3] = static_cast<char>(bytes[bytes.size() - 3] ^ 0x40);  // a weight's byte, not the header
        write_text(dir / file, bytes);
        const auto why = refusal([&] { (void)load_pretrained<pha_bert<cpu, float>>(b, dir); });
        BOOST_TEST(has(why, file), why);
        BOOST_TEST(has(why, "checksum"), why);
    }
}

BOOST_AUTO_TEST_CASE(a_mismatched_card_is_refused_naming_the_fact) {
    expect_card_refused([](auto& j) { j["model"]["kind"] = "camtl"; }, {"hyperadapt.json", "kind", "camtl", "pha"});
    expect_card_refused([](auto& j) { j["version"] = 2; }, {"hyperadapt.json", "version", "newer"});
    expect_card_refused([](auto& j) { j["format"] = "something"; }, {"hyperadapt.json", "format"});
    expect_card_refused([](auto& j) { j["model"]["options"]["dropout_everywhere"] = true; },
                        {"hyperadapt.json", "model.options", "unknown field 'dropout_everywhere'"});
    expect_card_refused([](auto& j) { j["model"]["options"]["bottleneck"] = "big"; },
                        {"model.options.bottleneck", "whole number"});
    expect_card_refused([](auto& j) { j["model"]["options"]["source"] = "lora"; },
                        {"model.options.source", "prototype_hypernet", "lora"});
    // Another adapter width than the weights were saved with: the first mis-shaped tensor is named.
    expect_card_refused([](auto& j) { j["model"]["options"]["bottleneck"] = 6; },
                        {"task_parameters.safetensors", "hypernet.decoder.weight_up.weight", "is [64, 8]", "has [96, 8]"});
    expect_card_refused([](auto& j) { j["tasks"][1]["type"] = "classification"; }, {"tasks[1]", "two labels"});
    expect_card_refused([](auto& j) { j["tasks"][1]["name"] = "majority"; }, {"tasks[1]", "'majority' appears twice"});
    expect_card_refused([](auto& j) { j["tasks"].erase(1); }, {"task_parameters.safetensors", "prototypes.weight", "[2, 8]"});
    expect_card_refused([](auto& j) { j["tokenizer"]["max_length"] = 512; }, {"tokenizer.max_length", "512"});
    expect_card_refused([](auto& j) { j["files"]["backbone"]["checksum"] = "0000000000000000"; },
                        {"model.safetensors", "checksum"});
}

BOOST_AUTO_TEST_CASE(missing_files_and_foreign_directories_are_refused) {
    for (const char* file : {"hyperadapt.json", "config.json", "vocab.txt", "model.safetensors", "task_parameters.safetensors"}) {
        test::temp_dir tmp;
        cpu b(cpu::options{.threads = 1});
        const fs::path dir = saved_pha(tmp, b);
        fs::remove(dir / file);
        const auto why = refusal([&] { (void)predictor<cpu>::load(dir, cpu(cpu::options{.threads = 1})); });
        BOOST_TEST(has(why, file), why);
    }
    test::temp_dir tmp;
    cpu b(cpu::options{.threads = 1});
    BOOST_TEST(has(refusal([&] { (void)read_model_card(tmp / "nowhere"); }), "not a directory"));
}

BOOST_AUTO_TEST_CASE(saving_replaces_a_model_directory_but_never_anything_else) {
    test::temp_dir tmp;
    cpu b(cpu::options{.threads = 1});
    const fs::path dir = saved_pha(tmp, b);
    const std::string first = read_text(dir / "task_parameters.safetensors");
    {  // a second model saved over the first: the directory holds the second, and nothing is left beside it
        pha_bert_options o;
        o.backbone = tiny;
        o.tasks = heads();
        o.source = adapter_source::per_task;
        o.bottleneck = 4;
        pha_bert<cpu, float> m(b, o);
        rng_stream init(9);
        m.initialize(init);
        m.apply_freezing();
        save_pretrained(m, dir, description(tmp / "vocab.txt"));
        model_card c;
        (void)load_pretrained<pha_bert<cpu, float>>(b, dir, &c);
        BOOST_TEST(c.options.value("source", "") == "per_task");
        BOOST_TEST(read_text(dir / "task_parameters.safetensors") != first);
        for (const auto& e : fs::directory_iterator(tmp.path()))
            BOOST_TEST((e.path().filename() == "model" || e.path().filename() == "vocab.txt"), e.path());
    }
    // A folder that is not a model directory is left as it was.
    const fs::path other = tmp / "notes";
    fs::create_directory(other);
    write_text(other / "todo.txt", "keep me");
    pha_bert_options o;
    o.backbone = tiny;
    o.tasks = heads();
    o.source = adapter_source::per_task;
    pha_bert<cpu, float> m(b, o);
    const auto why = refusal([&] { save_pretrained(m, other, description(tmp / "vocab.txt")); });
    BOOST_TEST(has(why, "not a model directory"), why);
    BOOST_TEST(read_text(other / "todo.txt") == "keep me");
    // A description that does not fit the model writes nothing.
    auto d = description(tmp / "vocab.txt");
    d.tasks[0].label_names.push_back("lots");
    const auto fresh = tmp / "fresh";
    BOOST_TEST(has(refusal([&] { save_pretrained(m, fresh, d); }), "task 'majority' has 3 labels"));
    BOOST_TEST(!fs::exists(fresh));
}

BOOST_AUTO_TEST_CASE(the_predictor_refuses_unknown_tasks_and_the_wrong_input_kind) {
    test::temp_dir tmp;
    cpu b(cpu::options{.threads = 1});
    const fs::path dir = saved_pha(tmp, b);
    const auto p = predictor<cpu>::load(dir, cpu(cpu::options{.threads = 1}));
    BOOST_TEST(has(refusal([&] { (void)p.predict("sst2", text_input{"w5"}); }), "unknown task 'sst2': this model has majority, count"));
    BOOST_TEST(has(refusal([&] { (void)p.predict("count", text_input{"w5", "w6"}); }), "takes single sentences"));
    const auto e = p.embed("majority", std::vector<text_input>{{"w5"}, {"w6 w7"}});
    BOOST_TEST(e.size() == 2u);
    BOOST_TEST(e[0].size() == tiny.hidden);
}

// ---- adapter sets --------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(an_adapter_set_loads_onto_its_backbone_and_nothing_else) {
    test::temp_dir tmp;
    cpu b(cpu::options{.threads = 1});
    // Two Hugging Face checkpoint folders: the backbone the set trains on, and another one of the same shape.
    auto backbone_folder = [&](const std::string& name, std::uint64_t seed) {
        bert_model<cpu, float> bert(b, tiny);
        rng_stream r(seed);
        bert.initialize(r);
        const fs::path dir = tmp / name;
        io::save_pretrained(bert, dir);
        fs::copy_file(write_vocab(tmp.path()), dir / "vocab.txt", fs::copy_options::overwrite_existing);
        return dir;
    };
    const fs::path backbone = backbone_folder("backbone", 1), other = backbone_folder("other", 2);
    pha_bert_options o = test::tiny_pha_options();
    pha_bert<cpu, float> m(b, o);
    rng_stream init(5);
    m.initialize(init);
    (void)m.load_backbone(backbone);
    m.apply_freezing();
    train_briefly(m, b);
    save_pretrained(m, tmp / "model", description(tmp / "vocab.txt"));
    // The set: what a user shares, without the backbone.
    const fs::path set = tmp / "set";
    fs::create_directory(set);
    for (const char* f : {"hyperadapt.json", "task_parameters.safetensors"}) fs::copy_file(tmp / "model" / f, set / f);

    model_card card;
    auto back = load_pretrained<pha_bert<cpu, float>>(b, set, &card, {.backbone = backbone});
    BOOST_TEST((outputs_of(back, b) == outputs_of(m, b)));
    BOOST_TEST(!card.backbone_trained);
    const auto p = predictor<cpu>::load(set, cpu(cpu::options{.threads = 1}), {.backbone = backbone});
    BOOST_TEST(!p.predict("majority", text_input{"w5 w6"}).label_name.empty());

    const auto why_other = refusal([&] { (void)load_pretrained<pha_bert<cpu, float>>(b, set, nullptr, {.backbone = other}); });
    BOOST_TEST(has(why_other, "not the backbone this adapter set was trained on"), why_other);
    const auto why_none = refusal([&] { (void)load_pretrained<pha_bert<cpu, float>>(b, set); });
    BOOST_TEST(has(why_none, "--backbone"), why_none);

    // A model that trained part of its backbone (CA-MTL's upper layers) is no adapter set.
    camtl_options c;
    c.backbone = tiny;
    c.tasks = heads();
    c.seq_len = seq;
    camtl_model<cpu, float> cm(b, c);
    rng_stream ci(6);
    cm.initialize(ci);
    cm.apply_freezing();
    save_pretrained(cm, tmp / "camtl", description(tmp / "vocab.txt"));
    const auto why_trained = refusal([&] { (void)load_pretrained<camtl_model<cpu, float>>(b, tmp / "camtl", nullptr, {.backbone = backbone}); });
    BOOST_TEST(has(why_trained, "trained part of its backbone"), why_trained);
}

BOOST_AUTO_TEST_CASE(concurrent_callers_get_what_one_caller_gets) {
    test::temp_dir tmp;
    cpu b(cpu::options{.threads = 1});
    const fs::path dir = saved_pha(tmp, b);
    const auto p = predictor<cpu>::load(dir, cpu(cpu::options{.threads = 2}), {.max_batch = 3});
    const auto x = inputs();
    const auto alone = p.predict("majority", x);
    std::vector<int> wrong(8, 0);
    std::vector<std::thread> callers;
    for (int t = 0; t < 8; ++t)
        callers.emplace_back([&, t] {
            for (int k = 0; k < 20; ++k) {
                const auto y = p.predict(k % 2 ? "majority" : "count", x);
                if (k % 2 == 0) continue;
                for (std::size_t i = 0; i < y.size(); ++i)
                    if (y[i].probabilities != alone[i].probabilities) ++wrong[static_cast<std::size_t>(t)];
            }
        });
    for (auto& c : callers) c.join();
    for (int t = 0; t < 8; ++t) BOOST_TEST(wrong[static_cast<std::size_t>(t)] == 0, "caller " << t);
}
