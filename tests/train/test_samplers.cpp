#define BOOST_TEST_MODULE train_samplers
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <numeric>
#include <regex>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyperadapt/io/safetensors.hpp"
#include "support/golden_file.hpp"
#include "hyperadapt/train/sampler.hpp"
#include "hyperadapt/train/samplers/mt_uncertainty.hpp"
#include "hyperadapt/train/samplers/round_robin.hpp"
#include "hyperadapt/train/samplers/size_proportional.hpp"
#include "hyperadapt/train/samplers/temperature.hpp"
// After the samplers: checkpoint.hpp uses detail::mix64 from backend/counter_rng.hpp without including it.
#include "hyperadapt/train/checkpoint.hpp"
#include "support/max_keeping_nan.hpp"

using namespace hyperadapt;
namespace fs = std::filesystem;

namespace {

using test::reference::golden;

/// One MT-Uncertainty reference case (the authors' iterator, CaMtl.forward and calculate_entropy): the task
/// list and order, class counts, candidates per task, batch size, STS-B copy target, entropy epsilon and score
/// formula all come from the file.
struct mtu_case {
    std::string name;
    std::vector<std::string> tasks;
    std::vector<std::size_t> num_classes, task_of, per_task;
    std::vector<std::vector<double>> logits;
    std::size_t select_size = 0;
    std::vector<double> normalized_entropy, task_mean_per_candidate, task_means, scores, selected_scores,
        scores_float32;
    double max_task_mean = 0;
    std::vector<std::size_t> selected, selected_float32;
    std::size_t epoch_length = 0, epoch_length_uniform = 0;
    std::vector<score_borrowing> borrowing;
    std::vector<std::pair<std::size_t, std::size_t>> exact_ties;
    double epsilon = 0;

    explicit mtu_case(const fs::path& path) {
        const golden g(path);
        name = g.name();
        g.require_meta_mentions("source", "MtUcertaintyIterator.__next__");
        tasks = g.meta_json("tasks").get<std::vector<std::string>>();
        num_classes = g.indices("input.num_classes");
        if (g.meta_json("num_classes").get<std::vector<std::size_t>>() != num_classes)
            g.fail("__metadata__ key 'num_classes' disagrees with input.num_classes");
        if (num_classes.size() != tasks.size())
            g.fail("input.num_classes has " + std::to_string(num_classes.size()) + " entries for " +
                   std::to_string(tasks.size()) + " tasks (__metadata__ key 'tasks')");
        task_of = g.indices("input.candidate_task_ids");
        select_size = g.indices("input.select_size").at(0);
        if (g.meta_json("train_batch_size_b").get<std::size_t>() != select_size)
            g.fail("__metadata__ key 'train_batch_size_b' disagrees with input.select_size");
        const auto stated = g.meta_json("per_task_candidates");
        for (std::size_t t = 0; t < tasks.size(); ++t) {
            const std::string key = "input.logits." + std::to_string(t);
            g.require_shape(key, {g.dim(key, 0), num_classes[t]}, "input.num_classes");
            logits.push_back(g.values(key));
            per_task.push_back(g.dim(key, 0));
            if (!stated.contains(tasks[t]) || stated.at(tasks[t]).get<std::size_t>() != per_task.back())
                g.fail("__metadata__ key 'per_task_candidates' disagrees with " + key + " for " + tasks[t]);
        }
        // "sts-b index 3, mrpc index 2": the regression task that takes the classification task's scores.
        std::smatch m;
        const std::string& copy = g.meta("stsb_copy");
        if (std::regex_search(copy, m, std::regex(R"(sts-b index (\d+), mrpc index (\d+))"))) {
            borrowing.push_back({std::stoul(m[1].str()), std::stoul(m[2].str())});
            if (borrowing[0].task >= tasks.size() || borrowing[0].from >= tasks.size() ||
                tasks[borrowing[0].task] != "sts-b" || tasks[borrowing[0].from] != "mrpc")
                g.fail("__metadata__ key 'stsb_copy' names indices that are not sts-b and mrpc in 'tasks'");
        } else if (std::count(tasks.begin(), tasks.end(), "sts-b") && std::count(tasks.begin(), tasks.end(), "mrpc")) {
            g.fail("__metadata__ key 'stsb_copy' does not say 'sts-b index <i>, mrpc index <j>'");
        }
        const std::string& ties = g.meta("exact_ties");
        const std::regex pair(R"(\((\d+), (\d+)\))");
        for (std::sregex_iterator it(ties.begin(), ties.end(), pair), end; it != end; ++it)
            exact_ties.push_back({std::stoul((*it)[1].str()), std::stoul((*it)[2].str())});
        // normalized_entropy = H(softmax(logits))/(log C_t + eps); the code's formula, scaled by the task mean.
        epsilon = g.meta_number_after("shapes_meaning", "log C_t +");
        if (!g.meta_mentions("shapes_meaning", "normalized_entropy * task_mean/max_task_mean"))
            g.fail("__metadata__ key 'shapes_meaning' does not give the code's score formula "
                   "(normalized_entropy * task_mean/max_task_mean)");
        normalized_entropy = g.values("output.normalized_entropy");
        task_mean_per_candidate = g.values("output.task_mean_per_candidate");
        task_means = g.values("output.task_means");
        max_task_mean = g.values("output.max_task_mean").at(0);
        scores = g.values("output.scores");
        selected = g.indices("output.selected_indices");
        selected_scores = g.values("output.selected_scores");
        scores_float32 = g.values("output.scores_float32");
        selected_float32 = g.indices("output.selected_indices_float32");
        epoch_length = g.indices("output.epoch_length_mt_uncertainty").at(0);
        epoch_length_uniform = g.indices("output.epoch_length_uniform_mt_sampling").at(0);
    }
    [[nodiscard]] std::vector<std::span<const double>> blocks() const { return {logits.begin(), logits.end()}; }
    [[nodiscard]] std::vector<score_borrowing> camtl_borrowing() const { return borrowing; }
    [[nodiscard]] mt_uncertainty_options options() const {
        mt_uncertainty_options o;
        o.epsilon = epsilon;
        return o;
    }
};

/// max |a - b| / max |b|.
double max_rel_error(const std::vector<double>& a, const std::vector<double>& b) {
    BOOST_REQUIRE_EQUAL(a.size(), b.size());
    double scale = 0, err = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        scale = std::max(scale, std::abs(b[i]));
        err = hyperadapt::test::max_keeping_nan(err, std::abs(a[i] - b[i]));
    }
    return scale == 0 ? err : err / scale;
}

