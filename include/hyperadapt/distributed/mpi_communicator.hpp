#pragma once
// The communicator policy over MPI (Open MPI from Debian: libopenmpi-dev; CMake target hyperadapt::mpi). One
// process per rank; start them with `mpirun -np N program`. Errors come back as communication_error naming the
// operation and the rank, never as MPI's default abort. A rank that dies ends the job through the launcher (Open MPI
// tears the job down when a process exits without MPI_Finalize); a rank that hangs -- alive, but never reaching
// the collective the others wait in -- would block them for ever, so each communicator keeps a watchdog thread:
// a collective that has waited longer than its timeout ends its process with a message naming the operation and
// the rank (and the launcher then ends the others). The watchdog never calls MPI; it only reads the clock.
#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <span>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "hyperadapt/distributed/communicator.hpp"

namespace hyperadapt {

/// MPI_Init_thread on construction (funneled: only the thread that made the session calls MPI), MPI_Finalize
/// on destruction. One per process, made before any mpi_communicator and outliving them all.
class mpi_session {
public:
    mpi_session(int& argc, char**& argv) {
        int initialized = 0;
        MPI_Initialized(&initialized);
        if (initialized) throw communication_error("mpi_session: MPI is already initialised in this process (one session per process)");
        int provided = 0;
        if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            throw communication_error("mpi_session: MPI_Init_thread failed");
    }
    mpi_session(const mpi_session&) = delete;
    mpi_session& operator=(const mpi_session&) = delete;
    ~mpi_session() {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized) MPI_Finalize();
    }
};

/// A communicator over a duplicate of `parent` (MPI_COMM_WORLD by default), so that the library's messages
/// never mix with the program's own. Its errors return instead of aborting the job; a collective that waits
/// longer than `collective_timeout` for the other ranks ends this process (exit code 70, a message on standard
/// error naming the operation and the rank), which ends the job. The default, 5 minutes, leaves room for rank 0
/// writing a large checkpoint while the others wait at the next step; zero turns the watchdog off.
class mpi_communicator {
public:
    static constexpr std::chrono::milliseconds default_collective_timeout{std::chrono::minutes(5)};

    explicit mpi_communicator(MPI_Comm parent = MPI_COMM_WORLD,
                              std::chrono::milliseconds collective_timeout = default_collective_timeout)
        : timeout_(collective_timeout) {
        check(MPI_Comm_dup(parent, &comm_), "MPI_Comm_dup");
        MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
        MPI_Comm_rank(comm_, &rank_);
        MPI_Comm_size(comm_, &size_);
        if (timeout_.count() > 0 && size_ > 1) watchdog_ = std::jthread([this](std::stop_token stop) { watch(stop); });
    }
    mpi_communicator(const mpi_communicator&) = delete;
    mpi_communicator& operator=(const mpi_communicator&) = delete;
    ~mpi_communicator() {
        if (watchdog_.joinable()) {
            watchdog_.request_stop();
            watchdog_.join();
        }
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
    }

    [[nodiscard]] int rank() const noexcept { return rank_; }
    [[nodiscard]] int size() const noexcept { return size_; }

    void allreduce_sum(std::span<float> v) { allreduce(v.data(), v.size(), MPI_FLOAT); }
    void allreduce_sum(std::span<double> v) { allreduce(v.data(), v.size(), MPI_DOUBLE); }

    /// nonblocking_collectives (communicator.hpp): MPI_Iallreduce in place; `v` must stay untouched until
    /// wait_started(). progress() tests the started ones (MPI advances them only inside its calls); wait_started()
    /// waits for them all, watched by the watchdog like any collective.
    void start_allreduce_sum(std::span<float> v) { start_allreduce(v.data(), v.size(), MPI_FLOAT); }
    void start_allreduce_sum(std::span<double> v) { start_allreduce(v.data(), v.size(), MPI_DOUBLE); }
    void progress() {
        if (started_.empty()) return;
        int done = 0;
        check(MPI_Testall(static_cast<int>(started_.size()), started_.data(), &done, MPI_STATUSES_IGNORE), "MPI_Testall");
        if (done) started_.clear();
    }
    void wait_started() {
        if (started_.empty()) return;
        const waiting w(*this, "MPI_Iallreduce");
        const int rc = MPI_Waitall(static_cast<int>(started_.size()), started_.data(), MPI_STATUSES_IGNORE);
        started_.clear();
        check(rc, "MPI_Iallreduce");
    }

