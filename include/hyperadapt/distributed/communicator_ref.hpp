#pragma once
// A non-owning reference to any communicator (communicator.hpp), one type for all of them. A program that
// picks its processes at run time -- one process, or the ranks mpirun started -- passes a communicator_ref to
// the trainer, which is then compiled once rather than once per communicator type; each collective costs one
// indirect call, against messages of kilobytes to megabytes. A default-constructed reference is the single
// process (it needs no object), and a reference to a single_process keeps is_single_process, so the trainer
// takes its plain path for both. The communicator referred to must outlive the reference.
//
// It carries non-blocking all-reduces (nonblocking_collectives) where the communicator has them, and turns
// them into blocking ones where it has not; and it carries the device collectives of a communicator that has them
// (nccl_communicator's allreduce_device), saying at run time whether it does (carries_device_collectives():
// allreduce_gradients asks before handing it device memory), and their started form
// (nonblocking_device_collectives), which becomes an all-reduce on the backend's stream where the communicator has
// only the plain one.
#include <cstddef>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "hyperadapt/distributed/communicator.hpp"

namespace hyperadapt {

class communicator_ref {
public:
    /// The single process: rank 0 of 1, every collective the identity.
    communicator_ref() noexcept = default;

    template <communicator C>
        requires(!std::is_same_v<std::remove_cv_t<C>, communicator_ref>)
    communicator_ref(C& c) noexcept  // NOLINT(google-explicit-constructor): a reference converts like one
        : object_(&c), operations_(&operations_of<C>), alone_(hyperadapt::is_single_process(c)) {}

