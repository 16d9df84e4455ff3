// libFuzzer target: a model directory's hyperadapt.json (models/model_directory.hpp) through read_model_card and
// options_from_card of every model kind: the strict JSON field reader, the enum names, the task list, the
// tokenizer settings, the files' entries. config.json and vocab.txt beside it are valid and fixed.
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <set>
#include <string>

#include "fuzz_support.hpp"
#include "hyperadapt/io/hf_checkpoint.hpp"
#include "hyperadapt/models/model_directory.hpp"

using namespace hyperadapt;

namespace {
const fuzz::scratch_file& card_file() {
    static const fuzz::scratch_file file("hyperadapt.json");
    static const bool ready = [] {
        io::write_bert_config(bert_config{.vocab_size = 40, .hidden = 16, .layers = 2, .heads = 2, .intermediate = 24,
                                          .max_position = 16},
                              file.dir() / "config.json");
        std::string vocab = "[PAD]\n[CLS]\n[SEP]\n[UNK]\n[MASK]\n";
        for (int i = 5; i < 40; ++i) vocab += "w" + std::to_string(i) + "\n";
        std::ofstream(file.dir() / "vocab.txt") << vocab;
        return true;
    }();
    (void)ready;
    return file;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto& f = card_file();
    f.write(fuzz::as_text(data, size));
    fuzz::expect_valid_or_typed_error([&] {
        const model_card c = read_model_card(f.dir());
        // What a valid card promises: a known kind, tasks with unique names and a head size, a usable length.
        if (c.kind != "camtl" && c.kind != "pha" && c.kind != "multitask_bert") __builtin_trap();
        if (c.tasks.empty()) __builtin_trap();
        std::set<std::string> names;
        for (const auto& t : c.tasks) {
            if (t.name.empty() || !names.insert(t.name).second) __builtin_trap();
            if (!t.is_regression() && t.label_names.size() < 2) __builtin_trap();
            if (t.inputs != 1 && t.inputs != 2) __builtin_trap();
        }
        if (c.tokenizer.max_length < 4 || c.tokenizer.max_length > c.backbone.max_position) __builtin_trap();
        if (c.kind == "camtl") (void)options_from_card<camtl_options>(c, f.dir());
        if (c.kind == "pha") (void)options_from_card<pha_bert_options>(c, f.dir());
        if (c.kind == "multitask_bert") (void)options_from_card<multitask_bert_options>(c, f.dir());
    });
    return 0;
}
