#pragma once
// The bottleneck with generated per-group weights that PHA's decoder adapter (task_adapter's generated path,
// spec §2.1) and HyperFormer's adapter (hyperformer_adapter, spec §3.1) both are at their core:
//
//   o_g = act(x_g W_down,g + 1 b_down,g) W_up,g + 1 b_up,g          for every group g of rows
//
// The input's rows fall into G equal groups, each with its own down/up weights and biases: G = batch gives one
// set per example (PHA's generated decoder adapters), G = 1 one set for all rows (HyperFormer's single-task
// batches). Every product is one strided-batched GEMM over the groups and each bias a rank-1 batched product
// with a ones column, so a call costs four GEMM launches forward and six backward whatever the batch.
//
// The two modules differ only in what this takes as parameters:
//   * Activation: adapter_activation::relu (PHA) or adapter_activation::gelu_new (HyperFormer), each a policy
//     with forward(b, n, x, y, saved) and backward(b, n, x, saved, dy, dx). `saved` is what the backward needs
//     besides the pre-activation x (gelu_new's tanh); a policy that needs nothing says so with
//     `saves_state = false` and gets no buffer.
//   * Layout: how a generated weight of a projection in -> out is stored.
//       weight_layout::in_out  (in, out), applied as x @ W        the authors' torch.bmm layout in PHA
//       weight_layout::out_in  (out, in), applied as x @ W^T      F.linear's layout, HyperFormer's
//     Each layout forms its weight gradient with its natural operand order ((in, out) = x^T dy, (out, in) =
//     dy^T x), so every GEMM is the one a direct implementation of that module would call.
//
// Residuals, layer norms and parameter-less wrappers belong to the callers: this is only the bottleneck.
// Generated weights come in any struct with the fields down_weight, down_bias, up_weight and up_bias
// (adapter_weights, hyperformer_adapter_weights), flat per group: (G, d*r), (G, r), (G, r*d), (G, d).
#include <concepts>
#include <cstddef>
#include <string>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/errors.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/layers/pha/pha_ops.hpp"
#include "hyperadapt/tensor/tensor.hpp"

namespace hyperadapt {

/// How a generated projection weight mapping `in` features to `out` features is laid out per group.
enum class weight_layout {
    in_out,  ///< (in, out): y = x @ W (PHA's adapter_weights)
    out_in,  ///< (out, in): y = x @ W^T (F.linear; hyperformer_adapter_weights)
};

namespace adapter_activation {

/// PHA's ReLU. Backward reads only the pre-activation.
struct relu {
    static constexpr bool saves_state = false;
    template <elementwise_backend B, class T>
    static void forward(B& b, std::size_t n, const T* x, T* y, T* /*saved*/) {
        pha_ops::relu_forward(b, n, x, y);
    }
    template <elementwise_backend B, class T>
    static void backward(B& b, std::size_t n, const T* x, const T* /*saved*/, const T* dy, T* dx) {
        pha_ops::relu_backward(b, n, x, dy, dx);
    }
};

/// HyperFormer's gelu_new (transformers 3.5.1's tanh form). Saves the tanh for the backward.
struct gelu_new {
    static constexpr bool saves_state = true;
    template <elementwise_backend B, class T>
    static void forward(B& b, std::size_t n, const T* x, T* y, T* saved) {
        pha_ops::gelu_new_forward(b, n, x, y, saved);
    }
    template <elementwise_backend B, class T>
    static void backward(B& b, std::size_t n, const T* x, const T* saved, const T* dy, T* dx) {
        pha_ops::gelu_new_backward(b, n, x, saved, dy, dx);
    }
};

}  // namespace adapter_activation

/// A struct of generated bottleneck weights (or of their gradients) that batched_adapter reads and writes.
template <class W, class B, class T>
concept generated_bottleneck_weights = requires(W& w) {
    { w.down_weight } -> std::same_as<tensor<B, T>&>;
    { w.down_bias } -> std::same_as<tensor<B, T>&>;
    { w.up_weight } -> std::same_as<tensor<B, T>&>;
    { w.up_bias } -> std::same_as<tensor<B, T>&>;
};

template <elementwise_backend B, class T, class Activation, weight_layout Layout>
class batched_adapter {
public:
    using backend_type = B;
    using value_type = T;
    using activation = Activation;
    static constexpr weight_layout layout = Layout;

    struct context {
        tensor<B, T> input;   // x, (rows, d)
        tensor<B, T> hidden;  // pre-activation (G, rows per group, r)
        tensor<B, T> saved;   // the activation's saved state (empty when it saves none)
        tensor<B, T> act;     // activation output
        std::size_t groups = 0;
    };

