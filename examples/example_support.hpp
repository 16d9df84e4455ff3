#pragma once
// What the multi-task recipes share beyond their options (example_options.hpp) and the options' values
// (example_args.hpp): config size limits, the --sampler dispatch (one place that maps
// sampler names to the library's samplers, with CA-MTL's MT-Uncertainty score borrowing), training and
// measuring a model, and writing it as a model directory. No CLI11 here: the recipes' model instances
// (recipes/instances/) include this header and not the option parser. Nothing here names a backend: the CPU
// policy is in example_cpu_backend.hpp, so that the recipes' CUDA translation units (--device cuda) can include
// this header too.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "hyperadapt/data/task.hpp"
#include "hyperadapt/data/validation_split.hpp"
#include "hyperadapt/models/bert.hpp"
#include "hyperadapt/models/model_directory.hpp"
#include "hyperadapt/train/multitask_trainer.hpp"
#include "hyperadapt/train/samplers/mt_uncertainty.hpp"
#include "hyperadapt/train/samplers/round_robin.hpp"
#include "hyperadapt/train/samplers/size_proportional.hpp"
#include "hyperadapt/train/samplers/temperature.hpp"
#include "example_args.hpp"
#include "run_processes.hpp"

namespace hyperadapt::examples {

/// Where a run's products ran, for its record: "cpu" or "cuda:N (name)", the GEMM ("cblas", "eigen",
/// "onednn-bf16+cblas", "cublas") and, for OpenBLAS, the kernels it chose (their speed differs); `label` is what
/// the run's first line says ("2 threads", "GPU 0 (NVIDIA H100 ...)"), not recorded.
struct run_device {
    std::string device, gemm, kernels, label;
};

/// Refuses a config.json whose sizes no run could allocate (a typo, or a hostile file) before anything is
/// allocated: each size within a generous bound, and the backbone under 2^33 parameters.
inline void check_config_limits(const bert_config& c, const std::string& where) {
    auto bound = [&](const char* field, std::size_t v, std::size_t most) {
        if (v == 0 || v > most)
            throw config_error(where + ": " + field + " = " + std::to_string(v) + " is outside 1.." + std::to_string(most));
    };
    bound("vocab_size", c.vocab_size, std::size_t{1} << 24);
    bound("hidden_size", c.hidden, std::size_t{1} << 16);
    bound("num_hidden_layers", c.layers, 1024);
    bound("num_attention_heads", c.heads, c.hidden);
    bound("intermediate_size", c.intermediate, std::size_t{1} << 18);
    bound("max_position_embeddings", c.max_position, std::size_t{1} << 20);
    bound("type_vocab_size", c.type_vocab_size, 1024);
    if (c.hidden % c.heads != 0)
        throw config_error(where + ": hidden_size " + std::to_string(c.hidden) + " is not a multiple of num_attention_heads " +
                           std::to_string(c.heads));
    const double params = static_cast<double>(c.hidden) *
                          (static_cast<double>(c.vocab_size + c.max_position + c.type_vocab_size) +
                           static_cast<double>(c.layers) * (4.0 * static_cast<double>(c.hidden) + 2.0 * static_cast<double>(c.intermediate)));
    if (params > 8.6e9)
        throw config_error(where + ": a backbone of about " + std::to_string(static_cast<long long>(params)) +
                           " parameters is beyond what this example allocates");
}

/// The tokenizer's ids must index the checkpoint's embedding table: a vocab.txt of another model would
/// otherwise fail only once training reads an id past the table. (A table larger than the vocabulary is
/// allowed: some checkpoints pad vocab_size to a multiple of 8.)
inline void check_vocab_fits(std::size_t vocab_tokens, const bert_config& c, const std::string& vocab_file) {
    if (vocab_tokens > c.vocab_size)
        throw config_error(vocab_file + ": " + std::to_string(vocab_tokens) + " tokens, but config.json says vocab_size " +
                           std::to_string(c.vocab_size) + ": the vocabulary and the checkpoint do not belong together");
}

/// Every task has examples in both splits: an empty dev split would otherwise surface only after training.
inline void check_not_empty(const std::vector<encoded_task>& train, const std::vector<encoded_task>& dev,
                            const std::string& data_dir) {
    for (std::size_t t = 0; t < train.size(); ++t) {
        if (train[t].size() == 0)
            throw config_error("task '" + train[t].info.name + "': its train split under " + data_dir + " has no examples");
        if (t < dev.size() && dev[t].size() == 0)
            throw config_error("task '" + dev[t].info.name + "': its dev split under " + data_dir + " has no examples");
    }
}

/// Trainer options from the shared flags.
inline trainer_options trainer_from(const common_args& a) {
    trainer_options o;
    o.lr = a.lr;
    o.eval_every = a.eval_every;
    o.seed = a.seed;
    o.show_progress = !a.quiet;
    o.checkpoint_every = a.checkpoint_every;
    o.resume = a.resume;
    o.on_nonfinite = a.skip_nonfinite ? nonfinite_policy::skip_step : nonfinite_policy::stop;
    // fp16 operands overflow above 65504: dynamic loss scaling, as torch.amp.GradScaler (skips such a step).
    if (a.precision == "fp16") o.loss_scaling = loss_scaler_options{};
    o.padding = a.pad_to_seq_len ? batch_padding::to_encoded_length : batch_padding::length_groups;
    o.groups = a.lr_groups;
    o.warmup_proportion = a.warmup;
    o.weight_decay = a.weight_decay;
    if (a.validation_per_task > 0) {
        o.selection = model_selection::best_average;
        o.eval_split = "validation";
    }
    if (!a.out.empty()) o.out_dir = a.out;
    return o;
}

/// How many examples to draw from each task's training split: the training examples and, on top, the
/// validation examples carved from them (0: all).
inline std::size_t examples_to_draw(const common_args& a) {
    return a.train_per_task > 0 ? a.train_per_task + a.validation_per_task : 0;
}

/// Carves a.validation_per_task examples out of every task of `train` (data/validation_split.hpp) and
/// returns them; `train` keeps the rest. Nothing happens (an empty result) when validation_per_task is 0.
inline std::vector<encoded_task> carve_validation_splits(std::vector<encoded_task>& train, const common_args& a) {
    std::vector<encoded_task> validation;
    if (a.validation_per_task == 0) return validation;
    for (auto& t : train) {
        auto split = carve_validation(t, a.validation_per_task, a.sample_seed() ^ 0x7a11da7e);
        t = std::move(split.train);
        validation.push_back(std::move(split.validation));
    }
    return validation;
}

/// The score of a constant predictor on `test`: the majority class of `train` for a classification task (the
/// first on a tie); NaN for a regression task, whose correlations a constant leaves undefined.
inline data::task_result constant_predictor(const encoded_task& train, const encoded_task& test) {
    if (test.is_regression()) {
        data::task_result r;
        r.task = test.info.name;
        r.score = std::numeric_limits<double>::quiet_NaN();
        return r;
    }
    std::vector<std::size_t> votes(test.num_labels(), 0);
    for (const auto l : train.labels)
        if (l >= 0 && static_cast<std::size_t>(l) < votes.size()) ++votes[static_cast<std::size_t>(l)];
    const int majority = static_cast<int>(std::max_element(votes.begin(), votes.end()) - votes.begin());
    std::vector<int> predicted(test.size(), majority), gold(test.labels.begin(), test.labels.end());
    return data::evaluate(test.info, predicted, gold);
}

/// JSON of results per task: {task: score}, NaN as null.
inline nlohmann::json scores_json(const std::vector<data::task_result>& results) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& r : results) j[r.task] = std::isnan(r.score) ? nlohmann::json(nullptr) : nlohmann::json(r.score);
    return j;
}

