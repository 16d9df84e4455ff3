#pragma once
// Global-norm gradient clipping, as torch.nn.utils.clip_grad_norm_ (L2 norm): the norm is taken over the
// gradients of all trainable parameters together, and when it exceeds max_norm every gradient is scaled
// by max_norm / (norm + 1e-6). Returns the norm before clipping.
#include <cmath>
#include <string>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/errors.hpp"
#include "hyperadapt/nn/layer.hpp"
#include "hyperadapt/nn/parameter.hpp"

namespace hyperadapt {

/// The L2 norm of all trainable parameters' gradients taken together.
template <parameterized M>
    requires elementwise_backend<typename M::backend_type>
[[nodiscard]] double gradient_norm(M& model) {
    using B = typename M::backend_type;
    using T = typename M::value_type;
    if constexpr (accumulating_reductions<B, T>) {
        // Every tensor's sum of squares added in backend memory, the total handed back once: on a GPU one wait
        // per step instead of one per parameter tensor (issue 13). The same additions in the same order.
        B* backend = nullptr;
        model.visit_parameters([&](const std::string&, parameter<B, T>& p) {
            if (!backend && p.trainable()) backend = &p.grad.backend();
        });
        if (!backend) return 0.0;
        auto total = backend->template allocate<double>(1);
        backend->fill(total.data(), 1, 0.0);
        model.visit_parameters([&](const std::string&, parameter<B, T>& p) {
            if (p.trainable()) p.grad.backend().sum_squares_accumulate(p.size(), p.grad.data(), total.data());
        });
        double sum = 0;
        backend->copy_to_host(total.data(), &sum, 1);
        return std::sqrt(sum);
    } else {
        double sum = 0;
        model.visit_parameters([&](const std::string&, parameter<B, T>& p) {
            if (p.trainable()) sum += p.grad.backend().sum_squares(p.size(), p.grad.data());
        });
        return std::sqrt(sum);
    }
}

/// Clips the global gradient norm to max_norm and returns the norm before clipping. A non-finite norm
/// throws when error_if_nonfinite is set; otherwise the gradients are left as they are (PyTorch would
/// scale them all to NaN), so the caller can inspect the returned norm and skip the step.
template <parameterized M>
    requires elementwise_backend<typename M::backend_type>
double clip_grad_norm(M& model, double max_norm, bool error_if_nonfinite = false) {
    using B = typename M::backend_type;
    using T = typename M::value_type;
    if (!(max_norm > 0)) throw config_error("hyperadapt::clip_grad_norm: max_norm must be > 0, got " + std::to_string(max_norm));
    const double norm = gradient_norm(model);
    if (!std::isfinite(norm)) {
        if (error_if_nonfinite)
            throw error("hyperadapt::clip_grad_norm: the total gradient norm is " + std::to_string(norm) +
                        "; gradients are not finite");
        return norm;
    }
    const double coef = max_norm / (norm + 1e-6);
    if (coef < 1) {
        model.visit_parameters([&](const std::string&, parameter<B, T>& p) {
            if (p.trainable()) p.grad.backend().scale(p.size(), T(coef), p.grad.data());
        });
    }
    return norm;
}

}  // namespace hyperadapt
