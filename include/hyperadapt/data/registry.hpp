#pragma once
// One entry point for every task: load_task("rte", data_root, split::dev). The data root is the folder
// holding glue/ (download_glue_data.py's output) and superglue/ (the SuperGLUE release's task folders);
// it is always the caller's choice: the library has no default location and reads no environment.
#include <filesystem>
#include <string_view>

#include "hyperadapt/data/glue.hpp"
#include "hyperadapt/data/superglue.hpp"
#include "hyperadapt/data/task.hpp"

namespace hyperadapt::data {

/// Where split `which` of `name` lives under `data_root`, e.g. <root>/glue/RTE/dev.tsv or
/// <root>/superglue/CB/val.jsonl.
[[nodiscard]] inline std::filesystem::path task_file(std::string_view name, const std::filesystem::path& data_root,
                                                     split which) {
    const task_info task = find_task(name);
    if (task.suite == benchmark::glue) return data_root / "glue" / task.directory / glue_file_name(task, which);
    return data_root / "superglue" / task.directory / superglue_file_name(task, which);
}

/// Reads split `which` of any registered task. Names as find_task takes them: "rte" is GLUE's RTE,
/// "superglue-rte" SuperGLUE's.
[[nodiscard]] inline dataset load_task(std::string_view name, const std::filesystem::path& data_root, split which,
                                       const read_options& options = {}) {
    const task_info task = find_task(name);
    const auto file = task_file(task.name, data_root, which);
    if (task.suite == benchmark::glue) return read_glue_file(task, file, which, options);
    return read_superglue_file(task, file, which, options);
}

}  // namespace hyperadapt::data