std::int64_t ulps(float a, float b) {
    return std::abs(static_cast<std::int64_t>(std::bit_cast<std::int32_t>(a)) -
                    static_cast<std::int64_t>(std::bit_cast<std::int32_t>(b)));
}

/// BOOST_CHECK_EXCEPTION predicate: the message contains every fragment.
auto says(std::vector<std::string> fragments) {
    return [fragments = std::move(fragments)](const std::exception& e) {
        const std::string what = e.what();
        for (const auto& f : fragments)
            if (what.find(f) == std::string::npos) {
                BOOST_TEST_MESSAGE("message '" << what << "' lacks '" << f << "'");
                return false;
            }
        return true;
    };
}

/// A stand-in for the model's no-grad candidate pass: logits that depend only on the example, so a run
/// and its resumed copy see the same numbers.
std::vector<std::vector<float>> fake_logits(const std::vector<example_ref>& cand, const mt_uncertainty_sampler& s) {
    std::vector<std::vector<float>> out(s.num_tasks());
    for (const auto& c : cand)
        for (std::size_t k = 0; k < s.num_classes(c.task); ++k)
            out[c.task].push_back(
                static_cast<float>(4.0 * detail::uniform01(c.task * 1000003 + c.index, k) - 2.0));
    return out;
}

std::vector<mt_uncertainty_task> glue_tasks() {
    std::vector<mt_uncertainty_task> tasks{
        {"cola", 37, 2}, {"mnli", 53, 3}, {"mrpc", 11, 2}, {"sts-b", 29, 1}};
    apply_camtl_borrowing(tasks);
    return tasks;
}

}  // namespace

// ---- MT-Uncertainty: reference agreement ---------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(mt_uncertainty_reference)

void check_float64(const mtu_case& c) {
    const auto borrow = c.camtl_borrowing();
    const auto blocks = c.blocks();
    const auto r = mt_uncertainty_scores(blocks, c.num_classes, c.select_size, c.options(), borrow);
    BOOST_TEST(r.candidate_task == c.task_of, boost::test_tools::per_element());
    const double e_ent = max_rel_error(r.normalized_entropy, c.normalized_entropy);
    const double e_mean = max_rel_error(r.task_means, c.task_means);
    const double e_per = max_rel_error(r.task_mean_per_candidate, c.task_mean_per_candidate);
    const double e_score = max_rel_error(r.scores, c.scores);
    const double e_sel = max_rel_error(r.selected_scores, c.selected_scores);
    BOOST_TEST_MESSAGE("float64 max error relative to the largest value: entropy " << e_ent << ", task means "
                                                                                   << e_mean << ", scores " << e_score);
    BOOST_TEST(e_ent <= 1e-9);
    BOOST_TEST(e_mean <= 1e-9);
    BOOST_TEST(e_per <= 1e-9);
    BOOST_TEST(e_score <= 1e-9);
    BOOST_TEST(e_sel <= 1e-9);
    BOOST_TEST(std::abs(r.max_task_mean - c.max_task_mean) <= 1e-9 * c.max_task_mean);
    BOOST_TEST(r.selected == c.selected, boost::test_tools::per_element());
    // The borrowed scores are copies: bit-identical to the donor's.
    for (const auto& b : borrow) {
        std::vector<std::size_t> from, to;
        for (std::size_t i = 0; i < c.task_of.size(); ++i) {
            if (c.task_of[i] == b.from) from.push_back(i);
            if (c.task_of[i] == b.task) to.push_back(i);
        }
        for (std::size_t k = 0; k < std::min(from.size(), to.size()); ++k) BOOST_TEST(r.scores[to[k]] == r.scores[from[k]]);
        for (std::size_t k = std::min(from.size(), to.size()); k < to.size(); ++k) BOOST_TEST(r.scores[to[k]] == 0.0);
    }
}

void check_float32(const mtu_case& c) {
    const auto borrow = c.camtl_borrowing();
    const auto blocks = c.blocks();
    auto opts = c.options();
    opts.precision = mt_uncertainty_precision::float32;
    const auto r = mt_uncertainty_scores(blocks, c.num_classes, c.select_size, opts, borrow);
    std::size_t exact = 0;
    std::int64_t worst = 0;
    for (std::size_t i = 0; i < c.scores_float32.size(); ++i) {
        const auto ours = static_cast<float>(r.scores[i]), theirs = static_cast<float>(c.scores_float32[i]);
        BOOST_TEST(static_cast<double>(ours) == r.scores[i]);  // the scores are float values
        const auto d = ulps(ours, theirs);
        worst = std::max(worst, d);
        exact += d == 0 ? 1 : 0;
    }
    BOOST_TEST_MESSAGE("float32: " << exact << " of " << c.scores_float32.size()
                                   << " scores bit-identical to the authors' float32 run, worst " << worst << " ulp");
    // expf/logf of the C library vs torch's vectorised (Sleef) exp and numpy's SIMD log: each may differ in
    // the last bit, which reaches a score as a few float ulps.
    BOOST_TEST(worst <= 4);
    BOOST_TEST(max_rel_error(r.scores, c.scores_float32) <= 1e-6);
    BOOST_TEST(r.selected == c.selected_float32, boost::test_tools::per_element());
}