    [[nodiscard]] int rank() const { return operations_->rank(object_); }
    [[nodiscard]] int size() const { return operations_->size(object_); }
    [[nodiscard]] bool is_single_process() const noexcept { return alone_; }
    void allreduce_sum(std::span<float> v) { operations_->allreduce_float(object_, v); }
    void allreduce_sum(std::span<double> v) { operations_->allreduce_double(object_, v); }
    /// nonblocking_collectives: the referred communicator's where it has them, else a blocking all-reduce at the
    /// start (and nothing to wait for).
    void start_allreduce_sum(std::span<float> v) { operations_->start_allreduce_float(object_, v); }
    void start_allreduce_sum(std::span<double> v) { operations_->start_allreduce_double(object_, v); }
    void progress() { operations_->progress(object_); }
    void wait_started() { operations_->wait_started(object_); }
    /// device_collectives (communicator.hpp): the referred communicator's in-place all-reduce of device memory
    /// and its wait. Only for a reference that carries_device_collectives(); otherwise communication_error.
    void allreduce_device(float* p, std::size_t n, bool mean) { operations_->allreduce_device_float(object_, p, n, mean); }
    void allreduce_device(double* p, std::size_t n, bool mean) { operations_->allreduce_device_double(object_, p, n, mean); }
    void finish() { operations_->finish(object_); }
    /// nonblocking_device_collectives: the referred communicator's where it has them, else allreduce_device (on the
    /// backend's stream, so nothing to join). Only for a reference that carries_device_collectives().
    void start_allreduce_device(float* p, std::size_t n) { operations_->start_allreduce_device_float(object_, p, n); }
    void start_allreduce_device(double* p, std::size_t n) { operations_->start_allreduce_device_double(object_, p, n); }
    void join_started_device() { operations_->join_started_device(object_); }
    [[nodiscard]] bool carries_device_collectives() const noexcept { return operations_->device_collectives; }
    void broadcast(std::span<std::byte> bytes, int root) { operations_->broadcast(object_, bytes, root); }
    [[nodiscard]] std::vector<std::string> allgather(const std::string& s) { return operations_->allgather_string(object_, s); }
    [[nodiscard]] std::vector<std::vector<double>> allgather(std::span<const double> v) {
        return operations_->allgather_doubles(object_, v);
    }
    void barrier() { operations_->barrier(object_); }

private:
    struct operations {
        int (*rank)(void*);
        int (*size)(void*);
        void (*allreduce_float)(void*, std::span<float>);
        void (*allreduce_double)(void*, std::span<double>);
        void (*start_allreduce_float)(void*, std::span<float>);
        void (*start_allreduce_double)(void*, std::span<double>);
        void (*progress)(void*);
        void (*wait_started)(void*);
        void (*allreduce_device_float)(void*, float*, std::size_t, bool);
        void (*allreduce_device_double)(void*, double*, std::size_t, bool);
        void (*finish)(void*);
        void (*start_allreduce_device_float)(void*, float*, std::size_t);
        void (*start_allreduce_device_double)(void*, double*, std::size_t);
        void (*join_started_device)(void*);
        bool device_collectives;
        void (*broadcast)(void*, std::span<std::byte>, int);
        std::vector<std::string> (*allgather_string)(void*, const std::string&);
        std::vector<std::vector<double>> (*allgather_doubles)(void*, std::span<const double>);
        void (*barrier)(void*);
    };
    template <class C>
    static C& as(void* p) noexcept {
        return *static_cast<C*>(p);
    }
    template <class C, class V>
    static void start_allreduce(C& c, std::span<V> v) {
        if constexpr (nonblocking_collectives<C>)
            c.start_allreduce_sum(v);
        else
            c.allreduce_sum(v);
    }
    /// Whether C reduces device memory itself (nccl_communicator), for both element types.
    template <class C>
    static constexpr bool device_collectives_of() {
        return device_collectives<C, float> && device_collectives<C, double>;
    }
    template <class C, class V>
    static void allreduce_device(C& c, V* v, std::size_t n, bool mean) {
        if constexpr (device_collectives_of<C>())
            c.allreduce_device(v, n, mean);
        else
            no_device_collectives();
    }
    template <class C, class V>
    static void start_allreduce_device(C& c, V* v, std::size_t n) {
        if constexpr (nonblocking_device_collectives<C, float> && nonblocking_device_collectives<C, double>)
            c.start_allreduce_device(v, n);
        else
            allreduce_device(c, v, n, false);
    }
    [[noreturn]] static void no_device_collectives() {
        throw communication_error("communicator_ref: the communicator referred to has no device collectives "
                                  "(carries_device_collectives() is false)");
    }
    template <class C>
    static constexpr operations operations_of{
        [](void* p) { return static_cast<int>(as<C>(p).rank()); },
        [](void* p) { return static_cast<int>(as<C>(p).size()); },
        [](void* p, std::span<float> v) { as<C>(p).allreduce_sum(v); },
        [](void* p, std::span<double> v) { as<C>(p).allreduce_sum(v); },
        [](void* p, std::span<float> v) { start_allreduce(as<C>(p), v); },
        [](void* p, std::span<double> v) { start_allreduce(as<C>(p), v); },
        [](void* p) {
            if constexpr (nonblocking_collectives<C>) as<C>(p).progress();
        },
        [](void* p) {
            if constexpr (nonblocking_collectives<C>) as<C>(p).wait_started();
        },
        [](void* p, float* v, std::size_t n, bool mean) { allreduce_device(as<C>(p), v, n, mean); },
        [](void* p, double* v, std::size_t n, bool mean) { allreduce_device(as<C>(p), v, n, mean); },
        [](void* p) {
            if constexpr (device_collectives_of<C>()) as<C>(p).finish();
        },
        [](void* p, float* v, std::size_t n) { start_allreduce_device(as<C>(p), v, n); },
        [](void* p, double* v, std::size_t n) { start_allreduce_device(as<C>(p), v, n); },
        [](void* p) {
            if constexpr (nonblocking_device_collectives<C, float> && nonblocking_device_collectives<C, double>)
                as<C>(p).join_started_device();
        },
        device_collectives_of<C>(),
        [](void* p, std::span<std::byte> b, int root) { as<C>(p).broadcast(b, root); },
        [](void* p, const std::string& s) { return as<C>(p).allgather(s); },
        [](void* p, std::span<const double> v) { return as<C>(p).allgather(v); },
        [](void* p) { as<C>(p).barrier(); },
    };
    // The default reference's operations: single_process's, without an object (it has no state).
    static constexpr operations alone_operations{
        [](void*) { return 0; },
        [](void*) { return 1; },
        [](void*, std::span<float>) {},
        [](void*, std::span<double>) {},
        [](void*, std::span<float>) {},
        [](void*, std::span<double>) {},
        [](void*) {},
        [](void*) {},
        [](void*, float*, std::size_t, bool) { no_device_collectives(); },
        [](void*, double*, std::size_t, bool) { no_device_collectives(); },
        [](void*) {},
        [](void*, float*, std::size_t) { no_device_collectives(); },
        [](void*, double*, std::size_t) { no_device_collectives(); },
        [](void*) {},
        false,
        [](void*, std::span<std::byte>, int root) { single_process{}.broadcast({}, root); },
        [](void*, const std::string& s) { return std::vector<std::string>{s}; },
        [](void*, std::span<const double> v) { return std::vector<std::vector<double>>{{v.begin(), v.end()}}; },
        [](void*) {},
    };

    void* object_ = nullptr;
    const operations* operations_ = &alone_operations;
    bool alone_ = true;
};
static_assert(communicator<communicator_ref> && nonblocking_collectives<communicator_ref> &&
              nonblocking_device_collectives<communicator_ref, float>);

}  // namespace hyperadapt
