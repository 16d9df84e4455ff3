#pragma once
// Parameter groups: parameters chosen by a pattern on their names, each group with its own learning rate,
// weight decay and warmup. Hypernetworks, prototypes, adapters, heads and a pretrained backbone want rates
// an order of magnitude apart; one rate for all of them either leaves the new modules untrained or wrecks
// the backbone.
//
// A parameter belongs to the first group whose pattern it matches (std::regex_search, ECMAScript, on the
// parameter's full name as visit_parameters reports it, e.g. "layers.4.adapter.down.weight"), and to the
// default group (the optimizer's own rate and decay) when it matches none. A group that matches no
// parameter is an error: a typo in a pattern would otherwise train with the default rate and say nothing.
//
// On the command line a group is written "REGEX=LR[,wd=DECAY][,warmup=PROPORTION]", e.g.
// "hypernet|prototype=1e-3,wd=0" (see parse_parameter_group).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "hyperadapt/core/errors.hpp"

namespace hyperadapt {

struct parameter_group {
    std::string pattern;                      ///< searched in each parameter's name (ECMAScript regex)
    double lr = 0;                            ///< the group's peak learning rate
    std::optional<double> weight_decay{};     ///< default: the optimizer's
    std::optional<double> warmup_proportion{};///< default: the trainer's (a schedule's, not AdamW's)

    friend bool operator==(const parameter_group&, const parameter_group&) = default;
};

/// The group as the command line writes it (parse_parameter_group reads it back).
inline std::string to_string(const parameter_group& g) {
    auto num = [](double v) {  // the shortest of %.15g and %.17g that reads back as v
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.15g", v);
        if (std::strtod(buf, nullptr) != v) std::snprintf(buf, sizeof buf, "%.17g", v);
        return std::string(buf);
    };
    std::string s = g.pattern + "=" + num(g.lr);
    if (g.weight_decay) s += ",wd=" + num(*g.weight_decay);
    if (g.warmup_proportion) s += ",warmup=" + num(*g.warmup_proportion);
    return s;
}

/// What is wrong with a group's values or pattern, or empty when nothing is.
inline std::string parameter_group_problem(const parameter_group& g) {
    if (g.pattern.empty()) return "the pattern is empty";
    try {
        const std::regex re(g.pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
        return "'" + g.pattern + "' is not a valid regular expression (" + e.what() + ")";
    }
    if (!(g.lr >= 0) || !std::isfinite(g.lr)) return "the learning rate must be a finite number >= 0";
    if (g.weight_decay && (!(*g.weight_decay >= 0) || !std::isfinite(*g.weight_decay)))
        return "wd must be a finite number >= 0";
    if (g.warmup_proportion && !(*g.warmup_proportion >= 0 && *g.warmup_proportion <= 1))
        return "warmup must be a proportion in [0, 1]";
    return {};
}

/// Checks a group's values and that its pattern is a valid regular expression; config_error names the group.
inline void validate(const parameter_group& g) {
    if (const std::string why = parameter_group_problem(g); !why.empty())
        throw config_error("parameter group '" + to_string(g) + "': " + why);
}

/// Reads "REGEX=LR[,wd=DECAY][,warmup=PROPORTION]". The rate follows the first '=' that is followed by a
/// number ending the text or a ',' (so a pattern may itself hold '=' and ','), the options follow the rate.
/// Throws config_error naming the text and what is wrong.
inline parameter_group parse_parameter_group(std::string_view spec) {
    const std::string text(spec);
    auto fail = [&](const std::string& what) -> void {
        throw config_error("parameter group '" + text + "': " + what +
                           " (expected REGEX=LR[,wd=DECAY][,warmup=PROPORTION], e.g. 'adapter=1e-3,wd=0')");
    };
    auto number = [&](const std::string& s, const char* what) {
        char* end = nullptr;
        const double v = s.empty() ? NAN : std::strtod(s.c_str(), &end);
        if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v)) fail(std::string(what) + " '" + s + "' is not a number");
        return v;
    };
    parameter_group g;
    std::string rest;
    bool found = false;
    for (std::size_t eq = text.find('='); eq != std::string::npos && !found; eq = text.find('=', eq + 1)) {
        const char* begin = text.c_str() + eq + 1;
        char* end = nullptr;
        const double v = std::strtod(begin, &end);
        if (end == begin || (*end != '\0' && *end != ',')) continue;
        found = true;
        g.pattern = text.substr(0, eq);
        g.lr = v;
        rest = *end == ',' ? std::string(end + 1) : std::string();
    }
    if (!found) {
        const std::size_t eq = text.rfind('=');
        if (eq == std::string::npos) fail("no '=' between the pattern and the learning rate");
        number(text.substr(eq + 1, text.find(',', eq) - eq - 1), "learning rate");  // names the bad rate
    }
    while (!rest.empty()) {
        const std::size_t comma = rest.find(',');
        const std::string item = rest.substr(0, comma);
        rest = comma == std::string::npos ? std::string() : rest.substr(comma + 1);
        const std::size_t e = item.find('=');
        const std::string key = item.substr(0, e), value = e == std::string::npos ? std::string() : item.substr(e + 1);
        if (key == "wd" && !g.weight_decay)
            g.weight_decay = number(value, "wd");
        else if (key == "warmup" && !g.warmup_proportion)
            g.warmup_proportion = number(value, "warmup");
        else
            fail("unknown or repeated option '" + item + "' (wd= and warmup= are known, once each)");
    }
    if (const std::string why = parameter_group_problem(g); !why.empty()) fail(why);
    return g;
}

}  // namespace hyperadapt
