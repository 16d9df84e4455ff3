#pragma once
// The multi-task training loop, written once for every model and sampler:
//
//   each step:  rows = sampler's batch (MT-Uncertainty: one no-grad forward over the T·b candidates in train
//               mode, dropout active, as the authors do; then the top b) -> mixed-task batch -> loss (mean over
//               the tasks present) -> backward -> global-norm clipping -> AdamW with linear warmup/decay
//   every eval_every steps and at the end: each task's metric(s) on the evaluation set the caller passes;
//               the best score per task over all evaluations (what CA-MTL reports) and the final scores are
//               kept, labelled as such
//   selection:  with selection = best_average the evaluation set is a validation split carved from the
//               training data, and the run ends with the model of the evaluation whose average score over
//               the tasks was highest (one model per run, never a per-task maximum); the caller then
//               measures that model once on its test set, which the loop never sees
//   groups:     parameter groups (optim/parameter_groups.hpp) each with its own peak rate, weight decay and
//               warmup; every group follows the same linear warmup/decay shape
//   output:     progress (bar on a terminal, lines otherwise), metrics as JSONL, a PNG of the dev curves
//               (gnuplot), optional checkpoints (train/checkpoint.hpp) for bit-exact resume
//   numerics:   a non-finite loss or global gradient norm (the norm clipping computes anyway is a reduction
//               over every gradient, so the check costs nothing) stops the run with nonfinite_error naming the
//               step, the tasks in the batch and the first parameter whose gradient is not finite; with
//               on_nonfinite = skip_step the update is skipped instead, counted and reported. A checkpoint is
//               never written with non-finite values, and resume passes over any that hold them.
//   processes:  with a communicator (distributed/), data-parallel: rank 0's weights are broadcast first;
//               every rank draws the same global batch from its copy of the sampler (same seed;
//               MT-Uncertainty's candidates are scored in shares and the scores gathered, so every rank selects
//               the same rows: the single process's, with dropout off), trains on its share (balanced by
//               length) with the global per-task counts in the loss (losses over the whole batch, PHA's
//               contrastive ones, gather the other ranks' rows: multitask_batch::exchange), and the summed
//               gradients are the global batch's; losses and token counts are summed; evaluation is sharded
//               and its predictions gathered (exact metrics); only rank 0 logs, shows progress and writes
//               checkpoints. Dropout draws from a stream of (seed, rank, step): a run is reproducible for a
//               world size; one rank keeps the single-process stream, so a 1-rank run is the plain run.
//   resume:     with `resume`, the newest checkpoint in out_dir/checkpoints that validates and is finite
//               restores model, AdamW, dropout stream and sampler; the run continues from its step and its
//               losses equal the uninterrupted run's bit for bit (CPU). Model selection starts again at the
//               resumed step: the evaluations before it are not in the checkpoint.
//
// A model for this loop provides (see models/camtl.hpp):
//   double forward_loss(const multitask_batch<B,T>&, context&, run_mode);  void backward(context&);
//   std::vector<std::vector<T>> outputs(const multitask_batch<B,T>&, run_mode);  visit_parameters(f).
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cmath>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyperadapt/data/metrics.hpp"
#include "hyperadapt/data/multitask_batch.hpp"
#include "hyperadapt/distributed/communicator.hpp"
#include "hyperadapt/distributed/data_parallel.hpp"
#include "hyperadapt/distributed/overlapped_allreduce.hpp"
#include "hyperadapt/io/json.hpp"
#include "hyperadapt/nn/flat_parameters.hpp"
#include "hyperadapt/nn/parameters.hpp"
#include "hyperadapt/optim/adamw.hpp"
#include "hyperadapt/optim/loss_scaler.hpp"
#include "hyperadapt/optim/parameter_groups.hpp"
#include "hyperadapt/optim/schedule.hpp"
#include "hyperadapt/train/checkpoint.hpp"
#include "hyperadapt/train/metrics_log.hpp"
#include "hyperadapt/train/progress.hpp"
#include "hyperadapt/train/sampler.hpp"