/// The protocol fields of a run's JSON record (docs/results.md): data seed, split sizes, the selection rule
/// and the selected evaluation, the dev ("test") scores of the selected model with every metric, the
/// constant predictor's scores, the validation curve, the groups and the budget.
inline void add_protocol_fields(nlohmann::json& j, const common_args& a, const training_result& r,
                                const std::vector<data::task_result>& test, const std::vector<encoded_task>& train,
                                const std::vector<encoded_task>& validation, const std::vector<encoded_task>& dev,
                                const std::vector<data::task_result>& floor, const run_device& ran_on) {
    j["data_seed"] = a.sample_seed();
    j["processes"] = a.processes.size();  // data-parallel ranks (mpirun); --batch is the global batch
    j["train_per_task"] = a.train_per_task;
    j["validation_per_task"] = a.validation_per_task;
    j["selection"] = a.validation_per_task > 0 ? "best validation average" : "last step (no validation split)";
    j["selected_step"] = r.selected.step;
    j["validation"] = a.validation_per_task > 0 ? scores_json(r.selected.tasks) : nlohmann::json(nullptr);
    j["test"] = scores_json(test);
    j["test_average"] = data::average_score(test);
    for (const auto& t : test)
        for (const auto& v : t.values) j["test_metrics"][t.task][std::string(data::to_string(v.which))] = v.value;
    j["floor"] = scores_json(floor);
    j["curve"] = nlohmann::json::array();
    for (const auto& e : r.evaluations) j["curve"].push_back({{"step", e.step}, {"average", std::isnan(e.average) ? nlohmann::json(nullptr) : nlohmann::json(e.average)}, {"scores", scores_json(e.tasks)}});
    for (std::size_t t = 0; t < train.size(); ++t) {
        j["examples"][train[t].info.name] = {{"train", train[t].size()},
                                             {"validation", t < validation.size() ? validation[t].size() : 0},
                                             {"test", t < dev.size() ? dev[t].size() : 0}};
    }
    // What the sampler drew and used of each task this record trained on (MT-Uncertainty may starve some).
    if (r.examples_used.size() == train.size())
        for (std::size_t t = 0; t < train.size(); ++t)
            j["sampled"][train[t].info.name] = {{"candidates", r.candidates_drawn[t]}, {"used", r.examples_used[t]}};
    j["lr_groups"] = nlohmann::json::array();
    for (const auto& g : a.lr_groups) j["lr_groups"].push_back(to_string(g));
    j["warmup"] = a.warmup;
    j["weight_decay"] = a.weight_decay;
    j["tokens_per_second"] = r.seconds > 0 ? static_cast<double>(r.real_tokens) / r.seconds : 0.0;
    j["gemm"] = ran_on.gemm;
    if (!ran_on.kernels.empty()) j["openblas_kernels"] = ran_on.kernels;
    if (ran_on.device != "cpu") j["device"] = ran_on.device;
    j["precision"] = a.precision;
    if (a.precision == "fp16") {  // dynamic loss scaling: what it skipped, where the scale ended
        j["overflow_steps"] = r.overflow_steps;
        j["final_loss_scale"] = r.final_loss_scale;
    }
}

