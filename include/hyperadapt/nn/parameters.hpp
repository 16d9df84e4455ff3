#pragma once
// Generic tools over anything `parameterized`: counting, zeroing, listing and freezing parameters. They are
// written once against visit_parameters(f), so a new layer gets them without any code of its own.
//
// Name patterns are ECMAScript regular expressions (std::regex), searched anywhere in the parameter name
// (std::regex_search, as Python's re.search in the original CA-MTL and HyperFormer freeze rules). Anchor
// with ^ and $ to match a whole name; escape dots ("encoder\\.layer\\.0\\.") when they must be literal.
//
// Functions that select by pattern or range throw config_error when the selection is empty: a freeze
// rule that matches nothing is almost always a typo, and a silent no-op would train the whole model.
#include <cstddef>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "hyperadapt/core/errors.hpp"
#include "hyperadapt/nn/layer.hpp"
#include "hyperadapt/nn/parameter.hpp"

namespace hyperadapt {

/// The parameter type a parameterized object exposes.
template <parameterized M>
using parameter_of = parameter<typename M::backend_type, typename M::value_type>;

struct parameter_count {
    std::size_t total = 0;      ///< scalars in all parameters
    std::size_t trainable = 0;  ///< scalars in parameters that have a gradient buffer
    std::size_t tensors = 0;    ///< number of parameter tensors

