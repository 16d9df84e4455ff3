#define BOOST_TEST_MODULE data_metrics
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "hyperadapt/data/metrics.hpp"

using namespace hyperadapt::data;
namespace tt = boost::test_tools;

// Expected values: tests/reference/make_metrics_reference.py (scikit-learn 1.9.1, scipy 1.17.1) on the
// same inputs, pasted with all printed digits; the script's output line is named next to each. Values a
// line or two of arithmetic gives are derived by hand in the comment instead.

namespace {

constexpr double tight = 1e-12;

/// The script's lcg(): x <- (1664525 x + 1013904223) mod 2^32, each new state returned.
std::vector<std::uint32_t> lcg(std::uint32_t seed, std::size_t n) {
    std::vector<std::uint32_t> out;
    std::uint32_t x = seed;
    for (std::size_t i = 0; i < n; ++i) out.push_back(x = 1664525u * x + 1013904223u);
    return out;
}

const std::vector<int> bin_pred{1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 0, 0, 1, 0, 1, 1, 0, 0, 1};
const std::vector<int> bin_gold{1, 0, 0, 1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0, 0, 1, 0, 1, 1};
const std::vector<int> mc_pred{0, 1, 2, 0, 1, 1, 0, 2, 2, 0, 1, 0, 0, 1, 2};
const std::vector<int> mc_gold{0, 1, 2, 1, 1, 0, 0, 2, 1, 0, 1, 2, 0, 0, 2};
const std::vector<double> reg_pred{2.5, 3.0, 0.5, 4.75, 3.0, 1.25, 5.0, 2.5, 0.0, 3.0, 4.0, 1.0};
const std::vector<double> reg_gold{2.0, 3.4, 1.0, 4.0, 2.8, 1.0, 4.6, 3.0, 0.2, 2.8, 4.8, 1.0};

}  // namespace

BOOST_AUTO_TEST_SUITE(classification)

BOOST_AUTO_TEST_CASE(binary) {
    BOOST_TEST(accuracy(bin_pred, bin_gold) == 0.7, tt::tolerance(tight));             // "binary accuracy"
    BOOST_TEST(f1(bin_pred, bin_gold) == 0.7272727272727273, tt::tolerance(tight));     // "binary f1"
    BOOST_TEST(matthews(bin_pred, bin_gold) == 0.3939393939393939, tt::tolerance(tight));  // "binary mcc"
    // By hand: tp 8, fp 3, fn 3, tn 6 -> F1 = 16/22; MCC = (8*6 - 3*3)/sqrt(11*11*9*9) = 39/99.
    BOOST_TEST(f1(bin_pred, bin_gold) == 16.0 / 22.0, tt::tolerance(tight));
    BOOST_TEST(matthews(bin_pred, bin_gold) == 39.0 / 99.0, tt::tolerance(tight));
    // F1 and MCC are symmetric in prediction and gold.
    BOOST_TEST(f1(bin_gold, bin_pred) == f1(bin_pred, bin_gold), tt::tolerance(tight));
    BOOST_TEST(matthews(bin_gold, bin_pred) == matthews(bin_pred, bin_gold), tt::tolerance(tight));
}

BOOST_AUTO_TEST_CASE(three_classes) {
    BOOST_TEST(accuracy(mc_pred, mc_gold) == 0.6666666666666666, tt::tolerance(tight));   // "3-class accuracy"
    BOOST_TEST(macro_f1(mc_pred, mc_gold) == 0.6722222222222222, tt::tolerance(tight));   // "3-class macro f1"
    BOOST_TEST(matthews(mc_pred, mc_gold) == 0.49324324324324326, tt::tolerance(tight));  // "3-class mcc"
    // Class 3 appears only in the prediction and still counts, with F1 0 ("extra-class macro f1"):
    // class 0: tp 2 fp 0 fn 1 -> 0.8; class 1: tp 1 fp 1 fn 1 -> 0.5; class 3: 0 -> (0.8 + 0.5 + 0) / 3.
    const std::vector<int> p{0, 1, 3, 0, 1}, g{0, 1, 1, 0, 0};
    BOOST_TEST(macro_f1(p, g) == 0.43333333333333335, tt::tolerance(tight));
    BOOST_TEST(macro_f1(p, g) == 1.3 / 3.0, tt::tolerance(tight));
}

