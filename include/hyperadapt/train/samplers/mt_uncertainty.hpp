#pragma once
// CA-MTL's MT-Uncertainty sampling (spec §1.9; CAMTL/CA-MTL src/mtl_trainer.py::MtUcertaintyIterator,
// src/model/ca_mtl.py::CaMtl.forward, src/model/decoder.py::Decoder.calculate_entropy).
//
// Each step:
//   1. candidates(): for every task t, the next batch of b examples of t (its own shuffled order, restarted
//      when used up; the last batch of an epoch may be short, as a DataLoader without drop_last gives it).
//      The T·b candidates are task 0's batch, then task 1's, ...
//   2. The trainer runs one no-grad forward pass over the candidates (the authors keep the model in train
//      mode, dropout active) and hands each task's head outputs to select().
//   3. select() scores every candidate and keeps the top b:
//        Ĥ(x) = −Σ_c p_c log p_c / (log C_t + ε),  p = softmax(logits), ε = 1e-5
//        H̄_t = mean of Ĥ over task t's candidates,  H_max = max_t H̄_t (over tasks with candidates)
//        code (default): U(x) = Ĥ(x) · H̄_t / H_max        paper: U(x) = Ĥ(x) / H_max
//      A regression task (C_t = 1) has Ĥ = 0; it may borrow a classification task's scores: its first
//      min(n_reg, n_donor) candidates take the donor's first candidates' FINAL (already scaled) scores, as
//      CA-MTL copies MRPC's scores onto STS-B (apply_camtl_borrowing sets that up). The batch is the top-b
//      candidates in DESCENDING score order (tasks mixed), ties broken by the lower candidate position.
//
// `mt_uncertainty_scores` is the scoring step as a standalone function. It computes in double by default;
// mt_uncertainty_precision::float32 repeats the authors' float32 run: logits rounded to float, softmax,
// normalisation, entropy and the per-sample buffers in float, each task's mean returned as a double of a
// float sum, the ratio and product in float.
//
// Edge cases the authors' code leaves undefined: when every candidate's entropy is 0 (H_max = 0) every
// score is 0 (the code divides 0 by 0); probabilities (output_kind::probabilities) are normalised per row
// like scipy.stats.entropy does, and must be finite, non-negative and not all zero; non-finite logits are
// refused.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hyperadapt/data/task.hpp"
#include "hyperadapt/train/sampler.hpp"

