#define BOOST_TEST_MODULE data_multitask_batch
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <vector>

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/data/multitask_batch.hpp"
#include "hyperadapt/tensor/staged_upload.hpp"

using namespace hyperadapt;

namespace {
/// A task of `lengths.size()` examples encoded to `seq`: example i has lengths[i] real tokens, ids 100 i + j.
encoded_task task_with_lengths(const std::vector<std::size_t>& lengths, std::size_t seq, const char* name = "t") {
    encoded_task t;
    t.info.name = name;
    t.info.kind = data::task_kind::classification;
    t.seq_len = seq;
    for (std::size_t i = 0; i < lengths.size(); ++i) {
        for (std::size_t j = 0; j < seq; ++j) {
            const bool real = j < lengths[i];
            t.input_ids.push_back(real ? static_cast<std::int32_t>(100 * i + j) : 0);
            t.token_type_ids.push_back(real && j > 2 ? 1 : 0);
            t.attention_mask.push_back(real ? 1 : 0);
        }
        t.labels.push_back(static_cast<std::int32_t>(i % 2));
        t.scores.push_back(0);
    }
    return t;
}
}  // namespace

BOOST_AUTO_TEST_CASE(to_longest_keeps_each_rows_prefix_up_to_the_longest_rounded_to_eight) {
    cpu b;
    const std::vector<encoded_task> tasks{task_with_lengths({3, 11, 5, 40}, 48, "a"), task_with_lengths({9, 2}, 48, "b")};
    const std::vector<sample_ref> rows{{0, 0}, {1, 0}, {0, 2}, {1, 1}};  // longest: 9 -> 16
    const auto full = make_batch<cpu, float>(b, tasks, rows);
    const auto cut = make_batch<cpu, float>(b, tasks, rows, batch_padding::to_longest);
    BOOST_TEST(full.length() == 48u);
    BOOST_TEST(cut.length() == 16u);
    BOOST_TEST(cut.real_tokens == 3u + 9u + 5u + 2u);
    BOOST_TEST(full.real_tokens == cut.real_tokens);
    const auto fi = full.input_ids.to_host(), ci = cut.input_ids.to_host();
    const auto ft = full.token_type_ids.to_host(), ct = cut.token_type_ids.to_host();
    const auto fm = full.mask.to_host(), cm = cut.mask.to_host();
    for (std::size_t r = 0; r < rows.size(); ++r)
        for (std::size_t j = 0; j < 48; ++j) {
            if (j < 16) {
                BOOST_TEST(ci[r * 16 + j] == fi[r * 48 + j]);
                BOOST_TEST(ct[r * 16 + j] == ft[r * 48 + j]);
                BOOST_TEST(cm[r * 16 + j] == fm[r * 48 + j]);
            } else {
                BOOST_TEST(fm[r * 48 + j] == 0);  // only padding was cut
            }
        }
    BOOST_TEST(cut.labels == full.labels);
    BOOST_TEST(cut.task_ids.to_host() == full.task_ids.to_host());
}

BOOST_AUTO_TEST_CASE(to_longest_never_exceeds_the_encoded_length_and_keeps_one_block_for_empty_rows) {
    cpu b;
    const std::vector<encoded_task> tasks{task_with_lengths({40, 0, 8, 12, 41}, 44)};
    auto cut = [&](std::vector<sample_ref> rows) {
        return make_batch<cpu, float>(b, tasks, rows, batch_padding::to_longest);
    };
    BOOST_TEST(cut({{0, 0}, {0, 2}}).length() == 40u);
    BOOST_TEST(cut({{0, 4}}).length() == 44u);  // 41 rounds up to 48, capped at the encoded 44
    BOOST_TEST(cut({{0, 2}}).length() == 8u);
    BOOST_TEST(cut({{0, 3}}).length() == 16u);
    const auto empty = cut({{0, 1}});
    BOOST_TEST(empty.length() == 8u);
    BOOST_TEST(empty.real_tokens == 0u);
}

BOOST_AUTO_TEST_CASE(a_mask_with_holes_keeps_everything_up_to_its_last_real_token) {
    cpu b;
    auto t = task_with_lengths({4}, 32);
    t.attention_mask[2] = 0;   // a hole inside
    t.attention_mask[20] = 1;  // and a real token far after it
    const std::vector<encoded_task> tasks{t};
    const std::vector<sample_ref> rows{{0, 0}};
    const auto cut = make_batch<cpu, float>(b, tasks, rows, batch_padding::to_longest);
    BOOST_TEST(cut.length() == 24u);
    BOOST_TEST(cut.real_tokens == 4u);
}

