#pragma once
// PHA's bottleneck adapter (spec §2.1; PHA modeling/adapter_layer.py::AdapterLayer):
//
//   A(x) = ReLU(x W_down^T + b_down) W_up^T + b_up          no internal LayerNorm, no residual
//
// as the authors' code computes it; PHA adds A(LN(h)) to the FFN branch outside the adapter. The
// `residual` option returns x + A(x) for callers that place the adapter in series.
//
// The weights come from one of two places:
//   * the adapter's own parameters ("<name>.adapter_down_manual.{weight,bias}" (r, d), (r) and
//     "<name>.adapter_up_manual.{weight,bias}" (d, r), (d)): PHA's shared encoder adapter. Init: Xavier-
//     uniform with gain 1e-4, biases 0.
//   * generated per example (PHA's decoder adapters, from the hypernetwork): a batch of weights in the
//     authors' layout — down weight (batch, d*r) viewed (batch, d, r), so h = x @ W; up weight
//     (batch, r*d) viewed (batch, r, d); down bias (batch, r); up bias (batch, d). Applied by
//     batched_adapter (layers/pha/batched_adapter.hpp: one strided-batched GEMM per product, the biases as
//     rank-1 batched products), the bottleneck HyperFormer's adapter shares, with ReLU and the (in, out)
//     layout; backward returns the gradients of all four.
//
// Shapes: x (batch, seq, d) or (rows, d) for own weights; (batch, seq, d) or (batch, d) for generated ones.
#include <cmath>
#include <cstddef>
#include <string>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/layers/pha/batched_adapter.hpp"
#include "hyperadapt/layers/pha/pha_ops.hpp"
#include "hyperadapt/nn/layer.hpp"

namespace hyperadapt {

struct task_adapter_options {
    /// False: no parameters of its own (a decoder adapter that only ever receives generated weights).
    /// PHA's code registers them anyway (trainable but unused); keep true to reproduce its counts.
    bool own_weights = true;
    /// Return x + A(x) instead of A(x).
    bool residual = false;
    /// Xavier-uniform gain of the own weights (PHA: 1e-4, so the adapter starts near zero).
    double init_gain = 1e-4;
};

/// Per-example adapter weights in the authors' flat layout (see the header comment).
template <class B, class T>
struct adapter_weights {
    tensor<B, T> down_weight;  // (batch, d*r), viewed (batch, d, r)
    tensor<B, T> down_bias;    // (batch, r)
    tensor<B, T> up_weight;    // (batch, r*d), viewed (batch, r, d)
    tensor<B, T> up_bias;      // (batch, d)
};

template <elementwise_backend B, class T = float>
class task_adapter {
public:
    using backend_type = B;
    using value_type = T;
    /// What applies generated weights: PHA's ReLU bottleneck in the authors' (in, out) layout.
    using generated_bottleneck = batched_adapter<B, T, adapter_activation::relu, weight_layout::in_out>;
    struct context {
        typename linear<B, T>::context down, up;
        tensor<B, T> input;   // x
        tensor<B, T> hidden;  // pre-activation (.., r) (own weights)
        typename generated_bottleneck::context bottleneck;  // generated path only
        adapter_weights<B, T> weights;                      // generated path only
        bool generated = false;
    };
    /// Gradients of the generated path: the input and each generated weight, in the weights' shapes.
    struct gradients {
        tensor<B, T> input;
        adapter_weights<B, T> weights;
    };

    task_adapter(B& backend, std::size_t features, std::size_t bottleneck, std::string name = "",
                 task_adapter_options options = {})
        : backend_(&backend),
          name_(std::move(name)),
          d_(features),
          r_(bottleneck),
          options_(options),
          generated_(backend, features, bottleneck, name_, "task_adapter"),
          down_(backend, features, options.own_weights ? bottleneck : 1, join_name(name_, "adapter_down_manual")),
          up_(backend, options.own_weights ? bottleneck : 1, features, join_name(name_, "adapter_up_manual")) {}