namespace hyperadapt {

enum class mt_uncertainty_formula {
    code,   ///< U = Ĥ(x) · H̄_t / H_max (what the authors' code computes; the published numbers)
    paper,  ///< U = Ĥ(x) / H_max (the paper's formula: entropy over the uniform entropy log C_t and the max mean)
};
enum class mt_uncertainty_precision {
    float64,  ///< every step in double
    float32,  ///< the authors' float32 buffers and arithmetic
};
/// What the head outputs handed to select() are.
enum class output_kind { logits, probabilities };

[[nodiscard]] inline std::string_view to_string(mt_uncertainty_formula f) noexcept {
    return f == mt_uncertainty_formula::code ? "code" : "paper";
}
[[nodiscard]] inline std::string_view to_string(mt_uncertainty_precision p) noexcept {
    return p == mt_uncertainty_precision::float64 ? "float64" : "float32";
}
[[nodiscard]] inline std::string_view to_string(output_kind k) noexcept {
    return k == output_kind::logits ? "logits" : "probabilities";
}

struct mt_uncertainty_options {
    mt_uncertainty_formula formula = mt_uncertainty_formula::code;
    mt_uncertainty_precision precision = mt_uncertainty_precision::float64;
    output_kind input = output_kind::logits;
    double epsilon = 1e-5;  ///< added to log C_t (Decoder.calculate_entropy)
    /// Our variant, not the authors': a share of every batch kept for each task. Each task with candidates
    /// first gets its floor(task_floor * b / tasks with candidates) best-scored candidates, then the rest of
    /// the b rows go to the best scores of all. 0 (the default) is the authors' top-b, which can starve a task
    /// the model is confidently wrong about (docs/results.md: CoLA got 70 of 16,320 training slots). In [0, 1].
    double task_floor = 0;
};

/// Regression task `task` takes the scores of classification task `from`.
struct score_borrowing {
    std::size_t task = 0;
    std::size_t from = 0;
};

/// Everything the scoring step computes, indexed by candidate position (task blocks in task order).
struct mt_uncertainty_result {
    std::vector<std::size_t> candidate_task;      ///< [N] the task of every candidate
    std::vector<double> normalized_entropy;       ///< [N] Ĥ(x) (0 for regression candidates)
    std::vector<double> task_means;               ///< [T] H̄_t (0 for a task without candidates)
    std::vector<double> task_mean_per_candidate;  ///< [N] H̄_t of the candidate's task
    double max_task_mean = 0;                     ///< H_max
    std::vector<double> scores;                   ///< [N] U(x), after borrowing
    std::vector<std::size_t> selected;            ///< top-k positions, descending score, ties by position
    std::vector<double> selected_scores;
};

namespace detail {

// The authors' Σ −p log p multiplies and adds in separate numpy operations. A compiler that contracts
// `h += -v * log(v)` into one fused multiply-add (GCC does by default wherever FMA exists) changes the last
// bit, and with it which of two near-tied candidates is kept, depending on build flags. Contraction is
// switched off for the entropy kernel.
#if defined(__clang__)
#define HYPERADAPT_NO_FP_CONTRACT_FUNCTION
#define HYPERADAPT_NO_FP_CONTRACT_BLOCK _Pragma("clang fp contract(off)")
#elif defined(__GNUC__)
#define HYPERADAPT_NO_FP_CONTRACT_FUNCTION [[gnu::optimize("fp-contract=off")]]
#define HYPERADAPT_NO_FP_CONTRACT_BLOCK
#else
#define HYPERADAPT_NO_FP_CONTRACT_FUNCTION
#define HYPERADAPT_NO_FP_CONTRACT_BLOCK
#endif

/// The entropy of one row of C outputs in F arithmetic, in the order the authors' code takes: softmax (max
/// shift, exp, sum, multiply by the reciprocal of the sum), then scipy.stats.entropy's renormalisation by
/// the row sum, then Σ −p log p (0 log 0 = 0).
template <class F, class T>
HYPERADAPT_NO_FP_CONTRACT_FUNCTION F row_entropy(const T* row, std::size_t classes, output_kind kind, std::vector<F>& p) {
    HYPERADAPT_NO_FP_CONTRACT_BLOCK
    p.resize(classes);
    if (kind == output_kind::logits) {
        F m = static_cast<F>(row[0]);
        for (std::size_t k = 1; k < classes; ++k) m = std::max(m, static_cast<F>(row[k]));
        F s = 0;
        for (std::size_t k = 0; k < classes; ++k) {
            p[k] = std::exp(static_cast<F>(row[k]) - m);
            s += p[k];
        }
        const F r = F(1) / s;
        for (auto& v : p) v *= r;
    } else {
        for (std::size_t k = 0; k < classes; ++k) p[k] = static_cast<F>(row[k]);
    }
    F s = 0;
    for (auto v : p) s += v;
    for (auto& v : p) v = v / s;
    F h = 0;
    for (auto v : p)
        if (v > 0) h += -v * std::log(v);
    return h;
}

#undef HYPERADAPT_NO_FP_CONTRACT_FUNCTION
#undef HYPERADAPT_NO_FP_CONTRACT_BLOCK

/// The entropy of the uniform distribution over C classes as the authors compute it (scipy on a float64
/// array of 1/C): log C up to rounding.
inline double uniform_entropy(std::size_t classes) {
    std::vector<double> row(classes, 1.0 / static_cast<double>(classes)), p;
    return row_entropy<double>(row.data(), classes, output_kind::probabilities, p);
}

/// Refuses values the computation cannot take: non-finite ones (also after rounding to F), and for
/// probabilities negative rows or rows of zeros.
template <class F, class T>
void check_row(const T* row, std::size_t classes, output_kind kind, std::size_t task, std::size_t i) {
    bool any = false;
    for (std::size_t k = 0; k < classes; ++k) {
        const T v = row[k];
        if (!std::isfinite(v) || !std::isfinite(static_cast<F>(v)))
            throw config_error("mt_uncertainty: candidate " + std::to_string(i) + " of task " + std::to_string(task) +
                               " has a non-finite " + (kind == output_kind::logits ? "logit" : "probability") +
                               " (class " + std::to_string(k) + ", value " + std::to_string(static_cast<double>(v)) +
                               (std::isfinite(v) ? ", beyond float range" : "") + "); has the model diverged?");
        if (kind == output_kind::probabilities && classes > 1) {  // a regression head's output is no probability
            if (v < 0)
                throw config_error("mt_uncertainty: candidate " + std::to_string(i) + " of task " +
                                   std::to_string(task) + " has a negative probability " + std::to_string(v) +
                                   " (class " + std::to_string(k) + ")");
            any = any || v > 0;
        }
    }
    if (kind == output_kind::probabilities && classes > 1 && !any)
        throw config_error("mt_uncertainty: candidate " + std::to_string(i) + " of task " + std::to_string(task) +
                           " has probabilities that are all zero");
}

inline void check_borrowing(std::span<const std::size_t> num_classes, std::span<const score_borrowing> borrowing,
                            const std::vector<std::string>& names = {}) {
    auto name = [&](std::size_t t) {
        return names.empty() ? "task " + std::to_string(t) : "task " + std::to_string(t) + " ('" + names[t] + "')";
    };
    const std::size_t T = num_classes.size();
    std::vector<int> role(T, 0);  // 1 = borrows, 2 = lends
    for (const auto& b : borrowing) {
        if (b.task >= T || b.from >= T)
            throw config_error("mt_uncertainty: score borrowing " + std::to_string(b.task) + " <- " +
                               std::to_string(b.from) + " names a task beyond the " + std::to_string(T) + " tasks");
        if (b.task == b.from) throw config_error("mt_uncertainty: " + name(b.task) + " cannot borrow its own scores");
        if (num_classes[b.task] != 1)
            throw config_error("mt_uncertainty: " + name(b.task) + " has " + std::to_string(num_classes[b.task]) +
                               " classes; only a regression task (1 output) borrows scores");
        if (num_classes[b.from] < 2)
            throw config_error("mt_uncertainty: " + name(b.task) + " borrows from " + name(b.from) +
                               ", which is not a classification task (it has 1 output)");
        if (role[b.task] == 1) throw config_error("mt_uncertainty: " + name(b.task) + " borrows scores twice");
        role[b.task] = 1;
    }
    for (const auto& b : borrowing)
        if (role[b.from] == 1)
            throw config_error("mt_uncertainty: " + name(b.task) + " borrows from " + name(b.from) +
                               ", which itself borrows scores");
}

template <class F, class T>
mt_uncertainty_result mt_uncertainty_scores(std::span<const std::span<const T>> outputs,
                                            std::span<const std::size_t> num_classes, std::size_t select_size,
                                            const mt_uncertainty_options& opts,
                                            std::span<const score_borrowing> borrowing) {
    const std::size_t T_ = num_classes.size();
    if (outputs.size() != T_)
        throw shape_error("mt_uncertainty: outputs for " + std::to_string(outputs.size()) + " tasks, expected " +
                          std::to_string(T_) + " (one block per task, in task order)");
    if (!(opts.epsilon >= 0) || !std::isfinite(opts.epsilon))
        throw config_error("mt_uncertainty: epsilon must be finite and >= 0, got " + std::to_string(opts.epsilon));
    if (!(opts.task_floor >= 0 && opts.task_floor <= 1))
        throw config_error("mt_uncertainty: task_floor must be in [0, 1], got " + std::to_string(opts.task_floor));
    for (std::size_t t = 0; t < T_; ++t) {
        if (num_classes[t] == 0)
            throw config_error("mt_uncertainty: task " + std::to_string(t) +
                               " has 0 classes (use 1 for a regression task)");
        if (outputs[t].size() % num_classes[t] != 0)
            throw shape_error("mt_uncertainty: task " + std::to_string(t) + " outputs have " +
                              std::to_string(outputs[t].size()) + " values, not a multiple of its " +
                              std::to_string(num_classes[t]) + " classes");
    }
    check_borrowing(num_classes, borrowing);

    mt_uncertainty_result r;
    std::vector<F> ent;           // Ĥ in F: the authors' per-sample buffer
    std::vector<F> mean_f(T_, 0);  // H̄_t in F
    std::vector<std::size_t> first(T_, 0), count(T_, 0);
    std::vector<F> p;
    for (std::size_t t = 0; t < T_; ++t) {
        const std::size_t C = num_classes[t], n = outputs[t].size() / C;
        first[t] = ent.size();
        count[t] = n;
        // numpy divides the float entropy array by a Python float: the denominator is rounded to F.
        const F denom = static_cast<F>(uniform_entropy(C) + opts.epsilon);
        F sum = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const T* row = outputs[t].data() + i * C;
            check_row<F>(row, C, opts.input, t, i);
            // One output (a regression head): the entropy is 0, whatever epsilon.
            const F h = C == 1 ? F(0) : row_entropy<F>(row, C, opts.input, p) / denom;
            ent.push_back(h);
            sum += h;
            r.candidate_task.push_back(t);
        }
        if (n > 0) mean_f[t] = sum / static_cast<F>(n);
    }
    const std::size_t N = ent.size();