BOOST_AUTO_TEST_CASE(length_groups_hold_every_row_once_each_padded_to_its_own_longest) {
    cpu b;
    // 16 short rows (5..12 tokens) and 16 long ones (100..115): one batch of 32 x 120 positions, or two groups.
    std::vector<std::size_t> lengths;
    for (std::size_t i = 0; i < 32; ++i) lengths.push_back(i % 2 == 0 ? 5 + i / 4 : 100 + i / 2);
    const std::vector<encoded_task> tasks{task_with_lengths(lengths, 128)};
    std::vector<sample_ref> rows;
    for (std::size_t i = 0; i < 32; ++i) rows.push_back({0, (i * 7) % 32});
    const auto full = make_batch<cpu, float>(b, tasks, rows);
    const auto grouped = make_batch<cpu, float>(b, tasks, rows, batch_padding::length_groups);
    BOOST_TEST(grouped.length() == 120u);  // the batch itself is padded to its longest
    BOOST_TEST_REQUIRE(grouped.groups.size() == 2u);
    BOOST_TEST(grouped.groups[0].length() == 16u);
    BOOST_TEST(grouped.groups[1].length() == 120u);
    BOOST_TEST(grouped.computed_positions() == 16u * 16u + 16u * 120u);
    std::vector<int> seen(32, 0);
    const auto fi = full.input_ids.to_host();
    for (const auto& g : grouped.groups) {
        const auto gi = g.input_ids.to_host();
        const auto gr = g.rows.to_host();
        const auto gt = g.task_ids.to_host();
        BOOST_TEST(gr.size() == g.size());
        for (std::size_t k = 0; k < g.size(); ++k) {
            const std::size_t r = g.host_rows[k];
            BOOST_TEST(static_cast<std::size_t>(gr[k]) == r);
            BOOST_TEST(gt[k] == 0);
            ++seen[r];
            for (std::size_t j = 0; j < g.length(); ++j) BOOST_TEST(gi[k * g.length() + j] == fi[r * 128 + j]);
        }
    }
    for (const int s : seen) BOOST_TEST(s == 1);
    // A batch whose rows are all about as long stays one group: another pass would cost more than it saves.
    const std::vector<encoded_task> even{task_with_lengths(std::vector<std::size_t>(8, 30), 64)};
    const auto one = make_batch<cpu, float>(b, even, std::vector<sample_ref>{{0, 0}, {0, 1}, {0, 2}}, batch_padding::length_groups);
    BOOST_TEST(one.groups.size() == 1u);
}

