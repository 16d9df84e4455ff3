#pragma once
// The communicator policy over NCCL (CMake target hyperadapt::nccl: the CUDA toolkit's or NVIDIA's libnccl):
// one GPU per rank, gradients all-reduced where they lie, in device memory, on the stream the CUDA backend
// computes on, so the reduction is ordered after the backward that wrote them without a host round trip.
//
// Gradients can also be all-reduced beside the backward pass (nonblocking_device_collectives, used by
// overlapped_allreduce.hpp): start_allreduce_device records an event on the computing stream and enqueues the
// all-reduce on a second stream of this communicator's (created on first use, on the current device) that waits for
// that event, so the reduction follows the kernels that wrote those gradients and runs while the lower layers'
// backward kernels run; join_started_device makes the computing stream wait for the second one. Every other
// collective joins first, so that on the device this communicator's operations run in the order they were issued,
// the same on every rank.
//
// NCCL has no process launcher and no host collectives. The ranks find each other through a bootstrap
// communicator (any `communicator`: mpi_communicator under mpirun, single_process for one GPU), which carries
// NCCL's unique id from rank 0 to the others; the host-memory operations the trainer needs (a few scalars per
// step, the parameters once at start, strings at start) go through a device staging buffer.
//
//   mpi_session session(argc, argv);
//   mpi_communicator mpi;
//   cudaSetDevice(local_rank);                  // one GPU per rank: the caller picks it
//   cuda_backend gpu;
//   nccl_communicator comm(mpi, gpu.stream());
//   train_multitask(model, sampler, gpu, train, dev, options, comm);
//
// A collective that makes no progress (a rank died, or stopped calling collectives) would block in NCCL for
// ever: every wait polls the stream and ncclCommGetAsyncError and, after `options::timeout`, aborts the
// communicator (ncclCommAbort) and throws communication_error naming the operation and the rank. Initialisation
// (ncclCommInitRank) blocks until every rank has joined; a rank that never joins is the launcher's to detect.
#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "hyperadapt/distributed/communicator.hpp"

namespace hyperadapt {

class nccl_communicator {
public:
    struct options {
        /// How long one collective may make no progress before the communicator is aborted.
        std::chrono::milliseconds timeout{std::chrono::seconds(60)};
    };

    /// Joins the NCCL group of `bootstrap`'s ranks (collective over `bootstrap`); collectives run on `stream`
    /// (the CUDA backend's: cuda_backend::stream()), on the device current at construction.
    template <communicator Bootstrap>
    nccl_communicator(Bootstrap& bootstrap, cudaStream_t stream) : nccl_communicator(bootstrap, stream, options{}) {}

