#pragma once
// Writes a file so that readers see either the old content or the complete new one, never a torn file:
// the bytes go to "<path>.tmp.<pid>" in the same directory, are flushed to disk (fsync), and the temporary
// file is renamed over the target. rename() within one file system is atomic on POSIX. A crash or an error
// in between leaves the old file untouched; an error also removes the temporary file.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "hyperadapt/core/errors.hpp"

namespace hyperadapt::io {

/// The temporary file's descriptor during write_file_atomically; `write` throws io_error on any failure.
class file_sink {
public:
    file_sink(int fd, const std::filesystem::path& target) : fd_(fd), target_(&target) {}

    void write(std::span<const std::byte> bytes) {
        while (!bytes.empty()) {
            const ::ssize_t n = ::write(fd_, bytes.data(), bytes.size());
            if (n < 0) {
                if (errno == EINTR) continue;
                throw io_error(target_->string() + ": write failed after " + std::to_string(written_) +
                               " bytes (" + std::strerror(errno) + ")");
            }
            bytes = bytes.subspan(static_cast<std::size_t>(n));
            written_ += static_cast<std::size_t>(n);
        }
    }
    void write(std::string_view text) { write(std::as_bytes(std::span(text.data(), text.size()))); }

    [[nodiscard]] std::size_t written() const noexcept { return written_; }

private:
    int fd_;
    const std::filesystem::path* target_;
    std::size_t written_ = 0;
};

namespace detail {
/// Owns the temporary file until it is renamed: closes the descriptor and removes the file unless committed.
class temp_file {
public:
    explicit temp_file(std::filesystem::path p) : path_(std::move(p)) {
        fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd_ < 0)
            throw io_error(path_.string() + ": cannot create temporary file (" + std::strerror(errno) + ")");
    }
    temp_file(const temp_file&) = delete;
    temp_file& operator=(const temp_file&) = delete;
    ~temp_file() {
        close_fd();
        if (!committed_) ::unlink(path_.c_str());
    }

    [[nodiscard]] int fd() const noexcept { return fd_; }

    /// fsync, close (a close error can be the first report of a failed delayed write), rename.
    void commit(const std::filesystem::path& target) {
        if (::fsync(fd_) != 0)
            throw io_error(target.string() + ": fsync failed (" + std::strerror(errno) + ")");
        const int fd = std::exchange(fd_, -1);
        if (::close(fd) != 0) throw io_error(target.string() + ": close failed (" + std::strerror(errno) + ")");
        if (::rename(path_.c_str(), target.c_str()) != 0)
            throw io_error(target.string() + ": cannot rename " + path_.filename().string() + " into place (" +
                           std::strerror(errno) + ")");
        committed_ = true;
    }

private:
    void close_fd() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

    std::filesystem::path path_;
    int fd_ = -1;
    bool committed_ = false;
};

/// fsync of the directory makes the rename itself durable; failures are ignored because some file
/// systems do not support it and the data is already safe.
inline void sync_directory(const std::filesystem::path& dir) noexcept {
    const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    (void)::fsync(fd);
    ::close(fd);
}
}  // namespace detail

/// The temporary name used for `target`: "<target>.tmp.<pid>" (pid-unique, so concurrent processes do not
/// share one).
inline std::filesystem::path temporary_path_for(const std::filesystem::path& target) {
    auto p = target;
    p += ".tmp." + std::to_string(::getpid());
    return p;
}

/// Calls produce(file_sink&) to fill the temporary file, then moves it over `target`. Any exception from
/// `produce` or from the file system leaves `target` as it was and removes the temporary file.
template <class Produce>
void write_file_atomically(const std::filesystem::path& target, Produce&& produce) {
    detail::temp_file tmp(temporary_path_for(target));
    file_sink sink(tmp.fd(), target);
    std::forward<Produce>(produce)(sink);
    tmp.commit(target);
    detail::sync_directory(target.parent_path());
}

}  // namespace hyperadapt::io