void check_sampler(const mtu_case& c) {
    std::vector<mt_uncertainty_task> tasks;
    for (std::size_t t = 0; t < c.tasks.size(); ++t) tasks.push_back({c.tasks[t], c.per_task[t], c.num_classes[t]});
    apply_camtl_borrowing(tasks);
    for (const auto& b : c.borrowing) BOOST_TEST(tasks[b.task].borrow_scores_from == tasks[b.from].name);
    mt_uncertainty_sampler s(tasks, c.select_size, rng_stream(5), c.options());
    const auto cand = s.candidates();
    BOOST_REQUIRE_EQUAL(cand.size(), c.task_of.size());
    for (std::size_t i = 0; i < cand.size(); ++i) BOOST_TEST(cand[i].task == c.task_of[i]);
    const auto batch = s.select(c.blocks());
    BOOST_REQUIRE_EQUAL(batch.size(), c.selected.size());
    for (std::size_t k = 0; k < batch.size(); ++k) BOOST_TEST((batch[k] == cand[c.selected[k]]));
    BOOST_TEST(max_rel_error(s.last_result().scores, c.scores) <= 1e-9);
    BOOST_TEST(s.fraction_used() ==
               static_cast<double>(c.select_size) / static_cast<double>(c.task_of.size()));
    BOOST_TEST(s.steps_per_epoch() == c.epoch_length);
    BOOST_TEST(s.steps_per_epoch(1.0, true) == c.epoch_length_uniform);
    BOOST_TEST(mt_uncertainty_epoch_length(c.per_task, c.select_size) == c.epoch_length);
    // The flat form of select() gives the same batch.
    mt_uncertainty_sampler s2(tasks, c.select_size, rng_stream(5), c.options());
    s2.candidates();
    std::vector<double> flat;
    for (const auto& l : c.logits) flat.insert(flat.end(), l.begin(), l.end());
    const auto batch2 = s2.select(std::span<const double>(flat));
    BOOST_TEST((batch2 == batch));
}

/// The paper's formula is the code's without the H̄_t factor: Ĥ(x) / H_max, derived here from the reference's
/// own intermediate outputs.
void check_paper(const mtu_case& c) {
    const auto borrow = c.camtl_borrowing();
    const auto blocks = c.blocks();
    auto opts = c.options();
    opts.formula = mt_uncertainty_formula::paper;
    const auto r = mt_uncertainty_scores(blocks, c.num_classes, c.select_size, opts, borrow);
    std::vector<double> expect(c.normalized_entropy.size());
    for (std::size_t i = 0; i < expect.size(); ++i) expect[i] = c.normalized_entropy[i] / c.max_task_mean;
    std::vector<std::size_t> from, to;
    for (std::size_t i = 0; i < c.task_of.size() && !borrow.empty(); ++i) {
        if (c.task_of[i] == borrow[0].from) from.push_back(i);
        if (c.task_of[i] == borrow[0].task) to.push_back(i);
    }
    for (std::size_t k = 0; k < std::min(from.size(), to.size()); ++k) expect[to[k]] = expect[from[k]];
    for (std::size_t k = std::min(from.size(), to.size()); k < to.size(); ++k) expect[to[k]] = 0.0;
    BOOST_TEST(max_rel_error(r.scores, expect) <= 1e-9);
    std::vector<std::size_t> order(expect.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return expect[a] > expect[b]; });
    order.resize(c.select_size);
    BOOST_TEST(r.selected == order, boost::test_tools::per_element());
}

/// Probabilities instead of logits: the same scores.
void check_probabilities(const mtu_case& c) {
    std::vector<std::vector<double>> probs;
    for (std::size_t t = 0; t < c.logits.size(); ++t) {
        const std::size_t C = c.num_classes[t];
        std::vector<double> p(c.logits[t].size());
        for (std::size_t i = 0; i < p.size() / C; ++i) {
            double m = -1e300, s = 0;
            for (std::size_t k = 0; k < C; ++k) m = std::max(m, c.logits[t][i * C + k]);
            for (std::size_t k = 0; k < C; ++k) s += (p[i * C + k] = std::exp(c.logits[t][i * C + k] - m));
            for (std::size_t k = 0; k < C; ++k) p[i * C + k] /= s;
        }
        probs.push_back(std::move(p));
    }
    auto opts = c.options();
    opts.input = output_kind::probabilities;
    const std::vector<std::span<const double>> blocks(probs.begin(), probs.end());
    const auto borrow = c.camtl_borrowing();
    const auto r = mt_uncertainty_scores(blocks, c.num_classes, c.select_size, opts, borrow);
    BOOST_TEST(max_rel_error(r.scores, c.scores) <= 1e-9);
    BOOST_TEST(r.selected == c.selected, boost::test_tools::per_element());
}