// What the batch keeps on the host for the layers (issue 13, item 2: no layer copies back) is what it uploaded,
// for the batch and every row group; first_rows holds the first row of each task present, tasks ascending.
BOOST_AUTO_TEST_CASE(host_copies_equal_the_uploads_and_first_rows_follow_the_tasks_in_ascending_order) {
    cpu b;
    std::vector<std::size_t> short_rows(8, 6), long_rows(8, 100);
    std::vector<encoded_task> tasks{task_with_lengths(short_rows, 128, "a"), task_with_lengths(long_rows, 128, "b"),
                                    task_with_lengths(short_rows, 128, "c")};
    tasks[1].info.kind = data::task_kind::regression;  // its targets go with the batch too
    for (std::size_t i = 0; i < tasks[1].size(); ++i) tasks[1].labels[i] = -1, tasks[1].scores[i] = 0.25f * static_cast<float>(i);
    // Rows: task 2 first, then 1 and 0 interleaved; the long task 1 makes a group of its own.
    const std::vector<sample_ref> rows{{2, 0}, {1, 0}, {0, 1}, {2, 3}, {1, 2}, {0, 4}, {0, 5}, {1, 7}};
    for (const auto padding : {batch_padding::to_encoded_length, batch_padding::to_longest, batch_padding::length_groups}) {
        const auto batch = make_batch<cpu, float>(b, tasks, rows, padding, 16);
        BOOST_TEST(batch.host_input_ids == batch.input_ids.to_host());
        BOOST_TEST(batch.host_token_type_ids == batch.token_type_ids.to_host());
        BOOST_TEST(batch.host_task_ids == batch.task_ids.to_host());
        BOOST_TEST(batch.host_first_rows == (std::vector<std::int32_t>{2, 1, 0}));  // tasks 0, 1, 2
        BOOST_TEST(batch.first_rows.to_host() == batch.host_first_rows);
        BOOST_TEST(batch.host_mask == batch.mask.to_host());
        BOOST_TEST(batch.first_token_rows.to_host() == detail::first_token_rows(batch.size(), batch.length()));
        BOOST_TEST(detail::first_token_rows(3, 16) == (std::vector<std::int32_t>{0, 16, 32}));
        // The heads' rows and labels per task present, tasks ascending.
        BOOST_TEST_REQUIRE(batch.rows_of_task.size() == 3u);
        BOOST_TEST(batch.rows_of_task[0].to_host() == (std::vector<std::int32_t>{2, 5, 6}));
        BOOST_TEST(batch.rows_of_task[1].to_host() == (std::vector<std::int32_t>{1, 4, 7}));
        BOOST_TEST(batch.rows_of_task[2].to_host() == (std::vector<std::int32_t>{0, 3}));
        BOOST_TEST_REQUIRE(batch.labels_of_task.size() == 3u);
        BOOST_TEST(batch.labels_of_task[0].to_host() == (std::vector<std::int32_t>{1, 0, 1}));  // examples 1, 4, 5
        BOOST_TEST(batch.labels_of_task[2].to_host() == (std::vector<std::int32_t>{0, 1}));     // examples 0, 3
        // The regression task's targets (examples 0, 2, 7); none for the classification tasks.
        BOOST_TEST_REQUIRE(batch.targets_of_task.size() == 3u);
        BOOST_TEST(batch.targets_of_task[0].empty());
        BOOST_TEST(batch.targets_of_task[1].to_host() == (std::vector<float>{0.0f, 0.5f, 1.75f}));
        BOOST_TEST(batch.targets_of_task[2].empty());
        for (const auto& g : batch.groups) {
            BOOST_TEST(g.host_input_ids == g.input_ids.to_host());
            BOOST_TEST(g.host_token_type_ids == g.token_type_ids.to_host());
            BOOST_TEST(g.host_task_ids == g.task_ids.to_host());
            BOOST_TEST(g.host_first_rows == tasks_in_order(g.host_task_ids).first_rows);
            BOOST_TEST(g.first_rows.to_host() == g.host_first_rows);
            BOOST_TEST(g.host_mask == g.mask.to_host());
            BOOST_TEST(g.first_token_rows.to_host() == detail::first_token_rows(g.size(), g.length()));
        }
        if (padding == batch_padding::length_groups) BOOST_TEST(batch.groups.size() == 2u);
    }
}

// One upload of arrays of several element types (tensor/staged_upload.hpp): each view holds its values, starts on
// the stage's alignment and shares the one storage; an empty array views as empty.
BOOST_AUTO_TEST_CASE(a_staged_upload_of_several_element_types_is_one_copy_and_each_view_holds_its_values) {
    cpu b;
    staged_upload<cpu> stage;
    const std::vector<std::uint8_t> mask{1, 1, 0};
    const std::vector<std::int32_t> ids{7, -3, 2, 9, 11, 4};
    const std::vector<double> targets{0.5, -2.25};
    const auto mask_at = stage.add(mask);
    const auto ids_at = stage.add(ids);
    const auto none_at = stage.add(std::vector<float>{});
    const auto targets_at = stage.add(targets);
    BOOST_TEST(ids_at.byte_offset % staged_upload<cpu>::alignment == 0u);
    BOOST_TEST(targets_at.byte_offset % staged_upload<cpu>::alignment == 0u);
    stage.upload(b);
    const auto m = stage.view(mask_at, {3});
    const auto i = stage.view(ids_at, {2, 3});
    const auto t = stage.view(targets_at, {2, 1});
    BOOST_TEST(m.to_host() == mask);
    BOOST_TEST(i.to_host() == ids);
    BOOST_TEST((i.shape() == shape{2, 3}));
    BOOST_TEST(t.to_host() == targets);
    BOOST_TEST(stage.view(none_at, {0}).size() == 0u);
    // A view past the upload is refused, not read.
    BOOST_CHECK_THROW((void)stage.view(targets_at, {3}), shape_error);
    BOOST_CHECK_THROW((void)stage.view(staged_array<std::int32_t>{1}, {1}), shape_error);  // misaligned
}
