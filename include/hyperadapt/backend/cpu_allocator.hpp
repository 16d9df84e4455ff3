#pragma once
// A caching allocator for the CPU backend. Training allocates the same activation sizes every step; going
// back to malloc for them costs page faults (~25 % of an encoder step with glibc's default malloc), so
// freed blocks are kept by size class (core/size_class.hpp) and handed out again.
//
// Batches whose shapes change from step to step (padded to their longest row, rows in length groups) ask for
// sizes the cache has not seen; a cache that only grew kept one idle block for every size ever freed (a PHA
// step on the six GLUE tasks' real rows held 2.2 GiB after 24 batches, against 1.3 GiB at a fixed shape). So:
//   * a request takes the smallest cached block that holds it, if that block is at most one size class larger
//     (12.5 %: best fit, a freed block serves the nearby sizes of the next batch);
//   * on a miss, idle blocks are freed, smallest first, until what the cache holds (blocks in use plus idle
//     ones, plus the new block) is no more than 1.25x the most that was ever in use at once: the footprint
//     stays near the largest step's need, whatever sequence of shapes the steps bring. The 25 % leaves room
//     for the idle blocks a step of one shape frees and takes again (a bound of 1x the peak made such steps
//     free and allocate a few blocks every step; tests/backend/test_cpu_allocator.cpp).
#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <utility>

#include "hyperadapt/core/size_class.hpp"

namespace hyperadapt::detail {

class block_cache {
public:
    static constexpr std::size_t alignment = 64;

    /// A block and its capacity in bytes (at least what was asked; what give_back must be told).
    struct block {
        void* data = nullptr;
        std::size_t bytes = 0;
    };

    block_cache() = default;
    block_cache(const block_cache&) = delete;
    block_cache& operator=(const block_cache&) = delete;
    ~block_cache() { release(); }

    block acquire(std::size_t bytes) {
        bytes = round_up(bytes);
        {
            std::lock_guard lock(mutex_);
            if (auto it = free_.lower_bound(bytes); it != free_.end() && it->first <= bytes + bytes / 8) {
                const block b{it->second, it->first};
                free_.erase(it);
                cached_bytes_ -= b.bytes;
                note_in_use(b.bytes);
                return b;
            }
            // A miss: make room within 1.25x the peak in use before asking the system.
            const std::size_t limit = std::max(footprint_limit(), in_use_ + bytes);
            while (!free_.empty() && in_use_ + cached_bytes_ + bytes > limit) {
                auto smallest = free_.begin();
                cached_bytes_ -= smallest->first;
                std::free(smallest->second);
                free_.erase(smallest);
            }
        }
        void* p = std::aligned_alloc(alignment, bytes);
        if (p == nullptr) {
            release();  // the idle blocks may be what the system is missing
            p = std::aligned_alloc(alignment, bytes);
            if (p == nullptr) throw std::bad_alloc();
        }
        std::lock_guard lock(mutex_);
        note_in_use(bytes);
        ++system_allocations_;
        return {p, bytes};
    }

    /// Takes back a block of `bytes` capacity (block::bytes) from acquire.
    void give_back(void* p, std::size_t bytes) noexcept {
        try {
            std::lock_guard lock(mutex_);
            in_use_ -= bytes;
            free_.emplace(bytes, p);
            cached_bytes_ += bytes;
        } catch (...) {
            std::free(p);
        }
    }

    /// Returns every cached block to the system.
    void release() noexcept {
        std::lock_guard lock(mutex_);
        for (auto& [bytes, p] : free_) std::free(p);
        free_.clear();
        cached_bytes_ = 0;
    }

    /// Bytes in idle cached blocks.
    [[nodiscard]] std::size_t cached_bytes() const noexcept {
        std::lock_guard lock(mutex_);
        return cached_bytes_;
    }
    /// Bytes in blocks handed out and not yet given back.
    [[nodiscard]] std::size_t bytes_in_use() const noexcept {
        std::lock_guard lock(mutex_);
        return in_use_;
    }
    /// The most bytes ever in use at once.
    [[nodiscard]] std::size_t peak_bytes_in_use() const noexcept {
        std::lock_guard lock(mutex_);
        return peak_in_use_;
    }

    /// How many blocks came from the system (each miss): constant across steps of one shape.
    [[nodiscard]] std::size_t system_allocations() const noexcept {
        std::lock_guard lock(mutex_);
        return system_allocations_;
    }

    /// What the cache may hold, in use and idle, before a miss frees idle blocks: 1.25x the peak in use.
    [[nodiscard]] std::size_t footprint_limit() const noexcept { return peak_in_use_ + peak_in_use_ / 4; }

private:
    static std::size_t round_up(std::size_t bytes) noexcept { return size_class(bytes, alignment); }
    void note_in_use(std::size_t bytes) noexcept {
        in_use_ += bytes;
        peak_in_use_ = std::max(peak_in_use_, in_use_);
    }

    mutable std::mutex mutex_;
    std::multimap<std::size_t, void*> free_;
    std::size_t cached_bytes_ = 0;
    std::size_t in_use_ = 0;
    std::size_t peak_in_use_ = 0;
    std::size_t system_allocations_ = 0;
};

/// Owning, move-only host buffer whose memory goes back to its cache.
template <class T>
class cached_host_buffer {
public:
    cached_host_buffer() = default;
    cached_host_buffer(std::shared_ptr<block_cache> cache, std::size_t n) : cache_(std::move(cache)), size_(n) {
        const block_cache::block b = cache_->acquire(n * sizeof(T));
        data_ = static_cast<T*>(b.data);
        capacity_bytes_ = b.bytes;
    }
    cached_host_buffer(cached_host_buffer&& o) noexcept
        : cache_(std::move(o.cache_)),
          data_(std::exchange(o.data_, nullptr)),
          size_(std::exchange(o.size_, 0)),
          capacity_bytes_(std::exchange(o.capacity_bytes_, 0)) {}
    cached_host_buffer& operator=(cached_host_buffer&& o) noexcept {
        if (this != &o) {
            reset();
            cache_ = std::move(o.cache_);
            data_ = std::exchange(o.data_, nullptr);
            size_ = std::exchange(o.size_, 0);
            capacity_bytes_ = std::exchange(o.capacity_bytes_, 0);
        }
        return *this;
    }
    cached_host_buffer(const cached_host_buffer&) = delete;
    cached_host_buffer& operator=(const cached_host_buffer&) = delete;
    ~cached_host_buffer() { reset(); }

    [[nodiscard]] T* data() noexcept { return data_; }
    [[nodiscard]] const T* data() const noexcept { return data_; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }

private:
    void reset() noexcept {
        if (data_ != nullptr) cache_->give_back(data_, capacity_bytes_);
        data_ = nullptr;
        size_ = 0;
        capacity_bytes_ = 0;
    }

    std::shared_ptr<block_cache> cache_;
    T* data_ = nullptr;
    std::size_t size_ = 0;
    std::size_t capacity_bytes_ = 0;  // the block's, which a best fit may make larger than size_ elements
};

}  // namespace hyperadapt::detail
