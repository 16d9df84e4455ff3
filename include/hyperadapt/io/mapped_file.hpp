#pragma once
// A read-only memory map of a whole file (POSIX). Checkpoints are hundreds of megabytes: mapping lets the
// loader convert tensors straight from the page cache into backend memory without a second host copy, and
// the kernel drops the pages again when the map goes away.
#include <sys/mman.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <utility>

#include "hyperadapt/core/errors.hpp"
#include "hyperadapt/io/regular_file.hpp"

namespace hyperadapt::io {

class mapped_file {
public:
    mapped_file() = default;

    /// Maps `path` read-only; throws io_error naming the file and the system's reason, or saying what the
    /// path is when it is not a regular file.
    explicit mapped_file(std::filesystem::path path) : path_(std::move(path)) {
        // regular_file refuses FIFOs, directories and devices (without blocking on a FIFO); the map keeps the
        // file's pages alive on its own, so the descriptor closes when the constructor returns.
        const regular_file file(path_);
        size_ = file.size();
        if (size_ == 0) return;  // mmap rejects length 0; an empty file is an empty span
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, file.fd(), 0);
        if (p == MAP_FAILED) fail("cannot memory-map");
        data_ = static_cast<const std::byte*>(p);
    }

    mapped_file(const mapped_file&) = delete;
    mapped_file& operator=(const mapped_file&) = delete;
    mapped_file(mapped_file&& o) noexcept
        : path_(std::move(o.path_)), data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
    mapped_file& operator=(mapped_file&& o) noexcept {
        if (this != &o) {
            unmap();
            path_ = std::move(o.path_);
            data_ = std::exchange(o.data_, nullptr);
            size_ = std::exchange(o.size_, 0);
        }
        return *this;
    }
    ~mapped_file() { unmap(); }

    [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {data_, data_ ? size_ : 0}; }

private:
    [[noreturn]] void fail(const char* what) const {
        throw io_error(path_.string() + ": " + what + " (" + std::strerror(errno) + ")");
    }
    void unmap() noexcept {
        if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
        data_ = nullptr;
    }

    std::filesystem::path path_;
    const std::byte* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace hyperadapt::io
