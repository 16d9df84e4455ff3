#pragma once
// FiLM, the primitive of every CA-MTL conditional module (spec §1.2; CA-MTL conditional_modules.py::FiLM):
//
//   [gamma; beta] = gb_weights(c)            Linear(d_cond -> 2 o); the FIRST half is gamma
//   y = (1 + gamma) * x + beta               per example, broadcast over the sequence axis
//   y = LayerNorm(y)                         only with film_options::layer_norm (eps 1e-5, torch's default)
//
// Shapes: condition (batch, d_cond); x (batch, seq, o) or (batch, o); y has x's shape.
//
// For a rank-2 x the modulation is per row (row i uses condition row i). The authors' code would broadcast
// its (batch, 1, o) gamma against a (batch, o) x into (batch, batch, o); no CA-MTL module calls it that way
// (CLN applies it to its (o) gain vector, which this library passes as a (rows, o) matrix), and a per-row
// meaning is the one a library user expects.
//
// The authors' num_film_layers argument is not supported: every CA-MTL module builds FiLM with 1.
//
// Parameters: "<name>.gb_weights.{weight,bias}" ((2 o, d_cond), (2 o)), plus "<name>.layer_norm.{weight,bias}"
// with the LayerNorm option. The bias of gb_weights starts at zero, so a fresh FiLM is the identity plus a
// shift of zero: y = x (before any LayerNorm).
#include <cstddef>
#include <optional>
#include <string>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/layers/camtl/modulation_ops.hpp"
#include "hyperadapt/layers/layer_norm.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/nn/layer.hpp"

namespace hyperadapt {

struct film_options {
    /// FiLM(layer_norm=True): a LayerNorm over the modulated output. CA-MTL's encoders never use it.
    bool layer_norm = false;
    double layer_norm_eps = 1e-5;
};

template <elementwise_backend B, class T = float>
class film {
public:
    using backend_type = B;
    using value_type = T;
    struct context {
        typename linear<B, T>::context gb;
        typename layer_norm<B, T>::context norm;
        tensor<B, T> input;      // x: (batch, seq, o) or (batch, o)
        tensor<B, T> gamma_beta;  // (batch, 2 o)
    };
    /// Gradients of the loss with respect to both inputs.
    struct gradients {
        tensor<B, T> input;      // like x
        tensor<B, T> condition;  // (batch, d_cond)
    };

    film(B& backend, std::size_t condition_features, std::size_t features, std::string name = "film",
         film_options options = {})
        : backend_(&backend),
          name_(std::move(name)),
          cond_(condition_features),
          features_(features),
          options_(options),
          gb_(backend, condition_features, 2 * features, join_name(name_, "gb_weights")) {
        if (condition_features == 0 || features == 0)
            throw config_error(name_ + ": film needs non-zero condition and feature sizes, got " +
                               std::to_string(condition_features) + " -> " + std::to_string(features));
        if (options_.layer_norm)
            norm_.emplace(backend, features, join_name(name_, "layer_norm"), static_cast<T>(options_.layer_norm_eps));
    }

    /// gb_weights ~ N(0, stddev) (BERT's init), its bias zero; the LayerNorm stays at ones and zeros.
    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        gb_.initialize(rng, stddev);
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] std::size_t condition_features() const noexcept { return cond_; }
    [[nodiscard]] std::size_t features() const noexcept { return features_; }
    [[nodiscard]] bool has_layer_norm() const noexcept { return norm_.has_value(); }
    linear<B, T>& gb_weights() noexcept { return gb_; }

    tensor<B, T> forward(const tensor<B, T>& x, const tensor<B, T>& condition, context& ctx, run_mode mode = {}) const {
        check_inputs(x, condition);
        const std::size_t nb = x.shape()[0], rows = x.rows() / nb, o = features_;
        ctx.input = x;
        ctx.gamma_beta = gb_.forward(condition, ctx.gb, mode);  // (batch, 2 o)
        tensor<B, T> y = x.clone();
        for (std::size_t b = 0; b < nb; ++b) {
            const T* gb = ctx.gamma_beta.data() + b * 2 * o;
            T* yb = y.data() + b * rows * o;
            // y_b = x_b + x_b * gamma_b + beta_b
            camtl_ops::mul_column_scales(*backend_, rows, o, x.data() + b * rows * o, o, gb, yb, o, true);
            backend_->add_row_vector(rows, o, gb + o, yb);
        }
        if (norm_) return norm_->forward(y, ctx.norm, mode);
        return y;
    }

    gradients backward(const tensor<B, T>& dy, context& ctx) {
        if (ctx.input.empty()) throw error(name_ + ": backward called without a training forward");
        expect_shape(name_.c_str(), "output gradient", ctx.input.shape(), dy.shape());
        const tensor<B, T> d = norm_ ? norm_->backward(dy, ctx.norm) : dy;
        const tensor<B, T>& x = ctx.input;
        const std::size_t nb = x.shape()[0], rows = x.rows() / nb, o = features_;
        gradients g;
        g.input = d.clone();
        tensor<B, T> dgb(*backend_, {nb, 2 * o});
        for (std::size_t b = 0; b < nb; ++b) {
            const T* gb = ctx.gamma_beta.data() + b * 2 * o;
            const T* db = d.data() + b * rows * o;
            T* dgbb = dgb.data() + b * 2 * o;
            camtl_ops::mul_column_scales(*backend_, rows, o, db, o, gb, g.input.data() + b * rows * o, o, true);
            camtl_ops::column_dots(*backend_, rows, o, db, x.data() + b * rows * o, o, dgbb, false);  // d gamma
            backend_->fill(dgbb + o, o, T(0));
            backend_->accumulate_column_sums(rows, o, db, dgbb + o);  // d beta
        }
        g.condition = gb_.backward(dgb, ctx.gb);
        return g;
    }

    template <class F>
    void visit_parameters(F&& f) {
        // The authors' module registers its LayerNorm first; the order only matters for listings.
        if (norm_) norm_->visit_parameters(f);
        gb_.visit_parameters(f);
    }

private:
    void check_inputs(const tensor<B, T>& x, const tensor<B, T>& c) const {
        const auto& xs = x.shape();
        if (xs.rank() < 2 || xs.rank() > 3 || xs.cols() != features_ || xs[0] == 0)
            throw shape_error(name_ + ": input has shape " + xs.str() + ", expected (batch, seq, " +
                              std::to_string(features_) + ") or (batch, " + std::to_string(features_) + ")");
        expect_shape(name_.c_str(), "condition", shape{xs[0], cond_}, c.shape());
    }

    B* backend_;
    std::string name_;
    std::size_t cond_, features_;
    film_options options_;
    linear<B, T> gb_;
    std::optional<layer_norm<B, T>> norm_;
};

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
// film: several inputs (x, condition): only parameterized + initializable.
static_assert(parameterized<film<archetype_backend, float>>,
              "hyperadapt::film must be parameterized (nn/layer.hpp)");
static_assert(initializable<film<archetype_backend, float>>,
              "hyperadapt::film must be initializable: initialize(rng)");
}  // namespace hyperadapt