    // The authors keep each mean as a Python float (.mean().item()) and the max as the largest of them.
    r.task_means.assign(T_, 0.0);
    bool any = false;
    for (std::size_t t = 0; t < T_; ++t) {
        if (count[t] == 0) continue;
        r.task_means[t] = static_cast<double>(mean_f[t]);
        if (!any || r.task_means[t] > r.max_task_mean) r.max_task_mean = r.task_means[t];
        any = true;
    }
    const F max_f = static_cast<F>(r.max_task_mean);

    std::vector<F> score(N, 0);
    for (std::size_t i = 0; i < N; ++i) {
        const std::size_t t = r.candidate_task[i];
        if (!(max_f > 0)) continue;  // every entropy is 0: no candidate is more uncertain than another
        if (opts.formula == mt_uncertainty_formula::code)
            score[i] = ent[i] * (static_cast<F>(r.task_means[t]) / max_f);
        else
            score[i] = ent[i] / max_f;
    }
    for (const auto& b : borrowing) {
        const std::size_t k = std::min(count[b.task], count[b.from]);
        for (std::size_t j = 0; j < k; ++j) score[first[b.task] + j] = score[first[b.from] + j];
    }

    r.normalized_entropy.assign(ent.begin(), ent.end());
    r.scores.assign(score.begin(), score.end());
    for (std::size_t i = 0; i < N; ++i) r.task_mean_per_candidate.push_back(r.task_means[r.candidate_task[i]]);
    std::vector<std::size_t> order(N);
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return score[a] > score[b]; });
    if (opts.task_floor > 0) {
        // Each task's best candidates up to its quota, then the best of the rest; kept in score order.
        std::size_t present = 0;
        for (std::size_t t = 0; t < T_; ++t) present += count[t] > 0;
        const auto quota = present == 0 ? std::size_t{0}
                                        : static_cast<std::size_t>(opts.task_floor * static_cast<double>(select_size) /
                                                                   static_cast<double>(present));
        std::vector<char> taken(N, 0);
        std::vector<std::size_t> kept(T_, 0);
        std::size_t picked = 0;
        for (const std::size_t i : order)
            if (picked < select_size && kept[r.candidate_task[i]] < quota) taken[i] = 1, ++kept[r.candidate_task[i]], ++picked;
        for (const std::size_t i : order)
            if (picked < select_size && !taken[i]) taken[i] = 1, ++picked;
        std::erase_if(order, [&](std::size_t i) { return !taken[i]; });
    }
    order.resize(std::min(select_size, N));
    r.selected = std::move(order);
    for (auto i : r.selected) r.selected_scores.push_back(r.scores[i]);
    return r;
}