    void broadcast(std::span<std::byte> bytes, int root) {
        if (root < 0 || root >= size_)
            throw communication_error("broadcast: root " + std::to_string(root) + " outside 0.." + std::to_string(size_ - 1));
        const waiting w(*this, "MPI_Bcast");
        for (std::size_t at = 0; at < bytes.size(); at += chunk)
            check(MPI_Bcast(bytes.data() + at, count_of(bytes.size() - at), MPI_BYTE, root, comm_), "MPI_Bcast");
    }

    [[nodiscard]] std::vector<std::string> allgather(const std::string& s) {
        const waiting w(*this, "MPI_Allgatherv");
        const auto [counts, offsets, total] = gather_counts(s.size());
        std::string all(total, '\0');
        check(MPI_Allgatherv(s.data(), counts[static_cast<std::size_t>(rank_)], MPI_CHAR, all.data(), counts.data(),
                             offsets.data(), MPI_CHAR, comm_),
              "MPI_Allgatherv");
        std::vector<std::string> out;
        for (std::size_t r = 0; r < counts.size(); ++r)
            out.push_back(all.substr(static_cast<std::size_t>(offsets[r]), static_cast<std::size_t>(counts[r])));
        return out;
    }

    [[nodiscard]] std::vector<std::vector<double>> allgather(std::span<const double> v) {
        const waiting w(*this, "MPI_Allgatherv");
        const auto [counts, offsets, total] = gather_counts(v.size());
        std::vector<double> all(total);
        check(MPI_Allgatherv(v.data(), counts[static_cast<std::size_t>(rank_)], MPI_DOUBLE, all.data(), counts.data(),
                             offsets.data(), MPI_DOUBLE, comm_),
              "MPI_Allgatherv");
        std::vector<std::vector<double>> out;
        for (std::size_t r = 0; r < counts.size(); ++r) {
            const auto* first = all.data() + offsets[r];
            out.emplace_back(first, first + counts[r]);
        }
        return out;
    }

    void barrier() {
        const waiting w(*this, "MPI_Barrier");
        check(MPI_Barrier(comm_), "MPI_Barrier");
    }

private:
    // MPI counts are int: longer buffers go in chunks.
    static constexpr std::size_t chunk = std::size_t{1} << 30;
    static int count_of(std::size_t left) { return static_cast<int>(left < chunk ? left : chunk); }

    struct gathered_counts {
        std::vector<int> counts, offsets;  // per rank, in elements
        std::size_t total = 0;
    };
    /// Every rank's element count and its offset in the gathered buffer (MPI_Allgatherv's int counts).
    gathered_counts gather_counts(std::size_t mine) {
        const long long n = static_cast<long long>(mine);
        std::vector<long long> sizes(static_cast<std::size_t>(size_));
        check(MPI_Allgather(&n, 1, MPI_LONG_LONG, sizes.data(), 1, MPI_LONG_LONG, comm_), "MPI_Allgather");
        gathered_counts g;
        for (const long long k : sizes) {
            if (static_cast<long long>(g.total) + k > INT_MAX) throw communication_error("allgather: more than 2^31 elements in all");
            g.counts.push_back(static_cast<int>(k));
            g.offsets.push_back(static_cast<int>(g.total));
            g.total += static_cast<std::size_t>(k);
        }
        return g;
    }

    void allreduce(void* data, std::size_t n, MPI_Datatype type) {
        const waiting w(*this, "MPI_Allreduce");
        int bytes = 0;
        MPI_Type_size(type, &bytes);
        auto* p = static_cast<std::byte*>(data);
        for (std::size_t at = 0; at < n; at += chunk)
            check(MPI_Allreduce(MPI_IN_PLACE, p + at * static_cast<std::size_t>(bytes), count_of(n - at), type, MPI_SUM, comm_),
                  "MPI_Allreduce");
    }

