// request_batcher (serve/request_batcher.hpp) over a scripted predictor: concurrent requests are answered
// with their own slice of a shared predictor call, a bad request fails alone at submit, a failing predictor
// call fails exactly the requests of its round, and destruction answers every request already submitted.
#define BOOST_TEST_MODULE serve_request_batcher
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "hyperadapt/serve/request_batcher.hpp"

using namespace hyperadapt;

namespace {

/// Answers each input with a "prediction" that encodes it (label = its text's length, label_name = the text),
/// so that every request can check it got its own rows back; records each call's rows; can be told to fail
/// or to wait until released.
struct scripted_predictor {
    model_card card_;
    mutable std::mutex mutex;
    mutable std::vector<std::size_t> call_rows;
    mutable std::atomic<bool> failing{false};  // every call fails while set
    mutable std::atomic<bool> hold{false};

    scripted_predictor() {
        task_card single, pairs;
        single.name = "sst2";
        single.label_names = {"0", "1"};
        single.inputs = 1;
        pairs.name = "stsb";
        pairs.inputs = 2;
        card_.tasks = {single, pairs};
    }
    [[nodiscard]] const model_card& card() const noexcept { return card_; }
    std::vector<prediction> predict(const std::string& task, std::span<const text_input> inputs) const {
        while (hold) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        {
            const std::lock_guard lock(mutex);
            call_rows.push_back(inputs.size());
        }
        if (failing) throw std::runtime_error("scripted failure for task " + task);
        std::vector<prediction> out;
        for (const auto& in : inputs) {
            prediction p;
            p.label = static_cast<int>(in.text.size());
            p.label_name = task + ":" + in.text;
            out.push_back(p);
        }
        return out;
    }
};

std::vector<text_input> texts(const std::string& prefix, std::size_t n) {
    std::vector<text_input> v;
    for (std::size_t i = 0; i < n; ++i) v.push_back({prefix + "-" + std::to_string(i)});
    return v;
}

}  // namespace

BOOST_AUTO_TEST_CASE(concurrent_requests_share_calls_and_get_their_own_rows) {
    scripted_predictor p;
    p.hold = true;  // the first round waits, so that the others queue up behind it
    request_batcher<scripted_predictor> batcher(p, {.max_rows = 64, .max_wait = std::chrono::milliseconds(20)});
    constexpr int clients = 16;
    std::vector<std::future<std::vector<prediction>>> answers;
    for (int c = 0; c < clients; ++c) answers.push_back(batcher.submit("sst2", texts("c" + std::to_string(c), 3)));
    p.hold = false;
    for (int c = 0; c < clients; ++c) {
        const auto got = answers[static_cast<std::size_t>(c)].get();
        BOOST_REQUIRE_EQUAL(got.size(), 3u);
        for (std::size_t i = 0; i < got.size(); ++i)
            BOOST_TEST(got[i].label_name == "sst2:c" + std::to_string(c) + "-" + std::to_string(i));
    }
    const auto s = batcher.stats();
    BOOST_TEST(s.requests == static_cast<std::size_t>(clients));
    BOOST_TEST(s.rows == 3u * clients);
    BOOST_TEST(s.predictor_calls < static_cast<std::size_t>(clients));  // batched: fewer calls than requests
    for (const std::size_t rows : p.call_rows) BOOST_TEST(rows <= 64u);
}

BOOST_AUTO_TEST_CASE(a_round_never_exceeds_max_rows_but_a_larger_request_runs_alone) {
    scripted_predictor p;
    p.hold = true;
    request_batcher<scripted_predictor> batcher(p, {.max_rows = 8, .max_wait = std::chrono::milliseconds(5)});
    auto big = batcher.submit("sst2", texts("big", 20));
    std::vector<std::future<std::vector<prediction>>> small;
    for (int c = 0; c < 6; ++c) small.push_back(batcher.submit("sst2", texts("s" + std::to_string(c), 3)));
    p.hold = false;
    BOOST_TEST(big.get().size() == 20u);
    for (auto& f : small) BOOST_TEST(f.get().size() == 3u);
    for (const std::size_t rows : p.call_rows) BOOST_TEST((rows <= 8u || rows == 20u));
}

