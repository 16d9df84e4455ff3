#pragma once
#include <span>
#include <string>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/tensor/tensor.hpp"

namespace hyperadapt {

/// Mean squared error, as torch.nn.functional.mse_loss with reduction="mean": mean((pred - target)^2)
/// over all elements.
///
/// pred and target must agree once dimensions of size 1 are dropped, so a regression head's (batch, 1)
/// output takes (batch) targets, as Hugging Face's squeeze() before MSELoss. Both must hold at least one
/// element (the mean of nothing is undefined).
template <elementwise_backend B, class T = float>
class mse_loss {
public:
    using backend_type = B;
    using value_type = T;
    struct context {
        tensor<B, T> diff;  ///< pred - target, in pred's shape
        double loss = 0;
        bool ready = false;
    };

    explicit mse_loss(B& backend, std::string name = "mse") : backend_(&backend), name_(std::move(name)) {}

    [[nodiscard]] const std::string& name() const noexcept { return name_; }

    /// Returns the mean loss (also kept in ctx.loss), reduced in double.
    double forward(const tensor<B, T>& pred, const tensor<B, T>& target, context& ctx) const {
        differences(pred, target, ctx);
        ctx.loss = backend_->sum_squares(ctx.diff.size(), ctx.diff.data()) / static_cast<double>(ctx.diff.size());
        return ctx.loss;
    }

    /// forward in two halves, for a caller with several losses that copies them all back at once
    /// (layers/multitask_heads.hpp; on a GPU one wait instead of one reduction per loss): forward_rows keeps
    /// what backward needs and writes pred - target (pred.size() values) to `differences_out` in backend memory;
    /// finish takes their host copy and returns the mean of their squares, summed in double as forward (the
    /// order of the additions may differ from the backend's, so the loss may differ in its last bits; the
    /// gradient does not).
    void forward_rows(const tensor<B, T>& pred, const tensor<B, T>& target, context& ctx, T* differences_out) const {
        differences(pred, target, ctx);
        backend_->copy(ctx.diff.data(), differences_out, ctx.diff.size());
    }
    double finish(context& ctx, std::span<const T> host_differences) const {
        if (!ctx.ready) throw error(name_ + ": finish called without forward_rows");
        if (host_differences.size() != ctx.diff.size())
            throw shape_error(name_ + ": finish got " + std::to_string(host_differences.size()) + " differences for " +
                              std::to_string(ctx.diff.size()) + " predictions");
        double total = 0;
        for (const T d : host_differences) total += static_cast<double>(d) * static_cast<double>(d);
        ctx.loss = total / static_cast<double>(host_differences.size());
        return ctx.loss;
    }

    /// d(scale * loss) / d pred = 2 * scale * (pred - target) / n.
    tensor<B, T> backward(const context& ctx, T scale = T(1)) const {
        if (!ctx.ready) throw error(name_ + ": backward called without a forward");
        const std::size_t n = ctx.diff.size();
        tensor<B, T> dpred(*backend_, ctx.diff.shape());
        backend_->copy(ctx.diff.data(), dpred.data(), n);
        backend_->scale(n, T(2) * scale / static_cast<T>(n), dpred.data());
        return dpred;
    }

private:
    /// Checks the shapes and keeps pred - target in ctx.diff (what backward needs).
    void differences(const tensor<B, T>& pred, const tensor<B, T>& target, context& ctx) const {
        if (!(squeezed(pred.shape()) == squeezed(target.shape())))
            throw shape_error(name_ + ": prediction has shape " + pred.shape().str() + " but target has shape " +
                              target.shape().str());
        if (pred.empty() || target.empty() || pred.size() == 0)
            throw shape_error(name_ + ": prediction " + pred.shape().str() + " has no elements");
        ctx = {};
        const std::size_t n = pred.size();
        ctx.diff = tensor<B, T>(*backend_, pred.shape());
        backend_->copy(pred.data(), ctx.diff.data(), n);
        backend_->axpy(n, T(-1), target.data(), ctx.diff.data());
        ctx.ready = true;
    }
    static hyperadapt::shape squeezed(const hyperadapt::shape& s) {
        hyperadapt::shape out;
        for (std::size_t i = 0; i < s.rank(); ++i) {
            if (s[i] == 1) continue;
            out = appended(out, s[i]);
        }
        return out;
    }
    static hyperadapt::shape appended(const hyperadapt::shape& s, std::size_t d) {
        switch (s.rank()) {
            case 0: return {d};
            case 1: return {s[0], d};
            case 2: return {s[0], s[1], d};
            default: return {s[0], s[1], s[2], d};
        }
    }

    B* backend_;
    std::string name_;
};

}  // namespace hyperadapt
