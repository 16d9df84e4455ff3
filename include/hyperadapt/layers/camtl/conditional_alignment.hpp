#pragma once
// Conditional alignment (spec §1.3; CA-MTL CaMtl*Encoder.forward):
//
//   X_0 = FiLM(z, BertEmbeddings(x)) = (1 + gamma(z)) * E + beta(z),   [gamma; beta] = gb_weights(z), d -> 2 d
//
// applied once, after the embedding layer and before encoder layer 0. It reads the RAW task embedding z,
// not the transformed z' that every in-encoder module reads (task_embedding::forward returns both). The
// paper frames it as conditioning an alignment matrix R (R_hat = R gamma(z) + beta(z)); the code has no
// separate R, and neither has this module.
//
// Shapes: embeddings (batch, seq, d); z (batch, d). Parameters: "<name>.gb_weights.{weight,bias}".
#include <cstddef>
#include <string>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/layers/camtl/film.hpp"
#include "hyperadapt/nn/layer.hpp"

namespace hyperadapt {

template <elementwise_backend B, class T = float>
class conditional_alignment {
public:
    using backend_type = B;
    using value_type = T;
    using context = typename film<B, T>::context;
    struct gradients {
        tensor<B, T> embeddings;      // (batch, seq, d)
        tensor<B, T> task_embedding;  // (batch, d): add it to the other uses of z before the table's backward
    };

    conditional_alignment(B& backend, std::size_t hidden, std::string name = "conditional_alignment")
        : film_(backend, hidden, hidden, std::move(name)) {}

    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        film_.initialize(rng, stddev);
    }

    [[nodiscard]] const std::string& name() const noexcept { return film_.name(); }
    [[nodiscard]] std::size_t hidden() const noexcept { return film_.features(); }
    film<B, T>& modulation() noexcept { return film_; }

    tensor<B, T> forward(const tensor<B, T>& embeddings, const tensor<B, T>& task_embedding, context& ctx,
                         run_mode mode = {}) const {
        if (embeddings.shape().rank() != 3 || embeddings.shape()[2] != hidden())
            throw shape_error(name() + ": embeddings have shape " + embeddings.shape().str() +
                              ", expected (batch, seq, " + std::to_string(hidden()) + ")");
        return film_.forward(embeddings, task_embedding, ctx, mode);
    }

    gradients backward(const tensor<B, T>& dy, context& ctx) {
        auto g = film_.backward(dy, ctx);
        return {g.input, g.condition};
    }

    template <class F>
    void visit_parameters(F&& f) {
        film_.visit_parameters(f);
    }

private:
    film<B, T> film_;
};

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
// conditional_alignment: several inputs (embeddings, task embedding): only parameterized + initializable.
static_assert(parameterized<conditional_alignment<archetype_backend, float>>,
              "hyperadapt::conditional_alignment must be parameterized (nn/layer.hpp)");
static_assert(initializable<conditional_alignment<archetype_backend, float>>,
              "hyperadapt::conditional_alignment must be initializable: initialize(rng)");
}  // namespace hyperadapt