BOOST_AUTO_TEST_CASE(tasks_in_one_round_get_one_call_each) {
    scripted_predictor p;
    p.hold = true;
    request_batcher<scripted_predictor> batcher(p, {.max_rows = 64, .max_wait = std::chrono::milliseconds(20)});
    auto a = batcher.submit("sst2", texts("a", 2));
    auto b = batcher.submit("stsb", {{"one", "two"}, {"three", "four"}});
    auto c = batcher.submit("sst2", texts("c", 2));
    p.hold = false;
    BOOST_TEST(a.get()[1].label_name == "sst2:a-1");
    BOOST_TEST(b.get()[0].label_name == "stsb:one");
    BOOST_TEST(c.get()[0].label_name == "sst2:c-0");
}

BOOST_AUTO_TEST_CASE(a_bad_request_fails_alone_at_submit) {
    scripted_predictor p;
    request_batcher<scripted_predictor> batcher(p, {});
    BOOST_CHECK_EXCEPTION(batcher.submit("cola", texts("x", 1)), config_error, [](const config_error& e) {
        return std::string(e.what()).find("unknown task 'cola'") != std::string::npos;
    });
    BOOST_CHECK_EXCEPTION(batcher.submit("stsb", texts("x", 2)), config_error, [](const config_error& e) {
        return std::string(e.what()).find("input 0 is a single sentence") != std::string::npos;
    });
    BOOST_CHECK_EXCEPTION(batcher.submit("sst2", {{"a"}, {"b", "c"}}), config_error, [](const config_error& e) {
        return std::string(e.what()).find("input 1 is a pair") != std::string::npos;
    });
    BOOST_TEST(batcher.submit("sst2", texts("ok", 2)).get().size() == 2u);
    BOOST_TEST(batcher.stats().requests == 1u);  // the refused ones never entered the queue
}

BOOST_AUTO_TEST_CASE(a_failing_call_fails_its_requests_and_the_next_round_is_served) {
    scripted_predictor p;
    p.hold = true;
    request_batcher<scripted_predictor> batcher(p, {.max_rows = 64, .max_wait = std::chrono::milliseconds(20)});
    p.failing = true;
    auto a = batcher.submit("sst2", texts("a", 1));
    auto b = batcher.submit("sst2", texts("b", 1));
    p.hold = false;
    BOOST_CHECK_THROW(a.get(), std::runtime_error);
    BOOST_CHECK_THROW(b.get(), std::runtime_error);
    p.failing = false;
    BOOST_TEST(batcher.submit("sst2", texts("c", 1)).get().at(0).label_name == "sst2:c-0");
}

BOOST_AUTO_TEST_CASE(destruction_answers_every_submitted_request) {
    scripted_predictor p;
    std::vector<std::future<std::vector<prediction>>> answers;
    {
        p.hold = true;
        request_batcher<scripted_predictor> batcher(p, {.max_rows = 4, .max_wait = std::chrono::seconds(10)});
        for (int c = 0; c < 10; ++c) answers.push_back(batcher.submit("sst2", texts("d" + std::to_string(c), 2)));
        std::thread release([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            p.hold = false;
        });
        release.join();
    }  // the destructor drains the queue without waiting max_wait for company
    for (auto& f : answers) {
        BOOST_REQUIRE(f.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
        BOOST_TEST(f.get().size() == 2u);
    }
}

BOOST_AUTO_TEST_CASE(options_are_checked) {
    scripted_predictor p;
    BOOST_CHECK_THROW(request_batcher<scripted_predictor>(p, {.max_rows = 0}), config_error);
}