/// An option-level fault found after parsing (a checkpoint's limits, a source model's tasks): run_main ends the
/// run with rc 2, as CLI11 does for a bad option.
struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// The main() wrapper both examples use: library errors and anything else end with rc 1 and one line naming
/// the program (and the rank, among several processes), never an abort; a usage_error with rc 2. Among several
/// processes an error on one rank ends the job (run_processes::end_job_after_error), so that no rank waits for
/// it in a collective.
template <class Body>
int run_main(const std::string& program, Body&& body, std::optional<run_processes>* processes = nullptr) {
    auto fail = [&](const std::string& what, int rc) {
        const bool ranks = processes != nullptr && processes->has_value();
        // One write, so that the ranks' lines do not interleave.
        std::cerr << program + (ranks ? (*processes)->rank_label() : std::string()) + ": " + what + '\n' +
                         (rc == 2 ? "Run with --help for the options.\n" : "");
        if (ranks) (*processes)->end_job_after_error(rc);
        return rc;
    };
    try {
        return body();
    } catch (const usage_error& e) {
        return fail(e.what(), 2);
    } catch (const hyperadapt::error& e) {
        return fail(e.what(), 1);
    } catch (const nlohmann::json::exception& e) {
        return fail(e.what(), 1);
    } catch (const std::filesystem::filesystem_error& e) {
        return fail(e.what(), 1);
    } catch (const std::bad_alloc&) {
        return fail("out of memory (are the sizes, --batch, --seq-len or the checkpoint's config sane?)", 1);
    } catch (const std::exception& e) {
        return fail(e.what(), 1);
    }
}

/// The head of one task. With `scale_targets`, a regression head learns targets divided by their largest
/// magnitude in the training data (STS-B: 5), so its MSE is on the scale of the classification losses.
/// Writes `model`, trained on `tasks` (in head order), to the model directory `dir` with the checkpoint's
/// vocabulary and the run's settings as its provenance.
template <class Model>
void save_model_directory(Model& model, const std::filesystem::path& dir, const common_args& a,
                          const std::vector<const encoded_task*>& tasks, const std::string& made_by) {
    if (!a.leader()) return;  // rank 0 writes for the job
    model_description d;
    d.vocab = std::filesystem::path(a.checkpoint) / "vocab.txt";
    const auto& heads = model.options().tasks;
    for (std::size_t k = 0; k < tasks.size(); ++k) d.tasks.push_back(task_card_of(tasks[k]->info, heads.at(k).target_scale));
    d.tokenizer.max_length = tasks.at(0)->seq_len;
    d.provenance = {{"made_by", made_by}, {"checkpoint", a.checkpoint}, {"seed", a.seed}, {"data_seed", a.sample_seed()},
                    {"lr", a.lr}, {"epochs", a.epochs}, {"steps", a.steps}, {"batch", a.batch},
                    {"train_per_task", a.train_per_task}, {"precision", a.precision}};
    save_pretrained(model, dir, d);
    std::printf("saved the model directory %s (hyperadapt info %s)\n", dir.c_str(), dir.c_str());
}

