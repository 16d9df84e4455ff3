#pragma once
// The communicator policy over MPI (Open MPI from Debian: libopenmpi-dev; CMake target hyperadapt::mpi). One
// process per rank; start them with `mpirun -np N program`. Errors come back as communication_error naming the
// operation and the rank, never as MPI's default abort.
#include <mpi.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
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
/// never mix with the program's own. Its errors return instead of aborting the job.
class mpi_communicator {
public:
    explicit mpi_communicator(MPI_Comm parent = MPI_COMM_WORLD) {
        check(MPI_Comm_dup(parent, &comm_), "MPI_Comm_dup");
        MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
        MPI_Comm_rank(comm_, &rank_);
        MPI_Comm_size(comm_, &size_);
    }
    mpi_communicator(const mpi_communicator&) = delete;
    mpi_communicator& operator=(const mpi_communicator&) = delete;
    ~mpi_communicator() {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
    }

    [[nodiscard]] int rank() const noexcept { return rank_; }
    [[nodiscard]] int size() const noexcept { return size_; }

    void allreduce_sum(std::span<float> v) { allreduce(v.data(), v.size(), MPI_FLOAT); }
    void allreduce_sum(std::span<double> v) { allreduce(v.data(), v.size(), MPI_DOUBLE); }

    void broadcast(std::span<std::byte> bytes, int root) {
        if (root < 0 || root >= size_)
            throw communication_error("broadcast: root " + std::to_string(root) + " outside 0.." + std::to_string(size_ - 1));
        for (std::size_t at = 0; at < bytes.size(); at += chunk)
            check(MPI_Bcast(bytes.data() + at, count_of(bytes.size() - at), MPI_BYTE, root, comm_), "MPI_Bcast");
    }

    [[nodiscard]] std::vector<std::string> allgather(const std::string& s) {
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

    void barrier() { check(MPI_Barrier(comm_), "MPI_Barrier"); }

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
        int bytes = 0;
        MPI_Type_size(type, &bytes);
        auto* p = static_cast<std::byte*>(data);
        for (std::size_t at = 0; at < n; at += chunk)
            check(MPI_Allreduce(MPI_IN_PLACE, p + at * static_cast<std::size_t>(bytes), count_of(n - at), type, MPI_SUM, comm_),
                  "MPI_Allreduce");
    }

    void check(int rc, const char* what) const {
        if (rc == MPI_SUCCESS) return;
        char text[MPI_MAX_ERROR_STRING];
        int len = 0;
        MPI_Error_string(rc, text, &len);
        throw communication_error(std::string(what) + " failed on rank " + std::to_string(rank_) + " of " +
                                  std::to_string(size_) + ": " + std::string(text, static_cast<std::size_t>(len)));
    }

    MPI_Comm comm_ = MPI_COMM_NULL;
    int rank_ = 0, size_ = 1;
};
static_assert(communicator<mpi_communicator>);

}  // namespace hyperadapt