template <class T>
mt_uncertainty_result mt_uncertainty_dispatch(std::span<const std::span<const T>> outputs,
                                              std::span<const std::size_t> num_classes, std::size_t select_size,
                                              const mt_uncertainty_options& opts,
                                              std::span<const score_borrowing> borrowing) {
    if (opts.precision == mt_uncertainty_precision::float32)
        return mt_uncertainty_scores<float, T>(outputs, num_classes, select_size, opts, borrowing);
    return mt_uncertainty_scores<double, T>(outputs, num_classes, select_size, opts, borrowing);
}

}  // namespace detail

/// The scoring step on its own. outputs[t] holds task t's candidates' head outputs, row-major (n_t rows of
/// num_classes[t] values: logits, or probabilities per opts.input); select_size = b. Throws shape_error for
/// blocks that do not fit, config_error for bad settings or values.
inline mt_uncertainty_result mt_uncertainty_scores(std::span<const std::span<const double>> outputs,
                                                   std::span<const std::size_t> num_classes, std::size_t select_size,
                                                   const mt_uncertainty_options& opts = {},
                                                   std::span<const score_borrowing> borrowing = {}) {
    return detail::mt_uncertainty_dispatch<double>(outputs, num_classes, select_size, opts, borrowing);
}
inline mt_uncertainty_result mt_uncertainty_scores(std::span<const std::span<const float>> outputs,
                                                   std::span<const std::size_t> num_classes, std::size_t select_size,
                                                   const mt_uncertainty_options& opts = {},
                                                   std::span<const score_borrowing> borrowing = {}) {
    return detail::mt_uncertainty_dispatch<float>(outputs, num_classes, select_size, opts, borrowing);
}