inline task_head_spec head_for(const encoded_task& t, bool scale_targets) {
    task_head_spec h{t.info.name, t.num_labels()};
    if (scale_targets && t.is_regression()) {
        double m = 0;
        for (const float v : t.scores) m = std::max(m, static_cast<double>(std::abs(v)));
        if (m > 0) h.target_scale = m;
    }
    return h;
}

/// Trains `model` with the sampler named `sampler` (mtu | mtu-paper | mtu-floor | proportional | temperature |
/// round-robin), drawing `batch` rows per step, seeded from `seed`. "mtu" scores candidates with the formula of
/// CA-MTL's code (U = Ĥ · H̄_t / H_max), "mtu-paper" with the paper's (U = Ĥ / H_max), which does not scale a
/// task's candidates down by its own mean entropy; "mtu-floor" is "mtu" with half of every batch shared evenly
/// among the tasks (mt_uncertainty_options::task_floor = 0.5; ours, against the starvation of a task).
/// Throws config_error for an unknown name. Data-parallel over `processes` when it holds several ranks (or is
/// any communicator but the single process): `batch` is the global batch.
template <class Model, class B>
training_result train_with_sampler(Model& model, B& backend, const std::string& sampler, std::size_t batch,
                                   std::uint64_t seed, const std::vector<encoded_task>& train,
                                   const std::vector<encoded_task>& dev, const trainer_options& o,
                                   communicator_ref processes) {
    std::vector<std::size_t> sizes;
    for (const auto& t : train) sizes.push_back(t.size());
    const rng_stream rng(seed * 7919 + 17);
    if (sampler == "mtu" || sampler == "mtu-paper" || sampler == "mtu-floor") {
        std::vector<mt_uncertainty_task> tasks;
        for (const auto& t : train) tasks.push_back({t.info.name, t.size(), t.num_labels(), {}});
        apply_camtl_borrowing(tasks);  // STS-B takes MRPC's scores, as the authors' code does
        // Any other regression task would score 0 and never be picked: let it borrow from the first
        // classification task instead (a documented departure from the reference, which has only STS-B).
        for (auto& t : tasks)
            if (t.num_classes == 1 && t.borrow_scores_from.empty())
                for (const auto& d : tasks)
                    if (d.num_classes > 1) {
                        t.borrow_scores_from = d.name;
                        break;
                    }
        mt_uncertainty_options mo;
        if (sampler == "mtu-paper") mo.formula = mt_uncertainty_formula::paper;
        if (sampler == "mtu-floor") mo.task_floor = 0.5;
        mt_uncertainty_sampler smp(tasks, batch, rng, mo);
        return train_multitask(model, smp, backend, train, dev, o, processes);
    }
    if (sampler == "proportional") {
        size_proportional_sampler smp(sizes, batch, rng);
        return train_multitask(model, smp, backend, train, dev, o, processes);
    }
    if (sampler == "temperature") {
        temperature_sampler smp(sizes, batch, rng);
        return train_multitask(model, smp, backend, train, dev, o, processes);
    }
    if (sampler == "round-robin") {
        round_robin_sampler smp(sizes, batch, rng);
        return train_multitask(model, smp, backend, train, dev, o, processes);
    }
    throw config_error("unknown sampler '" + sampler + "' (mtu, mtu-paper, mtu-floor, proportional, temperature or round-robin)");
}

/// A trained model's results: the trainer's, and the dev scores of the model the run ended with -- with a
/// validation split measured once, after selection; without one the trainer's last dev evaluation.
struct measured_run {
    training_result trained;
    std::vector<data::task_result> test;
    bool selected_on_validation = false;
};

/// Trains `model` on `train` with the sampler a.sampler names. With a validation split (non-empty
/// `validation`) the trainer evaluates and selects on it and `dev` is measured once at the end; without one
/// the trainer evaluates `dev` (the examples' behaviour before the results protocol).
template <class Model, class B>
measured_run train_and_measure(Model& model, B& backend, const common_args& a, std::size_t batch,
                               const std::vector<encoded_task>& train, const std::vector<encoded_task>& validation,
                               const std::vector<encoded_task>& dev, const trainer_options& o) {
    const bool selecting = !validation.empty();
    communicator_ref processes = a.processes;
    measured_run out{train_with_sampler(model, backend, a.sampler, batch, a.seed, train, selecting ? validation : dev, o,
                                        processes),
                     {}, selecting};
    out.test = selecting ? evaluate_tasks<Model, B, typename Model::value_type>(model, backend, dev, o.eval_batch, o.padding,
                                                                               processes)
                         : out.trained.final;
    return out;
}

}  // namespace hyperadapt::examples
