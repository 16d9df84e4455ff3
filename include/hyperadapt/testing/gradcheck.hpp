#pragma once
// A gradient checker for any layer or composition, shipped so users can check their own layers.
//
// It differentiates L = sum(r * forward()) for a fixed random r, analytically through backward() and
// numerically by central differences in double precision, for every element of every input and every
// trainable parameter (or a strided sample of them on large tensors). It also:
//   * poisons new backend buffers with NaN, so an input-gradient element backward never wrote fails;
//   * checks that parameter gradients accumulate (a second backward doubles them);
//   * refuses a vacuous pass: a tensor whose numeric gradient is all zero is reported, unless allowed.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/backend/counter_rng.hpp"
#include "hyperadapt/nn/layer.hpp"

namespace hyperadapt::testing {

struct gradcheck_options {
    double step = 1e-6;          ///< central-difference step
    double relative_tolerance = 1e-6;
    double absolute_tolerance = 1e-8;
    std::uint64_t seed = 1234;   ///< seeds the projection r
    std::size_t max_checks_per_tensor = 0;  ///< 0 checks every element; else a strided sample
    bool check_accumulation = true;
    bool allow_zero_gradient = false;  ///< permit any tensor whose true gradient is identically zero
    /// Names (as reported: "parameter 'x.y'" / "input 'x'") whose gradient is known to be zero, such as
    /// attention's key bias (softmax ignores a per-row constant); their all-zero gradient is not vacuous.
    std::vector<std::string> known_zero_gradients = {};
};

struct gradcheck_result {
    bool ok = true;
    std::size_t checked = 0;
    double worst_error_ratio = 0;  ///< max |a - n| / (atol + rtol * max(|a|, |n|)); <= 1 passes
    std::string report;            ///< one line per failure, empty when ok
};

template <class B>
struct gradcheck_input {
    std::string name;
    tensor<B, double>* value;  ///< perturbed in place, restored afterwards
};

/// The general form. `forward` must be deterministic (seed its own rng per call) and read the current
/// values of `inputs` and of the parameters that `visit_parameters` reaches. `backward(dy)` returns one
/// gradient per input, in order.
template <memory_backend B, class Visit>
gradcheck_result check_gradients(B& backend, std::vector<gradcheck_input<B>> inputs, Visit&& visit_parameters,
                                 const std::function<tensor<B, double>()>& forward,
                                 const std::function<std::vector<tensor<B, double>>(const tensor<B, double>&)>& backward,
                                 const gradcheck_options& opts = {}) {
    gradcheck_result result;
    std::ostringstream report;
    struct poison_guard {
        B& b;
        bool old;
        ~poison_guard() {
            if constexpr (requires { b.set_poison_new_buffers(old); }) b.set_poison_new_buffers(old);
        }
    };
    bool old_poison = false;
    if constexpr (requires { backend.set_poison_new_buffers(true); }) {
        old_poison = backend.poison_new_buffers();
        backend.set_poison_new_buffers(true);
    }
    poison_guard guard{backend, old_poison};

    struct target {
        std::string name;
        tensor<B, double>* value;
        std::vector<double> analytic;
    };
    std::vector<parameter<B, double>*> params;
    std::vector<std::string> param_names;
    visit_parameters([&](const std::string& name, parameter<B, double>& p) {
        if (p.trainable()) {
            params.push_back(&p);
            param_names.push_back(name);
        }
    });
    for (auto* p : params) p->zero_grad();

    tensor<B, double> y = forward();
    std::vector<double> r(y.size());
    for (std::size_t i = 0; i < r.size(); ++i)
        r[i] = 2.0 * detail::uniform01(opts.seed, i) - 1.0;
    const auto dy = tensor<B, double>::from_host(backend, y.shape(), r);
    auto loss = [&](const tensor<B, double>& out) {
        const auto h = out.to_host();
        double s = 0;
        for (std::size_t i = 0; i < h.size(); ++i) s += r[i] * h[i];
        return s;
    };

    std::vector<tensor<B, double>> input_grads = backward(dy);
    if (input_grads.size() != inputs.size()) {
        result.ok = false;
        result.report = "backward returned " + std::to_string(input_grads.size()) + " input gradients for " +
                        std::to_string(inputs.size()) + " inputs";
        return result;
    }
    std::vector<target> targets;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        if (!(input_grads[i].shape() == inputs[i].value->shape())) {
            result.ok = false;
            report << "input '" << inputs[i].name << "': gradient shape " << input_grads[i].shape().str()
                   << " != input shape " << inputs[i].value->shape().str() << "\n";
            continue;
        }
        targets.push_back({"input '" + inputs[i].name + "'", inputs[i].value, input_grads[i].to_host()});
    }
    for (std::size_t i = 0; i < params.size(); ++i)
        targets.push_back({"parameter '" + param_names[i] + "'", &params[i]->value, params[i]->grad.to_host()});

