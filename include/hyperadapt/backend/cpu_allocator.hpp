#pragma once
// A caching allocator for the CPU backend. Training allocates the same activation sizes every step; going
// back to malloc for them costs page faults (~25 % of an encoder step with glibc's default malloc), so
// freed blocks are kept by size class (core/size_class.hpp) and handed out again.
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

    block_cache() = default;
    block_cache(const block_cache&) = delete;
    block_cache& operator=(const block_cache&) = delete;
    ~block_cache() { release(); }

    void* acquire(std::size_t bytes) {
        bytes = round_up(bytes);
        {
            std::lock_guard lock(mutex_);
            if (auto it = free_.find(bytes); it != free_.end()) {
                void* p = it->second;
                free_.erase(it);
                cached_bytes_ -= bytes;
                return p;
            }
        }
        void* p = std::aligned_alloc(alignment, bytes);
        if (p == nullptr) throw std::bad_alloc();
        return p;
    }

    void give_back(void* p, std::size_t bytes) noexcept {
        bytes = round_up(bytes);
        try {
            std::lock_guard lock(mutex_);
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

    [[nodiscard]] std::size_t cached_bytes() const noexcept {
        std::lock_guard lock(mutex_);
        return cached_bytes_;
    }

private:
    static std::size_t round_up(std::size_t bytes) noexcept { return size_class(bytes, alignment); }

    mutable std::mutex mutex_;
    std::multimap<std::size_t, void*> free_;
    std::size_t cached_bytes_ = 0;
};

/// Owning, move-only host buffer whose memory goes back to its cache.
template <class T>
class cached_host_buffer {
public:
    cached_host_buffer() = default;
    cached_host_buffer(std::shared_ptr<block_cache> cache, std::size_t n)
        : cache_(std::move(cache)), data_(static_cast<T*>(cache_->acquire(n * sizeof(T)))), size_(n) {}
    cached_host_buffer(cached_host_buffer&& o) noexcept
        : cache_(std::move(o.cache_)), data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
    cached_host_buffer& operator=(cached_host_buffer&& o) noexcept {
        if (this != &o) {
            reset();
            cache_ = std::move(o.cache_);
            data_ = std::exchange(o.data_, nullptr);
            size_ = std::exchange(o.size_, 0);
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
        if (data_ != nullptr) cache_->give_back(data_, size_ * sizeof(T));
        data_ = nullptr;
        size_ = 0;
    }

    std::shared_ptr<block_cache> cache_;
    T* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace hyperadapt::detail
