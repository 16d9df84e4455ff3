#pragma once
#include <string>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/nn/layer.hpp"

namespace hyperadapt {

/// Inverted dropout. The mask is a pure function of (seed, offset) drawn from the run_mode's rng_stream,
/// so it is regenerated in backward rather than stored, and a run is bit-identical for a given seed.
/// Identity at inference or when p == 0.
template <elementwise_backend B, class T = float>
class dropout {
public:
    using backend_type = B;
    using value_type = T;
    struct context {
        bool active = false;
        std::uint64_t seed = 0;
        std::uint64_t offset = 0;
        hyperadapt::shape shape;
    };

    dropout(B& backend, T p, std::string name = "dropout") : backend_(&backend), name_(std::move(name)), p_(p) {
        if (!(p >= T(0) && p < T(1)))
            throw config_error(name_ + ": dropout probability must be in [0, 1), got " + std::to_string(p));
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] T probability() const noexcept { return p_; }

    tensor<B, T> forward(const tensor<B, T>& x, context& ctx, run_mode mode) const {
        ctx.shape = x.shape();
        ctx.active = mode.training && p_ > T(0);
        if (!ctx.active) return x;
        if (mode.rng == nullptr) throw error(name_ + ": training with dropout needs run_mode::train(rng)");
        ctx.seed = mode.rng->seed();
        ctx.offset = mode.rng->take(x.size());
        tensor<B, T> y(*backend_, x.shape());
        backend_->dropout_forward(x.size(), p_, ctx.seed, ctx.offset, x.data(), y.data());
        return y;
    }

    /// dropout(y) + residual: the residual add of a transformer layer in the same pass as the dropout where the
    /// backend fuses them (fused_primitives). Inactive (inference, p == 0), the sum is made in y's memory; y is
    /// taken by value, a handle: the caller gives up its own use of that memory. The backward is backward(): the
    /// residual's gradient is the output gradient itself.
    tensor<B, T> forward_add(tensor<B, T> y, const tensor<B, T>& residual, context& ctx, run_mode mode) const {
        expect_shape(name_.c_str(), "residual", y.shape(), residual.shape());
        if constexpr (fused_primitives<B, T>) {
            ctx.shape = y.shape();
            ctx.active = mode.training && p_ > T(0);
            if (ctx.active) {
                if (mode.rng == nullptr) throw error(name_ + ": training with dropout needs run_mode::train(rng)");
                ctx.seed = mode.rng->seed();
                ctx.offset = mode.rng->take(y.size());
                tensor<B, T> out(*backend_, y.shape());
                backend_->dropout_add_forward(y.size(), p_, ctx.seed, ctx.offset, y.data(), residual.data(), out.data());
                return out;
            }
        }
        tensor<B, T> out = forward(y, ctx, mode);
        backend_->axpy(out.size(), T(1), residual.data(), out.data());
        return out;
    }

    tensor<B, T> backward(const tensor<B, T>& dy, context& ctx) {
        expect_shape(name_.c_str(), "output gradient", ctx.shape, dy.shape());
        if (!ctx.active) return dy;
        tensor<B, T> dx(*backend_, dy.shape());
        backend_->dropout_backward(dy.size(), p_, ctx.seed, ctx.offset, dy.data(), dx.data());
        return dx;
    }

    /// The forward's output, made again from its input x and the saved mask, with the input gradient: for a
    /// caller that reads the output in its own backward but does not keep it (attention's dropped
    /// probabilities, the largest activation of a BERT layer). One pass where the backend fuses the two.
    struct output_and_gradient {
        tensor<B, T> output, input_gradient;
    };
    output_and_gradient backward_with_output(const tensor<B, T>& x, const tensor<B, T>& dy, context& ctx) {
        expect_shape(name_.c_str(), "output gradient", ctx.shape, dy.shape());
        expect_shape(name_.c_str(), "input", ctx.shape, x.shape());
        if (!ctx.active) return {x, dy};
        output_and_gradient r{tensor<B, T>(*backend_, x.shape()), tensor<B, T>(*backend_, dy.shape())};
        if constexpr (fused_primitives<B, T>) {
            backend_->dropout_forward_backward(x.size(), p_, ctx.seed, ctx.offset, x.data(), dy.data(), r.output.data(),
                                               r.input_gradient.data());
        } else {
            backend_->dropout_forward(x.size(), p_, ctx.seed, ctx.offset, x.data(), r.output.data());
            backend_->dropout_backward(dy.size(), p_, ctx.seed, ctx.offset, dy.data(), r.input_gradient.data());
        }
        return r;
    }

    template <class F>
    void visit_parameters(F&&) {}

private:
    B* backend_;
    std::string name_;
    T p_;
};

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
static_assert(unary_layer<dropout<archetype_backend, float>>,
              "hyperadapt::dropout must be a unary layer (nn/layer.hpp)");
}  // namespace hyperadapt