    void start_allreduce(void* data, std::size_t n, MPI_Datatype type) {
        int bytes = 0;
        MPI_Type_size(type, &bytes);
        auto* p = static_cast<std::byte*>(data);
        for (std::size_t at = 0; at < n; at += chunk) {
            MPI_Request r = MPI_REQUEST_NULL;
            check(MPI_Iallreduce(MPI_IN_PLACE, p + at * static_cast<std::size_t>(bytes), count_of(n - at), type, MPI_SUM,
                                 comm_, &r),
                  "MPI_Iallreduce");
            started_.push_back(r);
        }
    }

    void check(int rc, const char* what) const {
        if (rc == MPI_SUCCESS) return;
        char text[MPI_MAX_ERROR_STRING];
        int len = 0;
        MPI_Error_string(rc, text, &len);
        throw communication_error(std::string(what) + " failed on rank " + std::to_string(rank_) + " of " +
                                  std::to_string(size_) + ": " + std::string(text, static_cast<std::size_t>(len)));
    }

    /// Marks the calling thread's collective for the watchdog while it lasts.
    class waiting {
    public:
        waiting(mpi_communicator& c, const char* what) noexcept : c_(c) {
            c_.waiting_in_.store(what, std::memory_order_relaxed);
            c_.waiting_since_.store(std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_release);
        }
        waiting(const waiting&) = delete;
        waiting& operator=(const waiting&) = delete;
        ~waiting() { c_.waiting_since_.store(0, std::memory_order_release); }

    private:
        mpi_communicator& c_;
    };

    /// The watchdog's loop: wakes a few times per timeout (at most once a second) and ends the process when the
    /// collective under way has waited longer than the timeout. It never calls MPI (the session is funneled).
    void watch(const std::stop_token& stop) {
        std::mutex m;
        std::condition_variable_any wake;
        const auto period = std::min<std::chrono::milliseconds>(std::chrono::seconds(1), std::max<std::chrono::milliseconds>(
                                                                                               std::chrono::milliseconds(10), timeout_ / 10));
        std::unique_lock lock(m);
        while (!stop.stop_requested()) {
            wake.wait_for(lock, stop, period, [] { return false; });  // a sleep that a stop request ends early
            if (stop.stop_requested()) return;
            const auto since = waiting_since_.load(std::memory_order_acquire);
            if (since == 0) continue;
            const auto waited = std::chrono::steady_clock::now() -
                                std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(since));
            if (waited <= timeout_) continue;
            const std::string whom =
                size_ == 2 ? "rank " + std::to_string(1 - rank_) : "at least one of the other " + std::to_string(size_ - 1) + " ranks";
            std::fprintf(stderr,
                         "hyperadapt: %s on rank %d of %d has waited %lld s for %s, which hung or stopped without "
                         "failing (mpi_communicator's collective timeout is %lld s); ending this rank so that the job ends\n",
                         waiting_in_.load(std::memory_order_relaxed), rank_, size_,
                         static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(waited).count()),
                         whom.c_str(), static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(timeout_).count()));
            std::fflush(stderr);
            std::_Exit(70);  // EX_SOFTWARE; the blocked collective cannot be cancelled, so no unwinding either
        }
    }

    MPI_Comm comm_ = MPI_COMM_NULL;
    int rank_ = 0, size_ = 1;
    std::chrono::milliseconds timeout_;
    std::atomic<const char*> waiting_in_{""};
    std::atomic<std::chrono::steady_clock::rep> waiting_since_{0};  // 0: no collective under way
    std::vector<MPI_Request> started_;  // start_allreduce_sum's, until wait_started() (or progress()) sees them done
    std::jthread watchdog_;  // last: started after everything it reads, stopped first
};
static_assert(communicator<mpi_communicator> && nonblocking_collectives<mpi_communicator>);

}  // namespace hyperadapt
