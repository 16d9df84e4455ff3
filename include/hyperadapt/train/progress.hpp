#pragma once
// Training progress for people: a one-line bar with rate and ETA, redrawn in place on a terminal, and plain
// periodic lines otherwise (CI logs, files, pipes), so a log never fills with carriage returns.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace hyperadapt {

class progress_bar {
public:
    /// `total` steps; `out` is where to write (stderr by default). Plain mode prints every `plain_every` steps.
    explicit progress_bar(std::int64_t total, std::FILE* out = stderr, std::int64_t plain_every = 50)
        : total_(total), out_(out), plain_every_(plain_every > 0 ? plain_every : 1),
          interactive_(::isatty(::fileno(out)) != 0), start_(clock::now()) {}

    [[nodiscard]] bool interactive() const noexcept { return interactive_; }

    /// Reports that `done` steps are complete; `status` is appended (e.g. "loss 0.412").
    void update(std::int64_t done, const std::string& status = {}) {
        const double elapsed = seconds_since_start();
        const double rate = done > 0 ? static_cast<double>(done) / elapsed : 0.0;
        const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0.0;
        if (interactive_) {
            constexpr int width = 28;
            const int filled = total_ > 0 ? static_cast<int>(width * static_cast<double>(done) / static_cast<double>(total_)) : 0;
            std::string bar(static_cast<std::size_t>(filled), '#');
            bar.resize(width, '.');
            std::fprintf(out_, "\r[%s] %lld/%lld  %.2f it/s  ETA %s  %s\033[K", bar.c_str(), static_cast<long long>(done),
                         static_cast<long long>(total_), rate, format_duration(eta).c_str(), status.c_str());
            if (done >= total_) std::fputc('\n', out_);
        } else if (done % plain_every_ == 0 || done >= total_) {
            std::fprintf(out_, "step %lld/%lld  %.2f it/s  elapsed %s  ETA %s  %s\n", static_cast<long long>(done),
                         static_cast<long long>(total_), rate, format_duration(elapsed).c_str(),
                         format_duration(eta).c_str(), status.c_str());
        }
        std::fflush(out_);
    }

    /// Prints a message on its own line without breaking the bar.
    void message(const std::string& text) {
        if (interactive_) std::fputs("\r\033[K", out_);
        std::fprintf(out_, "%s\n", text.c_str());
        std::fflush(out_);
    }

    [[nodiscard]] double seconds_since_start() const {
        return std::chrono::duration<double>(clock::now() - start_).count();
    }

    static std::string format_duration(double s) {
        if (!(s >= 0) || s > 1e7) return "--:--";
        const auto t = static_cast<long long>(s + 0.5);
        char buf[32];
        if (t >= 3600)
            std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", t / 3600, t / 60 % 60, t % 60);
        else
            std::snprintf(buf, sizeof buf, "%02lld:%02lld", t / 60, t % 60);
        return buf;
    }

private:
    using clock = std::chrono::steady_clock;
    std::int64_t total_;
    std::FILE* out_;
    std::int64_t plain_every_;
    bool interactive_;
    clock::time_point start_;
};

}  // namespace hyperadapt
