// Writes the seed corpora of the fuzz targets: make_fuzz_seeds DIR creates DIR/<target>/ with small valid
// (and a few nearly valid) inputs made by the library's own writers, so that every target starts from the
// formats' real structure. scripts/fuzz.sh adds rows of the shared task data when it is there.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/data/task.hpp"
#include "hyperadapt/io/hf_checkpoint.hpp"
#include "hyperadapt/io/safetensors.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/models/model_directory.hpp"
#include "hyperadapt/optim/adamw.hpp"
#include "hyperadapt/train/checkpoint.hpp"

namespace fs = std::filesystem;
using namespace hyperadapt;

namespace {
std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_file(const fs::path& p, const std::string& bytes) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << bytes;
}
/// A seed whose first byte selects the target's mode or task.
void write_seed(const fs::path& p, char selector, const std::string& rest) { write_file(p, std::string(1, selector) + rest); }

void safetensors_seeds(const fs::path& dir) {
    io::safetensors_writer w;
    w.add("dense.weight", {2, 3}, std::vector<float>{1, -2, 3.5f, 0, 1e-8f, -0.0f});
    w.add("dense.bias", {2}, std::vector<double>{0.5, -1e300});
    w.add("ids", {1, 3}, std::vector<std::int64_t>{101, -7, 1LL << 40});
    w.add("mask", {3}, std::vector<std::int32_t>{1, 0, 1});
    w.add<float>("empty", {0, 4}, std::vector<float>{});
    w.add("scalar", {}, std::vector<float>{42});
    const std::uint16_t half[2] = {0x3c00, 0xfc00};
    w.add_raw("half", io::dtype::f16, {2}, std::as_bytes(std::span(half)));
    w.add_raw("brain", io::dtype::bf16, {2}, std::as_bytes(std::span(half)));
    const std::uint8_t bytes[4] = {0, 1, 255, 7};
    w.add_raw("flags", io::dtype::boolean, {2, 2}, std::as_bytes(std::span(bytes)));
    w.add_raw("fp8", io::dtype::f8_e4m3, {4}, std::as_bytes(std::span(bytes)));
    w.set_metadata("format", "pt");
    w.write(dir / "mixed.safetensors");

    io::safetensors_writer one;
    one.add("x", {2}, std::vector<float>{1, 2});
    one.write(dir / "one.safetensors");
    io::safetensors_writer none;
    none.write(dir / "empty_header.safetensors");
}

void config_seeds(const fs::path& dir) {
    write_file(dir / "default.json", io::bert_config_json(bert_config{}));
    write_file(dir / "minilm_like.json", R"({"_name_or_path": "x", "architectures": ["BertModel"],
 "attention_probs_dropout_prob": 0.1, "gradient_checkpointing": false, "hidden_act": "gelu",
 "hidden_dropout_prob": 0.1, "hidden_size": 384, "initializer_range": 0.02, "intermediate_size": 1536,
 "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert", "num_attention_heads": 12,
 "num_hidden_layers": 6, "pad_token_id": 0, "position_embedding_type": "absolute", "transformers_version": "4.8.2",
 "type_vocab_size": 2, "use_cache": true, "vocab_size": 30522, "id2label": {"0": "LABEL_0"}, "is_decoder": false})");
    write_file(dir / "refused.json", R"({"model_type": "roberta", "hidden_act": "gelu_new", "pad_token_id": null})");
}

void vocab_seeds(const fs::path& dir) {
    const std::string specials = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
    write_file(dir / "small.txt", specials + "the\nun\n##aff\n##able\ncaf\n##\xC3\xA9\n\xE4\xB8\xAD\n.\n,\n");
    write_file(dir / "crlf.txt", "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\n[MASK]\r\nword\r\n##s\r");
    write_file(dir / "duplicate.txt", specials + "a\nb\na\n");
}

void wordpiece_seeds(const fs::path& dir) {
    const std::vector<std::string> texts{
        "Hello, world! Unaffable caf\xC3\xA9 na\xC3\xAFve.\tthe playing",
        "\xE4\xB8\xAD\xE6\x96\x87 and [MASK] [unused0] tokens\t",
        "UN-AFF-ABLE!!! \xC3\x89t\xC3\xA9 \xE2\x80\x94 \xF0\x9F\x98\x80\x0b\x01 spaces\t\ttabs",
        "a very long wordwithoutanyspacesatallthatgoesonandon plays"};
    int n = 0;
    for (const auto& t : texts)
        for (const char mode : {'\x01', '\x0f', '\x30', '\xe9'}) write_seed(dir / ("text" + std::to_string(n++)), mode, t);
}

void glue_seeds(const fs::path& dir) {
    const std::vector<std::string> names{"cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"};
    for (std::size_t k = 0; k < names.size(); ++k) {
        const auto task = data::find_task(names[k]);
        std::string file;
        auto label = [&](std::size_t row) {
            return task.kind == data::task_kind::regression ? std::string(row ? "3.25" : "0")
                                                            : task.label_names[row % task.label_names.size()];
        };
        if (task.name == "cola") {
            for (std::size_t r = 0; r < 3; ++r) file += "gj04\t" + label(r) + "\t\tThe sailors rode the breeze clear.\n";
        } else {
            std::string header = "index";
            for (const auto& f : task.text_fields) header += "\t" + f;
            file = (task.name == "mrpc" ? "\xEF\xBB\xBF" : "") + header + "\t" + task.label_field + "\n";
            for (std::size_t r = 0; r < 3; ++r) {
                file += std::to_string(r);
                for (std::size_t f = 0; f < task.text_fields.size(); ++f) file += "\tA \"quoted\" sentence, caf\xC3\xA9.";
                file += "\t" + label(r) + (r == 1 ? "\r\n" : "\n");
            }
        }
        write_seed(dir / (names[k] + ".tsv"), static_cast<char>(k), file);
    }
}

