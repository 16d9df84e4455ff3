#pragma once
// Opening files that come from outside (downloads, task data, checkpoint folders) without trusting what the
// name points at. A plain open() of a FIFO blocks until a writer appears — forever, for a file named
// model.safetensors that is a pipe — and a directory or a device is no file to parse either. So the file is
// opened with O_NONBLOCK (which makes open() of a FIFO return at once), checked with fstat, and refused
// unless it is a regular file; only then is it read or mapped.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>

#include "hyperadapt/core/errors.hpp"

namespace hyperadapt::io {

namespace detail {
inline const char* file_kind(mode_t mode) noexcept {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}
}  // namespace detail

/// A read-only descriptor of a regular file, closed on destruction.
class regular_file {
public:
    /// Opens `path` for reading. Throws io_error naming the path when it cannot be opened or is not a
    /// regular file (a FIFO, directory, device or socket): never blocks on a FIFO.
    explicit regular_file(std::filesystem::path path) : path_(std::move(path)) {
        fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd_ < 0)
            throw io_error(path_.string() + ": cannot open (" + std::strerror(errno) + ")");
        struct stat st {};
        if (::fstat(fd_, &st) != 0) {
            const int err = errno;
            close_fd();
            throw io_error(path_.string() + ": cannot stat (" + std::strerror(err) + ")");
        }
        if (!S_ISREG(st.st_mode)) {
            close_fd();
            throw io_error(path_.string() + ": is " + detail::file_kind(st.st_mode) + ", not a regular file");
        }
        size_ = static_cast<std::size_t>(st.st_size);
        // Regular files ignore O_NONBLOCK; clearing it keeps read() semantics plain for whoever reads.
        const int flags = ::fcntl(fd_, F_GETFL);
        if (flags >= 0) (void)::fcntl(fd_, F_SETFL, flags & ~O_NONBLOCK);
    }
    regular_file(const regular_file&) = delete;
    regular_file& operator=(const regular_file&) = delete;
    ~regular_file() { close_fd(); }

    [[nodiscard]] int fd() const noexcept { return fd_; }
    [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
    /// The size when opened.
    [[nodiscard]] std::size_t size() const noexcept { return size_; }

    /// The whole content (to end of file, should the file have grown since it was opened).
    [[nodiscard]] std::string read_all() const {
        std::string text(size_, '\0');
        std::size_t have = 0;
        for (;;) {
            if (have == text.size()) text.resize(text.size() + 4096);
            const ::ssize_t n = ::read(fd_, text.data() + have, text.size() - have);
            if (n < 0) {
                if (errno == EINTR) continue;
                throw io_error(path_.string() + ": read error after " + std::to_string(have) + " bytes (" +
                               std::strerror(errno) + ")");
            }
            if (n == 0) break;
            have += static_cast<std::size_t>(n);
        }
        text.resize(have);
        return text;
    }

private:
    void close_fd() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

    std::filesystem::path path_;
    int fd_ = -1;
    std::size_t size_ = 0;
};

/// The content of a regular file (see regular_file for what is refused).
[[nodiscard]] inline std::string read_regular_file(const std::filesystem::path& path) {
    return regular_file(path).read_all();
}

}  // namespace hyperadapt::io
