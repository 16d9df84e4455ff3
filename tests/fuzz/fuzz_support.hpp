#pragma once
// Shared by the libFuzzer targets in tests/fuzz (built and run by scripts/fuzz.sh; docs/hardening.md,
// "Fuzzing").
//
// A target feeds the bytes to one reader and treats hyperadapt's own exceptions (hyperadapt::error and its
// io_error, config_error, shape_error) as the expected answer to a bad file. Anything else escapes the
// target and libFuzzer reports it: another exception type (std::out_of_range, nlohmann's, bad_alloc), a
// sanitizer report, a leak, a timeout or an allocation past -malloc_limit_mb.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>

#include "hyperadapt/core/errors.hpp"

namespace hyperadapt::fuzz {

/// The input as text.
inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

/// A file the readers that take a path can be given: one per process (libFuzzer's -jobs run several), on
/// /dev/shm when it exists so that a write per input costs no disk I/O.
class scratch_file {
public:
    explicit scratch_file(const std::string& name) {
        std::error_code ec;
        const std::filesystem::path shm = "/dev/shm";
        const auto base = std::filesystem::is_directory(shm, ec) ? shm : std::filesystem::temp_directory_path();
        dir_ = base / ("hyperadapt-fuzz-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir_);
        path_ = dir_ / name;
    }
    scratch_file(const scratch_file&) = delete;
    scratch_file& operator=(const scratch_file&) = delete;
    ~scratch_file() {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    /// Replaces the file's content with `bytes` and returns its path.
    const std::filesystem::path& write(std::string_view bytes) const {
        std::ofstream out(path_, std::ios::binary | std::ios::trunc);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        out.close();
        if (!out) throw std::runtime_error("fuzz harness: cannot write " + path_.string());
        return path_;
    }
    [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
    [[nodiscard]] const std::filesystem::path& dir() const noexcept { return dir_; }

private:
    std::filesystem::path dir_, path_;
};

/// Runs f; hyperadapt's typed errors are an expected outcome for malformed input.
template <class F>
void expect_valid_or_typed_error(F&& f) {
    try {
        f();
    } catch (const hyperadapt::error&) {
    }
}

}  // namespace hyperadapt::fuzz
