#pragma once
// Training metrics as JSON Lines: one self-contained record per line, flushed as written, so a run that is
// stopped still leaves a readable log, and tools (jq, pandas, the plotter below) read it incrementally.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyperadapt/core/errors.hpp"

namespace hyperadapt {

class metrics_log {
public:
    /// Opens `path` for appending (a resumed run continues the same log). A last line cut short by a crash
    /// is closed with a newline first, so the next record starts a line of its own instead of extending it.
    explicit metrics_log(const std::filesystem::path& path) : path_(path) {
        if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
        bool torn = false;
        {
            std::ifstream in(path, std::ios::binary | std::ios::ate);
            if (in && in.tellg() > 0) {
                in.seekg(-1, std::ios::end);
                torn = in.get() != '\n';
            }
        }
        out_.open(path, std::ios::app);
        if (!out_) throw io_error(path.string() + ": cannot open the metrics log for writing");
        if (torn) out_ << '\n';
    }

    /// Writes one record; `fields` may hold numbers, strings, arrays or objects.
    void write(const nlohmann::json& record) {
        out_ << record.dump() << '\n';
        out_.flush();
        if (!out_) throw io_error(path_.string() + ": writing the metrics log failed");
    }

    [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

private:
    std::filesystem::path path_;
    std::ofstream out_;
};

/// Reads every record of a metrics log. A line that is not a JSON object (torn by a crash mid-write, or
/// edited by hand) is passed over; with `skipped`, each such line is reported there as "file:line: reason".
/// Without `skipped`, the first such line throws io_error naming the file and the line.
inline std::vector<nlohmann::json> read_metrics_log(const std::filesystem::path& path,
                                                    std::vector<std::string>* skipped = nullptr) {
    std::ifstream in(path);
    if (!in) throw io_error(path.string() + ": cannot open the metrics log");
    std::vector<nlohmann::json> out;
    std::string line;
    for (std::size_t n = 1; std::getline(in, line); ++n) {
        if (line.empty()) continue;
        std::string why;
        try {
            auto j = nlohmann::json::parse(line);
            if (j.is_object())
                out.push_back(std::move(j));
            else
                why = "not a JSON object";
        } catch (const nlohmann::json::exception& e) {
            why = std::string("not a JSON record (") + e.what() + ")";
        }
        if (why.empty()) continue;
        const std::string where = path.string() + ":" + std::to_string(n) + ": " + why;
        if (!skipped) throw io_error(where);
        skipped->push_back(where);
    }
    return out;
}

namespace detail {
/// Text gnuplot reads as a plain double-quoted string: letters, digits and " _-.,:()/" kept, anything else
/// (quotes, backslashes, control characters, non-ASCII) replaced by '_'.
inline std::string gnuplot_label(const std::string& s) {
    std::string out;
    for (const char c : s)
        out += (std::isalnum(static_cast<unsigned char>(c)) || std::string_view(" _-.,:()/").find(c) != std::string_view::npos)
                   ? c
                   : '_';
    return out;
}

/// Runs `program` (found on PATH) with no arguments and no shell, stdin from `in`, stdout to `out`, stderr to
/// `err`. Returns the exit status, or -1 with *why when it could not be started or ended by a signal.
inline int run_program(const char* program, const std::filesystem::path& in, const std::filesystem::path& out,
                       const std::filesystem::path& err, std::string* why) {
    posix_spawn_file_actions_t files;
    if (::posix_spawn_file_actions_init(&files) != 0) {
        if (why) *why = "posix_spawn_file_actions_init failed";
        return -1;
    }
    ::posix_spawn_file_actions_addopen(&files, 0, in.c_str(), O_RDONLY, 0);
    ::posix_spawn_file_actions_addopen(&files, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::posix_spawn_file_actions_addopen(&files, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::string name = program;
    char* argv[] = {name.data(), nullptr};
    pid_t pid = 0;
    const int rc = ::posix_spawnp(&pid, program, &files, nullptr, argv, environ);
    ::posix_spawn_file_actions_destroy(&files);
    if (rc != 0) {
        if (why) *why = std::string("cannot start ") + program + ": " + std::strerror(rc);
        return -1;
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            if (why) *why = std::string("waitpid: ") + std::strerror(errno);
            return -1;
        }
    if (!WIFEXITED(status)) {
        if (why) *why = std::string(program) + " ended by a signal";
        return -1;
    }
    return WEXITSTATUS(status);
}
}  // namespace detail

/// Plots per-task curves of one evaluation split (records with "split": `split` -- "dev", or "validation" when
/// the run selects its model on a validation split --, "step", "task" and a numeric `metric` field) to a
/// PNG with gnuplot. Returns false, with the reason in *why, when gnuplot is missing or fails; returns true
/// with a note in *why when lines of the log had to be passed over. The run itself never depends on plotting. No shell is involved and no path
/// reaches gnuplot's command language: gnuplot is started directly, reads its script (data inline) on stdin
/// and writes the PNG to its stdout, which is a temporary file renamed over `png` only on success.
inline bool plot_dev_curves(const std::filesystem::path& log, const std::filesystem::path& png,
                            const std::string& metric = "score", std::string* why = nullptr,
                            const std::string& split = "dev") {
    std::vector<std::string> skipped;
    const auto records = read_metrics_log(log, &skipped);
    std::map<std::string, std::vector<std::pair<double, double>>> curves;
    for (const auto& r : records)
        if (r.value("split", "") == split && r.contains("task") && r["task"].is_string() && r.contains(metric) &&
            r.contains("step") && r[metric].is_number() && r["step"].is_number())
            curves[r["task"].get<std::string>()].emplace_back(r["step"].get<double>(), r[metric].get<double>());
    std::string note;
    if (!skipped.empty())
        note = std::to_string(skipped.size()) + " unreadable line(s) passed over, the first " + skipped.front();
    if (curves.empty()) {
        if (why) *why = "no " + split + " records with a numeric '" + metric + "' in " + log.string() + (note.empty() ? "" : "; " + note);
        return false;
    }
    auto sibling = [&](const char* suffix) { return std::filesystem::path(png.string() + suffix); };
    const auto script = sibling(".gp.tmp"), image = sibling(".tmp"), errors = sibling(".err.tmp");
    {
        std::ofstream g(script);
        g << "set terminal pngcairo size 900,540\nset key outside right\nset grid\nset xlabel \"step\"\n"
          << "set ylabel \"" << detail::gnuplot_label(split) << " " << detail::gnuplot_label(metric) << "\"\nplot ";
        std::size_t i = 0;
        for (const auto& [task, pts] : curves)
            g << (i++ ? ", " : "") << "'-' using 1:2 with linespoints title \"" << detail::gnuplot_label(task) << "\"";
        g << '\n';
        g.precision(17);
        for (const auto& [task, pts] : curves) {
            for (const auto& [x, y] : pts) g << x << ' ' << y << '\n';
            g << "e\n";
        }
        if (!g) {
            if (why) *why = script.string() + ": cannot write the gnuplot script";
            return false;
        }
    }
    std::string failure;
    const int rc = detail::run_program("gnuplot", script, image, errors, &failure);
    std::error_code ec;
    if (rc == 0) {
        std::filesystem::rename(image, png, ec);
        if (ec) failure = png.string() + ": " + ec.message();
    } else if (rc > 0) {
        std::ifstream e(errors);
        const std::string output((std::istreambuf_iterator<char>(e)), std::istreambuf_iterator<char>());
        failure = "gnuplot failed (exit " + std::to_string(rc) + "; is it installed? apt-get install gnuplot-nox): " + output;
    }
    for (const auto& f : {script, image, errors}) std::filesystem::remove(f, ec);
    if (!failure.empty()) {
        if (why) *why = failure + (note.empty() ? "" : "; " + note);
        return false;
    }
    if (why) *why = note;
    return true;
}

}  // namespace hyperadapt