/// Steps per epoch as CA-MTL's CustomLoader.__len__ counts them: #batches_t = ceil(N_t / b);
/// int(max_t #batches_t · T · percent), or with uniform_mt_sampling int(percent · max_t #batches_t · T / b).
[[nodiscard]] inline std::size_t mt_uncertainty_epoch_length(std::span<const std::size_t> sizes, std::size_t batch_size,
                                                             double percent_of_max_data_size = 1.0,
                                                             bool uniform_mt_sampling = false) {
    if (sizes.empty()) throw config_error("mt_uncertainty_epoch_length: the task list is empty");
    if (batch_size == 0) throw config_error("mt_uncertainty_epoch_length: batch size must be at least 1, got 0");
    if (!(percent_of_max_data_size > 0) || !std::isfinite(percent_of_max_data_size))
        throw config_error("mt_uncertainty_epoch_length: percent_of_max_data_size must be finite and > 0, got " +
                           std::to_string(percent_of_max_data_size));
    std::size_t most = 0;
    for (auto n : sizes) most = std::max(most, (n + batch_size - 1) / batch_size);
    const auto T = static_cast<double>(sizes.size());
    const double steps = uniform_mt_sampling
                             ? percent_of_max_data_size * static_cast<double>(most) * T / static_cast<double>(batch_size)
                             : static_cast<double>(most) * T * percent_of_max_data_size;
    return static_cast<std::size_t>(steps);
}

/// One task as MT-Uncertainty sees it.
struct mt_uncertainty_task {
    std::string name;        ///< unique; used by borrow_scores_from and in messages
    std::size_t size = 0;    ///< training examples (≥ 1)
    std::size_t num_classes = 0;  ///< C_t: ≥ 2 for classification, 1 for a regression head
    /// Regression tasks only: the classification task whose scores this task's candidates take ("" = none;
    /// the task's candidates then score 0).
    std::string borrow_scores_from{};

    /// From a registry task: classification tasks have their label count, regression tasks 1 output.
    static mt_uncertainty_task from(const data::task_info& info, std::size_t size) {
        return {info.name, size,
                info.kind == data::task_kind::regression ? std::size_t{1} : static_cast<std::size_t>(info.num_labels())};
    }
};

/// CA-MTL's rule: when both STS-B and MRPC are in the task list, STS-B borrows MRPC's scores (task names are
/// matched through data::canonical_task_name, so "sts-b", "STS-B" and "stsb" all count). A task that already
/// borrows is left alone.
inline void apply_camtl_borrowing(std::vector<mt_uncertainty_task>& tasks) {
    mt_uncertainty_task* stsb = nullptr;
    const mt_uncertainty_task* mrpc = nullptr;
    for (auto& t : tasks) {
        const auto c = data::canonical_task_name(t.name);
        if (c == "stsb") stsb = &t;
        if (c == "mrpc") mrpc = &t;
    }
    if (stsb && mrpc && stsb->borrow_scores_from.empty()) stsb->borrow_scores_from = mrpc->name;
}

class mt_uncertainty_sampler : public detail::sampler_base {
public:
    static constexpr bool needs_scores = true;

