#pragma once
// Task heads on the pooled output, as Hugging Face's BertForSequenceClassification: dropout, then one
// linear layer. Its parameters are "<name>.weight" and "<name>.bias" (default name "classifier", the key
// Hugging Face uses for both classification and regression).
#include <string>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/layers/dropout.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/nn/layer.hpp"

namespace hyperadapt {

namespace detail {
/// Pooled (batch, hidden) -> dropout -> linear -> (batch, outputs).
template <elementwise_backend B, class T>
class dropout_linear_head {
public:
    using backend_type = B;
    using value_type = T;
    struct context {
        typename dropout<B, T>::context drop;
        typename linear<B, T>::context dense;
    };

    dropout_linear_head(B& backend, std::size_t hidden, std::size_t outputs, T dropout_p, std::string name)
        : name_(std::move(name)),
          drop_(backend, dropout_p, join_name(name_, "dropout")),
          dense_(backend, hidden, outputs, name_) {}

    /// BERT's initialisation: weight ~ N(0, stddev), bias 0.
    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        dense_.initialize(rng, stddev);
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] std::size_t hidden() const noexcept { return dense_.in_features(); }
    linear<B, T>& dense() noexcept { return dense_; }
    const linear<B, T>& dense() const noexcept { return dense_; }

    tensor<B, T> forward(const tensor<B, T>& pooled, context& ctx, run_mode mode = {}) const {
        check_input(pooled);
        return dense_.forward(drop_.forward(pooled, ctx.drop, mode), ctx.dense, mode);
    }

    /// Inference forward (dropout off), saving nothing.
    tensor<B, T> apply(const tensor<B, T>& pooled) const {
        check_input(pooled);
        return dense_.apply(pooled);
    }

    tensor<B, T> backward(const tensor<B, T>& dy, context& ctx) {
        return drop_.backward(dense_.backward(dy, ctx.dense), ctx.drop);
    }

    template <class F>
    void visit_parameters(F&& f) {
        dense_.visit_parameters(f);
    }

private:
    void check_input(const tensor<B, T>& pooled) const {
        if (pooled.shape().rank() != 2 || pooled.cols() != dense_.in_features())
            throw shape_error(name_ + ": pooled input has shape " + pooled.shape().str() + ", expected (batch, " +
                              std::to_string(dense_.in_features()) + ")");
    }

    std::string name_;
    dropout<B, T> drop_;
    linear<B, T> dense_;
};
}  // namespace detail

/// (batch, hidden) -> (batch, num_labels) logits, for cross_entropy_loss.
template <elementwise_backend B, class T = float>
class classification_head : public detail::dropout_linear_head<B, T> {
public:
    classification_head(B& backend, std::size_t hidden, std::size_t num_labels, T dropout_p = T(0.1),
                        std::string name = "classifier")
        : detail::dropout_linear_head<B, T>(backend, hidden, num_labels, dropout_p, std::move(name)) {}

    [[nodiscard]] std::size_t num_labels() const noexcept { return this->dense().out_features(); }
};

/// (batch, hidden) -> (batch, 1) scores, for mse_loss (Hugging Face's num_labels == 1 case).
template <elementwise_backend B, class T = float>
class regression_head : public detail::dropout_linear_head<B, T> {
public:
    regression_head(B& backend, std::size_t hidden, T dropout_p = T(0.1), std::string name = "classifier")
        : detail::dropout_linear_head<B, T>(backend, hidden, 1, dropout_p, std::move(name)) {}
};

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
static_assert(unary_layer<classification_head<archetype_backend, float>>,
              "hyperadapt::classification_head must be a unary layer (nn/layer.hpp)");
static_assert(initializable<classification_head<archetype_backend, float>>,
              "hyperadapt::classification_head must be initializable: initialize(rng)");
static_assert(unary_layer<regression_head<archetype_backend, float>>,
              "hyperadapt::regression_head must be a unary layer (nn/layer.hpp)");
static_assert(initializable<regression_head<archetype_backend, float>>,
              "hyperadapt::regression_head must be initializable: initialize(rng)");
}  // namespace hyperadapt
