// libFuzzer target: a GLUE TSV file through data::read_glue_file. The first byte picks the task (and so
// the header, label map or score range, and CoLA's header-less layout) and whether malformed rows are
// skipped; the rest is the file.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "hyperadapt/data/glue.hpp"

using namespace hyperadapt;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    static const fuzz::scratch_file file("data.tsv");
    static const std::vector<data::task_info> tasks = [] {
        std::vector<data::task_info> t;
        for (const char* name : {"cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"})
            t.push_back(data::find_task(name));
        return t;
    }();
    const auto& task = tasks[data[0] % tasks.size()];
    const data::read_options options{.skip_malformed_rows = (data[0] & 0x80) != 0};
    const auto& path = file.write(fuzz::as_text(data + 1, size - 1));
    fuzz::expect_valid_or_typed_error([&] {
        const auto d = data::read_glue_file(task, path, data::split::dev, options);
        for (const auto& e : d.examples) {
            if (e.text_a.size() > size) __builtin_trap();
            if (task.kind == data::task_kind::classification && (e.label < 0 || e.label >= task.num_labels()))
                __builtin_trap();
        }
    });
    return 0;
}