    /// Xavier-uniform(gain) weights, zero biases (PHA's init_linear_layer with std=1e-4 as a gain).
    template <class Rng>
    void initialize(Rng& rng) {
        if (!options_.own_weights) return;
        const T bound = static_cast<T>(options_.init_gain * std::sqrt(6.0 / static_cast<double>(d_ + r_)));
        for (auto* l : {&down_, &up_}) {
            auto& w = l->weight().value;
            backend_->fill_uniform(w.size(), rng.seed(), rng.take(w.size()), -bound, bound, w.data());
            l->bias().value.zero();
        }
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] std::size_t features() const noexcept { return d_; }
    [[nodiscard]] std::size_t bottleneck() const noexcept { return r_; }
    [[nodiscard]] bool has_own_weights() const noexcept { return options_.own_weights; }
    linear<B, T>& down() noexcept { return down_; }
    linear<B, T>& up() noexcept { return up_; }

    /// Own weights.
    tensor<B, T> forward(const tensor<B, T>& x, context& ctx, run_mode mode = {}) const {
        if (!options_.own_weights)
            throw error(name_ + ": task_adapter built without own weights needs generated weights");
        ctx = {};
        ctx.input = x;
        ctx.hidden = down_.forward(x, ctx.down, mode);
        tensor<B, T> a(*backend_, ctx.hidden.shape());
        pha_ops::relu_forward(*backend_, a.size(), ctx.hidden.data(), a.data());
        tensor<B, T> y = up_.forward(a, ctx.up, mode);
        if (options_.residual) backend_->axpy(y.size(), T(1), x.data(), y.data());
        return y;
    }

    tensor<B, T> backward(const tensor<B, T>& dy, context& ctx) {
        if (ctx.input.empty() || ctx.generated)
            throw error(name_ + ": backward(dy, ctx) needs a forward with own weights (use backward_generated)");
        tensor<B, T> da = up_.backward(dy, ctx.up);
        pha_ops::relu_backward(*backend_, da.size(), ctx.hidden.data(), da.data(), da.data());
        tensor<B, T> dx = down_.backward(da, ctx.down);
        if (options_.residual) backend_->axpy(dx.size(), T(1), dy.data(), dx.data());
        return dx;
    }

    /// Generated per-example weights.
    tensor<B, T> forward(const tensor<B, T>& x, const adapter_weights<B, T>& w, context& ctx, run_mode = {}) const {
        const std::size_t batch = generated_.check_input(name_, x);
        generated_.check_weights(name_, x, w, batch);
        ctx = {};
        ctx.generated = true;
        ctx.input = x;
        ctx.weights = w;
        // y_b = ReLU(x_b (len, d) @ W_down_b (d, r) + 1 b_down_b) @ W_up_b (r, d) + 1 b_up_b
        tensor<B, T> y = generated_.forward(x, w, batch, ctx.bottleneck);
        if (options_.residual) backend_->axpy(y.size(), T(1), x.data(), y.data());
        return y;
    }

    gradients backward_generated(const tensor<B, T>& dy, context& ctx) {
        if (ctx.input.empty() || !ctx.generated)
            throw error(name_ + ": backward_generated needs a forward with generated weights");
        expect_shape(name_.c_str(), "output gradient", ctx.input.shape(), dy.shape());
        gradients g;
        g.input = generated_.backward(dy, ctx.weights, ctx.bottleneck, g.weights);
        if (options_.residual) backend_->axpy(g.input.size(), T(1), dy.data(), g.input.data());
        return g;
    }

    template <class F>
    void visit_parameters(F&& f) {
        if (!options_.own_weights) return;
        down_.visit_parameters(f);
        up_.visit_parameters(f);
    }

private:
    B* backend_;
    std::string name_;
    std::size_t d_, r_;
    task_adapter_options options_;
    generated_bottleneck generated_;  // before the linears: it checks the sizes
    linear<B, T> down_, up_;
};

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
// task_adapter: the own-weights form; the generated-weights form takes the weights as a second input.
static_assert(unary_layer<task_adapter<archetype_backend, float>>,
              "hyperadapt::task_adapter must be a unary layer (nn/layer.hpp)");
static_assert(initializable<task_adapter<archetype_backend, float>>,
              "hyperadapt::task_adapter must be initializable: initialize(rng)");
}  // namespace hyperadapt
