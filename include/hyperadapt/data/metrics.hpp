#pragma once
// Evaluation metrics for GLUE and SuperGLUE, defined as scikit-learn and scipy compute them (the code the
// leaderboards' and Hugging Face's evaluation scripts call), and the task and benchmark scores built on them.
//
// Values are fractions (accuracy 0.9, not 90); the leaderboards print them times 100. Degenerate inputs
// follow scikit-learn/scipy so that numbers can be compared with Python runs:
//   - Matthews correlation with a constant prediction (or constant gold) is 0, as sklearn's.
//   - Binary F1 with no positive in prediction or gold is 0, as sklearn's zero_division default.
//   - Pearson and Spearman of a constant vector are NaN, as scipy's (a constant regressor has no
//     correlation; reporting 0 would hide a collapsed model). A task score built on NaN is NaN.
// Sizes that differ or are zero are caller mistakes and throw shape_error.
#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <numeric>
#include <ranges>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "hyperadapt/core/errors.hpp"
#include "hyperadapt/data/task.hpp"

namespace hyperadapt::data {

/// A sized range of numbers: std::vector<int>, std::span<const float>, ...
template <class R>
concept number_range = std::ranges::forward_range<R> && std::ranges::sized_range<R> &&
                       std::is_arithmetic_v<std::remove_cvref_t<std::ranges::range_value_t<R>>>;

/// A sized range of class ids.
template <class R>
concept label_range = number_range<R> && std::integral<std::remove_cvref_t<std::ranges::range_value_t<R>>>;

namespace detail {

template <class P, class G>
std::size_t checked_size(std::string_view what, const P& predicted, const G& gold) {
    const auto np = static_cast<std::size_t>(std::ranges::size(predicted));
    const auto ng = static_cast<std::size_t>(std::ranges::size(gold));
    if (np != ng)
        throw shape_error(std::string(what) + ": " + std::to_string(np) + " predictions but " + std::to_string(ng) +
                          " gold values");
    if (np == 0) throw shape_error(std::string(what) + ": no examples");
    return np;
}

template <class R>
std::vector<std::int64_t> to_ids(const R& r) {
    std::vector<std::int64_t> v;
    v.reserve(static_cast<std::size_t>(std::ranges::size(r)));
    for (const auto& x : r) v.push_back(static_cast<std::int64_t>(x));
    return v;
}

template <class R>
std::vector<double> to_doubles(const R& r) {
    std::vector<double> v;
    v.reserve(static_cast<std::size_t>(std::ranges::size(r)));
    for (const auto& x : r) v.push_back(static_cast<double>(x));
    return v;
}

/// 2 tp / (2 tp + fp + fn): F1 without the precision/recall detour, 0 when the class never occurs.
inline double f1_from_counts(std::size_t tp, std::size_t fp, std::size_t fn) {
    const std::size_t denom = 2 * tp + fp + fn;
    return denom == 0 ? 0.0 : 2.0 * static_cast<double>(tp) / static_cast<double>(denom);
}

inline double pearson_of(const std::vector<double>& x, const std::vector<double>& y) {
    // Checked exactly, as scipy does: the centred sums of a constant vector need not round to 0.
    const auto constant = [](const std::vector<double>& v) {
        return std::all_of(v.begin(), v.end(), [&](double a) { return a == v.front(); });
    };
    if (constant(x) || constant(y)) return std::numeric_limits<double>::quiet_NaN();
    const double n = static_cast<double>(x.size());
    const double mx = std::accumulate(x.begin(), x.end(), 0.0) / n;
    const double my = std::accumulate(y.begin(), y.end(), 0.0) / n;
    double sxy = 0, sxx = 0, syy = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double dx = x[i] - mx, dy = y[i] - my;
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    const double r = sxy / (std::sqrt(sxx) * std::sqrt(syy));
    return std::isnan(r) ? r : std::clamp(r, -1.0, 1.0);  // rounding can step just past +-1
}

}  // namespace detail

/// Fraction of predictions equal to the gold label.
template <label_range P, label_range G>
[[nodiscard]] double accuracy(const P& predicted, const G& gold) {
    const std::size_t n = detail::checked_size("accuracy", predicted, gold);
    const auto p = detail::to_ids(predicted), g = detail::to_ids(gold);
    std::size_t correct = 0;
    for (std::size_t i = 0; i < n; ++i) correct += p[i] == g[i] ? 1 : 0;
    return static_cast<double>(correct) / static_cast<double>(n);
}

/// Binary F1 of class `positive` (sklearn f1_score, average="binary"). Symmetric in its arguments.
template <label_range P, label_range G>
[[nodiscard]] double f1(const P& predicted, const G& gold, std::int64_t positive = 1) {
    const std::size_t n = detail::checked_size("f1", predicted, gold);
    const auto p = detail::to_ids(predicted), g = detail::to_ids(gold);
    std::size_t tp = 0, fp = 0, fn = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const bool pp = p[i] == positive, gp = g[i] == positive;
        tp += pp && gp ? 1 : 0;
        fp += pp && !gp ? 1 : 0;
        fn += !pp && gp ? 1 : 0;
    }
    return detail::f1_from_counts(tp, fp, fn);
}