BOOST_AUTO_TEST_CASE(degenerate_cases_follow_sklearn) {
    const std::vector<int> gold{1, 0, 1, 1, 0, 1};
    BOOST_TEST(matthews(std::vector<int>(6, 1), gold) == 0.0);  // "mcc constant pred 1"
    BOOST_TEST(matthews(std::vector<int>(6, 0), gold) == 0.0);  // "mcc constant pred 0"
    BOOST_TEST(matthews(gold, gold) == 1.0, tt::tolerance(tight));  // "mcc all correct"
    BOOST_TEST(f1(std::vector<int>(6, 1), gold) == 0.8, tt::tolerance(tight));  // "f1 constant pred 1": 8/10
    BOOST_TEST(f1(std::vector<int>(3, 0), std::vector<int>(3, 0)) == 0.0);  // "f1 no positives"
    BOOST_TEST(accuracy(gold, gold) == 1.0);
}

BOOST_AUTO_TEST_CASE(pseudo_random_thousand) {
    const auto a = lcg(1, 1000), b = lcg(2, 1000);
    std::vector<int> p, g;
    for (std::size_t i = 0; i < 1000; ++i) {
        p.push_back(static_cast<int>(a[i] >> 31));
        g.push_back(i % 3 == 0 ? p.back() : static_cast<int>(b[i] >> 31));
    }
    BOOST_TEST(accuracy(p, g) == 0.67, tt::tolerance(tight));                 // "lcg accuracy"
    BOOST_TEST(f1(p, g) == 0.6845124282982792, tt::tolerance(tight));         // "lcg f1"
    BOOST_TEST(matthews(p, g) == 0.3392507486418295, tt::tolerance(tight));   // "lcg mcc"
}

BOOST_AUTO_TEST_CASE(any_integer_range) {
    const std::vector<std::int64_t> p(bin_pred.begin(), bin_pred.end());
    const std::vector<short> g(bin_gold.begin(), bin_gold.end());
    BOOST_TEST(accuracy(std::span<const std::int64_t>(p), g) == 0.7, tt::tolerance(tight));
    BOOST_TEST(matthews(p, g) == 39.0 / 99.0, tt::tolerance(tight));
}