    /// `owner` and `kind` (the adapter's name and class) start the error messages.
    batched_adapter(B& backend, std::size_t features, std::size_t bottleneck, const std::string& owner,
                    const char* kind)
        : backend_(&backend), d_(features), r_(bottleneck) {
        if (features == 0 || bottleneck == 0)
            throw config_error(owner + ": " + kind + " needs non-zero features and bottleneck, got " +
                               std::to_string(features) + " and " + std::to_string(bottleneck));
    }

    [[nodiscard]] std::size_t features() const noexcept { return d_; }
    [[nodiscard]] std::size_t bottleneck() const noexcept { return r_; }

    /// Checks that x is (batch, seq, d) or (batch, d) with at least one element and returns the batch.
    /// The message starts with `module`, the caller's name.
    std::size_t check_input(const std::string& module, const tensor<B, T>& x) const {
        const auto& xs = x.shape();
        if (xs.rank() < 2 || xs.rank() > 3 || xs.cols() != d_ || xs[0] == 0 || xs.size() == 0)
            throw shape_error(module + ": input has shape " + xs.str() + ", expected (batch, seq, " +
                              std::to_string(d_) + ") or (batch, " + std::to_string(d_) + ")");
        return xs[0];
    }

    /// Checks that the four generated tensors of `w` hold `groups` sets for input x (x already checked).
    template <generated_bottleneck_weights<B, T> W>
    void check_weights(const std::string& module, const tensor<B, T>& x, const W& w, std::size_t groups) const {
        check_generated(module, x, "down weight", w.down_weight, groups, d_ * r_);
        check_generated(module, x, "down bias", w.down_bias, groups, r_);
        check_generated(module, x, "up weight", w.up_weight, groups, r_ * d_);
        check_generated(module, x, "up bias", w.up_bias, groups, d_);
    }

    /// Checks that a generated tensor has `groups` rows of `per_group` values each (also for the callers'
    /// own generated tensors, such as HyperFormer's layer-norm gains).
    void check_generated(const std::string& module, const tensor<B, T>& x, const char* what, const tensor<B, T>& t,
                         std::size_t groups, std::size_t per_group) const {
        if (t.empty() || t.shape()[0] != groups || t.size() != groups * per_group)
            throw shape_error(module + ": generated " + what + " has shape " + t.shape().str() + ", expected (" +
                              std::to_string(groups) + ", " + std::to_string(per_group) + ") for input " +
                              x.shape().str() + (groups == 1 && x.shape()[0] != 1 ? " (one set for the whole batch)" : ""));
    }

    /// o = act(x W_down + b_down) W_up + b_up per group (x: rows divisible into `groups`; checked weights).
    template <generated_bottleneck_weights<B, T> W>
    tensor<B, T> forward(const tensor<B, T>& x, const W& w, std::size_t groups, context& ctx) const {
        const std::size_t d = d_, r = r_, len = x.rows() / groups;
        const auto ld = static_cast<std::ptrdiff_t>(len * d), lr = static_cast<std::ptrdiff_t>(len * r);
        ctx = {};
        ctx.input = x;
        ctx.groups = groups;
        const tensor<B, T> ones = tensor<B, T>::filled(*backend_, {len}, T(1));
        ctx.hidden = tensor<B, T>(*backend_, {groups, len, r});
        project(len, d, r, x.data(), ld, w.down_weight.data(), ctx.hidden.data(), lr, groups);
        add_bias(len, r, ones, w.down_bias.data(), ctx.hidden.data(), lr, groups);
        ctx.act = tensor<B, T>(*backend_, ctx.hidden.shape());
        if constexpr (Activation::saves_state) ctx.saved = tensor<B, T>(*backend_, ctx.hidden.shape());
        Activation::forward(*backend_, ctx.act.size(), ctx.hidden.data(), ctx.act.data(), saved_data(ctx));
        tensor<B, T> out(*backend_, x.shape());
        project(len, r, d, ctx.act.data(), lr, w.up_weight.data(), out.data(), ld, groups);
        add_bias(len, d, ones, w.up_bias.data(), out.data(), ld, groups);
        return out;
    }