/// Unweighted mean of per-class F1 over the classes that occur in the prediction or the gold labels
/// (sklearn f1_score, average="macro"); SuperGLUE's CB F1.
template <label_range P, label_range G>
[[nodiscard]] double macro_f1(const P& predicted, const G& gold) {
    const std::size_t n = detail::checked_size("macro_f1", predicted, gold);
    const auto p = detail::to_ids(predicted), g = detail::to_ids(gold);
    struct counts {
        std::size_t tp = 0, fp = 0, fn = 0;
    };
    std::map<std::int64_t, counts> per_class;
    for (std::size_t i = 0; i < n; ++i) {
        if (p[i] == g[i]) {
            ++per_class[p[i]].tp;
        } else {
            ++per_class[p[i]].fp;
            ++per_class[g[i]].fn;
        }
    }
    double sum = 0;
    for (const auto& [label, c] : per_class) sum += detail::f1_from_counts(c.tp, c.fp, c.fn);
    return sum / static_cast<double>(per_class.size());
}

/// Matthews correlation coefficient, multi-class form (Gorodkin's R_K, as sklearn's matthews_corrcoef);
/// 0 when prediction or gold is constant, as sklearn.
template <label_range P, label_range G>
[[nodiscard]] double matthews(const P& predicted, const G& gold) {
    const std::size_t n = detail::checked_size("matthews", predicted, gold);
    const auto p = detail::to_ids(predicted), g = detail::to_ids(gold);
    std::map<std::int64_t, std::pair<double, double>> totals;  // label -> (times gold, times predicted)
    double correct = 0;
    for (std::size_t i = 0; i < n; ++i) {
        totals[g[i]].first += 1;
        totals[p[i]].second += 1;
        correct += p[i] == g[i] ? 1 : 0;
    }
    // Counts up to 2^26 keep every product below 2^53, so these sums are exact in double.
    const double s = static_cast<double>(n);
    double tp_sum = 0, tt_sum = 0, pp_sum = 0;
    for (const auto& [label, tp] : totals) {
        tp_sum += tp.first * tp.second;
        tt_sum += tp.first * tp.first;
        pp_sum += tp.second * tp.second;
    }
    const double cov_tp = correct * s - tp_sum;
    const double cov_pp = s * s - pp_sum;
    const double cov_tt = s * s - tt_sum;
    if (cov_pp * cov_tt == 0) return 0.0;
    return cov_tp / std::sqrt(cov_tt * cov_pp);
}

/// Pearson's r (scipy.stats.pearsonr); NaN if either vector is constant.
template <number_range X, number_range Y>
[[nodiscard]] double pearson(const X& x, const Y& y) {
    detail::checked_size("pearson", x, y);
    return detail::pearson_of(detail::to_doubles(x), detail::to_doubles(y));
}

/// 1-based ranks, ties given the mean of the ranks they span (scipy.stats.rankdata, method="average").
/// config_error on NaN, which has no rank.
template <number_range X>
[[nodiscard]] std::vector<double> average_ranks(const X& x) {
    const auto v = detail::to_doubles(x);
    for (std::size_t i = 0; i < v.size(); ++i)
        if (std::isnan(v[i])) throw config_error("average_ranks: value " + std::to_string(i) + " is NaN");
    std::vector<std::size_t> order(v.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return v[a] < v[b]; });
    std::vector<double> ranks(v.size());
    for (std::size_t i = 0; i < order.size();) {
        std::size_t j = i + 1;
        while (j < order.size() && v[order[j]] == v[order[i]]) ++j;
        const double rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;  // mean of i+1..j
        for (std::size_t k = i; k < j; ++k) ranks[order[k]] = rank;
        i = j;
    }
    return ranks;
}

/// Spearman's rho (scipy.stats.spearmanr): Pearson's r of the average ranks. NaN if either vector is
/// constant or holds a NaN (scipy's default nan_policy="propagate").
template <number_range X, number_range Y>
[[nodiscard]] double spearman(const X& x, const Y& y) {
    detail::checked_size("spearman", x, y);
    const auto xd = detail::to_doubles(x), yd = detail::to_doubles(y);
    const auto has_nan = [](const std::vector<double>& v) {
        return std::any_of(v.begin(), v.end(), [](double a) { return std::isnan(a); });
    };
    if (has_nan(xd) || has_nan(yd)) return std::numeric_limits<double>::quiet_NaN();
    return detail::pearson_of(average_ranks(xd), average_ranks(yd));
}