    /// b = candidates per task and rows per selected batch.
    mt_uncertainty_sampler(std::vector<mt_uncertainty_task> tasks, std::size_t batch_size, rng_stream rng,
                           mt_uncertainty_options options = {})
        : sampler_base("mt_uncertainty", sizes_of(tasks), batch_size, rng, names_of(tasks)), options_(options) {
        for (std::size_t t = 0; t < tasks.size(); ++t) {
            if (tasks[t].num_classes == 0)
                throw config_error("mt_uncertainty sampler: " + task_name(t) +
                                   " has 0 classes (use 1 for a regression task)");
            for (std::size_t u = 0; u < t; ++u)
                if (tasks[u].name == tasks[t].name)
                    throw config_error("mt_uncertainty sampler: tasks " + std::to_string(u) + " and " +
                                       std::to_string(t) + " are both named '" + tasks[t].name + "'");
            num_classes_.push_back(tasks[t].num_classes);
        }
        std::vector<std::string> names = names_of(tasks);
        for (std::size_t t = 0; t < tasks.size(); ++t) {
            if (tasks[t].borrow_scores_from.empty()) continue;
            const auto it = std::find(names.begin(), names.end(), tasks[t].borrow_scores_from);
            if (it == names.end())
                throw config_error("mt_uncertainty sampler: " + task_name(t) + " borrows scores from '" +
                                   tasks[t].borrow_scores_from + "', which is not in the task list");
            borrowing_.push_back({t, static_cast<std::size_t>(it - names.begin())});
        }
        detail::check_borrowing(num_classes_, borrowing_, names);
        if (!(options_.epsilon >= 0) || !std::isfinite(options_.epsilon))
            throw config_error("mt_uncertainty sampler: epsilon must be finite and >= 0, got " +
                               std::to_string(options_.epsilon));
        if (!(options_.task_floor >= 0 && options_.task_floor <= 1))
            throw config_error("mt_uncertainty sampler: task_floor must be in [0, 1], got " +
                               std::to_string(options_.task_floor));
        std::vector<std::size_t> borrow_from(tasks.size(), tasks.size());  // T = none
        for (const auto& b : borrowing_) borrow_from[b.task] = b.from;
        config_ = {{"names", names},
                   {"num_classes", num_classes_},
                   {"borrow_from", borrow_from},
                   {"formula", to_string(options_.formula)},
                   {"precision", to_string(options_.precision)},
                   {"input", to_string(options_.input)},
                   {"epsilon", options_.epsilon}};
        // Only when set: a checkpoint of the authors' sampler keeps the configuration it always had.
        if (options_.task_floor > 0) config_["task_floor"] = options_.task_floor;
    }

    [[nodiscard]] const mt_uncertainty_options& options() const noexcept { return options_; }
    [[nodiscard]] std::size_t num_classes(std::size_t t) const { return num_classes_.at(t); }
    [[nodiscard]] const std::vector<score_borrowing>& borrowing() const noexcept { return borrowing_; }
    /// The scoring of the last completed step (empty before the first).
    [[nodiscard]] const mt_uncertainty_result& last_result() const noexcept { return last_; }
    /// CA-MTL's epoch length for these tasks (mt_uncertainty_epoch_length).
    [[nodiscard]] std::size_t steps_per_epoch(double percent_of_max_data_size = 1.0,
                                              bool uniform_mt_sampling = false) const {
        std::vector<std::size_t> sizes;
        for (std::size_t t = 0; t < num_tasks(); ++t) sizes.push_back(task_size(t));
        return mt_uncertainty_epoch_length(sizes, batch_size(), percent_of_max_data_size, uniform_mt_sampling);
    }

    /// The step's candidates: up to b per task, task 0's first. Run the model on them (no gradients) and
    /// pass each task's outputs to select().
    std::vector<example_ref> candidates() {
        begin_candidates();
        std::vector<example_ref> out;
        out.reserve(num_tasks() * batch_size());
        for (std::size_t t = 0; t < num_tasks(); ++t) take(t, batch_size(), false, out);
        return set_pending(std::move(out));
    }

