#pragma once
// BERT's feed-forward sub-layer: Hugging Face's BertIntermediate (dense + GELU) and BertOutput
// (dense -> dropout -> residual -> LayerNorm).
#include <string>

#include "hyperadapt/layers/activations.hpp"
#include "hyperadapt/layers/dropout.hpp"
#include "hyperadapt/layers/layer_norm.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/nn/anomaly.hpp"

namespace hyperadapt {

/// y = LayerNorm(x + dropout(W2 gelu(W1 x + b1) + b2)). `prefix` is the layer path ("encoder.layer.3");
/// parameters are "<prefix>.intermediate.dense.*", "<prefix>.output.dense.*", "<prefix>.output.LayerNorm.*".
template <elementwise_backend B, class T = float>
class feed_forward {
public:
    using backend_type = B;
    using value_type = T;
    struct context {
        typename linear<B, T>::context up;
        typename gelu<B, T>::context act;
        typename linear<B, T>::context down;
        typename dropout<B, T>::context drop;
        typename layer_norm<B, T>::context norm;
        anomaly_detector* anomaly = nullptr;
    };

    feed_forward(B& backend, std::size_t hidden, std::size_t intermediate, T hidden_dropout, T layer_norm_eps,
                 std::string prefix = "")
        : backend_(&backend),
          name_(std::move(prefix)),
          up_(backend, hidden, intermediate, join_name(name_, "intermediate.dense")),
          act_(backend, join_name(name_, "intermediate.gelu")),
          down_(backend, intermediate, hidden, join_name(name_, "output.dense")),
          drop_(backend, hidden_dropout, join_name(name_, "output.dropout")),
          norm_(backend, hidden, join_name(name_, "output.LayerNorm"), layer_norm_eps) {}

    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        up_.initialize(rng, stddev);
        down_.initialize(rng, stddev);
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }

    tensor<B, T> forward(const tensor<B, T>& x, context& ctx, run_mode mode) const {
        ctx.anomaly = mode.anomaly;
        const tensor<B, T> inner = act_.forward(up_.forward(x, ctx.up, mode), ctx.act, mode);
        check_output(mode.anomaly, name_, "intermediate", inner);  // Hugging Face's BertIntermediate
        tensor<B, T> y = drop_.forward(down_.forward(inner, ctx.down, mode), ctx.drop, mode);
        backend_->add(x.size(), x.data(), y.data(), y.data());
        tensor<B, T> out = norm_.forward(y, ctx.norm, mode);
        check_output(mode.anomaly, name_, "output", out);  // BertOutput
        return out;
    }

    tensor<B, T> backward(const tensor<B, T>& dy, context& ctx) {
        tensor<B, T> dsum = norm_.backward(dy, ctx.norm);
        check_input_gradient(ctx.anomaly, name_, "output", dsum);
        const tensor<B, T> dinner = down_.backward(drop_.backward(dsum, ctx.drop), ctx.down);
        check_input_gradient(ctx.anomaly, name_, "output", dinner);
        tensor<B, T> dx = up_.backward(act_.backward(dinner, ctx.act), ctx.up);
        check_input_gradient(ctx.anomaly, name_, "intermediate", dx);
        backend_->axpy(dsum.size(), T(1), dsum.data(), dx.data());  // residual path
        return dx;
    }

    template <class F>
    void visit_parameters(F&& f) {
        up_.visit_parameters(f);
        down_.visit_parameters(f);
        norm_.visit_parameters(f);
    }

private:
    B* backend_;
    std::string name_;
    linear<B, T> up_;
    gelu<B, T> act_;
    linear<B, T> down_;
    dropout<B, T> drop_;
    layer_norm<B, T> norm_;
};

}  // namespace hyperadapt
