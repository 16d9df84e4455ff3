// libFuzzer target: a SuperGLUE JSON Lines file through data::read_superglue_file. The first byte picks
// the task (CB, COPA, RTE, BoolQ, WiC: each with its own fields and label type) and whether malformed rows
// are skipped; the rest is the file.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_support.hpp"
#include "hyperadapt/data/superglue.hpp"

using namespace hyperadapt;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    static const fuzz::scratch_file file("data.jsonl");
    static const std::vector<data::task_info> tasks = [] {
        std::vector<data::task_info> t;
        for (const char* name : {"cb", "copa", "superglue-rte", "boolq", "wic"}) t.push_back(data::find_task(name));
        return t;
    }();
    const auto& task = tasks[data[0] % tasks.size()];
    const data::read_options options{.skip_malformed_rows = (data[0] & 0x80) != 0};
    const auto& path = file.write(fuzz::as_text(data + 1, size - 1));
    fuzz::expect_valid_or_typed_error([&] {
        const auto d = data::read_superglue_file(task, path, data::split::dev, options);
        for (const auto& e : d.examples)
            if (e.label < 0 || e.label >= task.num_labels()) __builtin_trap();
    });
    return 0;
}
