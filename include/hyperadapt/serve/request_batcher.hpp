#pragma once
// Dynamic batching for a server: concurrent callers submit requests (a task and its inputs) and get a future;
// one worker thread takes the first waiting request, gathers the others that arrive within max_wait or until
// max_rows inputs are waiting, and runs each task's inputs through the predictor as one call, so that 32
// clients sending one sentence each cost about one batch of 32, not 32 batches of one.
//
// A request is checked when it is submitted (known task, the right kind of input), so that one bad request
// fails alone and never the batch it would have joined. Destruction answers every request already submitted
// (the worker drains the queue, without waiting for company, before it ends); a submit that races with it
// fails with an error.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "hyperadapt/core/errors.hpp"
#include "hyperadapt/serve/predictor.hpp"

namespace hyperadapt {

template <class Predictor>
class request_batcher {
public:
    struct options {
        std::size_t max_rows = 64;                       ///< inputs gathered into one round at most
        std::chrono::microseconds max_wait{2000};        ///< how long the first request waits for company
    };
    struct statistics {
        std::size_t requests = 0, rounds = 0, predictor_calls = 0, rows = 0;
    };

    request_batcher(const Predictor& p, options o) : predictor_(p), options_(check(o)), worker_([this] { work(); }) {}
    request_batcher(const request_batcher&) = delete;
    request_batcher& operator=(const request_batcher&) = delete;
    ~request_batcher() {
        {
            const std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_all();
        worker_.join();  // returns once waiting_ is empty: every submitted request has its answer
    }

    /// The task's predictions for `inputs`, when the worker gets to them. config_error at once for an unknown
    /// task or an input of the wrong kind (the message names the task or the input).
    std::future<std::vector<prediction>> submit(std::string task, std::vector<text_input> inputs) {
        const task_card& t = predictor_.card().tasks.at(predictor_.card().task_id(task));
        for (std::size_t i = 0; i < inputs.size(); ++i)
            if (inputs[i].pair.has_value() != (t.inputs == 2))
                throw config_error("task '" + t.name + "' takes " + (t.inputs == 2 ? "sentence pairs" : "single sentences") +
                                   ", but input " + std::to_string(i) + " is " + (inputs[i].pair ? "a pair" : "a single sentence"));
        request r{std::move(task), std::move(inputs), {}};
        auto f = r.result.get_future();
        {
            const std::lock_guard lock(mutex_);
            if (stopping_) throw config_error("the server is shutting down");
            waiting_.push_back(std::move(r));
            ++stats_.requests;
        }
        wake_.notify_one();
        return f;
    }

    [[nodiscard]] statistics stats() const {
        const std::lock_guard lock(mutex_);
        return stats_;
    }

private:
    struct request {
        std::string task;
        std::vector<text_input> inputs;
        std::promise<std::vector<prediction>> result;
    };

    void work() {
        std::unique_lock lock(mutex_);
        for (;;) {
            wake_.wait(lock, [&] { return stopping_ || !waiting_.empty(); });
            if (waiting_.empty()) return;  // stopping, nothing left to take
            // Company for the first request: until max_rows inputs wait or max_wait has passed.
            const auto deadline = std::chrono::steady_clock::now() + options_.max_wait;
            wake_.wait_until(lock, deadline, [&] { return stopping_ || waiting_rows() >= options_.max_rows; });
            std::vector<request> round;
            std::size_t rows = 0;
            while (!waiting_.empty() && (round.empty() || rows + waiting_.front().inputs.size() <= options_.max_rows)) {
                rows += waiting_.front().inputs.size();
                round.push_back(std::move(waiting_.front()));
                waiting_.pop_front();
            }
            ++stats_.rounds;
            stats_.rows += rows;
            lock.unlock();
            const std::size_t calls = run(round);
            lock.lock();
            stats_.predictor_calls += calls;
        }
    }

    /// One predictor call per task of the round; every request gets its slice (or the call's error).
    std::size_t run(std::vector<request>& round) {
        std::map<std::string, std::vector<request*>> by_task;
        for (auto& r : round) by_task[r.task].push_back(&r);
        for (auto& [task, requests] : by_task) {
            std::vector<text_input> all;
            for (const request* r : requests) all.insert(all.end(), r->inputs.begin(), r->inputs.end());
            try {
                const std::vector<prediction> y = predictor_.predict(task, all);
                std::size_t at = 0;
                for (request* r : requests) {
                    const auto first = y.begin() + static_cast<std::ptrdiff_t>(at);
                    r->result.set_value(std::vector<prediction>(first, first + static_cast<std::ptrdiff_t>(r->inputs.size())));
                    at += r->inputs.size();
                }
            } catch (...) {
                for (request* r : requests) r->result.set_exception(std::current_exception());
            }
        }
        return by_task.size();
    }

    static options check(options o) {
        if (o.max_rows == 0) throw config_error("request_batcher: max_rows must be at least 1");
        return o;
    }
    std::size_t waiting_rows() const {
        std::size_t n = 0;
        for (const auto& r : waiting_) n += r.inputs.size();
        return n;
    }

    const Predictor& predictor_;
    options options_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<request> waiting_;
    statistics stats_;
    bool stopping_ = false;
    std::thread worker_;  // last: starts after every member it uses exists
};

}  // namespace hyperadapt
