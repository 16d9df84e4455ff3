#pragma once
// Training metrics as JSON Lines: one self-contained record per line, flushed as written, so a run that is
// stopped still leaves a readable log, and tools (jq, pandas, the plotter below) read it incrementally.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyperadapt/core/errors.hpp"

namespace hyperadapt {

class metrics_log {
public:
    /// Opens `path` for appending (a resumed run continues the same log).
    explicit metrics_log(const std::filesystem::path& path) : path_(path) {
        if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
        out_.open(path, std::ios::app);
        if (!out_) throw io_error(path.string() + ": cannot open the metrics log for writing");
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

/// Reads every record of a metrics log (lines that do not parse are reported with their line number).
inline std::vector<nlohmann::json> read_metrics_log(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in) throw io_error(path.string() + ": cannot open the metrics log");
    std::vector<nlohmann::json> out;
    std::string line;
    for (std::size_t n = 1; std::getline(in, line); ++n) {
        if (line.empty()) continue;
        try {
            out.push_back(nlohmann::json::parse(line));
        } catch (const nlohmann::json::exception& e) {
            throw io_error(path.string() + ":" + std::to_string(n) + ": not a JSON record (" + e.what() + ")");
        }
    }
    return out;
}

/// Plots per-task dev curves (records with "split": "dev", "step", "task" and a numeric `metric` field) to a
/// PNG with gnuplot. Returns false, with the reason in *why, when gnuplot is missing or fails; the run itself
/// never depends on plotting.
inline bool plot_dev_curves(const std::filesystem::path& log, const std::filesystem::path& png,
                            const std::string& metric = "score", std::string* why = nullptr) {
    const auto records = read_metrics_log(log);
    std::map<std::string, std::vector<std::pair<double, double>>> curves;
    for (const auto& r : records)
        if (r.value("split", "") == "dev" && r.contains("task") && r.contains(metric) && r.contains("step") &&
            r[metric].is_number())
            curves[r["task"].get<std::string>()].emplace_back(r["step"].get<double>(), r[metric].get<double>());
    if (curves.empty()) {
        if (why) *why = "no dev records with a numeric '" + metric + "' in " + log.string();
        return false;
    }
    const auto data = std::filesystem::path(png).replace_extension(".dat");
    {
        std::ofstream d(data);
        for (const auto& [task, pts] : curves) {
            d << "\"" << task << "\"\n";
            for (const auto& [x, y] : pts) d << x << ' ' << y << '\n';
            d << "\n\n";
        }
    }
    std::string script = "set terminal pngcairo size 900,540; set output '" + png.string() +
                         "'; set key outside right; set grid; set xlabel 'step'; set ylabel 'dev " + metric +
                         "'; plot ";
    for (std::size_t i = 0; i < curves.size(); ++i)
        script += (i ? ", " : "") + std::string("'") + data.string() + "' index " + std::to_string(i) +
                  " using 1:2 with linespoints title columnheader(1)";
    const std::string cmd = "gnuplot -e \"" + script + "\" 2>&1";
    std::FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) {
        if (why) *why = "cannot start gnuplot";
        return false;
    }
    std::string output;
    char buf[256];
    while (std::fgets(buf, sizeof buf, p)) output += buf;
    const int rc = ::pclose(p);
    if (rc != 0 || !std::filesystem::exists(png)) {
        if (why) *why = "gnuplot failed (is it installed? apt-get install gnuplot-nox): " + output;
        return false;
    }
    return true;
}

}  // namespace hyperadapt
