#pragma once
// One row of a multi-task batch: which example of which task it holds. Shared by the samplers, which draw
// them (train/sampler.hpp), and the batch, which gathers them (data/multitask_batch.hpp), so neither needs
// the other.
#include <cstddef>

namespace hyperadapt {

/// Example `index` of task `task`.
struct example_ref {
    std::size_t task = 0;
    std::size_t index = 0;
    friend bool operator==(const example_ref&, const example_ref&) = default;
};

}  // namespace hyperadapt