// Every camtl_mt_uncertainty* golden file (equal and unequal task batches; ties from the STS-B copy, listed by
// the file's exact_ties, must stay exact and keep the lower position first, as in the reference).
BOOST_AUTO_TEST_CASE(every_reference_file) {
    for (const auto& path : test::reference::checked_golden_files({"camtl_mt_uncertainty"})) {
        BOOST_TEST_MESSAGE("golden file " << path);
        const mtu_case c(path);
        BOOST_TEST_CONTEXT(c.name) {
            for (const auto& [i, j] : c.exact_ties) {
                BOOST_TEST_REQUIRE(std::max(i, j) < c.scores.size());
                BOOST_TEST(c.scores[i] == c.scores[j]);
            }
            check_float64(c);
            check_float32(c);
            check_sampler(c);
            check_paper(c);
            check_probabilities(c);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

// ---- MT-Uncertainty: behaviour -------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(mt_uncertainty_behaviour)

BOOST_AUTO_TEST_CASE(candidates_follow_dataloader_batches) {
    // Task 0 has 10 examples: batches of 4, 4, 2 (the short last batch), then a new epoch.
    mt_uncertainty_sampler s({{"a", 10, 2}, {"b", 4, 3}}, 4, rng_stream(11));
    std::vector<std::size_t> seen_a;
    const std::size_t expect_a[] = {4, 4, 2, 4};
    for (std::size_t step = 0; step < 4; ++step) {
        const auto cand = s.candidates();
        std::size_t na = 0, nb = 0;
        for (const auto& c : cand) {
            (c.task == 0 ? na : nb) += 1;
            if (c.task == 0 && step < 3) seen_a.push_back(c.index);
        }
        BOOST_TEST(na == expect_a[step]);
        BOOST_TEST(nb == 4u);
        // Task blocks in task order.
        BOOST_TEST(std::is_sorted(cand.begin(), cand.end(), [](auto& x, auto& y) { return x.task < y.task; }));
        const auto batch = s.select(fake_logits(cand, s));
        BOOST_TEST(batch.size() == 4u);
    }
    std::sort(seen_a.begin(), seen_a.end());
    std::vector<std::size_t> all(10);
    std::iota(all.begin(), all.end(), std::size_t{0});
    BOOST_TEST(seen_a == all, boost::test_tools::per_element());  // one epoch = every example once
    BOOST_TEST(s.task_epoch(0) == 2u);
    BOOST_TEST(s.task_epoch(1) == 4u);
}

BOOST_AUTO_TEST_CASE(selected_batch_is_in_descending_score_order) {
    mt_uncertainty_sampler s(glue_tasks(), 8, rng_stream(3));
    for (int step = 0; step < 20; ++step) {
        const auto cand = s.candidates();
        const auto batch = s.select(fake_logits(cand, s));
        const auto& r = s.last_result();
        BOOST_TEST(batch.size() == 8u);
        BOOST_TEST(std::is_sorted(r.selected_scores.begin(), r.selected_scores.end(), std::greater<>()));
        // Nothing left out scores above the lowest selected score.
        const std::set<std::size_t> chosen(r.selected.begin(), r.selected.end());
        for (std::size_t i = 0; i < r.scores.size(); ++i)
            if (!chosen.count(i)) BOOST_TEST(r.scores[i] <= r.selected_scores.back());
    }
}

BOOST_AUTO_TEST_CASE(fraction_used) {
    // T tasks, b candidates each, b kept: 1/T of the candidates are used.
    std::vector<mt_uncertainty_task> tasks{{"cola", 40, 2}, {"mnli", 24, 3}, {"mrpc", 32, 2}, {"sts-b", 48, 1}};
    apply_camtl_borrowing(tasks);
    mt_uncertainty_sampler s(tasks, 8, rng_stream(3));
    BOOST_TEST(s.fraction_used() == 0.0);
    for (int step = 0; step < 3; ++step) s.select(fake_logits(s.candidates(), s));
    BOOST_TEST(s.candidates_drawn() == 3u * 4u * 8u);
    BOOST_TEST(s.examples_used() == 3u * 8u);
    BOOST_TEST(s.fraction_used() == 0.25);
    std::uint64_t used = 0;
    for (std::size_t t = 0; t < 4; ++t) {
        BOOST_TEST(s.candidates_drawn(t) == 24u);
        used += s.examples_used(t);
    }
    BOOST_TEST(used == 24u);
    // With a short last batch the denominator shrinks: 10 + 4 candidates, 4 used.
    mt_uncertainty_sampler u({{"a", 6, 2}, {"b", 4, 2}}, 4, rng_stream(1));
    u.select(fake_logits(u.candidates(), u));
    u.select(fake_logits(u.candidates(), u));
    BOOST_TEST(u.candidates_drawn() == 4u + 4u + 2u + 4u);
    BOOST_TEST(u.fraction_used() == 8.0 / 14.0);
    // Samplers without a scoring phase use every candidate.
    temperature_sampler t({5, 9}, 4, rng_stream(2));
    BOOST_TEST(t.fraction_used() == 0.0);
    for (int i = 0; i < 5; ++i) t.next_batch();
    BOOST_TEST(t.fraction_used() == 1.0);
    BOOST_TEST(t.candidates_drawn() == 20u);
}

BOOST_AUTO_TEST_CASE(all_zero_entropy_scores_zero) {
    // Only regression tasks and nothing to borrow: every score is 0 (the authors' code divides 0 by 0) and
    // the first b positions are kept.
    const std::vector<double> a{0.5, 1.5, -2.0}, b{3.0, 4.0};
    const std::vector<std::span<const double>> blocks{a, b};
    const std::vector<std::size_t> classes{1, 1};
    const auto r = mt_uncertainty_scores(blocks, classes, 2);
    for (double v : r.scores) BOOST_TEST(v == 0.0);
    BOOST_TEST(r.selected == (std::vector<std::size_t>{0, 1}), boost::test_tools::per_element());
    BOOST_TEST(r.max_task_mean == 0.0);
}

BOOST_AUTO_TEST_CASE(task_floor_keeps_a_share_for_every_task) {
    // Task 0 is certain (entropy 0), task 1 uncertain: the authors' top-4 takes task 1 only; with task_floor = 1
    // each of the 2 tasks keeps floor(1 * 4 / 2) = 2 rows, its best; with 0.5, one row each, then the best of
    // the rest (task 1's). The selection stays in score order.
    const std::vector<double> certain{1.0, 0.0, 1.0, 0.0, 0.9, 0.1, 1.0, 0.0};     // 4 rows of 2 probabilities
    const std::vector<double> unsure{0.5, 0.5, 0.6, 0.4, 0.55, 0.45, 0.7, 0.3};
    const std::vector<std::span<const double>> blocks{certain, unsure};
    const std::vector<std::size_t> classes{2, 2};
    const mt_uncertainty_options none{.input = output_kind::probabilities};
    auto with_floor = [&](double f) {
        mt_uncertainty_options o = none;
        o.task_floor = f;
        return mt_uncertainty_scores(blocks, classes, 4, o).selected;
    };
    const auto top = mt_uncertainty_scores(blocks, classes, 4, none).selected;
    BOOST_TEST(top == (std::vector<std::size_t>{4, 6, 5, 7}), boost::test_tools::per_element());
    BOOST_TEST(with_floor(0.0) == top, boost::test_tools::per_element());
    // Task 0's best is row 2 (0.9 / 0.1), then rows 0, 1, 3 tie at entropy 0 (first by position: 0).
    BOOST_TEST(with_floor(1.0) == (std::vector<std::size_t>{4, 6, 2, 0}), boost::test_tools::per_element());
    BOOST_TEST(with_floor(0.5) == (std::vector<std::size_t>{4, 6, 5, 2}), boost::test_tools::per_element());
    BOOST_CHECK_EXCEPTION(with_floor(1.5), config_error, says({"task_floor", "[0, 1]"}));
    BOOST_CHECK_EXCEPTION(mt_uncertainty_sampler({{"cola", 5, 2}}, 4, rng_stream(1), {.task_floor = -0.1}), config_error,
                          says({"task_floor"}));
}

BOOST_AUTO_TEST_CASE(regression_outputs_and_epsilon) {
    // A regression head's output is never a probability or an entropy: Ĥ = 0 even with epsilon = 0
    // (log 1 + 0 = 0 would divide 0 by 0) and with output_kind::probabilities (its output may be negative).
    const std::vector<double> cls{0.2, 0.8, 0.5, 0.5}, reg{-1.5, 2.0};
    const std::vector<std::span<const double>> blocks{cls, reg};
    const std::vector<std::size_t> classes{2, 1};
    const std::vector<score_borrowing> borrow{{1, 0}};
    const auto r = mt_uncertainty_scores(blocks, classes, 4, {.input = output_kind::probabilities, .epsilon = 0.0}, borrow);
    BOOST_TEST(r.normalized_entropy[2] == 0.0);
    BOOST_TEST(r.normalized_entropy[3] == 0.0);
    BOOST_TEST(std::abs(r.normalized_entropy[1] - 1.0) <= 1e-15);  // a uniform prediction: exactly log 2 / log 2
    BOOST_TEST(r.scores[2] == r.scores[0]);
    BOOST_TEST(r.scores[3] == r.scores[1]);
    BOOST_TEST(r.selected == (std::vector<std::size_t>{1, 3, 0, 2}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(next_batch_calls_the_scorer_only_when_needed) {
    mt_uncertainty_sampler s(glue_tasks(), 4, rng_stream(8));
    int calls = 0;
    auto scorer = [&](const std::vector<example_ref>& cand) {
        ++calls;
        return fake_logits(cand, s);
    };
    BOOST_TEST(next_batch(s, scorer).size() == 4u);
    BOOST_TEST(calls == 1);
    round_robin_sampler rr({3, 3}, 2, rng_stream(8));
    BOOST_TEST(next_batch(rr, scorer).size() == 2u);
    BOOST_TEST(next_batch(rr).size() == 2u);
    BOOST_TEST(calls == 1);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Task-choice distributions --------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(distributions)

/// Task frequencies over many draws agree with p_t within 5 standard errors.
void check_frequencies(const std::vector<double>& p, const std::vector<std::uint64_t>& counts) {
    std::uint64_t n = 0;
    for (auto c : counts) n += c;
    for (std::size_t t = 0; t < p.size(); ++t) {
        const double f = static_cast<double>(counts[t]) / static_cast<double>(n);
        const double se = std::sqrt(p[t] * (1 - p[t]) / static_cast<double>(n));
        BOOST_TEST_MESSAGE("task " << t << ": p " << p[t] << ", frequency " << f << " (" << n << " draws)");
        BOOST_TEST(std::abs(f - p[t]) <= 5 * se);
    }
}

BOOST_AUTO_TEST_CASE(size_proportional_mixed_rows) {
    const std::vector<std::size_t> sizes{50, 150, 300};
    size_proportional_sampler s(sizes, 8, rng_stream(101));
    BOOST_TEST((s.composition() == batch_composition::mixed));
    const std::vector<double> p{0.1, 0.3, 0.6};
    for (std::size_t t = 0; t < 3; ++t) BOOST_TEST(std::abs(s.probabilities()[t] - p[t]) <= 1e-12);
    std::vector<std::uint64_t> counts(3, 0);
    for (int i = 0; i < 5000; ++i)
        for (const auto& r : s.next_batch()) ++counts[r.task];
    check_frequencies(p, counts);
}

BOOST_AUTO_TEST_CASE(temperature_single_task_batches) {
    const std::vector<std::size_t> sizes{100, 400, 1600};
    temperature_sampler s(sizes, 4, rng_stream(202), {.temperature = 2.0});
    BOOST_TEST((s.composition() == batch_composition::single_task));
    const std::vector<double> p{10.0 / 70.0, 20.0 / 70.0, 40.0 / 70.0};  // ∝ sqrt(N)
    for (std::size_t t = 0; t < 3; ++t) BOOST_TEST(std::abs(s.probabilities()[t] - p[t]) <= 1e-12);
    std::vector<std::uint64_t> counts(3, 0);
    for (int i = 0; i < 20000; ++i) {
        const auto b = s.next_batch();
        BOOST_TEST_REQUIRE(b.size() == 4u);
        for (const auto& r : b) BOOST_TEST_REQUIRE(r.task == b[0].task);
        ++counts[b[0].task];
    }
    check_frequencies(p, counts);
}

BOOST_AUTO_TEST_CASE(temperature_limits) {
    const std::vector<std::size_t> sizes{10, 1000};
    temperature_sampler one(sizes, 1, rng_stream(1), {.temperature = 1.0});
    size_proportional_sampler prop(sizes, 1, rng_stream(1));
    for (std::size_t t = 0; t < 2; ++t) BOOST_TEST(std::abs(one.probabilities()[t] - prop.probabilities()[t]) <= 1e-12);
    temperature_sampler hot(sizes, 1, rng_stream(1), {.temperature = 1e6});
    BOOST_TEST(std::abs(hot.probabilities()[0] - 0.5) <= 1e-5);
    // A tiny temperature concentrates on the largest task without overflowing N^(1/T).
    temperature_sampler cold(sizes, 1, rng_stream(1), {.temperature = 1e-3});
    BOOST_TEST(cold.probabilities()[1] == 1.0);
    BOOST_TEST(std::isfinite(cold.probabilities()[0]));
}

BOOST_AUTO_TEST_CASE(temperature_mixed_rows) {
    temperature_sampler s({100, 900}, 16, rng_stream(7), {.temperature = 2.0, .composition = batch_composition::mixed});
    const std::vector<double> p{0.25, 0.75};
    std::vector<std::uint64_t> counts(2, 0);
    for (int i = 0; i < 3000; ++i)
        for (const auto& r : s.next_batch()) ++counts[r.task];
    check_frequencies(p, counts);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Within-task order, round robin, determinism, resume ------------------------------------------------

BOOST_AUTO_TEST_SUITE(order_and_state)

BOOST_AUTO_TEST_CASE(examples_without_replacement_reshuffled_per_epoch) {
    temperature_sampler s({7}, 3, rng_stream(9));
    std::vector<std::size_t> rows;
    for (int i = 0; i < 7; ++i)
        for (const auto& r : s.next_batch()) rows.push_back(r.index);  // 21 rows = 3 epochs
    std::vector<std::vector<std::size_t>> epochs;
    for (int e = 0; e < 3; ++e) {
        std::vector<std::size_t> ep(rows.begin() + e * 7, rows.begin() + (e + 1) * 7);
        auto sorted = ep;
        std::sort(sorted.begin(), sorted.end());
        for (std::size_t i = 0; i < 7; ++i) BOOST_TEST(sorted[i] == i);  // a permutation
        epochs.push_back(ep);
    }
    BOOST_TEST((epochs[0] != epochs[1] || epochs[1] != epochs[2]));  // reshuffled
    BOOST_TEST(s.task_epoch(0) == 3u);
}

BOOST_AUTO_TEST_CASE(round_robin_order) {
    round_robin_sampler s({3, 5, 4}, 2, rng_stream(4));
    BOOST_TEST((s.composition() == batch_composition::single_task));
    for (std::size_t k = 0; k < 12; ++k) {
        const auto b = s.next_batch();
        BOOST_TEST_REQUIRE(b.size() == 2u);
        for (const auto& r : b) BOOST_TEST(r.task == k % 3);
    }
    // Task 0 (3 examples) has served 4 batches of 2 = 8 rows: epochs 1-3 complete, the third started.
    BOOST_TEST(s.task_epoch(0) == 3u);
    round_robin_sampler m({3, 5, 4}, 4, rng_stream(4), {.composition = batch_composition::mixed});
    std::size_t row = 0;
    for (int k = 0; k < 6; ++k)
        for (const auto& r : m.next_batch()) BOOST_TEST(r.task == (row++) % 3);
}

template <class S>
std::vector<example_ref> run(S& s, int steps) {
    std::vector<example_ref> rows;
    for (int i = 0; i < steps; ++i) {
        std::vector<example_ref> b;
        if constexpr (S::needs_scores)
            b = s.select(fake_logits(s.candidates(), s));
        else
            b = s.next_batch();
        rows.insert(rows.end(), b.begin(), b.end());
    }
    return rows;
}

template <class Make>
void check_determinism_and_resume(Make make) {
    auto a = make(rng_stream(42)), b = make(rng_stream(42)), c = make(rng_stream(43));
    const auto ra = run(a, 25), rb = run(b, 25), rc = run(c, 25);
    BOOST_TEST((ra == rb));
    BOOST_TEST((ra != rc));
    BOOST_TEST((a.rng() == b.rng()));

    // Save mid-stream, continue; a fresh sampler (another seed) restored from the text continues identically.
    auto s = make(rng_stream(42));
    run(s, 7);
    const std::string text = s.state();
    const auto tail = run(s, 30);
    auto r = make(rng_stream(999));
    r.restore(text);
    BOOST_TEST(r.steps() == 7u);
    const auto tail2 = run(r, 30);
    BOOST_TEST((tail == tail2));
    BOOST_TEST(r.fraction_used() == s.fraction_used());
    BOOST_TEST(r.candidates_drawn() == s.candidates_drawn());
    BOOST_TEST(r.state() == s.state());

    // Through a checkpoint's training_state: text in extra, stream in rng.
    auto t = make(rng_stream(42));
    run(t, 5);
    training_state st;
    save_sampler(t, st);
    BOOST_TEST((st.rng.at("sampler") == t.rng()));
    const auto t_tail = run(t, 12);
    auto u = make(rng_stream(1));
    restore_sampler(u, st);
    BOOST_TEST((run(u, 12) == t_tail));
    // A stream from another checkpoint is caught.
    st.rng["sampler"] = rng_stream(42, 1);
    auto v = make(rng_stream(1));
    BOOST_CHECK_EXCEPTION(restore_sampler(v, st), config_error, says({"rng['sampler']", "disagrees"}));
}

BOOST_AUTO_TEST_CASE(determinism_and_resume_every_sampler) {
    check_determinism_and_resume([](rng_stream r) { return mt_uncertainty_sampler(glue_tasks(), 4, r); });
    check_determinism_and_resume([](rng_stream r) {
        return mt_uncertainty_sampler(glue_tasks(), 4, r, {.precision = mt_uncertainty_precision::float32});
    });
    check_determinism_and_resume([](rng_stream r) { return size_proportional_sampler({5, 17, 3}, 4, r); });
    check_determinism_and_resume([](rng_stream r) { return temperature_sampler({5, 17, 3}, 4, r, {.temperature = 3}); });
    check_determinism_and_resume([](rng_stream r) {
        return temperature_sampler({5, 17, 3}, 4, r, {.temperature = 3, .composition = batch_composition::mixed});
    });
    check_determinism_and_resume([](rng_stream r) {
        return round_robin_sampler({5, 17, 3}, 4, r, {.composition = batch_composition::mixed});
    });
    // Round robin's task order is fixed; only the within-task shuffles depend on the seed.
    auto a = round_robin_sampler({5, 17, 3}, 4, rng_stream(1)), b = round_robin_sampler({5, 17, 3}, 4, rng_stream(1));
    BOOST_TEST((run(a, 10) == run(b, 10)));
}

BOOST_AUTO_TEST_CASE(state_is_json_with_the_stream) {
    temperature_sampler s({4, 6}, 2, rng_stream(77));
    s.next_batch();
    const auto j = nlohmann::json::parse(s.state());
    BOOST_TEST(j.at("kind").get<std::string>() == "temperature");
    BOOST_TEST(j.at("rng").at(0).get<std::uint64_t>() == 77u);
    BOOST_TEST(j.at("rng").at(1).get<std::uint64_t>() == s.rng().offset());
    BOOST_TEST(j.at("steps").get<int>() == 1);
}

BOOST_AUTO_TEST_CASE(restore_refuses_other_samplers_and_settings) {
    temperature_sampler s({4, 6}, 2, rng_stream(77), {.temperature = 2});
    s.next_batch();
    const std::string text = s.state();
    temperature_sampler other_t({4, 6}, 2, rng_stream(77), {.temperature = 3});
    BOOST_CHECK_EXCEPTION(other_t.restore(text), config_error, says({"settings", "temperature"}));
    temperature_sampler other_sizes({4, 7}, 2, rng_stream(77), {.temperature = 2});
    BOOST_CHECK_EXCEPTION(other_sizes.restore(text), config_error, says({"dataset sizes [4,6]", "[4,7]"}));
    temperature_sampler other_b({4, 6}, 3, rng_stream(77), {.temperature = 2});
    BOOST_CHECK_EXCEPTION(other_b.restore(text), config_error, says({"batch size 2"}));
    size_proportional_sampler prop({4, 6}, 2, rng_stream(77));
    BOOST_CHECK_EXCEPTION(prop.restore(text), config_error, says({"saved by a 'temperature' sampler"}));
    BOOST_CHECK_EXCEPTION(prop.restore("{not json"), config_error, says({"not valid JSON"}));
    BOOST_CHECK_EXCEPTION(prop.restore("{\"format\":\"hyperadapt.sampler\",\"version\":1,\"kind\":\"size_proportional\"}"),
                          config_error, says({"malformed state"}));
    // A failed restore changes nothing.
    const std::string before = prop.state();
    BOOST_CHECK_THROW(prop.restore(text), config_error);
    BOOST_TEST(prop.state() == before);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Bad inputs -------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(bad_inputs)

BOOST_AUTO_TEST_CASE(empty_task_list) {
    BOOST_CHECK_EXCEPTION(size_proportional_sampler({}, 4, rng_stream(1)), config_error, says({"task list is empty"}));
    BOOST_CHECK_EXCEPTION(temperature_sampler({}, 4, rng_stream(1)), config_error, says({"task list is empty"}));
    BOOST_CHECK_EXCEPTION(round_robin_sampler({}, 4, rng_stream(1)), config_error, says({"task list is empty"}));
    BOOST_CHECK_EXCEPTION(mt_uncertainty_sampler({}, 4, rng_stream(1)), config_error, says({"task list is empty"}));
}

BOOST_AUTO_TEST_CASE(zero_size_dataset) {
    BOOST_CHECK_EXCEPTION(size_proportional_sampler({3, 0}, 4, rng_stream(1)), config_error,
                          says({"task 1", "empty dataset"}));
    BOOST_CHECK_EXCEPTION(temperature_sampler({0}, 4, rng_stream(1)), config_error, says({"task 0", "empty dataset"}));
    BOOST_CHECK_EXCEPTION(round_robin_sampler({2, 0, 2}, 4, rng_stream(1)), config_error, says({"task 1", "empty"}));
    BOOST_CHECK_EXCEPTION(mt_uncertainty_sampler({{"cola", 5, 2}, {"rte", 0, 2}}, 4, rng_stream(1)), config_error,
                          says({"task 1 ('rte')", "empty dataset"}));
    BOOST_CHECK_EXCEPTION(round_robin_sampler({2}, 0, rng_stream(1)), config_error, says({"batch size"}));
}

BOOST_AUTO_TEST_CASE(temperature_must_be_positive) {
    for (double t : {0.0, -1.0, std::nan(""), std::numeric_limits<double>::infinity()})
        BOOST_CHECK_EXCEPTION(temperature_sampler({3, 4}, 2, rng_stream(1), {.temperature = t}), config_error,
                              says({"temperature must be a finite number > 0"}));
}

BOOST_AUTO_TEST_CASE(mt_uncertainty_configuration) {
    BOOST_CHECK_EXCEPTION(mt_uncertainty_sampler({{"cola", 5, 0}}, 4, rng_stream(1)), config_error,
                          says({"'cola'", "0 classes"}));
    BOOST_CHECK_EXCEPTION(mt_uncertainty_sampler({{"a", 5, 2}, {"a", 5, 2}}, 4, rng_stream(1)), config_error,
                          says({"both named 'a'"}));
    BOOST_CHECK_EXCEPTION(mt_uncertainty_sampler({{"stsb", 5, 1, "qqp"}, {"mrpc", 5, 2}}, 4, rng_stream(1)),
                          config_error, says({"'stsb'", "'qqp'", "not in the task list"}));
    BOOST_CHECK_EXCEPTION(mt_uncertainty_sampler({{"stsb", 5, 1, "x"}, {"x", 5, 1}}, 4, rng_stream(1)), config_error,
                          says({"not a classification task"}));
    BOOST_CHECK_EXCEPTION(mt_uncertainty_sampler({{"rte", 5, 2, "mrpc"}, {"mrpc", 5, 2}}, 4, rng_stream(1)),
                          config_error, says({"'rte'", "only a regression task"}));
    BOOST_CHECK_EXCEPTION(mt_uncertainty_sampler({{"stsb", 5, 1, "stsb"}}, 4, rng_stream(1)), config_error,
                          says({"its own scores"}));
    BOOST_CHECK_EXCEPTION((void)mt_uncertainty_epoch_length(std::vector<std::size_t>{3}, 2, 0.0), config_error,
                          says({"percent_of_max_data_size"}));
}

BOOST_AUTO_TEST_CASE(scores_of_the_wrong_length) {
    mt_uncertainty_sampler s({{"cola", 9, 2}, {"mnli", 9, 3}}, 4, rng_stream(1));
    BOOST_CHECK_EXCEPTION(s.select(std::vector<std::vector<float>>(2)), config_error, says({"without candidates()"}));
    const auto cand = s.candidates();
    BOOST_CHECK_EXCEPTION(s.candidates(), config_error, says({"candidates() called twice"}));
    BOOST_CHECK_EXCEPTION((void)s.state(), config_error, says({"between candidates() and select()"}));
    std::vector<std::vector<float>> good{std::vector<float>(8, 0.5f), std::vector<float>(12, 0.5f)};
    auto short_block = good;
    short_block[1].pop_back();
    BOOST_CHECK_EXCEPTION(s.select(short_block), shape_error,
                          says({"task 1 ('mnli')", "11 values", "expected 12", "4 candidates x 3 classes"}));
    BOOST_CHECK_EXCEPTION(s.select(std::vector<std::vector<float>>{good[0]}), shape_error,
                          says({"outputs for 1 tasks, expected 2"}));
    const std::vector<float> flat(19, 0.f);
    BOOST_CHECK_EXCEPTION(s.select(std::span<const float>(flat)), shape_error, says({"19 output values", "expected 20"}));
    auto nan = good;
    nan[0][3] = std::nanf("");
    BOOST_CHECK_EXCEPTION(s.select(nan), config_error, says({"non-finite logit", "candidate 1 of task 0"}));
    // float32 numerics refuse a double that float cannot hold.
    mt_uncertainty_sampler f({{"cola", 9, 2}}, 2, rng_stream(1), {.precision = mt_uncertainty_precision::float32});
    f.candidates();
    const std::vector<double> huge{1e300, 0.0, 0.0, 0.0};
    BOOST_CHECK_EXCEPTION(f.select(std::span<const double>(huge)), config_error, says({"beyond float range"}));
    // After the refusals the step still completes.
    BOOST_TEST(s.select(good).size() == 4u);

    // The standalone function.
    const std::vector<double> a(5, 0.1);
    const std::vector<std::span<const double>> blocks{a};
    const std::vector<std::size_t> two{2}, two_tasks{2, 2};
    BOOST_CHECK_EXCEPTION(mt_uncertainty_scores(blocks, two, 2), shape_error, says({"5 values", "not a multiple", "2 classes"}));
    BOOST_CHECK_EXCEPTION(mt_uncertainty_scores(blocks, two_tasks, 2), shape_error, says({"outputs for 1 tasks, expected 2"}));
    const std::vector<double> neg{0.5, -0.1};
    const std::vector<std::span<const double>> neg_blocks{neg};
    BOOST_CHECK_EXCEPTION(mt_uncertainty_scores(neg_blocks, two, 1, {.input = output_kind::probabilities}), config_error,
                          says({"negative probability"}));
    const std::vector<double> zero{0.0, 0.0};
    const std::vector<std::span<const double>> zero_blocks{zero};
    BOOST_CHECK_EXCEPTION(mt_uncertainty_scores(zero_blocks, two, 1, {.input = output_kind::probabilities}), config_error,
                          says({"all zero"}));
}

BOOST_AUTO_TEST_CASE(protocol_misuse_without_scores) {
    round_robin_sampler s({3, 3}, 2, rng_stream(1));
    BOOST_CHECK_EXCEPTION(s.select(), config_error, says({"without candidates()"}));
    s.candidates();
    BOOST_CHECK_EXCEPTION(s.candidates(), config_error, says({"called twice"}));
    BOOST_TEST(s.select().size() == 2u);
}

BOOST_AUTO_TEST_SUITE_END()