    /// Given d o, writes the gradients of the four generated tensors into `dw` (allocated here, shaped like
    /// w's) and returns d x. `w` is what forward used.
    template <generated_bottleneck_weights<B, T> W>
    tensor<B, T> backward(const tensor<B, T>& dout, const W& w, context& ctx, W& dw) const {
        const auto& x = ctx.input;
        const std::size_t groups = ctx.groups, d = d_, r = r_, len = x.rows() / groups;
        const auto ld = static_cast<std::ptrdiff_t>(len * d), lr = static_cast<std::ptrdiff_t>(len * r);
        const tensor<B, T> ones = tensor<B, T>::filled(*backend_, {len}, T(1));
        dw.up_bias = tensor<B, T>(*backend_, w.up_bias.shape());
        dw.up_weight = tensor<B, T>(*backend_, w.up_weight.shape());
        dw.down_bias = tensor<B, T>(*backend_, w.down_bias.shape());
        dw.down_weight = tensor<B, T>(*backend_, w.down_weight.shape());
        // Up projection r -> d: d b_up = 1^T do, d W_up, da = do W_up^(T)
        bias_gradient(len, d, ones, dout.data(), ld, dw.up_bias.data(), groups);
        weight_gradient(len, r, d, ctx.act.data(), lr, dout.data(), ld, dw.up_weight.data(), groups);
        tensor<B, T> dh(*backend_, ctx.hidden.shape());
        project_back(len, r, d, dout.data(), ld, w.up_weight.data(), dh.data(), lr, groups);
        Activation::backward(*backend_, dh.size(), ctx.hidden.data(), saved_data(ctx), dh.data(), dh.data());
        // Down projection d -> r: d b_down = 1^T dh, d W_down, dx = dh W_down^(T)
        bias_gradient(len, r, ones, dh.data(), lr, dw.down_bias.data(), groups);
        weight_gradient(len, d, r, x.data(), ld, dh.data(), lr, dw.down_weight.data(), groups);
        tensor<B, T> dx(*backend_, x.shape());
        project_back(len, d, r, dh.data(), lr, w.down_weight.data(), dx.data(), ld, groups);
        return dx;
    }

private:
    static constexpr bool weight_is_out_in = Layout == weight_layout::out_in;

    static T* saved_data(context& ctx) noexcept {
        if constexpr (Activation::saves_state)
            return ctx.saved.data();
        else
            return nullptr;
    }

    /// y_g (len, out) = x_g (len, in) @ W_g, W_g laid out per Layout.
    void project(std::size_t len, std::size_t in, std::size_t out, const T* x, std::ptrdiff_t x_stride, const T* w,
                 T* y, std::ptrdiff_t y_stride, std::size_t groups) const {
        backend_->gemm_strided_batched(transpose::no, weight_is_out_in ? transpose::yes : transpose::no, len, out, in,
                                       T(1), x, in, x_stride, w, weight_is_out_in ? in : out, weight_stride(in, out),
                                       T(0), y, out, y_stride, groups);
    }

    /// dx_g (len, in) = dy_g (len, out) @ W_g^T, the transpose of project.
    void project_back(std::size_t len, std::size_t in, std::size_t out, const T* dy, std::ptrdiff_t dy_stride,
                      const T* w, T* dx, std::ptrdiff_t dx_stride, std::size_t groups) const {
        backend_->gemm_strided_batched(transpose::no, weight_is_out_in ? transpose::no : transpose::yes, len, in, out,
                                       T(1), dy, out, dy_stride, w, weight_is_out_in ? in : out,
                                       weight_stride(in, out), T(0), dx, in, dx_stride, groups);
    }

    /// dW_g = x_g^T dy_g as (in, out), or dy_g^T x_g as (out, in).
    void weight_gradient(std::size_t len, std::size_t in, std::size_t out, const T* x, std::ptrdiff_t x_stride,
                         const T* dy, std::ptrdiff_t dy_stride, T* dw, std::size_t groups) const {
        if constexpr (weight_is_out_in)
            backend_->gemm_strided_batched(transpose::yes, transpose::no, out, in, len, T(1), dy, out, dy_stride, x,
                                           in, x_stride, T(0), dw, in, weight_stride(in, out), groups);
        else
            backend_->gemm_strided_batched(transpose::yes, transpose::no, in, out, len, T(1), x, in, x_stride, dy,
                                           out, dy_stride, T(0), dw, out, weight_stride(in, out), groups);
    }

    /// y_g += 1 b_g: a rank-1 product with the ones column.
    void add_bias(std::size_t len, std::size_t out, const tensor<B, T>& ones, const T* bias, T* y,
                  std::ptrdiff_t y_stride, std::size_t groups) const {
        backend_->gemm_strided_batched(transpose::no, transpose::no, len, out, 1, T(1), ones.data(), 1, 0, bias, out,
                                       static_cast<std::ptrdiff_t>(out), T(1), y, out, y_stride, groups);
    }

    /// db_g = 1^T dy_g.
    void bias_gradient(std::size_t len, std::size_t out, const tensor<B, T>& ones, const T* dy,
                       std::ptrdiff_t dy_stride, T* db, std::size_t groups) const {
        backend_->gemm_strided_batched(transpose::no, transpose::no, 1, out, len, T(1), ones.data(), len, 0, dy, out,
                                       dy_stride, T(0), db, out, static_cast<std::ptrdiff_t>(out), groups);
    }

    static std::ptrdiff_t weight_stride(std::size_t in, std::size_t out) noexcept {
        return static_cast<std::ptrdiff_t>(in * out);
    }

    B* backend_;
    std::size_t d_, r_;
};

}  // namespace hyperadapt
