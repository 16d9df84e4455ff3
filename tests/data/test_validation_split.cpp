#define BOOST_TEST_MODULE data_validation_split
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "hyperadapt/data/validation_split.hpp"

using namespace hyperadapt;

namespace {

constexpr std::size_t L = 4;

/// A task whose example r carries r in its first token, so that a split's rows can be traced back.
encoded_task numbered_task(const std::string& name, std::vector<std::int32_t> labels, std::vector<float> scores = {}) {
    encoded_task t;
    t.info.name = name;
    t.info.kind = scores.empty() ? data::task_kind::classification : data::task_kind::regression;
    t.info.label_names = {"a", "b", "c"};
    t.seq_len = L;
    const std::size_t n = scores.empty() ? labels.size() : scores.size();
    for (std::size_t r = 0; r < n; ++r) {
        t.input_ids.insert(t.input_ids.end(), {static_cast<std::int32_t>(r), 1, 2, 3});
        t.token_type_ids.insert(t.token_type_ids.end(), L, 0);
        t.attention_mask.insert(t.attention_mask.end(), {1, 1, 1, static_cast<std::uint8_t>(r % 2)});
        t.labels.push_back(scores.empty() ? labels[r] : -1);
        t.scores.push_back(scores.empty() ? 0.0f : scores[r]);
    }
    return t;
}

std::vector<std::size_t> ids_of(const encoded_task& t) {
    std::vector<std::size_t> ids;
    for (std::size_t r = 0; r < t.size(); ++r) ids.push_back(static_cast<std::size_t>(t.input_ids[r * L]));
    return ids;
}

/// 60 % label 0, 30 % label 1, 10 % label 2, interleaved.
encoded_task imbalanced(std::size_t n) {
    std::vector<std::int32_t> labels(n);
    for (std::size_t i = 0; i < n; ++i) labels[i] = i % 10 < 6 ? 0 : (i % 10 < 9 ? 1 : 2);
    return numbered_task("imbalanced", labels);
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_split_is_a_partition_that_keeps_every_row_whole_and_in_order) {
    const auto t = imbalanced(500);
    const auto s = carve_validation(t, 120, 7);
    BOOST_TEST(s.validation.size() == 120u);
    BOOST_TEST(s.train.size() == 380u);
    const auto v = ids_of(s.validation), tr = ids_of(s.train);
    BOOST_TEST(std::is_sorted(v.begin(), v.end()));
    BOOST_TEST(std::is_sorted(tr.begin(), tr.end()));
    BOOST_TEST((v == s.validation_rows));
    std::set<std::size_t> all(v.begin(), v.end());
    for (const auto r : tr) BOOST_TEST(all.insert(r).second, "row " << r << " is in both parts");
    BOOST_TEST(all.size() == 500u);
    // Every field of a row travels with it.
    for (std::size_t k = 0; k < s.validation.size(); ++k) {
        const std::size_t r = v[k];
        BOOST_TEST(s.validation.labels[k] == t.labels[r]);
        BOOST_TEST(s.validation.attention_mask[k * L + 3] == t.attention_mask[r * L + 3]);
    }
    BOOST_TEST(s.validation.info.name == "imbalanced");
    BOOST_TEST(s.validation.seq_len == L);
}

BOOST_AUTO_TEST_CASE(classification_strata_keep_the_label_balance) {
    const auto t = imbalanced(1000);
    for (const std::size_t count : {10u, 37u, 200u}) {
        const auto s = carve_validation(t, count, 3);
        BOOST_TEST(s.validation.size() == count);
        std::vector<std::size_t> per_label(3, 0);
        for (const auto l : s.validation.labels) ++per_label[static_cast<std::size_t>(l)];
        const double share[3] = {0.6, 0.3, 0.1};
        for (std::size_t l = 0; l < 3; ++l)
            BOOST_TEST(std::abs(static_cast<double>(per_label[l]) - share[l] * static_cast<double>(count)) <= 1.0,
                       "count " << count << ", label " << l << ": " << per_label[l]);
    }
}

BOOST_AUTO_TEST_CASE(regression_strata_are_quintiles_of_the_target) {
    std::vector<float> scores(400);
    for (std::size_t i = 0; i < scores.size(); ++i) scores[i] = static_cast<float>((i * 37) % 400) / 80.0f;  // 0..5
    const auto t = numbered_task("sts", {}, scores);
    const auto s = carve_validation(t, 100, 11);
    BOOST_TEST(s.validation.size() == 100u);
    std::vector<std::size_t> per_bin(5, 0);
    for (const float v : s.validation.scores) ++per_bin[std::min<std::size_t>(4, static_cast<std::size_t>(v))];
    for (std::size_t q = 0; q < 5; ++q) BOOST_TEST(per_bin[q] == 20u, "quintile " << q << ": " << per_bin[q]);

    // Fewer examples than quintiles: the ranks 0, 1, 2 of three examples fall in quintiles 0, 1 and 3.
    const auto tiny = numbered_task("sts-tiny", {}, {0.5f, 4.0f, 2.5f});
    const auto split = carve_validation(tiny, 1, 11);
    BOOST_TEST(split.validation.size() == 1u);
    BOOST_TEST(split.train.size() == 2u);
}

BOOST_AUTO_TEST_CASE(the_seed_decides_which_rows_and_nothing_else_does) {
    const auto t = imbalanced(300);
    BOOST_TEST((carve_validation(t, 50, 5).validation_rows == carve_validation(t, 50, 5).validation_rows));
    BOOST_TEST((carve_validation(t, 50, 5).validation_rows != carve_validation(t, 50, 6).validation_rows));
}

BOOST_AUTO_TEST_CASE(a_split_that_leaves_nothing_to_train_on_is_refused) {
    const auto t = imbalanced(40);
    try {
        (void)carve_validation(t, 40, 1);
        BOOST_FAIL("a validation split of every example was accepted");
    } catch (const config_error& e) {
        const std::string msg = e.what();
        BOOST_TEST(msg.find("'imbalanced'") != std::string::npos, msg);
        BOOST_TEST(msg.find("40") != std::string::npos, msg);
    }
    const auto none = carve_validation(t, 0, 1);
    BOOST_TEST(none.validation.size() == 0u);
    BOOST_TEST(none.train.size() == 40u);
    auto unlabelled = imbalanced(10);
    unlabelled.labels[3] = -1;
    BOOST_CHECK_THROW((void)carve_validation(unlabelled, 2, 1), config_error);
}
