#pragma once
// Line-oriented reading shared by the GLUE (TSV) and SuperGLUE (jsonl) readers. Every fault a reader finds
// is reported as "path:line: fault", the form editors and compilers use, so a user can jump to the row.
#include <algorithm>
#include <charconv>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "hyperadapt/core/errors.hpp"

namespace hyperadapt::data::detail {

/// The whole file as bytes. A missing file most often means a wrong data root, so the message says so.
inline std::string read_whole_file(const std::filesystem::path& file) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec))
        throw io_error(file.string() + ": no such file (is the data directory passed to the reader right?)");
    std::ifstream in(file, std::ios::binary);
    if (!in) throw io_error(file.string() + ": cannot open for reading");
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) throw io_error(file.string() + ": read error");
    return std::move(text).str();
}

[[noreturn]] inline void fail_at(const std::filesystem::path& file, std::size_t line, const std::string& fault) {
    throw io_error(file.string() + ":" + std::to_string(line) + ": " + fault);
}

/// A field quoted for a message, shortened so that a runaway row does not flood the log.
inline std::string quote_field(std::string_view s) {
    constexpr std::size_t max_chars = 60;
    // Appended piece by piece: GCC 12 reports a false -Wrestrict on "'" + std::string(...) (GCC bug 105329).
    std::string q;
    q.reserve(std::min(s.size(), max_chars) + 5);
    q += '\'';
    q.append(s.substr(0, max_chars));
    if (s.size() > max_chars) q += "...";
    q += '\'';
    return q;
}

/// Shortest round-trip form of a number ("5", "0.25"), for messages.
inline std::string format_number(double v) {
    char buf[32];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    return ec == std::errc{} ? std::string(buf, end) : std::to_string(v);
}

/// Calls f(line_number, line) for each line, 1-based. A leading UTF-8 byte-order mark (MRPC's files start
/// with one) and one trailing '\r' per line (files that went through Windows) are removed. The empty
/// remainder after a final newline is not a line, and a last line without a newline is (CoLA's dev.tsv).
template <class F>
void for_each_line(std::string_view text, F&& f) {
    if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
    std::size_t number = 0;
    while (!text.empty()) {
        const auto end = text.find('\n');
        std::string_view line = text.substr(0, end);
        text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
        if (line.ends_with('\r')) line.remove_suffix(1);
        f(++number, line);
    }
}

/// Tab-separated fields with quoting disabled: a '"' is an ordinary character (GLUE sentences contain
/// unbalanced quotes, which a CSV-style reader would run across lines).
inline std::vector<std::string_view> split_tabs(std::string_view line) {
    std::vector<std::string_view> fields;
    std::size_t start = 0;
    for (;;) {
        const auto tab = line.find('\t', start);
        fields.push_back(line.substr(start, tab == std::string_view::npos ? std::string_view::npos : tab - start));
        if (tab == std::string_view::npos) return fields;
        start = tab + 1;
    }
}

}  // namespace hyperadapt::data::detail
