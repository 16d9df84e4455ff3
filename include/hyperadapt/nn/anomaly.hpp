#pragma once
// Anomaly detection, as PyTorch's torch.autograd.detect_anomaly: names the module that first produced a
// non-finite value (NaN or infinity), in the forward or the backward pass.
//
// Opt-in per call and without global state: a forward pass run with a detector in its run_mode
//
//     anomaly_detector detect;
//     const auto out = model.forward(ids, types, mask, ctx, run_mode::train(rng).detecting_anomalies(detect));
//     model.backward(d_last_hidden, {}, ctx);
//
// checks, at every module boundary that has a check site, the module's output (forward) and the gradient it
// passes back to its inputs (backward: each module keeps the detector pointer in its context, so the backward
// of a checked forward is checked too). The first check that fails throws anomaly_error with the module's
// Hugging Face path ("encoder.layer.3.attention.self"), the pass, and the first non-finite element. Since
// forward checks run in execution order and backward checks in reverse, the module named is the first one
// whose result is not finite although everything it read was.
//
// Off (the default: a null pointer in run_mode) a check site costs one branch. A check site is a call of
// check_output / check_input_gradient with the module's name; a composition of layers (sequential, a model)
// adds its own sites without any global registry.
#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "hyperadapt/core/errors.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/nn/mode.hpp"
#include "hyperadapt/tensor/tensor.hpp"

namespace hyperadapt {

enum class anomaly_pass { forward, backward };

[[nodiscard]] inline const char* to_string(anomaly_pass p) noexcept {
    return p == anomaly_pass::forward ? "forward" : "backward";
}

/// A module produced a non-finite value while an anomaly_detector was watching.
class anomaly_error : public error {
public:
    anomaly_error(std::string module, anomaly_pass pass, std::string what, hyperadapt::shape s, std::size_t index,
                  double value)
        : error(message(module, pass, what, s, index, value)),
          module_(std::move(module)),
          what_(std::move(what)),
          shape_(s),
          index_(index),
          value_(value),
          pass_(pass) {}

    /// The module's Hugging Face path, e.g. "encoder.layer.1.attention.self".
    [[nodiscard]] const std::string& module() const noexcept { return module_; }
    [[nodiscard]] anomaly_pass pass() const noexcept { return pass_; }
    /// Which tensor: "output" (forward) or "input gradient" and the like (backward).
    [[nodiscard]] const std::string& tensor_name() const noexcept { return what_; }
    [[nodiscard]] const hyperadapt::shape& tensor_shape() const noexcept { return shape_; }
    /// Row-major index of the first non-finite element.
    [[nodiscard]] std::size_t index() const noexcept { return index_; }
    /// Its value (NaN, +inf or -inf), as a double.
    [[nodiscard]] double value() const noexcept { return value_; }

private:
    static std::string message(const std::string& module, anomaly_pass pass, const std::string& what,
                               const hyperadapt::shape& s, std::size_t index, double value) {
        // The element's coordinates, e.g. (0, 3, 17) in a (2, 8, 32) tensor.
        std::vector<std::size_t> coords(s.rank());
        std::size_t rest = index;
        for (std::size_t d = s.rank(); d-- > 0;) {
            coords[d] = s[d] ? rest % s[d] : 0;
            rest = s[d] ? rest / s[d] : 0;
        }
        std::string at = "(";
        for (std::size_t d = 0; d < coords.size(); ++d) at += (d ? ", " : "") + std::to_string(coords[d]);
        at += ")";
        const char* v = std::isnan(value) ? "nan" : value > 0 ? "inf" : "-inf";
        return "anomaly detected in " + std::string(to_string(pass)) + ": " + (module.empty() ? "<model>" : module) +
               ": non-finite " + what + " (" + v + " at element " + std::to_string(index) + " = " + at +
               " of shape " + s.str() + ")";
    }