    if (opts.check_accumulation && !params.empty()) {
        (void)forward();
        (void)backward(dy);
        for (std::size_t i = 0; i < params.size(); ++i) {
            const auto twice = params[i]->grad.to_host();
            const auto& once = targets[targets.size() - params.size() + i].analytic;
            for (std::size_t j = 0; j < once.size(); ++j) {
                const double want = 2 * once[j];
                if (!(std::abs(twice[j] - want) <= 1e-12 + 1e-9 * std::abs(want))) {
                    result.ok = false;
                    report << "parameter '" << param_names[i] << "': gradient does not accumulate (element " << j
                           << ": " << twice[j] << " after two backwards, expected " << want << ")\n";
                    break;
                }
            }
        }
    }

    for (auto& t : targets) {
        const std::size_t n = t.value->size();
        const std::size_t stride =
            opts.max_checks_per_tensor == 0 ? 1 : std::max<std::size_t>(1, n / opts.max_checks_per_tensor);
        auto host = t.value->to_host();
        double numeric_norm = 0;
        std::size_t failures = 0;
        for (std::size_t j = 0; j < n; j += stride) {
            const double orig = host[j];
            auto eval_at = [&](double v) {
                host[j] = v;
                backend.copy_from_host(host.data() + j, t.value->data() + j, 1);
                return loss(forward());
            };
            const double lp = eval_at(orig + opts.step);
            const double lm = eval_at(orig - opts.step);
            eval_at(orig);
            const double numeric = (lp - lm) / (2 * opts.step);
            const double analytic = t.analytic[j];
            numeric_norm += numeric * numeric;
            ++result.checked;
            const double bound =
                opts.absolute_tolerance + opts.relative_tolerance * std::max(std::abs(analytic), std::abs(numeric));
            const double ratio = std::abs(analytic - numeric) / bound;
            result.worst_error_ratio = std::max(result.worst_error_ratio, std::isnan(ratio) ? 1e300 : ratio);
            if (!(ratio <= 1.0)) {
                result.ok = false;
                if (failures++ < 5)
                    report << t.name << "[" << j << "]: analytic " << analytic << ", numeric " << numeric << "\n";
            }
        }
        if (failures > 5) report << t.name << ": " << failures - 5 << " more mismatches\n";
        const bool known_zero = std::find(opts.known_zero_gradients.begin(), opts.known_zero_gradients.end(),
                                          t.name) != opts.known_zero_gradients.end();
        if (numeric_norm == 0 && !opts.allow_zero_gradient && !known_zero) {
            result.ok = false;
            report << t.name << ": numeric gradient is identically zero (the check would be vacuous)\n";
        }
    }
    result.report = report.str();
    return result;
}

/// The common case: a unary layer and one input.
template <unary_layer L>
    requires std::same_as<typename L::value_type, double>
gradcheck_result check_layer(L& layer, tensor<typename L::backend_type, double> input,
                             const gradcheck_options& opts = {}, std::uint64_t dropout_seed = 7) {
    using B = typename L::backend_type;
    B& backend = input.backend();
    typename L::context ctx;
    return check_gradients<B>(
        backend, {{"x", &input}}, [&](auto&& f) { layer.visit_parameters(f); },
        [&] {
            rng_stream rng(dropout_seed);
            ctx = {};
            return layer.forward(input, ctx, run_mode::train(rng));
        },
        [&](const tensor<B, double>& dy) { return std::vector<tensor<B, double>>{layer.backward(dy, ctx)}; }, opts);
}

}  // namespace hyperadapt::testing