BOOST_AUTO_TEST_CASE(size_mismatch_and_empty_input_throw) {
    BOOST_CHECK_THROW((void)accuracy(std::vector<int>{1, 0}, std::vector<int>{1}), hyperadapt::shape_error);
    BOOST_CHECK_THROW((void)f1(std::vector<int>{}, std::vector<int>{}), hyperadapt::shape_error);
    BOOST_CHECK_THROW((void)pearson(std::vector<double>{1, 2}, std::vector<double>{1, 2, 3}), hyperadapt::shape_error);
    try {
        (void)matthews(std::vector<int>{1, 0, 1}, std::vector<int>{1});
        BOOST_FAIL("no exception");
    } catch (const hyperadapt::shape_error& e) {
        BOOST_TEST(std::string(e.what()) == "matthews: 3 predictions but 1 gold values");
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(correlation)

BOOST_AUTO_TEST_CASE(pearson_and_spearman_with_ties) {
    BOOST_TEST(pearson(reg_pred, reg_gold) == 0.9557803884111578, tt::tolerance(tight));   // "pearson"
    BOOST_TEST(spearman(reg_pred, reg_gold) == 0.9288256227758007, tt::tolerance(tight));  // "spearman"
    // float inputs (model outputs) work and agree to float precision; these values are exact in float.
    const std::vector<float> pf(reg_pred.begin(), reg_pred.end());
    BOOST_TEST(pearson(pf, reg_gold) == pearson(reg_pred, reg_gold), tt::tolerance(1e-6));
    BOOST_TEST(spearman(pf, reg_gold) == spearman(reg_pred, reg_gold), tt::tolerance(tight));
    BOOST_TEST(pearson(reg_pred, reg_pred) == 1.0, tt::tolerance(tight));
    std::vector<double> neg;
    for (double v : reg_pred) neg.push_back(-2 * v + 1);
    BOOST_TEST(pearson(reg_pred, neg) == -1.0, tt::tolerance(tight));
    BOOST_TEST(spearman(reg_pred, neg) == -1.0, tt::tolerance(tight));
}

BOOST_AUTO_TEST_CASE(average_ranks_of_ties) {
    // By hand: 5 is smallest (1), 10 next (2), the two 20s share ranks 3 and 4 (3.5), 30 is 5.
    const auto r = average_ranks(std::vector<double>{10, 20, 5, 20, 30});
    BOOST_TEST(r == (std::vector<double>{2, 3.5, 1, 3.5, 5}), tt::per_element());
    const auto all_same = average_ranks(std::vector<int>{7, 7, 7});
    BOOST_TEST(all_same == (std::vector<double>{2, 2, 2}), tt::per_element());
    BOOST_CHECK_THROW((void)average_ranks(std::vector<double>{1, std::nan("")}), hyperadapt::config_error);
}

BOOST_AUTO_TEST_CASE(constant_vector_gives_nan_as_scipy) {
    const std::vector<double> c(5, 1.5), v{1, 2, 3, 4, 5};
    BOOST_TEST(std::isnan(pearson(c, v)));   // "pearson constant"
    BOOST_TEST(std::isnan(spearman(c, v)));  // "spearman constant"
    BOOST_TEST(std::isnan(pearson(v, c)));
    // 0.1 + 0.1 + 0.1 does not average back to 0.1 exactly; constancy is still detected.
    BOOST_TEST(std::isnan(pearson(std::vector<double>{0.1, 0.1, 0.1}, std::vector<double>{1, 2, 3})));
    BOOST_TEST(std::isnan(spearman(std::vector<double>{1, std::nan(""), 3}, std::vector<double>{1, 2, 3})));
}

BOOST_AUTO_TEST_CASE(pseudo_random_five_hundred) {
    const auto a = lcg(3, 500), b = lcg(4, 500);
    std::vector<double> xs, ys;
    for (std::size_t i = 0; i < 500; ++i) {
        xs.push_back(static_cast<double>((a[i] >> 8) % 21) * 0.25);
        ys.push_back(std::min(5.0, xs.back() + static_cast<double>((b[i] >> 8) % 9) * 0.25));
    }
    BOOST_TEST(pearson(xs, ys) == 0.9170490832545422, tt::tolerance(tight));   // "lcg pearson"
    BOOST_TEST(spearman(xs, ys) == 0.9224584792767375, tt::tolerance(tight));  // "lcg spearman"
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(task_scores)

BOOST_AUTO_TEST_CASE(official_metrics_per_task) {
    const auto mrpc = evaluate(find_task("mrpc"), bin_pred, bin_gold);
    BOOST_TEST(mrpc.task == "mrpc");
    BOOST_TEST_REQUIRE(mrpc.values.size() == 2u);
    BOOST_TEST((mrpc.values[0].which == metric::f1));
    BOOST_TEST(mrpc.value(metric::f1) == 16.0 / 22.0, tt::tolerance(tight));
    BOOST_TEST(mrpc.value(metric::accuracy) == 0.7, tt::tolerance(tight));
    BOOST_TEST(mrpc.score == (16.0 / 22.0 + 0.7) / 2, tt::tolerance(tight));
    BOOST_CHECK_THROW((void)mrpc.value(metric::matthews), hyperadapt::config_error);

    const auto cola = evaluate(find_task("cola"), bin_pred, bin_gold);
    BOOST_TEST(cola.values.size() == 1u);
    BOOST_TEST(cola.score == 39.0 / 99.0, tt::tolerance(tight));

    const auto cb = evaluate(find_task("cb"), mc_pred, mc_gold);
    BOOST_TEST(cb.value(metric::macro_f1) == 0.6722222222222222, tt::tolerance(tight));
    BOOST_TEST(cb.score == (0.6722222222222222 + 2.0 / 3.0) / 2, tt::tolerance(tight));

    for (const char* name : {"sst2", "mnli", "mnli-mm", "qnli", "rte", "wnli", "copa", "boolq", "wic", "superglue-rte"}) {
        BOOST_TEST_INFO(name);
        const auto r = evaluate(find_task(name), bin_pred, bin_gold);
        BOOST_TEST(r.values.size() == 1u);
        BOOST_TEST(r.value(metric::accuracy) == 0.7, tt::tolerance(tight));
    }
    const auto qqp = evaluate(find_task("qqp"), bin_pred, bin_gold);
    BOOST_TEST(qqp.score == mrpc.score, tt::tolerance(tight));

    const auto stsb = evaluate(find_task("stsb"), std::vector<float>(reg_pred.begin(), reg_pred.end()), reg_gold);
    BOOST_TEST(stsb.value(metric::pearson) == 0.9557803884111578, tt::tolerance(1e-6));
    BOOST_TEST(stsb.value(metric::spearman) == 0.9288256227758007, tt::tolerance(tight));
    BOOST_TEST(stsb.score == (0.9557803884111578 + 0.9288256227758007) / 2, tt::tolerance(1e-6));

    // Class metrics need class ids: scores for a classification task are a caller mistake.
    BOOST_CHECK_THROW((void)evaluate(find_task("rte"), reg_pred, reg_gold), hyperadapt::config_error);
}

BOOST_AUTO_TEST_CASE(evaluate_against_a_dataset) {
    dataset d{find_task("rte"), split::dev, "mem", {}, {}};
    for (int l : bin_gold) d.examples.push_back(example{.text_a = "t", .label = l});
    BOOST_TEST(evaluate(bin_pred, d).score == 0.7, tt::tolerance(tight));
    dataset s{find_task("stsb"), split::dev, "mem", {}, {}};
    for (double v : reg_gold) s.examples.push_back(example{.text_a = "t", .score = static_cast<float>(v)});
    BOOST_TEST(evaluate(reg_pred, s).value(metric::pearson) == 0.9557803884111578, tt::tolerance(1e-6));
}

namespace {
task_result result(const char* task, std::vector<metric_value> values) {
    double sum = 0;
    for (const auto& v : values) sum += v.value;
    return {task, values, sum / static_cast<double>(values.size())};
}

/// BERT-large on the GLUE test sets, as on the GLUE leaderboard (percent). The leaderboard score 80.5
/// below is theirs; the same numbers give the BERT paper's Table 1 average.
std::vector<task_result> bert_large_glue() {
    using enum metric;
    return {
        result("cola", {{matthews, 60.5}}),
        result("sst2", {{accuracy, 94.9}}),
        result("mrpc", {{f1, 89.3}, {accuracy, 85.4}}),
        result("stsb", {{pearson, 87.6}, {spearman, 86.5}}),
        result("qqp", {{f1, 72.1}, {accuracy, 89.3}}),
        result("mnli", {{accuracy, 86.7}}),
        result("mnli-mm", {{accuracy, 85.9}}),
        result("qnli", {{accuracy, 92.7}}),
        result("rte", {{accuracy, 70.1}}),
        result("wnli", {{accuracy, 65.1}}),
    };
}
}  // namespace

BOOST_AUTO_TEST_CASE(glue_leaderboard_score) {
    // Leaderboard rule: mean of each task's metrics, MNLI m/mm as one task, 9 tasks:
    // (60.5 + 94.9 + 87.35 + 87.05 + 80.7 + 86.3 + 92.7 + 70.1 + 65.1) / 9 = 724.7 / 9 = 80.52 -> "80.5".
    const auto results = bert_large_glue();
    BOOST_TEST(leaderboard_score(results) == 724.7 / 9, tt::tolerance(tight));
    BOOST_TEST(std::round(leaderboard_score(results) * 10) / 10 == 80.5, tt::tolerance(tight));
    // Without the mismatched set MNLI is its matched score alone.
    std::vector<task_result> no_mm = results;
    no_mm.erase(no_mm.begin() + 6);
    BOOST_TEST(leaderboard_score(no_mm) == (724.7 - 86.3 + 86.7) / 9, tt::tolerance(tight));
    BOOST_CHECK_THROW((void)leaderboard_score({}), hyperadapt::config_error);
}

BOOST_AUTO_TEST_CASE(paper_average) {
    // BERT paper (Devlin et al. 2019), Table 1, BERT-large: F1 for MRPC and QQP, Spearman for STS-B,
    // WNLI left out, MNLI-m and MNLI-mm as two columns; "Average 82.1" = 738.7 / 9.
    std::vector<task_result> columns;
    for (const auto& r : bert_large_glue()) {
        if (r.task == "wnli") continue;
        if (r.task == "mrpc" || r.task == "qqp") columns.push_back(r.only(metric::f1));
        else if (r.task == "stsb") columns.push_back(r.only(metric::spearman));
        else columns.push_back(r);
    }
    BOOST_TEST(columns.size() == 9u);
    BOOST_TEST(average_score(columns) == 738.7 / 9, tt::tolerance(tight));
    BOOST_TEST(std::round(average_score(columns) * 10) / 10 == 82.1, tt::tolerance(tight));
    BOOST_TEST(columns[2].score == 89.3);  // mrpc reduced to F1
}

BOOST_AUTO_TEST_SUITE_END()