namespace hyperadapt {

template <class M, class B, class T>
concept trainable_multitask_model = parameterized<M> && requires(M& m, const M& cm, const multitask_batch<B, T>& b,
                                                       typename M::context& ctx, run_mode mode) {
    { cm.forward_loss(b, ctx, mode) } -> std::convertible_to<double>;
    m.backward(ctx);
    m.backward(ctx, T(1));  // d(scale * loss): loss scaling (trainer_options::loss_scaling)
    { cm.outputs(b, mode) } -> std::same_as<std::vector<std::vector<T>>>;
};

/// A training step produced a non-finite loss or gradient (the message names step, tasks and parameter).
class nonfinite_error : public error {
public:
    using error::error;
};

/// What a non-finite loss or gradient does: end the run (the default), or skip that step's update.
enum class nonfinite_policy { stop, skip_step };

/// Which model a run ends with: the last step's, or the one of the evaluation with the best average score
/// over the tasks (model selection on a validation split: pass the validation split as the loop's `dev`).
enum class model_selection { last_step, best_average };

struct trainer_options {
    std::int64_t steps = 100;
    double lr = 2e-5;  ///< the default group's peak rate (parameters no group pattern matches)
    double warmup_proportion = 0.1;
    double weight_decay = 0.01;
    std::vector<parameter_group> groups;  ///< parameters with their own rate, decay, warmup (first match wins)
    model_selection selection = model_selection::last_step;
    std::string eval_split = "dev";  ///< what metrics.jsonl calls the evaluation set ("validation" when selecting)
    double max_grad_norm = 1.0;
    std::int64_t eval_every = 0;      ///< 0: evaluate only at the end
    std::size_t eval_batch = 64;
    /// Rows grouped by length, each group as long as its longest example (data/multitask_batch.hpp): the real
    /// positions' outputs are those of fully padded batches, at a fraction of the cost on short sentences.
    /// to_encoded_length pads every batch to the tasks' seq_len.
    batch_padding padding = batch_padding::length_groups;
    std::uint64_t seed = 12;          ///< dropout stream
    std::filesystem::path out_dir{};  ///< metrics.jsonl, dev_curves.png, checkpoints/ (empty: none written)
    std::int64_t checkpoint_every = 0;
    bool resume = false;              ///< continue from the newest valid checkpoint in out_dir/checkpoints
    nonfinite_policy on_nonfinite = nonfinite_policy::stop;
    /// Dynamic loss scaling (optim/loss_scaler.hpp; fp16 training): backward of scale x loss, gradients divided
    /// by the scale before clipping, a step whose gradients overflow skipped and the scale lowered (not a
    /// non-finite step: on_nonfinite is for a non-finite loss). Empty: none. Its state is in the checkpoints.
    std::optional<loss_scaler_options> loss_scaling{};
    bool show_progress = true;
    std::string run_name = "run";
};

/// One evaluation of the loop: its step, each task's result and their average.
struct evaluation_record {
    std::int64_t step = 0;
    std::vector<data::task_result> tasks;
    double average = 0;
};

struct training_result {
    std::vector<data::task_result> best;   ///< per task, the best score over all evaluations
    std::vector<data::task_result> final;  ///< per task, the last evaluation
    double best_average = 0, final_average = 0;
    /// The evaluation whose model the run ended with (best_average: the highest average, the earliest on a
    /// tie; last_step: the final one), and every evaluation in order.
    evaluation_record selected;
    std::vector<evaluation_record> evaluations;
    double fraction_used = 1;  ///< examples used for updates / candidates drawn
    /// Per task: the candidates drawn and the examples used for updates (a scoring sampler such as
    /// MT-Uncertainty may use far fewer of one task's candidates than of another's).
    std::vector<std::uint64_t> candidates_drawn, examples_used;
    std::int64_t steps = 0;
    double seconds = 0;
    parameter_count counts;
    std::vector<double> losses;  ///< training loss per step (from resumed_from on)
    std::uint64_t real_tokens = 0;      ///< tokens (not padding) of the updates' batches, from resumed_from on
    std::uint64_t computed_tokens = 0;  ///< positions the encoder computed for them (rows x length, per group)
    std::int64_t skipped_steps = 0;  ///< updates skipped for a non-finite loss or gradient (skip_step)
    std::int64_t overflow_steps = 0;  ///< updates skipped for overflowing scaled gradients (loss_scaling)
    double final_loss_scale = 1;      ///< the loss scale after the last step (1 without loss_scaling)
    std::int64_t resumed_from = 0;   ///< the checkpoint step the run continued from (0: a fresh start)
    std::vector<std::string> resume_skipped;  ///< checkpoints passed over on resume, each with the reason
};

namespace detail {
/// The first trainable parameter (in visit order) whose gradient (`grads`) or value holds a NaN or an
/// infinity; empty when all are finite. Copies to the host: meant for the rare failure path only.
template <class Model, class B = typename Model::backend_type, class T = typename Model::value_type>
std::string first_nonfinite_parameter(Model& model, bool grads) {
    std::string found;
    model.visit_parameters([&](const std::string& name, parameter<B, T>& p) {
        if (!found.empty() || (grads && !p.trainable())) return;
        const auto v = (grads ? p.grad : p.value).to_host();
        if (std::any_of(v.begin(), v.end(), [](T x) { return !std::isfinite(static_cast<double>(x)); })) found = name;
    });
    return found;
}

/// The first "model/" tensor of a training checkpoint holding a NaN or an infinity; empty when none does.
template <class T>
std::string first_nonfinite_tensor(const std::filesystem::path& file) {
    const io::safetensors_reader r(file);
    for (const auto& e : r.entries()) {
        if (e.name.rfind("model/", 0) != 0) continue;
        const auto v = r.read<T>(e);
        if (std::any_of(v.begin(), v.end(), [](T x) { return !std::isfinite(static_cast<double>(x)); }))
            return e.name.substr(6);
    }
    return {};
}
}  // namespace detail

/// Every task's dev results for the model as it is now, with the evaluation sharded over `comm`'s ranks: each
/// rank predicts a contiguous share of every task's examples, the predictions are gathered in one collective, and
/// every rank computes the metrics over all of them (MCC, F1 and the correlations need every prediction, not an
/// average of the ranks' metrics). Collective: every rank calls it with the same arguments.
template <class Model, class B, class T, communicator C>
std::vector<data::task_result> evaluate_tasks(Model& model, B& backend, std::span<const encoded_task> dev,
                                              std::size_t eval_batch, batch_padding padding, C& comm) {
    const bool sharded = !is_single_process(comm) && comm.size() > 1;
    std::vector<std::vector<double>> predicted(dev.size());
    std::vector<double> mine;  // this rank's predictions, task after task (sharded)
    for (std::size_t t = 0; t < dev.size(); ++t) {
        const encoded_task& d = dev[t];
        const auto [lo, hi] = sharded ? shard_range(d.size(), comm.rank(), comm.size()) : std::pair<std::size_t, std::size_t>{0, d.size()};
        for (std::size_t first = lo; first < hi; first += eval_batch) {
            std::vector<sample_ref> rows;
            for (std::size_t i = first; i < std::min(hi, first + eval_batch); ++i) rows.push_back({t, i});
            const auto batch = make_batch<B, T>(backend, dev, rows, padding);
            const auto y = model.outputs(batch, run_mode::inference());
            for (std::size_t r = 0; r < rows.size(); ++r) {
                const auto& o = y[r];
                (sharded ? mine : predicted[t])
                    .push_back(d.is_regression() ? static_cast<double>(o[0])
                                                 : static_cast<double>(std::max_element(o.begin(), o.end()) - o.begin()));
            }
        }
    }
    if (sharded) {
        const auto all = comm.allgather(std::span<const double>(mine));
        for (int q = 0; q < comm.size(); ++q) {
            const auto& theirs = all.at(static_cast<std::size_t>(q));
            std::size_t at = 0;
            for (std::size_t t = 0; t < dev.size(); ++t) {
                const auto [lo, hi] = shard_range(dev[t].size(), q, comm.size());
                if (at + (hi - lo) > theirs.size())
                    throw communication_error("evaluate_tasks: rank " + std::to_string(q) + " sent " + std::to_string(theirs.size()) +
                                              " predictions, fewer than its shards of the evaluation sets hold");
                predicted[t].insert(predicted[t].end(), theirs.begin() + static_cast<std::ptrdiff_t>(at),
                                    theirs.begin() + static_cast<std::ptrdiff_t>(at + (hi - lo)));
                at += hi - lo;
            }
        }
    }
    std::vector<data::task_result> out;
    for (std::size_t t = 0; t < dev.size(); ++t) {
        const encoded_task& d = dev[t];
        if (d.is_regression()) {
            out.push_back(data::evaluate(d.info, predicted[t], std::vector<double>(d.scores.begin(), d.scores.end())));
        } else {
            std::vector<int> p(predicted[t].begin(), predicted[t].end()), g(d.labels.begin(), d.labels.end());
            out.push_back(data::evaluate(d.info, p, g));
        }
    }
    return out;
}

/// Every task's dev results for the model as it is now, in this process.
template <class Model, class B, class T>
std::vector<data::task_result> evaluate_tasks(Model& model, B& backend, std::span<const encoded_task> dev,
                                              std::size_t eval_batch,
                                              batch_padding padding = batch_padding::length_groups) {
    single_process solo;
    return evaluate_tasks<Model, B, T>(model, backend, dev, eval_batch, padding, solo);
}

namespace detail {
/// The training loop's view of a sampler: the next batch, its state in and out of a checkpoint. The loop
/// reaches the sampler through this interface (one virtual call per step) so that it is compiled once per
/// model rather than once per (model, sampler) pair: an example that lets the user pick among four
/// samplers would otherwise build four copies of the whole loop.
class sampler_handle {
public:
    /// The candidates' head outputs, per task, for a scoring sampler.
    using score_function = std::function<std::vector<std::vector<float>>(const std::vector<example_ref>&)>;
    virtual ~sampler_handle() = default;
    /// One step's batch; `score` is called only by a scoring sampler.
    virtual std::vector<example_ref> next(const score_function& score) = 0;
    virtual void save(training_state& st) const = 0;
    virtual void restore(const training_state& st) = 0;
    [[nodiscard]] virtual double fraction_used() const = 0;
    [[nodiscard]] virtual std::size_t num_tasks() const = 0;
    [[nodiscard]] virtual std::uint64_t candidates_drawn(std::size_t task) const = 0;
    [[nodiscard]] virtual std::uint64_t examples_used(std::size_t task) const = 0;
};

/// A sampler_handle over a caller's sampler (not owned: the caller's object advances).
template <sampler S>
class sampler_reference final : public sampler_handle {
public:
    explicit sampler_reference(S& s) noexcept : s_(s) {}
    std::vector<example_ref> next(const score_function& score) override {
        if constexpr (S::needs_scores)
            return next_batch(s_, score);
        else
            return next_batch(s_);
    }
    void save(training_state& st) const override { save_sampler(s_, st); }
    void restore(const training_state& st) override { restore_sampler(s_, st); }
    [[nodiscard]] double fraction_used() const override { return s_.fraction_used(); }
    [[nodiscard]] std::size_t num_tasks() const override { return s_.num_tasks(); }
    [[nodiscard]] std::uint64_t candidates_drawn(std::size_t t) const override { return s_.candidates_drawn(t); }
    [[nodiscard]] std::uint64_t examples_used(std::size_t t) const override { return s_.examples_used(t); }

private:
    S& s_;
};

template <class Model, class B, class T, communicator C>
training_result train_multitask_loop(Model& model, sampler_handle& sampler, B& backend,
                                     std::span<const encoded_task> train, std::span<const encoded_task> dev,
                                     const trainer_options& o, C& comm);

/// A loss scaler's state as a checkpoint keeps it (training_state::extra["loss_scaler"]), as JSON.
inline std::string loss_scaler_text(const loss_scaler_state& st) {
    return nlohmann::json{{"scale", st.scale}, {"steps_without_overflow", st.steps_without_overflow}}.dump();
}
/// Reads loss_scaler_text's JSON; an io_error naming `where` and the field when it is not that.
inline loss_scaler_state loss_scaler_state_of(const std::string& text, const std::string& where) {
    const auto j = io::parse_json(text, where + ": loss scaler state");
    if (!j.is_object() || !j.contains("scale") || !j["scale"].is_number() || !j.contains("steps_without_overflow") ||
        !j["steps_without_overflow"].is_number_integer())
        throw io_error(where + ": loss scaler state: expected {\"scale\": number, \"steps_without_overflow\": integer}, got " +
                       text.substr(0, 200));
    return {j["scale"].get<double>(), j["steps_without_overflow"].get<std::int64_t>()};
}

/// The dropout stream of one rank's training forward at one step of a data-parallel run: a function of the
/// run's seed, the rank and the step only, so that it needs no state in a checkpoint.
inline rng_stream rank_step_stream(std::uint64_t seed, int rank, std::int64_t step) {
    auto mix = [](std::uint64_t z) {  // splitmix64's finaliser
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    };
    return rng_stream(mix(mix(seed ^ 0x6a09e667f3bcc908ULL) + static_cast<std::uint64_t>(rank) * 0x9e3779b97f4a7c15ULL +
                          static_cast<std::uint64_t>(step)));
}
}  // namespace detail

/// Trains `model` on the tasks in `train` with batches from `sampler`, evaluating on `dev` (see the top of
/// this header). The sampler advances: after the call it stands where the run left it.
template <class Model, sampler S, class B = typename Model::backend_type, class T = typename Model::value_type>
    requires trainable_multitask_model<Model, B, T>
training_result train_multitask(Model& model, S& sampler, B& backend, std::span<const encoded_task> train,
                                std::span<const encoded_task> dev, const trainer_options& o) {
    detail::sampler_reference<S> handle(sampler);
    single_process solo;
    return detail::train_multitask_loop<Model, B, T>(model, handle, backend, train, dev, o, solo);
}

/// The same, data-parallel over `comm`'s ranks (every rank calls it with the same arguments; each trains on its
/// share of every global batch; see the top of this header). The global batch must be a multiple of the world
/// size (config_error at the first step otherwise).
template <class Model, sampler S, communicator C, class B = typename Model::backend_type, class T = typename Model::value_type>
    requires trainable_multitask_model<Model, B, T>
training_result train_multitask(Model& model, S& sampler, B& backend, std::span<const encoded_task> train,
                                std::span<const encoded_task> dev, const trainer_options& o, C& comm) {
    detail::sampler_reference<S> handle(sampler);
    return detail::train_multitask_loop<Model, B, T>(model, handle, backend, train, dev, o, comm);
}

template <class Model, class B, class T, communicator C>
training_result detail::train_multitask_loop(Model& model, sampler_handle& sampler, B& backend,
                                             std::span<const encoded_task> train, std::span<const encoded_task> dev,
                                             const trainer_options& o, C& comm) {
    const auto start = std::chrono::steady_clock::now();
    // Any communicator but the single process takes the data-parallel path, one rank too (which then equals the
    // single-process run: same rows, same dropout stream), so that a 1-GPU NCCL run tests that path.
    const bool distributed = !is_single_process(comm);
    // Scoring and evaluation are shared out only among two ranks or more (one rank is the plain run).
    const bool sharing = distributed && comm.size() > 1;
    const bool leader = comm.rank() == 0;
    // Every value in one buffer and every trainable gradient in another (layers keep views): zeroing, unscaling,
    // clipping and the all-reduce are one call each (issue 13).
    flat_parameters<B, T> flat(model);
    if (distributed) {  // the same model everywhere, starting from rank 0's weights
        check_same_parameters(model, comm);
        broadcast_parameters(flat, comm);
    }
    // Gradients are all-reduced bucket by bucket while backward still runs (distributed/overlapped_allreduce.hpp:
    // MPI in host memory, NCCL on a second stream), or in one call after it where the communicator cannot reduce
    // the memory they lie in where it lies.
    std::optional<overlapped_allreduce<B, T, C>> overlapped;
    if (distributed) overlapped.emplace(flat, comm);
    const bool show_progress = o.show_progress && leader;
    training_result result;
    result.counts = count_parameters(model);
    adamw<B, T> opt(model, {.lr = o.lr, .weight_decay = o.weight_decay}, o.groups);
    auto schedule_for = [&](double lr, double warmup_proportion) {
        if (!(warmup_proportion >= 0 && warmup_proportion <= 1))
            throw config_error("train_multitask: warmup proportion must be in [0, 1], got " + std::to_string(warmup_proportion));
        const auto warmup = static_cast<std::int64_t>(std::llround(warmup_proportion * static_cast<double>(o.steps)));
        return linear_warmup_schedule(lr, warmup, o.steps);
    };
    std::vector<linear_warmup_schedule> schedules{schedule_for(o.lr, o.warmup_proportion)};
    for (const auto& g : o.groups) schedules.push_back(schedule_for(g.lr, g.warmup_proportion.value_or(o.warmup_proportion)));
    const linear_warmup_schedule& schedule = schedules[0];
    rng_stream dropout_rng(o.seed);

    // The selected model's trainable values (best_average), kept on the host between evaluations.
    std::vector<std::vector<T>> selected_values;
    auto snapshot = [&] {
        selected_values.clear();
        model.visit_parameters([&](const std::string&, parameter<B, T>& p) {
            if (p.trainable()) selected_values.push_back(p.value.to_host());
        });
    };
    auto restore_snapshot = [&] {
        std::size_t i = 0;
        model.visit_parameters([&](const std::string&, parameter<B, T>& p) {
            if (!p.trainable()) return;
            const auto& v = selected_values.at(i++);
            p.value.backend().copy_from_host(v.data(), p.value.data(), v.size());
        });
    };

    std::optional<metrics_log> log;
    if (!o.out_dir.empty() && leader) log.emplace(o.out_dir / "metrics.jsonl");
    progress_bar bar(o.steps, stderr, std::max<std::int64_t>(1, o.steps / 20));

    // MT-Uncertainty's scores: one no-grad forward over the candidates in train mode (dropout on), as the
    // authors' sampler does. Among two ranks or more each rank scores its share of the candidates (dealt by
    // length, as the batches are) with its own dropout stream of (seed, rank, step), and the outputs are gathered
    // in one collective, so every rank holds every candidate's scores and selects the same global batch (the
    // single process's, when dropout is off).
    std::int64_t scoring_step = 0;
    const sampler_handle::score_function score_candidates = [&](const std::vector<example_ref>& cand) {
        std::vector<std::vector<float>> per_task(train.size());
        if (!sharing) {
            const auto batch = make_batch<B, T>(backend, train, cand, o.padding);
            const auto y = model.outputs(batch, run_mode::train(dropout_rng));
            for (std::size_t r = 0; r < cand.size(); ++r)
                for (const T v : y[r]) per_task[cand[r].task].push_back(static_cast<float>(v));
            return per_task;
        }
        std::vector<double> mine;  // per scored row: its output count, then its outputs
        if (const auto positions = balanced_positions(cand, train, comm.rank(), comm.size()); !positions.empty()) {
            std::vector<example_ref> rows;
            for (const std::size_t i : positions) rows.push_back(cand[i]);
            const auto batch = make_batch<B, T>(backend, train, rows, o.padding);
            rng_stream stream = rank_step_stream(o.seed ^ 0x5c0e5c0e5c0e5c0eULL, comm.rank(), scoring_step);
            const auto y = model.outputs(batch, run_mode::train(stream));
            for (const auto& row : y) {
                mine.push_back(static_cast<double>(row.size()));
                for (const T v : row) mine.push_back(static_cast<double>(v));
            }
        }
        const auto all = comm.allgather(std::span<const double>(mine));
        std::vector<std::vector<float>> by_candidate(cand.size());
        for (int q = 0; q < comm.size(); ++q) {
            const auto& theirs = all.at(static_cast<std::size_t>(q));
            std::size_t at = 0;
            for (const std::size_t i : balanced_positions(cand, train, q, comm.size())) {
                const auto n = at < theirs.size() ? static_cast<std::size_t>(theirs[at]) : theirs.size();
                if (at + 1 + n > theirs.size())
                    throw communication_error("train_multitask: rank " + std::to_string(q) +
                                              "'s candidate scores are fewer than its share of the candidates");
                by_candidate[i].assign(theirs.begin() + static_cast<std::ptrdiff_t>(at + 1),
                                       theirs.begin() + static_cast<std::ptrdiff_t>(at + 1 + n));
                at += 1 + n;
            }
        }
        for (std::size_t r = 0; r < cand.size(); ++r)
            per_task[cand[r].task].insert(per_task[cand[r].task].end(), by_candidate[r].begin(), by_candidate[r].end());
        return per_task;
    };

    auto evaluate_now = [&](std::int64_t step) {
        auto res = evaluate_tasks<Model, B, T>(model, backend, dev, o.eval_batch, o.padding, comm);
        if (result.best.empty()) result.best = res;
        evaluation_record now{step, res, data::average_score(res)};
        const bool better = result.evaluations.empty() || now.average > result.selected.average ||
                            (std::isnan(result.selected.average) && !std::isnan(now.average));
        if (o.selection == model_selection::last_step || better) {
            result.selected = now;
            if (o.selection == model_selection::best_average && step < o.steps) snapshot();
            else selected_values.clear();  // the model as it stands is the selected one
        }
        result.evaluations.push_back(std::move(now));
        for (std::size_t t = 0; t < res.size(); ++t) {
            if (res[t].score > result.best[t].score || std::isnan(result.best[t].score)) result.best[t] = res[t];
            if (log) {
                nlohmann::json rec{{"run", o.run_name}, {"split", o.eval_split}, {"step", step}, {"task", res[t].task},
                                   {"score", res[t].score}};
                for (const auto& v : res[t].values) rec[std::string(data::to_string(v.which))] = v.value;
                log->write(rec);
            }
        }
        result.final = res;
        std::string line = o.eval_split + " @" + std::to_string(step) + ":";
        for (const auto& r : res) line += " " + r.task + " " + std::to_string(r.score).substr(0, 6);
        if (show_progress) bar.message(line);
    };

    std::optional<dynamic_loss_scaler> scaler;
    if (o.loss_scaling) scaler.emplace(*o.loss_scaling);

    std::int64_t first_step = 0;
    if (o.resume) {
        if (o.out_dir.empty()) throw config_error("train_multitask: resume needs out_dir (its checkpoints/ folder)");
        const checkpoint_directory dir(o.out_dir / "checkpoints");
        const auto all = dir.list();
        for (auto it = all.rbegin(); it != all.rend(); ++it) {
            try {
                if (const auto bad = detail::first_nonfinite_tensor<T>(it->second); !bad.empty()) {
                    result.resume_skipped.push_back(it->second.string() + ": parameter '" + bad +
                                                    "' holds a non-finite value");
                    continue;
                }
                const training_state st = load_training_checkpoint(it->second, model, opt);
                if (st.step > o.steps)
                    throw config_error(it->second.string() + ": checkpoint of step " + std::to_string(st.step) +
                                       ", beyond this run's " + std::to_string(o.steps) + " steps");
                const auto d = st.rng.find("dropout");
                if (d == st.rng.end()) throw io_error(it->second.string() + ": no 'dropout' stream in the state");
                sampler.restore(st);
                dropout_rng = d->second;
                const auto scaled = st.extra.find("loss_scaler");
                if (scaler && scaled == st.extra.end())
                    throw config_error(it->second.string() + ": a run without loss scaling wrote this checkpoint; resume "
                                       "it without loss_scaling (or start afresh)");
                if (!scaler && scaled != st.extra.end())
                    throw config_error(it->second.string() + ": a run with loss scaling wrote this checkpoint; resume it "
                                       "with loss_scaling");
                if (scaler) scaler->restore(detail::loss_scaler_state_of(scaled->second, it->second.string()),
                                            it->second.string() + ": loss scaler state");
                first_step = result.resumed_from = st.step;
                break;
            } catch (const io_error& e) {
                result.resume_skipped.push_back(e.what());
            }
        }
        // The unusable checkpoints after the resumed step would block the saves to come (a folder holds one
        // run's steps): they are renamed "<file>.unusable", out of the way but kept for inspection.
        for (const auto& [s, f] : all)
            if (s > first_step && first_step > 0) {
                std::error_code ec;
                std::filesystem::rename(f, f.string() + ".unusable", ec);
                if (!ec) result.resume_skipped.push_back(f.string() + ": renamed to " + f.filename().string() + ".unusable");
            }
        if (!all.empty() && first_step == 0) {  // checkpoints exist, none usable: starting over would hide it
            std::string why;
            for (const auto& w : result.resume_skipped) why += "\n  " + w;
            throw io_error(dir.path().string() + ": no checkpoint to resume from is usable:" + why);
        }
        if (show_progress) {
            for (const auto& why : result.resume_skipped) bar.message("resume: skipped " + why);
            bar.message(first_step > 0 ? "resumed from step " + std::to_string(first_step)
                                       : "resume: no checkpoint in " + dir.path().string() + " yet, starting at step 0");
        }
    }

    // A fresh run refuses a folder with another run's checkpoints now rather than at its first save.
    if (!o.resume && o.checkpoint_every > 0 && !o.out_dir.empty())
        checkpoint_directory(o.out_dir / "checkpoints").check_fresh_start();

    auto batch_tasks = [&](const std::vector<example_ref>& rows) {
        std::set<std::size_t> ids;
        for (const auto& r : rows) ids.insert(r.task);
        std::string names;
        for (const auto t : ids) names += (names.empty() ? "" : ", ") + train[t].info.name;
        return names;
    };

    for (std::int64_t step = first_step; step < o.steps; ++step) {
        scoring_step = step;
        const std::vector<example_ref> rows = sampler.next(score_candidates);
        auto batch = make_batch<B, T>(backend, train, distributed ? balanced_share(rows, train, comm.rank(), comm.size()) : rows,
                                      o.padding);
        typename Model::context ctx;
        flat.zero_grad();
        double loss = 0;
        const double loss_scale = scaler ? scaler->scale() : 1.0;
        auto backward = [&] {
            if (scaler)
                model.backward(ctx, static_cast<T>(loss_scale));
            else
                model.backward(ctx);
        };
        if (!distributed) {
            result.real_tokens += batch.real_tokens;
            result.computed_tokens += batch.computed_positions();
            loss = model.forward_loss(batch, ctx, run_mode::train(dropout_rng));
            backward();
        } else {
            // This share of the global batch's loss (one rank's share is the batch: its own counts, the plain sum).
            if (comm.size() > 1) batch.loss_task_rows = task_row_counts(rows, train.size());
            // Losses over the whole global batch (PHA's contrastive losses) gather the other ranks' rows.
            batch.exchange = {.rank = comm.rank(), .allgather = [&comm](std::span<const double> v) { return comm.allgather(v); }};
            // Each rank's own dropout stream; one rank keeps the single-process run's.
            rng_stream step_stream = rank_step_stream(o.seed, comm.rank(), step);
            rng_stream& stream = comm.size() == 1 ? dropout_rng : step_stream;
            overlapped->begin();
            const run_mode mode = run_mode::train(stream).reporting_gradients(*overlapped);
            const double loss_share = model.forward_loss(batch, ctx, mode);
            backward();
            overlapped->finish();
            // The scalars every rank needs, with the digest of the order this rank started its gradient buckets in
            // and its square (order_digests_agree): every rank reaches the same verdict with no extra message.
            const auto digest = static_cast<double>(overlapped->last_pass().order_digest);
            std::array<double, 5> sums{loss_share, static_cast<double>(batch.real_tokens),
                                       static_cast<double>(batch.computed_positions()), digest, digest * digest};
            comm.allreduce_sum(std::span<double>(sums));
            if (!order_digests_agree(comm.size(), sums[3], sums[4]))
                throw communication_error(
                    "train_multitask: at step " + std::to_string(step) + " the " + std::to_string(comm.size()) +
                    " ranks did not start their gradient all-reduces in the same order, so the summed gradients mix "
                    "different parameters; a layer reports its gradients final in an order that depends on the "
                    "batch (nn/gradient_listener.hpp). Rank " + std::to_string(comm.rank()) + "'s digest: " +
                    std::to_string(overlapped->last_pass().order_digest));
            loss = sums[0];
            result.real_tokens += static_cast<std::uint64_t>(sums[1]);
            result.computed_tokens += static_cast<std::uint64_t>(sums[2]);
        }
        // The gradients of loss_scale x loss, divided back (exact: a power of two).
        if (scaler) flat.scale_gradients(static_cast<T>(1.0 / loss_scale));
        const double norm = flat.clip_grad_norm(o.max_grad_norm);
        const bool finite = std::isfinite(loss) && std::isfinite(norm);
        // Scaled gradients that overflowed: skip the update and lower the scale (GradScaler), whatever on_nonfinite.
        const bool overflow = scaler && std::isfinite(loss) && !std::isfinite(norm);
        if (overflow) {
            ++result.overflow_steps;
            scaler->update(true);
            if (show_progress)
                bar.message("step " + std::to_string(step + 1) + ": the gradients of the loss scaled by " +
                            std::to_string(loss_scale) + " overflowed; update skipped, scale now " +
                            std::to_string(scaler->scale()));
        } else if (!finite) {
            const std::string grad = detail::first_nonfinite_parameter(model, true);
            const std::string what =
                "step " + std::to_string(step + 1) + " (tasks " + batch_tasks(rows) + "): loss " + std::to_string(loss) +
                ", gradient norm " + std::to_string(norm) +
                (grad.empty() ? std::string("; every gradient is finite")
                              : "; the first parameter whose gradient is not finite is '" + grad + "'");
            if (o.on_nonfinite == nonfinite_policy::stop)
                throw nonfinite_error("train_multitask: " + what +
                                      " (lower the learning rate; on_nonfinite = skip_step, --skip-nonfinite in the examples, skips such steps)");
            ++result.skipped_steps;
            if (show_progress) bar.message("skipped the update of " + what);
        } else {
            for (std::size_t g = 0; g < schedules.size(); ++g) opt.set_group_lr(g, schedules[g].lr(step));
            opt.step();
            if (scaler) scaler->update(false);
        }
        result.losses.push_back(loss);
        if (log) {
            nlohmann::json rec{{"run", o.run_name}, {"split", "train"}, {"step", step + 1}, {"loss", loss},
                               {"grad_norm", norm}, {"lr", schedule.lr(step)}};
            if (schedules.size() > 1) {
                rec["group_lr"] = nlohmann::json::array();
                for (std::size_t g = 1; g < schedules.size(); ++g) rec["group_lr"].push_back(schedules[g].lr(step));
            }
            if (!finite) rec["skipped"] = true;  // NaN and infinities are written as null (JSON has neither)
            if (scaler) rec["loss_scale"] = loss_scale;
            if (overflow) rec["overflow"] = true;
            log->write(rec);
        }
        if (show_progress) bar.update(step + 1, "loss " + std::to_string(loss).substr(0, 6));
        if (o.eval_every > 0 && (step + 1) % o.eval_every == 0 && step + 1 < o.steps) evaluate_now(step + 1);
        if (o.checkpoint_every > 0 && !o.out_dir.empty() && (step + 1) % o.checkpoint_every == 0 && leader) {
            // Never a checkpoint that a resume would have to pass over.
            if (const auto bad = detail::first_nonfinite_parameter(model, false); !bad.empty()) {
                if (o.on_nonfinite == nonfinite_policy::stop)
                    throw nonfinite_error("train_multitask: step " + std::to_string(step + 1) + ": parameter '" + bad +
                                          "' is not finite; no checkpoint written");
                if (show_progress)
                    bar.message("step " + std::to_string(step + 1) + ": parameter '" + bad +
                                "' is not finite; checkpoint not written");
                continue;
            }
            training_state st;
            st.step = step + 1;
            st.rng["dropout"] = dropout_rng;
            sampler.save(st);
            if (scaler) st.extra["loss_scaler"] = detail::loss_scaler_text(scaler->state());
            checkpoint_directory(o.out_dir / "checkpoints").save(model, opt, st);
        }
    }
    evaluate_now(o.steps);
    if (!selected_values.empty()) restore_snapshot();  // an earlier evaluation was better than the last
    result.steps = o.steps;
    result.final_loss_scale = scaler ? scaler->scale() : 1.0;
    if (result.skipped_steps > 0 && show_progress)
        bar.message(std::to_string(result.skipped_steps) + " of " + std::to_string(o.steps - first_step) +
                    " updates skipped for a non-finite loss or gradient");
    result.fraction_used = sampler.fraction_used();
    for (std::size_t t = 0; t < sampler.num_tasks(); ++t) {
        result.candidates_drawn.push_back(sampler.candidates_drawn(t));
        result.examples_used.push_back(sampler.examples_used(t));
    }
    result.best_average = data::average_score(result.best);
    result.final_average = data::average_score(result.final);
    if (distributed) comm.barrier();  // no rank returns before rank 0's checkpoints and logs are written
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (log) {
        std::string why;
        const bool plotted = plot_dev_curves(log->path(), o.out_dir / "dev_curves.png", "score", &why, o.eval_split);
        if (!why.empty() && show_progress) bar.message((plotted ? "dev_curves.png: " : "no plot: ") + why);
    }
    return result;
}

}  // namespace hyperadapt