    std::string module_, what_;
    hyperadapt::shape shape_;
    std::size_t index_;
    double value_;
    anomaly_pass pass_;
};

/// Watches the tensors of the passes whose run_mode carries it (see the file comment). It counts the tensors
/// it checked, so a test can tell that checks ran.
class anomaly_detector {
public:
    /// Throws anomaly_error if `t` has a non-finite element. `module` + "." + `sub` (sub may be empty) names
    /// the module; `what` the tensor. Integer tensors are not checked.
    template <class B, class T>
    void check(anomaly_pass pass, std::string_view module, std::string_view sub, std::string_view what,
               const tensor<B, T>& t) {
        ++checked_;
        if constexpr (std::is_floating_point_v<T>) {
            if (t.empty()) return;
            // One device-side reduction first: a sum of squares is finite iff every element is, unless it
            // overflows, which the element scan below then clears. Only a failing tensor is copied to the host.
            if constexpr (requires { t.backend().sum_squares(t.size(), t.data()); })
                if (std::isfinite(t.backend().sum_squares(t.size(), t.data()))) return;
            const std::vector<T> h = t.to_host();
            throw_first_nonfinite(pass, module, sub, what, t.shape(), std::span<const T>(h));
        }
    }

    /// The same for values on the host (a loss computed there): `s` is their shape, for the message.
    template <class T>
    void check_values(anomaly_pass pass, std::string_view module, std::string_view sub, std::string_view what,
                      const hyperadapt::shape& s, std::span<const T> values) {
        ++checked_;
        throw_first_nonfinite(pass, module, sub, what, s, values);
    }

    /// Throws anomaly_error if the scalar `v` (a loss) is not finite.
    void check_value(anomaly_pass pass, std::string_view module, std::string_view what, double v) {
        ++checked_;
        if (!std::isfinite(v))
            throw anomaly_error(std::string(module), pass, std::string(what), hyperadapt::shape{}, 0, v);
    }

    /// How many tensors and scalars were checked since construction.
    [[nodiscard]] std::size_t checked() const noexcept { return checked_; }

private:
    template <class T>
    static void throw_first_nonfinite(anomaly_pass pass, std::string_view module, std::string_view sub,
                                      std::string_view what, const hyperadapt::shape& s, std::span<const T> values) {
        for (std::size_t i = 0; i < values.size(); ++i)
            if (!std::isfinite(values[i])) {
                std::string name(module);
                if (!sub.empty()) name += (name.empty() ? "" : ".") + std::string(sub);
                throw anomaly_error(std::move(name), pass, std::string(what), s, i, static_cast<double>(values[i]));
            }
    }

    std::size_t checked_ = 0;
};

// ---- check sites ----------------------------------------------------------------------------------------
// `d` is run_mode::anomaly in forward and the copy a module's context keeps of it in backward; null = off.

/// Forward: the output of module `module` (+ "." + `sub`).
template <class B, class T>
inline void check_output(anomaly_detector* d, std::string_view module, std::string_view sub, const tensor<B, T>& y) {
    if (d != nullptr) [[unlikely]]
        d->check(anomaly_pass::forward, module, sub, "output", y);
}

/// Backward: the gradient module `module` (+ "." + `sub`) passes to its input(s).
template <class B, class T>
inline void check_input_gradient(anomaly_detector* d, std::string_view module, std::string_view sub,
                                 const tensor<B, T>& dx, std::string_view what = "input gradient") {
    if (d != nullptr) [[unlikely]]
        d->check(anomaly_pass::backward, module, sub, what, dx);
}

/// Backward: the same for a gradient on the host, of shape `s` (a loss computed there, before its upload).
template <class T>
inline void check_input_gradient_values(anomaly_detector* d, std::string_view module, std::string_view sub,
                                        const hyperadapt::shape& s, std::span<const T> dx,
                                        std::string_view what = "input gradient") {
    if (d != nullptr) [[unlikely]]
        d->check_values(anomaly_pass::backward, module, sub, what, s, dx);
}

/// Forward: a scalar a module computed (a loss).
inline void check_scalar(anomaly_detector* d, std::string_view module, std::string_view what, double v) {
    if (d != nullptr) [[unlikely]]
        d->check_value(anomaly_pass::forward, module, what, v);
}

}  // namespace hyperadapt