// ---- task and benchmark scores --------------------------------------------------------------------------

struct metric_value {
    metric which;
    double value;
};

/// A task's official metrics on one evaluation set and its task score.
struct task_result {
    std::string task;  ///< canonical task name ("mrpc", "mnli-mm")
    std::vector<metric_value> values;
    /// Unweighted mean of `values`: the GLUE paper's rule for tasks with two metrics (MRPC, QQP, STS-B)
    /// and SuperGLUE's (CB).
    double score = 0;

    /// The value of metric m; config_error if this result does not hold it.
    [[nodiscard]] double value(metric m) const {
        for (const auto& v : values)
            if (v.which == m) return v.value;
        throw config_error("task_result '" + task + "' has no " + std::string(to_string(m)) + " value");
    }

    /// The same result reduced to metric m, so that m becomes its score: for tables that report one
    /// metric per task (BERT's: F1 for MRPC and QQP, Spearman for STS-B).
    [[nodiscard]] task_result only(metric m) const { return task_result{task, {{m, value(m)}}, value(m)}; }
};

namespace detail {

inline double mean_of(const std::vector<metric_value>& values) {
    double s = 0;
    for (const auto& v : values) s += v.value;
    return s / static_cast<double>(values.size());
}

template <class P, class G>
double compute_metric(metric m, const P& predicted, const G& gold) {
    if constexpr (label_range<P> && label_range<G>) {
        switch (m) {
            case metric::accuracy: return accuracy(predicted, gold);
            case metric::f1: return f1(predicted, gold);
            case metric::macro_f1: return macro_f1(predicted, gold);
            case metric::matthews: return matthews(predicted, gold);
            case metric::pearson: return pearson(predicted, gold);
            case metric::spearman: return spearman(predicted, gold);
        }
    } else {
        switch (m) {
            case metric::pearson: return pearson(predicted, gold);
            case metric::spearman: return spearman(predicted, gold);
            default:
                throw config_error(std::string(to_string(m)) +
                                   " needs class ids: pass integer predictions and gold labels");
        }
    }
    throw config_error("unknown metric");
}

}  // namespace detail

/// Every official metric of `task` and its task score. Classification tasks take class ids, regression
/// tasks (STS-B) any numbers.
template <number_range P, number_range G>
[[nodiscard]] task_result evaluate(const task_info& task, const P& predicted, const G& gold) {
    task_result r{task.name, {}, 0};
    for (const metric m : task.metrics) r.values.push_back({m, detail::compute_metric(m, predicted, gold)});
    r.score = detail::mean_of(r.values);
    return r;
}

/// evaluate() against a dataset's gold labels (classification) or scores (regression).
template <number_range P>
[[nodiscard]] task_result evaluate(const P& predicted, const dataset& gold) {
    if (gold.task.kind == task_kind::regression) return evaluate(gold.task, predicted, gold.scores());
    return evaluate(gold.task, predicted, gold.labels());
}

/// Unweighted mean of the results' scores, each result counting once: the "Avg" column of the papers'
/// tables (BERT's GLUE table averages its nine columns, MNLI-m and MNLI-mm separately, one metric each;
/// CA-MTL's and HyperFormer/PHA's average their task columns the same way). Pass results reduced with
/// task_result::only() for tables that report one metric per task.
[[nodiscard]] inline double average_score(std::span<const task_result> results) {
    if (results.empty()) throw config_error("average_score: no task results");
    double s = 0;
    for (const auto& r : results) s += r.score;
    return s / static_cast<double>(results.size());
}

/// The GLUE (and SuperGLUE) leaderboard score: every task counts once with the mean of its metrics, and
/// MNLI's matched and mismatched results together make one task (the mean of the two). This reproduces
/// the leaderboard's "Score" column.
[[nodiscard]] inline double leaderboard_score(std::span<const task_result> results) {
    if (results.empty()) throw config_error("leaderboard_score: no task results");
    double sum = 0, mnli_sum = 0;
    std::size_t tasks = 0, mnli_parts = 0;
    for (const auto& r : results) {
        if (r.task == "mnli" || r.task == "mnli-mm") {
            mnli_sum += r.score;
            ++mnli_parts;
        } else {
            sum += r.score;
            ++tasks;
        }
    }
    if (mnli_parts > 0) {
        sum += mnli_sum / static_cast<double>(mnli_parts);
        ++tasks;
    }
    return sum / static_cast<double>(tasks);
}

}  // namespace hyperadapt::data
