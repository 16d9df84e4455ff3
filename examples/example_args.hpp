#pragma once
// The values of the options every multi-task recipe takes (common_args) and the comma lists they hold. Light
// on purpose: the option parsers (recipes/*_options.cpp, CLI11) include it without the library's models,
// trainer or backend (docs/benchmarks.md, "Compile time of the examples").
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "hyperadapt/distributed/communicator_ref.hpp"
#include "hyperadapt/optim/parameter_groups.hpp"

namespace hyperadapt::examples {

inline std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    for (std::string item; std::getline(ss, item, ',');)
        if (!item.empty()) out.push_back(item);
    return out;
}

/// The options every multi-task example takes (example_options.hpp registers them), with each example's
/// defaults set before add_common_options.
struct common_args {
    std::string program;  // how the run names itself: "02_camtl_glue", "hyperadapt train camtl", ...
    std::string checkpoint, data, tasks = "rte,mrpc,stsb,cola,sst2,wnli", sampler, out, json;
    std::string save_model;  // a model directory (models/model_directory.hpp) written after training
    std::string head_input = "pooler";
    std::size_t seq_len = 0, batch = 32, train_per_task = 0, dev_per_task = 0;
    double epochs = 3, lr = 0;
    std::int64_t steps = 0, eval_every = 0, checkpoint_every = 0;
    std::uint64_t seed = 12;
    int threads = 0;
    std::string precision = "fp32";
    std::string device = "cpu";  // cpu | cuda (a build with CUDA: -DHYPERADAPT_ENABLE_CUDA=ON)
    int gpu = -1;                // the CUDA device's index with --device cuda (-1: the rank's local index, 0 alone)
    bool resume = false, skip_nonfinite = false, quiet = false, tasks_given = false;
    bool pad_to_seq_len = false;  // every batch seq_len long instead of as long as its longest example
    std::size_t validation_per_task = 0;  // > 0: carve a validation split, select on it, report dev once
    std::uint64_t data_seed = 12;         // subsample and validation carve (default: --seed)
    bool data_seed_given = false;
    std::vector<parameter_group> lr_groups;
    double warmup = 0.1, weight_decay = 0.01;
    /// Not an option: the ranks the run trains on (run_processes.hpp; the single process unless an MPI launcher
    /// started it). --batch is the global batch.
    communicator_ref processes;
    [[nodiscard]] bool leader() const { return processes.rank() == 0; }

    /// The seed of the training subsample and of the validation carve.
    [[nodiscard]] std::uint64_t sample_seed() const noexcept { return data_seed_given ? data_seed : seed; }
};

}  // namespace hyperadapt::examples