    template <communicator Bootstrap>
    nccl_communicator(Bootstrap& bootstrap, cudaStream_t stream, options opts)
        : opts_(opts), stream_(stream), rank_(bootstrap.rank()), size_(bootstrap.size()) {
        ncclUniqueId id{};
        if (rank_ == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
        bootstrap.broadcast(std::as_writable_bytes(std::span<ncclUniqueId>(&id, 1)), 0);
        check(ncclCommInitRank(&comm_, size_, id, rank_), "ncclCommInitRank");
    }
    nccl_communicator(const nccl_communicator&) = delete;
    nccl_communicator& operator=(const nccl_communicator&) = delete;
    ~nccl_communicator() {
        if (comm_ != nullptr) (void)ncclCommDestroy(comm_);
        if (scratch_ != nullptr) (void)cudaFree(scratch_);
        if (written_ != nullptr) (void)cudaEventDestroy(written_);
        if (reduced_ != nullptr) (void)cudaEventDestroy(reduced_);
        if (side_stream_ != nullptr) (void)cudaStreamDestroy(side_stream_);
    }

    [[nodiscard]] int rank() const noexcept { return rank_; }
    [[nodiscard]] int size() const noexcept { return size_; }

    // ---- device memory: the gradients (distributed/data_parallel.hpp's allreduce_gradients) ----
    /// In place on `n` device values, enqueued on the stream; finish() waits for every enqueued collective.
    void allreduce_device(float* data, std::size_t n, bool mean) { enqueue_allreduce(data, n, ncclFloat, mean); }
    void allreduce_device(double* data, std::size_t n, bool mean) { enqueue_allreduce(data, n, ncclDouble, mean); }
    void finish() {
        join_started_device();
        wait("the enqueued all-reduces");
    }

    // ---- device memory, beside the computation (nonblocking_device_collectives) ----
    /// An in-place sum of `n` device values on this communicator's second stream, after what the computing stream
    /// holds so far; the values must stay untouched until join_started_device().
    void start_allreduce_device(float* data, std::size_t n) { start_beside(data, n, ncclFloat); }
    void start_allreduce_device(double* data, std::size_t n) { start_beside(data, n, ncclDouble); }
    /// The computing stream's later work waits for every started all-reduce (the host does not wait).
    void join_started_device() {
        if (!started_beside_) return;
        started_beside_ = false;
        cuda_check(cudaEventRecord(reduced_, side_stream_), "cudaEventRecord after the started all-reduces");
        cuda_check(cudaStreamWaitEvent(stream_, reduced_, 0), "cudaStreamWaitEvent for the started all-reduces");
    }

    // ---- host memory, through the staging buffer ----
    void allreduce_sum(std::span<float> v) { host_allreduce(v.data(), v.size_bytes(), v.size(), ncclFloat); }
    void allreduce_sum(std::span<double> v) { host_allreduce(v.data(), v.size_bytes(), v.size(), ncclDouble); }

    void broadcast(std::span<std::byte> bytes, int root) {
        if (root < 0 || root >= size_)
            throw communication_error("broadcast: root " + std::to_string(root) + " outside 0.." + std::to_string(size_ - 1));
        live("ncclBroadcast");
        join_started_device();
        if (bytes.empty()) return;
        std::byte* d = staging(bytes.size());
        copy(d, bytes.data(), bytes.size(), cudaMemcpyHostToDevice, "broadcast");
        check(ncclBroadcast(d, d, bytes.size(), ncclUint8, root, comm_, stream_), "ncclBroadcast");
        copy(bytes.data(), d, bytes.size(), cudaMemcpyDeviceToHost, "broadcast");
        wait("ncclBroadcast");
    }

    [[nodiscard]] std::vector<std::string> allgather(const std::string& s) {
        const auto parts = gather_bytes(std::as_bytes(std::span<const char>(s.data(), s.size())), "allgather");
        std::vector<std::string> out;
        for (const auto& p : parts) out.emplace_back(reinterpret_cast<const char*>(p.data()), p.size());
        return out;
    }

    [[nodiscard]] std::vector<std::vector<double>> allgather(std::span<const double> v) {
        const auto parts = gather_bytes(std::as_bytes(v), "allgather");
        std::vector<std::vector<double>> out;
        for (const auto& p : parts) {
            std::vector<double> d(p.size() / sizeof(double));
            if (!d.empty()) std::memcpy(d.data(), p.data(), p.size());
            out.push_back(std::move(d));
        }
        return out;
    }

    void barrier() {
        std::int64_t one = 1;
        host_allreduce(&one, sizeof one, 1, ncclInt64);
    }

private:
    void enqueue_allreduce(void* data, std::size_t n, ncclDataType_t type, bool mean) {
        live("ncclAllReduce");
        join_started_device();
        if (n == 0) return;
        check(ncclAllReduce(data, data, n, type, mean ? ncclAvg : ncclSum, comm_, stream_), "ncclAllReduce");
    }

    void start_beside(void* data, std::size_t n, ncclDataType_t type) {
        live("ncclAllReduce");
        if (n == 0) return;
        if (side_stream_ == nullptr) {
            cuda_check(cudaStreamCreateWithFlags(&side_stream_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
            cuda_check(cudaEventCreateWithFlags(&written_, cudaEventDisableTiming), "cudaEventCreateWithFlags");
            cuda_check(cudaEventCreateWithFlags(&reduced_, cudaEventDisableTiming), "cudaEventCreateWithFlags");
        }
        cuda_check(cudaEventRecord(written_, stream_), "cudaEventRecord before a started all-reduce");
        cuda_check(cudaStreamWaitEvent(side_stream_, written_, 0), "cudaStreamWaitEvent before a started all-reduce");
        check(ncclAllReduce(data, data, n, type, ncclSum, comm_, side_stream_), "ncclAllReduce");
        started_beside_ = true;
    }

    void host_allreduce(void* host, std::size_t bytes, std::size_t n, ncclDataType_t type) {
        live("ncclAllReduce");
        join_started_device();
        if (n == 0) return;
        std::byte* d = staging(bytes);
        copy(d, host, bytes, cudaMemcpyHostToDevice, "allreduce_sum");
        check(ncclAllReduce(d, d, n, type, ncclSum, comm_, stream_), "ncclAllReduce");
        copy(host, d, bytes, cudaMemcpyDeviceToHost, "allreduce_sum");
        wait("ncclAllReduce");
    }

    /// Every rank's bytes, in rank order: the sizes first, then every rank's bytes padded to the longest
    /// (ncclAllGather gathers equal counts).
    std::vector<std::vector<std::byte>> gather_bytes(std::span<const std::byte> mine, const char* what) {
        live(what);
        join_started_device();
        const auto w = static_cast<std::size_t>(size_);
        std::vector<std::int64_t> sizes(w, 0);
        sizes[static_cast<std::size_t>(rank_)] = static_cast<std::int64_t>(mine.size());
        {
            auto* d = reinterpret_cast<std::int64_t*>(staging(w * sizeof(std::int64_t)));
            copy(d + rank_, &sizes[static_cast<std::size_t>(rank_)], sizeof(std::int64_t), cudaMemcpyHostToDevice, what);
            check(ncclAllGather(d + rank_, d, 1, ncclInt64, comm_, stream_), "ncclAllGather");
            copy(sizes.data(), d, w * sizeof(std::int64_t), cudaMemcpyDeviceToHost, what);
            wait("ncclAllGather");
        }
        std::size_t longest = 0;
        for (const auto n : sizes) longest = std::max(longest, static_cast<std::size_t>(n));
        std::vector<std::vector<std::byte>> out(w);
        if (longest == 0) return out;
        std::byte* d = staging(w * longest);
        std::byte* own = d + static_cast<std::size_t>(rank_) * longest;
        if (!mine.empty()) copy(own, mine.data(), mine.size(), cudaMemcpyHostToDevice, what);
        check(ncclAllGather(own, d, longest, ncclUint8, comm_, stream_), "ncclAllGather");
        std::vector<std::byte> all(w * longest);
        copy(all.data(), d, all.size(), cudaMemcpyDeviceToHost, what);
        wait("ncclAllGather");
        for (std::size_t r = 0; r < w; ++r)
            out[r].assign(all.begin() + static_cast<std::ptrdiff_t>(r * longest),
                          all.begin() + static_cast<std::ptrdiff_t>(r * longest + static_cast<std::size_t>(sizes[r])));
        return out;
    }

    /// The staging buffer, grown to at least `bytes`. Growing waits for the stream: the old buffer may still
    /// be in use by an enqueued copy.
    std::byte* staging(std::size_t bytes) {
        if (bytes <= scratch_bytes_) return scratch_;
        wait("a staging-buffer resize");
        if (scratch_ != nullptr) (void)cudaFree(scratch_);
        scratch_ = nullptr;
        scratch_bytes_ = 0;
        void* p = nullptr;
        cuda_check(cudaMalloc(&p, bytes), "cudaMalloc of the staging buffer");
        scratch_ = static_cast<std::byte*>(p);
        scratch_bytes_ = bytes;
        return scratch_;
    }

    void copy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind, const char* what) {
        cuda_check(cudaMemcpyAsync(dst, src, bytes, kind, stream_), what);
    }

    /// Waits for the stream, polling NCCL's asynchronous error; no progress for options::timeout aborts.
    void wait(const std::string& what) {
        const auto start = std::chrono::steady_clock::now();
        for (;;) {
            const cudaError_t q = cudaStreamQuery(stream_);
            if (q == cudaSuccess) return;
            if (q != cudaErrorNotReady) cuda_check(q, what.c_str());
            if (comm_ != nullptr) {
                ncclResult_t async = ncclSuccess;
                check(ncclCommGetAsyncError(comm_, &async), "ncclCommGetAsyncError");
                if (async != ncclSuccess && async != ncclInProgress) {
                    abort();
                    throw communication_error(what + " failed on rank " + std::to_string(rank_) + " of " +
                                              std::to_string(size_) + ": " + ncclGetErrorString(async) +
                                              " (communicator aborted)");
                }
            }
            if (std::chrono::steady_clock::now() - start > opts_.timeout) {
                abort();
                throw communication_error(what + ": no progress in " + std::to_string(opts_.timeout.count()) +
                                          " ms on rank " + std::to_string(rank_) + " of " + std::to_string(size_) +
                                          " (a rank died or stopped calling collectives); communicator aborted");
            }
            std::this_thread::sleep_for(std::chrono::microseconds(20));
        }
    }

    void abort() noexcept {
        if (comm_ != nullptr) (void)ncclCommAbort(comm_);
        comm_ = nullptr;
    }

    void live(const char* what) const {
        if (comm_ == nullptr)
            throw communication_error(std::string(what) + " on rank " + std::to_string(rank_) +
                                      ": the NCCL communicator was aborted by an earlier failure");
    }

    void check(ncclResult_t rc, const char* what) const {
        if (rc == ncclSuccess) return;
        const char* last = comm_ != nullptr ? ncclGetLastError(comm_) : nullptr;
        throw communication_error(std::string(what) + " failed on rank " + std::to_string(rank_) + " of " +
                                  std::to_string(size_) + ": " + ncclGetErrorString(rc) +
                                  (last != nullptr && *last != '\0' ? std::string(" (") + last + ")" : std::string()));
    }

    void cuda_check(cudaError_t rc, const char* what) const {
        if (rc == cudaSuccess) return;
        throw communication_error(std::string(what) + " on rank " + std::to_string(rank_) + ": CUDA error " +
                                  cudaGetErrorName(rc) + ": " + cudaGetErrorString(rc));
    }

    options opts_;
    cudaStream_t stream_ = nullptr;
    ncclComm_t comm_ = nullptr;
    // The second stream of the started all-reduces, and the events that order it against stream_.
    cudaStream_t side_stream_ = nullptr;
    cudaEvent_t written_ = nullptr, reduced_ = nullptr;
    bool started_beside_ = false;
    int rank_ = 0, size_ = 1;
    std::byte* scratch_ = nullptr;
    std::size_t scratch_bytes_ = 0;
};
static_assert(communicator<nccl_communicator> && nonblocking_device_collectives<nccl_communicator, float> &&
              nonblocking_device_collectives<nccl_communicator, double>);

}  // namespace hyperadapt