    /// The batch: the top-b candidates by score, in descending score order. outputs[t] = task t's
    /// candidates' outputs (n_t rows of C_t logits or probabilities, row-major, in candidate order).
    std::vector<example_ref> select(std::span<const std::span<const float>> outputs) { return select_impl(outputs); }
    std::vector<example_ref> select(std::span<const std::span<const double>> outputs) { return select_impl(outputs); }
    std::vector<example_ref> select(const std::vector<std::vector<float>>& outputs) { return select_nested(outputs); }
    std::vector<example_ref> select(const std::vector<std::vector<double>>& outputs) { return select_nested(outputs); }
    /// All tasks' outputs concatenated in candidate order (Σ n_t·C_t values).
    std::vector<example_ref> select(std::span<const float> flat) { return select_flat(flat); }
    std::vector<example_ref> select(std::span<const double> flat) { return select_flat(flat); }

    [[nodiscard]] std::string state() const { return to_json(config_).dump(); }
    void restore(std::string_view text) {
        auto copy = *this;
        copy.restore_json(text, config_);
        copy.last_ = {};
        *this = std::move(copy);
    }

private:
    static std::vector<std::size_t> sizes_of(const std::vector<mt_uncertainty_task>& tasks) {
        std::vector<std::size_t> s;
        for (const auto& t : tasks) s.push_back(t.size);
        return s;
    }
    static std::vector<std::string> names_of(const std::vector<mt_uncertainty_task>& tasks) {
        std::vector<std::string> s;
        for (const auto& t : tasks) s.push_back(t.name);
        return s;
    }
    template <class T>
    std::vector<example_ref> select_nested(const std::vector<std::vector<T>>& v) {
        const std::vector<std::span<const T>> blocks(v.begin(), v.end());
        return select_impl(std::span<const std::span<const T>>(blocks));
    }

    [[nodiscard]] std::vector<std::size_t> pending_counts() const {
        std::vector<std::size_t> n(num_tasks(), 0);
        for (const auto& c : pending_candidates()) ++n[c.task];
        return n;
    }

    template <class T>
    std::vector<example_ref> select_flat(std::span<const T> flat) {
        const auto n = pending_counts();
        std::size_t expected = 0;
        for (std::size_t t = 0; t < num_tasks(); ++t) expected += n[t] * num_classes_[t];
        if (flat.size() != expected)
            throw shape_error("mt_uncertainty sampler: " + std::to_string(flat.size()) + " output values for " +
                              std::to_string(pending_candidates().size()) + " candidates, expected " +
                              std::to_string(expected) + " (each candidate's C_t values, in candidate order)");
        std::vector<std::span<const T>> blocks;
        std::size_t at = 0;
        for (std::size_t t = 0; t < num_tasks(); ++t) {
            blocks.push_back(flat.subspan(at, n[t] * num_classes_[t]));
            at += n[t] * num_classes_[t];
        }
        return select_impl(std::span<const std::span<const T>>(blocks));
    }

    template <class T>
    std::vector<example_ref> select_impl(std::span<const std::span<const T>> outputs) {
        const auto n = pending_counts();
        if (outputs.size() != num_tasks())
            throw shape_error("mt_uncertainty sampler: outputs for " + std::to_string(outputs.size()) +
                              " tasks, expected " + std::to_string(num_tasks()) + " (one block per task, in task order)");
        for (std::size_t t = 0; t < num_tasks(); ++t)
            if (outputs[t].size() != n[t] * num_classes_[t])
                throw shape_error("mt_uncertainty sampler: " + task_name(t) + " outputs have " +
                                  std::to_string(outputs[t].size()) + " values, expected " +
                                  std::to_string(n[t] * num_classes_[t]) + " (" + std::to_string(n[t]) +
                                  " candidates x " + std::to_string(num_classes_[t]) + " classes)");
        auto result = detail::mt_uncertainty_dispatch<T>(outputs, num_classes_, batch_size(), options_, borrowing_);
        const auto& cand = pending_candidates();
        std::vector<example_ref> chosen;
        for (auto i : result.selected) chosen.push_back(cand[i]);
        last_ = std::move(result);
        return finish(std::move(chosen));
    }

    mt_uncertainty_options options_;
    std::vector<std::size_t> num_classes_;
    std::vector<score_borrowing> borrowing_;
    nlohmann::json config_;
    mt_uncertainty_result last_;
};

static_assert(scoring_sampler<mt_uncertainty_sampler>);

}  // namespace hyperadapt