void superglue_seeds(const fs::path& dir) {
    const std::vector<std::string> names{"cb", "copa", "superglue-rte", "boolq", "wic"};
    for (std::size_t k = 0; k < names.size(); ++k) {
        const auto task = data::find_task(names[k]);
        std::string file;
        for (int r = 0; r < 3; ++r) {
            nlohmann::json row;
            for (const auto& f : task.text_fields) row[f] = "Text of " + f + " \xC3\xA9";
            row["idx"] = r;
            if (task.name == "copa") {
                row["choice1"] = "one";
                row["choice2"] = "two";
                row["question"] = r % 2 ? "cause" : "effect";
                row["label"] = r % 2;
            } else if (task.name == "boolq" || task.name == "wic") {
                row["label"] = r % 2 == 0;
                if (task.name == "wic") row["word"] = "bank";
            } else {
                row["label"] = task.label_names[static_cast<std::size_t>(r) % task.label_names.size()];
            }
            file += row.dump() + "\n";
        }
        write_seed(dir / (names[k] + ".jsonl"), static_cast<char>(k), file + "\n");
    }
}

void checkpoint_seeds(const fs::path& dir) {
    cpu backend;
    linear<cpu, float> model(backend, 3, 2, "dense");
    rng_stream init(7);
    model.initialize(init);
    adamw<cpu, float> optimizer(model, {.lr = 1e-3});
    optimizer.step();
    training_state st;
    st.step = 1;
    st.rng["data"] = rng_stream(5);
    st.extra["sampler"] = R"({"position": 3})";
    const fs::path file = dir / "checkpoint.tmp";
    save_training_checkpoint(file, model, optimizer, st);
    write_seed(dir / "file", '\0', read_file(file));
    const io::safetensors_reader r(file);
    const std::string state = r.metadata().at("state");
    write_seed(dir / "state_alone", '\1', state);
    write_seed(dir / "state_in_file", '\2', state);
    fs::remove(file);
}
/// hyperadapt.json of a tiny model of each kind (the one fuzz_model_card's fixed config.json describes), as
/// save_pretrained writes it.
void model_card_seeds(const fs::path& dir) {
    const bert_config tiny{.vocab_size = 40, .hidden = 16, .layers = 2, .heads = 2, .intermediate = 24, .max_position = 16};
    cpu b(cpu::options{.threads = 1});
    const fs::path scratch = dir / "scratch";
    fs::create_directories(scratch);
    std::string vocab = "[PAD]\n[CLS]\n[SEP]\n[UNK]\n[MASK]\n";
    for (int i = 5; i < 40; ++i) vocab += "w" + std::to_string(i) + "\n";
    write_file(scratch / "vocab.txt", vocab);
    model_description d;
    d.vocab = scratch / "vocab.txt";
    d.tasks = {{"rte", {"entailment", "not_entailment"}, 2, 1.0}, {"stsb", {}, 2, 5.0}};
    d.tokenizer.max_length = 16;
    d.provenance = {{"made_by", "make_fuzz_seeds"}};
    const std::vector<task_head_spec> heads{{"rte", 2}, {"stsb", 1, 5.0}};
    auto save = [&](auto& model, const std::string& name) {
        rng_stream r(1);
        model.initialize(r);
        model.apply_freezing();
        save_pretrained(model, scratch / name, d);
        write_file(dir / (name + ".json"), read_file(scratch / name / "hyperadapt.json"));
    };
    camtl_options c;
    c.backbone = tiny;
    c.tasks = heads;
    c.seq_len = 16;
    camtl_model<cpu, float> cm(b, c);
    save(cm, "camtl");
    pha_bert_options p;
    p.backbone = tiny;
    p.tasks = heads;
    p.bottleneck = 4;
    pha_bert<cpu, float> pm(b, p);
    save(pm, "pha");
    p.source = adapter_source::hyperformerpp;
    p.hyperformer_reduction = 4;
    pha_bert<cpu, float> hm(b, p);
    save(hm, "hyperformerpp");
    multitask_bert<cpu, float> mm(b, {.backbone = tiny, .tasks = heads, .heads_read = head_input::mean});
    save(mm, "multitask_bert");
    fs::remove_all(scratch);
}
}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: make_fuzz_seeds OUTPUT_DIR\n");
        return 2;
    }
    const fs::path out = argv[1];
    for (const char* t : {"safetensors", "bert_config", "vocab", "wordpiece", "glue_tsv", "superglue_jsonl", "checkpoint", "model_card"})
        fs::create_directories(out / t);
    safetensors_seeds(out / "safetensors");
    config_seeds(out / "bert_config");
    vocab_seeds(out / "vocab");
    wordpiece_seeds(out / "wordpiece");
    glue_seeds(out / "glue_tsv");
    superglue_seeds(out / "superglue_jsonl");
    checkpoint_seeds(out / "checkpoint");
    model_card_seeds(out / "model_card");
    return 0;
}
