#pragma once
// The tasks present in a mixed-task batch, in ascending order as torch.unique returns them, with the first row
// that carries each and every row's place among them. CA-MTL's conditional layer norm reads one condition row per
// task present, the first example's (the authors' `task_id.unique()` then `index_select`); the batch builder works
// the same out on the host once per batch (data/multitask_batch.hpp), so that no layer has to ask the device.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace hyperadapt {

struct task_rows {
    std::vector<std::int32_t> tasks;       ///< the task ids present, ascending
    std::vector<std::int32_t> first_rows;  ///< per task present, the first row that carries it
    std::vector<std::size_t> slot;         ///< per row, its task's index into `tasks`
};

[[nodiscard]] inline task_rows tasks_in_order(std::span<const std::int32_t> task_ids) {
    task_rows r;
    r.tasks.assign(task_ids.begin(), task_ids.end());
    std::sort(r.tasks.begin(), r.tasks.end());
    r.tasks.erase(std::unique(r.tasks.begin(), r.tasks.end()), r.tasks.end());
    r.first_rows.assign(r.tasks.size(), -1);
    r.slot.resize(task_ids.size());
    for (std::size_t row = 0; row < task_ids.size(); ++row) {
        const auto s = static_cast<std::size_t>(std::lower_bound(r.tasks.begin(), r.tasks.end(), task_ids[row]) -
                                                r.tasks.begin());
        r.slot[row] = s;
        if (r.first_rows[s] < 0) r.first_rows[s] = static_cast<std::int32_t>(row);
    }
    return r;
}

}  // namespace hyperadapt
