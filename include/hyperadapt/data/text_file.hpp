#pragma once
// Line-oriented reading shared by the GLUE (TSV) and SuperGLUE (jsonl) readers. Every fault a reader finds
// is reported as "path:line: fault", the form editors and compilers use, so a user can jump to the row.
#include <algorithm>
#include <charconv>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "hyperadapt/core/errors.hpp"
#include "hyperadapt/io/regular_file.hpp"

namespace hyperadapt::data::detail {

/// The whole file as bytes. A missing file most often means a wrong data root, so the message says so; a
/// FIFO, directory or device under the file's name is refused without reading (io/regular_file.hpp).
inline std::string read_whole_file(const std::filesystem::path& file) {
    std::error_code ec;
    if (!std::filesystem::exists(std::filesystem::symlink_status(file, ec)))
        throw io_error(file.string() + ": no such file (is the data directory passed to the reader right?)");
    return io::read_regular_file(file);
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

/// The offset of the first byte that does not start or continue a well-formed UTF-8 sequence (Unicode's
/// definition: no overlong forms, no surrogates, nothing above U+10FFFF, no truncated sequence), or npos
/// when `s` is valid. The readers check their text columns with it so that a bad byte is reported with its
/// file, line and column rather than later by the tokenizer, which knows neither; it is written out here
/// because the readers do not otherwise depend on utf8proc.
inline std::size_t first_invalid_utf8(std::string_view s) noexcept {
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    const auto continuation = [&](std::size_t i, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
        return i < s.size() && byte(i) >= lo && byte(i) <= hi;
    };
    for (std::size_t i = 0; i < s.size();) {
        const unsigned char b = byte(i);
        std::size_t n = 0;
        if (b < 0x80) n = 1;
        else if (b >= 0xC2 && b <= 0xDF) n = continuation(i + 1) ? 2 : 0;
        else if (b == 0xE0) n = continuation(i + 1, 0xA0) && continuation(i + 2) ? 3 : 0;
        else if (b == 0xED) n = continuation(i + 1, 0x80, 0x9F) && continuation(i + 2) ? 3 : 0;
        else if (b >= 0xE1 && b <= 0xEF) n = continuation(i + 1) && continuation(i + 2) ? 3 : 0;
        else if (b == 0xF0) n = continuation(i + 1, 0x90) && continuation(i + 2) && continuation(i + 3) ? 4 : 0;
        else if (b >= 0xF1 && b <= 0xF3) n = continuation(i + 1) && continuation(i + 2) && continuation(i + 3) ? 4 : 0;
        else if (b == 0xF4) n = continuation(i + 1, 0x80, 0x8F) && continuation(i + 2) && continuation(i + 3) ? 4 : 0;
        if (n == 0) return i;
        i += n;
    }
    return std::string_view::npos;
}

/// Throws "file:line: column 'name': not valid UTF-8: byte 0x.. at byte offset k of the field" when
/// `field` is not valid UTF-8.
inline void check_utf8_field(std::string_view field, std::string_view column, const std::filesystem::path& file,
                             std::size_t line) {
    const std::size_t bad = first_invalid_utf8(field);
    if (bad == std::string_view::npos) return;
    constexpr const char* hex = "0123456789abcdef";
    const auto b = static_cast<unsigned char>(field[bad]);
    std::string fault = "column '";
    fault.append(column);
    fault += "': not valid UTF-8: byte 0x";
    fault += hex[b >> 4];
    fault += hex[b & 15];
    fault += " at byte offset " + std::to_string(bad) + " of the field";
    fail_at(file, line, fault);
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