    friend bool operator==(const parameter_count&, const parameter_count&) = default;
};

template <parameterized M>
[[nodiscard]] parameter_count count_parameters(M& model) {
    parameter_count c;
    model.visit_parameters([&](const std::string&, parameter_of<M>& p) {
        c.total += p.size();
        if (p.trainable()) c.trainable += p.size();
        ++c.tensors;
    });
    return c;
}

/// Zeroes every trainable parameter's gradient (backward accumulates, as in PyTorch).
template <parameterized M>
void zero_grad(M& model) {
    model.visit_parameters([](const std::string&, parameter_of<M>& p) { p.zero_grad(); });
}

/// Every parameter name, in visiting order.
template <parameterized M>
[[nodiscard]] std::vector<std::string> parameter_names(M& model) {
    std::vector<std::string> names;
    model.visit_parameters([&](const std::string& name, parameter_of<M>&) { names.push_back(name); });
    return names;
}

/// Names of the parameters that currently have a gradient buffer.
template <parameterized M>
[[nodiscard]] std::vector<std::string> trainable_parameter_names(M& model) {
    std::vector<std::string> names;
    model.visit_parameters([&](const std::string& name, parameter_of<M>& p) {
        if (p.trainable()) names.push_back(name);
    });
    return names;
}

namespace detail {
inline std::regex compile_name_pattern(std::string_view pattern, const char* caller) {
    try {
        return std::regex(pattern.begin(), pattern.end(), std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
        throw config_error(std::string(caller) + ": invalid name pattern \"" + std::string(pattern) +
                           "\" (ECMAScript regex): " + e.what());
    }
}

/// Freezes or unfreezes the parameters whose names `select` accepts; returns how many there were.
template <parameterized M, class Select>
std::size_t set_trainable_where(M& model, bool trainable, Select&& select) {
    std::size_t selected = 0;
    model.visit_parameters([&](const std::string& name, parameter_of<M>& p) {
        if (!select(name)) return;
        ++selected;
        if (trainable)
            p.unfreeze();
        else
            p.freeze();
    });
    return selected;
}

/// True when `name` lies in encoder layer i: it starts with "encoder.layer.<i>." or contains
/// ".encoder.layer.<i>." (a model wrapped as "bert.encoder..."). The trailing dot keeps layer 1 from
/// matching layer 10.
inline bool in_encoder_layer(std::string_view name, std::size_t i) {
    const std::string key = "encoder.layer." + std::to_string(i) + ".";
    if (name.substr(0, key.size()) == key) return true;
    return name.find("." + key) != std::string_view::npos;
}
}  // namespace detail

/// Freezes every parameter whose name matches `pattern` (see the header comment for the syntax). Frozen
/// parameters release their gradient memory and get no optimizer state. Returns how many were frozen.
template <parameterized M>
std::size_t freeze(M& model, std::string_view pattern) {
    const std::regex re = detail::compile_name_pattern(pattern, "hyperadapt::freeze");
    const std::size_t n = detail::set_trainable_where(
        model, false, [&](const std::string& name) { return std::regex_search(name, re); });
    if (n == 0) throw config_error("hyperadapt::freeze: pattern \"" + std::string(pattern) + "\" matches no parameter");
    return n;
}

/// Unfreezes every parameter whose name matches `pattern`, giving it a zeroed gradient. Returns the count.
template <parameterized M>
std::size_t unfreeze(M& model, std::string_view pattern) {
    const std::regex re = detail::compile_name_pattern(pattern, "hyperadapt::unfreeze");
    const std::size_t n = detail::set_trainable_where(
        model, true, [&](const std::string& name) { return std::regex_search(name, re); });
    if (n == 0)
        throw config_error("hyperadapt::unfreeze: pattern \"" + std::string(pattern) + "\" matches no parameter");
    return n;
}

template <parameterized M>
void freeze_all(M& model) {
    model.visit_parameters([](const std::string&, parameter_of<M>& p) { p.freeze(); });
}

template <parameterized M>
void unfreeze_all(M& model) {
    model.visit_parameters([](const std::string&, parameter_of<M>& p) { p.unfreeze(); });
}

/// Freezes encoder layers [first, last): every parameter under "encoder.layer.<i>." for first <= i < last,
/// except names matching `except_pattern` (empty: no exception). CA-MTL's "--freeze_encoder_layers a-b"
/// is inclusive, i.e. freeze_encoder_layers(m, a, b + 1, whitelist); its whitelist keeps the task-
/// conditioned parts of frozen layers trainable. Throws config_error when the range is reversed or a layer
/// in it has no parameters (the model has fewer layers). Returns how many parameters were frozen.
template <parameterized M>
std::size_t freeze_encoder_layers(M& model, std::size_t first, std::size_t last, std::string_view except_pattern = {}) {
    if (first > last)
        throw config_error("hyperadapt::freeze_encoder_layers: empty range [" + std::to_string(first) + ", " +
                           std::to_string(last) + ")");
    for (std::size_t i = first; i < last; ++i) {
        bool found = false;
        model.visit_parameters([&](const std::string& name, parameter_of<M>&) {
            found = found || detail::in_encoder_layer(name, i);
        });
        if (!found)
            throw config_error("hyperadapt::freeze_encoder_layers: no parameter named \"encoder.layer." +
                               std::to_string(i) + ".*\"; the model has fewer layers than the range [" +
                               std::to_string(first) + ", " + std::to_string(last) + ")");
    }
    std::regex keep;
    if (!except_pattern.empty())
        keep = detail::compile_name_pattern(except_pattern, "hyperadapt::freeze_encoder_layers");
    std::size_t frozen = 0;
    model.visit_parameters([&](const std::string& name, parameter_of<M>& p) {
        bool in_range = false;
        for (std::size_t i = first; i < last && !in_range; ++i) in_range = detail::in_encoder_layer(name, i);
        if (!in_range || (!except_pattern.empty() && std::regex_search(name, keep))) return;
        p.freeze();
        ++frozen;
    });
    return frozen;
}

/// Unfreezes encoder layers [first, last) (gradual unfreezing). Same range checks as freeze_encoder_layers.
template <parameterized M>
std::size_t unfreeze_encoder_layers(M& model, std::size_t first, std::size_t last) {
    if (first > last)
        throw config_error("hyperadapt::unfreeze_encoder_layers: empty range [" + std::to_string(first) + ", " +
                           std::to_string(last) + ")");
    std::size_t n = 0;
    for (std::size_t i = first; i < last; ++i) {
        const std::size_t k = detail::set_trainable_where(
            model, true, [&](const std::string& name) { return detail::in_encoder_layer(name, i); });
        if (k == 0)
            throw config_error("hyperadapt::unfreeze_encoder_layers: no parameter named \"encoder.layer." +
                               std::to_string(i) + ".*\"; the model has fewer layers than the range [" +
                               std::to_string(first) + ", " + std::to_string(last) + ")");
        n += k;
    }
    return n;
}

}  // namespace hyperadapt
