#pragma once
// The CPU backend's threads: a work-claiming pool that runs every parallel loop of cpu_backend, the matrix
// products included, so that one team of threads does all of a step's work.
//
// Why not OpenMP's parallel-for: it splits the work into one share per thread up front and joins at a
// barrier, so a region lasts as long as its slowest thread. When another process holds a core, a helper
// thread is often not running when a region starts, and the caller waits at the barrier for a thread that has
// not begun (docs/benchmarks.md, "Under contention": two threads 8-47 % slower than one beside a busy
// process). Here the work is cut into more chunks than threads, and every thread, the caller included, claims
// the next unclaimed chunk until none is left: a helper that is not scheduled claims nothing and is waited for
// by nobody, so the caller does the whole loop itself, as fast as one thread. The caller only waits for
// chunks a helper has already claimed and is running.
//
// A loop's chunks are numbered: which thread runs a chunk varies, what each chunk computes does not, so a
// reduction that keeps one partial per chunk is as deterministic as a serial one.
//
// One loop runs at a time: a second caller (another thread using the same backend, or a chunk that starts a
// loop of its own) runs its loop inline. Idle helpers spin for a few microseconds (back-to-back loops of one
// step find them awake), then sleep on a futex (std::atomic::wait).
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <immintrin.h>
#endif

namespace hyperadapt::detail {

class work_pool {
public:
    /// The most chunks one loop claims one by one (more are claimed in groups).
    static constexpr std::size_t max_chunks = (std::size_t{1} << 20) - 1;

    /// `threads` threads in all: the caller and threads - 1 helpers.
    explicit work_pool(int threads) : threads_(threads < 1 ? 1 : threads) {
        helpers_.reserve(static_cast<std::size_t>(threads_ - 1));
        try {
            for (int i = 1; i < threads_; ++i) helpers_.emplace_back([this] { helper_loop(); });
        } catch (...) {
            stop_helpers();
            throw;
        }
    }
    work_pool(const work_pool&) = delete;
    work_pool& operator=(const work_pool&) = delete;
    ~work_pool() { stop_helpers(); }

    [[nodiscard]] int threads() const noexcept { return threads_; }

    /// Runs f(i) for every i in [0, chunks), on the caller and the helpers; returns when all have run. The
    /// first exception a chunk throws is rethrown here (the other chunks still run).
    template <class F>
    void run(std::size_t chunks, F&& f) {
        using Fn = std::remove_reference_t<F>;
        void* const ctx = const_cast<void*>(static_cast<const void*>(&f));
        if (chunks <= max_chunks) {
            run_erased(chunks, [](void* c, std::size_t i) { (*static_cast<Fn*>(c))(i); }, ctx);
            return;
        }
        // More than the claim word counts: claim them in groups of `per`.
        struct grouped {
            Fn* f;
            std::size_t chunks, per;
        } g{&f, chunks, (chunks + max_chunks - 1) / max_chunks};
        run_erased((chunks + g.per - 1) / g.per,
                   [](void* c, std::size_t group) {
                       const auto& gr = *static_cast<grouped*>(c);
                       for (std::size_t i = group * gr.per; i < gr.chunks && i < (group + 1) * gr.per; ++i) (*gr.f)(i);
                   },
                   &g);
    }

private:
    using chunk_function = void (*)(void*, std::size_t);

    void run_erased(std::size_t chunks, chunk_function fn, void* ctx) {
        if (chunks == 0) return;
        std::unique_lock<std::mutex> mine(caller_, std::try_to_lock);
        if (chunks == 1 || helpers_.empty() || !mine.owns_lock()) {
            run_inline(chunks, fn, ctx);
            return;
        }
        fn_.store(fn, std::memory_order_relaxed);
        ctx_.store(ctx, std::memory_order_relaxed);
        done_.store(0, std::memory_order_relaxed);
        error_ = nullptr;
        const std::uint64_t s = state_.load(std::memory_order_relaxed);
        const std::uint64_t job = pack(generation(s) + 1, chunks, 0);
        state_.store(job, std::memory_order_release);
        state_.notify_all();
        claim_and_run(job);
        // Wait for the chunks helpers claimed and are still running; none is waited for before it starts.
        const auto all = static_cast<std::uint32_t>(chunks);
        for (int spin = 0;; ++spin) {
            const std::uint32_t d = done_.load(std::memory_order_acquire);
            if (d == all) break;
            if (spin < spin_limit)
                pause();
            else
                done_.wait(d, std::memory_order_acquire);
        }
        if (error_) std::rethrow_exception(error_);
    }

