#pragma once
// JSON from untrusted files (safetensors headers, config.json, SuperGLUE rows, checkpoint state) parsed
// with a nesting limit, and JSON values described for error messages without recursion.
//
// nlohmann's parser keeps its own stack and does not recurse, but dump(), comparisons and a caller's own
// walk over the result do: a 2 MB file of "[[[[..." nests a million deep and overflows the stack when a
// message dumps it. No file this library reads needs more than a few levels, so the parse stops at
// max_json_depth with an io_error naming the source and the key path that led there, and messages show
// values through json_summary(), which never descends into arrays or objects.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hyperadapt/core/errors.hpp"

namespace hyperadapt::io {

/// The deepest nesting of arrays and objects accepted (the top-level value counts as level 1).
inline constexpr int max_json_depth = 64;

/// A value as it may appear in an error message: scalars as JSON (strings shortened to 60 characters),
/// arrays and objects as "an array of N elements" / "an object of N members".
[[nodiscard]] inline std::string json_summary(const nlohmann::json& v) {
    if (v.is_array()) return "an array of " + std::to_string(v.size()) + " elements";
    if (v.is_object()) return "an object of " + std::to_string(v.size()) + " members";
    if (v.is_string()) {
        const auto& s = v.get_ref<const std::string&>();
        constexpr std::size_t max_chars = 60;
        if (s.size() <= max_chars) return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        // The cut may split a UTF-8 sequence: "replace" prints it as U+FFFD instead of throwing.
        std::string quoted =
            nlohmann::json(s.substr(0, max_chars)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        return quoted.insert(quoted.size() - 1, "...");  // inside the closing quote
    }
    return v.dump();  // a number, boolean or null
}

/// nlohmann's message without its "[json.exception...] parse error at line 1, column 31: " prefix, whose
/// line and column count within the text it was given (one line of a file, a header after its length).
[[nodiscard]] inline std::string json_parse_reason(std::string_view what) {
    const auto column = what.find("column ");
    const auto colon = column == std::string_view::npos ? column : what.find(": ", column);
    return std::string(colon == std::string_view::npos ? what : what.substr(colon + 2));
}

/// Parses [first, last) as JSON. `source` names the input in errors ("model.safetensors: header"). Throws
/// io_error for invalid JSON (nlohmann's reason appended) and for nesting deeper than `max_depth`, naming
/// the chain of keys that leads to the too-deep value. `on_event(depth, event, parsed)` is called for every
/// parse event as with nlohmann's parser callback and returns whether to keep the value.
template <class OnEvent>
[[nodiscard]] nlohmann::json parse_json(const char* first, const char* last, const std::string& source,
                                        OnEvent&& on_event, int max_depth = max_json_depth) {
    std::vector<std::string> keys;  // keys[d - 1]: the key most recently read at depth d
    auto callback = [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) -> bool {
        using event = nlohmann::json::parse_event_t;
        if (ev == event::key) {
            keys.resize(static_cast<std::size_t>(depth));
            keys.back() = parsed.get<std::string>();
        } else if ((ev == event::object_start || ev == event::array_start) && depth >= max_depth) {
            std::string path;
            for (std::size_t i = 0; i < keys.size() && i < static_cast<std::size_t>(depth); ++i)
                path += (path.empty() ? "'" : " > '") + keys[i].substr(0, 60) + "'";
            throw io_error(source + ": JSON nested deeper than " + std::to_string(max_depth) + " levels" +
                           (path.empty() ? std::string() : " under " + path));
        }
        return on_event(depth, ev, parsed);
    };
    try {
        return nlohmann::json::parse(first, last, callback);
    } catch (const nlohmann::json::parse_error& e) {
        throw io_error(source + ": not valid JSON: invalid JSON at byte " + std::to_string(e.byte) + ": " +
                       json_parse_reason(e.what()));
    } catch (const nlohmann::json::exception& e) {
        throw io_error(source + ": not valid JSON (" + e.what() + ")");
    }
}

[[nodiscard]] inline nlohmann::json parse_json(std::string_view text, const std::string& source,
                                               int max_depth = max_json_depth) {
    return parse_json(
        text.data(), text.data() + text.size(), source, [](int, nlohmann::json::parse_event_t, nlohmann::json&) { return true; },
        max_depth);
}

}  // namespace hyperadapt::io
