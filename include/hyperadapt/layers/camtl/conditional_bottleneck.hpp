#pragma once
// The conditional bottleneck (spec §1.6; CA-MTL conditional_modules.py::ConditionalBottleNeck):
//
//   c   = emb_transf(z')                 Linear(d -> d)
//   h'  = FiLM(c, h)                     hidden_modulation: (1 + gamma(c)) * h + beta(c)
//   out = up_proj_layer(down_proj_layer(h'))    d -> floor(d / 3) -> d, NO activation in between
//
// Shapes: hidden_states (batch, seq, d) or (batch, d); condition z' (batch, d); out like hidden_states.
// The bottleneck width is floor(d / 3) as in the authors' code (d // 3: 768 -> 256, 1024 -> 341, 40 -> 13);
// another width may be given.
//
// Parameters: "<name>.emb_transf.*", "<name>.hidden_modulation.gb_weights.*", "<name>.down_proj_layer.*",
// "<name>.up_proj_layer.*".
#include <cstddef>
#include <string>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/layers/camtl/film.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/nn/layer.hpp"

namespace hyperadapt {

template <elementwise_backend B, class T = float>
class conditional_bottleneck {
public:
    using backend_type = B;
    using value_type = T;
    struct context {
        typename linear<B, T>::context emb, down, up;
        typename film<B, T>::context mod;
        hyperadapt::shape input_shape;
    };
    struct gradients {
        tensor<B, T> hidden_states;  // like hidden_states
        tensor<B, T> condition;      // (batch, d)
    };

    /// `bottleneck_features` 0 means floor(hidden / 3), the authors' width.
    conditional_bottleneck(B& backend, std::size_t hidden, std::string name = "bottleneck",
                           std::size_t bottleneck_features = 0)
        : name_(std::move(name)),
          hidden_(hidden),
          width_(bottleneck_features ? bottleneck_features : hidden / 3),
          emb_(backend, hidden, hidden, join_name(name_, "emb_transf")),
          mod_(backend, hidden, hidden, join_name(name_, "hidden_modulation")),
          down_(backend, hidden, checked_width(hidden, width_, name_), join_name(name_, "down_proj_layer")),
          up_(backend, width_, hidden, join_name(name_, "up_proj_layer")) {}

    /// Every weight ~ N(0, stddev) (BERT's init), every bias zero.
    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        emb_.initialize(rng, stddev);
        mod_.initialize(rng, stddev);
        down_.initialize(rng, stddev);
        up_.initialize(rng, stddev);
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] std::size_t hidden() const noexcept { return hidden_; }
    [[nodiscard]] std::size_t bottleneck_features() const noexcept { return width_; }

    tensor<B, T> forward(const tensor<B, T>& hidden_states, const tensor<B, T>& condition, context& ctx,
                         run_mode mode = {}) const {
        check_inputs(hidden_states, condition);
        ctx.input_shape = hidden_states.shape();
        tensor<B, T> c = emb_.forward(condition, ctx.emb, mode);
        tensor<B, T> h = mod_.forward(hidden_states, c, ctx.mod, mode);
        return up_.forward(down_.forward(h, ctx.down, mode), ctx.up, mode);
    }

    gradients backward(const tensor<B, T>& dout, context& ctx) {
        if (ctx.input_shape.rank() == 0) throw error(name_ + ": backward called without a training forward");
        expect_shape(name_.c_str(), "output gradient", ctx.input_shape, dout.shape());
        auto gm = mod_.backward(down_.backward(up_.backward(dout, ctx.up), ctx.down), ctx.mod);
        return {gm.input, emb_.backward(gm.condition, ctx.emb)};
    }

    template <class F>
    void visit_parameters(F&& f) {
        emb_.visit_parameters(f);
        mod_.visit_parameters(f);
        down_.visit_parameters(f);
        up_.visit_parameters(f);
    }

private:
    static std::size_t checked_width(std::size_t hidden, std::size_t width, const std::string& name) {
        if (hidden == 0 || width == 0)
            throw config_error(name + ": conditional_bottleneck needs a hidden size of at least 3 (width d / 3), got " +
                               std::to_string(hidden) + " with width " + std::to_string(width));
        return width;
    }

    void check_inputs(const tensor<B, T>& h, const tensor<B, T>& c) const {
        const auto& hs = h.shape();
        if (hs.rank() < 2 || hs.rank() > 3 || hs.cols() != hidden_ || hs[0] == 0)
            throw shape_error(name_ + ": hidden states have shape " + hs.str() + ", expected (batch, seq, " +
                              std::to_string(hidden_) + ") or (batch, " + std::to_string(hidden_) + ")");
        expect_shape(name_.c_str(), "condition", shape{hs[0], hidden_}, c.shape());
    }

    std::string name_;
    std::size_t hidden_, width_;
    linear<B, T> emb_;
    film<B, T> mod_;
    linear<B, T> down_;
    linear<B, T> up_;
};

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
// conditional_bottleneck: several inputs (hidden states, task embedding): only parameterized + initializable.
static_assert(parameterized<conditional_bottleneck<archetype_backend, float>>,
              "hyperadapt::conditional_bottleneck must be parameterized (nn/layer.hpp)");
static_assert(initializable<conditional_bottleneck<archetype_backend, float>>,
              "hyperadapt::conditional_bottleneck must be initializable: initialize(rng)");
}  // namespace hyperadapt