    // Every chunk on the calling thread (one thread, a nested loop, a second caller); as with helpers, the
    // first exception is rethrown after the other chunks ran.
    static void run_inline(std::size_t chunks, chunk_function fn, void* ctx) {
        std::exception_ptr first;
        for (std::size_t i = 0; i < chunks; ++i) {
            try {
                fn(ctx, i);
            } catch (...) {
                if (!first) first = std::current_exception();
            }
        }
        if (first) std::rethrow_exception(first);
    }

    // state_: generation (24 bits) | chunks (20 bits) | next unclaimed chunk (20 bits). Claiming a chunk is one
    // compare-and-swap of the whole word, so a helper that wakes late can never claim a chunk of a finished
    // loop or of the next one: the generation or the count would differ.
    static constexpr unsigned next_bits = 20, count_bits = 20;
    static constexpr std::uint64_t field_mask = (std::uint64_t{1} << 20) - 1;
    // Pause instructions before sleeping: ~20-40 us (a pause is 40-140 cycles, by CPU). Short on purpose: a
    // spinning helper is a runnable thread, and beside another process it takes CPU time from the caller.
    static constexpr int spin_limit = 1000;

    static constexpr std::uint64_t pack(std::uint64_t gen, std::uint64_t chunks, std::uint64_t next) noexcept {
        return (gen << (next_bits + count_bits)) | (chunks << next_bits) | next;
    }
    static constexpr std::uint64_t generation(std::uint64_t s) noexcept {
        return (s >> (next_bits + count_bits)) & ((std::uint64_t{1} << 24) - 1);
    }
    static constexpr std::uint64_t count(std::uint64_t s) noexcept { return (s >> next_bits) & field_mask; }
    static constexpr std::uint64_t next(std::uint64_t s) noexcept { return s & field_mask; }

    static void pause() noexcept {
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
        _mm_pause();
#else
        std::this_thread::yield();
#endif
    }

    // Claims chunks of the loop `s` names until none is left (or another loop has begun).
    void claim_and_run(std::uint64_t s) noexcept {
        const std::uint64_t gen = generation(s);
        while (generation(s) == gen && next(s) < count(s)) {
            // Read the loop's function before claiming: if the claim succeeds the loop cannot have ended (this
            // chunk is not done), so what was read is this loop's.
            const auto fn = fn_.load(std::memory_order_relaxed);
            void* const ctx = ctx_.load(std::memory_order_relaxed);
            if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire))
                continue;  // s now holds the current state
            try {
                fn(ctx, static_cast<std::size_t>(next(s)));
            } catch (...) {
                const std::lock_guard<std::mutex> lock(error_mutex_);
                if (!error_) error_ = std::current_exception();
            }
            if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == count(s)) done_.notify_one();
            s = state_.load(std::memory_order_acquire);
        }
    }

    void helper_loop() noexcept {
        std::uint64_t s = state_.load(std::memory_order_acquire);
        for (;;) {
            for (int spin = 0; next(s) >= count(s) && !stop_.load(std::memory_order_relaxed); ++spin) {
                if (spin < spin_limit) {
                    pause();
                    s = state_.load(std::memory_order_acquire);
                } else {
                    state_.wait(s, std::memory_order_acquire);
                    s = state_.load(std::memory_order_acquire);
                    spin = 0;
                }
            }
            if (stop_.load(std::memory_order_acquire)) return;
            claim_and_run(s);
            s = state_.load(std::memory_order_acquire);
        }
    }

    void stop_helpers() noexcept {
        stop_.store(true, std::memory_order_release);
        // A new generation with no chunks wakes every sleeping helper.
        const std::uint64_t s = state_.load(std::memory_order_relaxed);
        state_.store(pack(generation(s) + 1, 0, 0), std::memory_order_release);
        state_.notify_all();
        for (auto& t : helpers_)
            if (t.joinable()) t.join();
    }

    int threads_;
    std::atomic<std::uint64_t> state_{0};
    std::atomic<std::uint32_t> done_{0};
    std::atomic<chunk_function> fn_{nullptr};
    std::atomic<void*> ctx_{nullptr};
    std::atomic<bool> stop_{false};
    std::mutex caller_;  // one loop at a time; a second caller runs its loop inline
    std::mutex error_mutex_;
    std::exception_ptr error_;
    std::vector<std::thread> helpers_;
};

}  // namespace hyperadapt::detail
