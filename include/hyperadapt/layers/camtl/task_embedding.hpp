#pragma once
// CA-MTL's task conditioning vector (spec §1.1):
//
//   z  = E[task_id]              E: (tasks, d) lookup table
//   z' = task_transformation(z)  Linear(d -> d), applied once per forward by the encoder
//
// One task id per example, so a batch may mix tasks. Every in-encoder module (CLN, conditional bottleneck,
// conditional attention) reads z'; conditional alignment reads the raw z. forward returns both, and
// backward takes the gradient of each (either may be empty when that path is unused).
//
// Names: the table and the transformation live in different modules of the authors' model (the encoder
// owns "task_transformation"), so each gets its own full name: "<embedding_name>.weight" and
// "<transformation_name>.{weight,bias}".
#include <cstddef>
#include <cstdint>
#include <string>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/layers/embedding.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/nn/layer.hpp"

namespace hyperadapt {

template <elementwise_backend B, class T = float>
class task_embedding {
public:
    using backend_type = B;
    using value_type = T;
    using ids_type = tensor<B, std::int32_t>;
    struct context {
        typename embedding<B, T>::context table;
        typename linear<B, T>::context transformation;
    };
    struct output {
        tensor<B, T> z;        // (batch, d): raw embedding, for conditional alignment
        tensor<B, T> z_prime;  // (batch, d): transformed, for every in-encoder module
    };

    task_embedding(B& backend, std::size_t tasks, std::size_t hidden, std::string embedding_name = "task_embedding",
                   std::string transformation_name = "task_transformation")
        : backend_(&backend),
          table_(backend, tasks, hidden, std::move(embedding_name)),
          transformation_(backend, hidden, hidden, std::move(transformation_name)) {}

    /// Table and transformation weights ~ N(0, stddev), transformation bias zero.
    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        table_.initialize(rng, stddev);
        transformation_.initialize(rng, stddev);
    }

    [[nodiscard]] const std::string& name() const noexcept { return table_.name(); }
    [[nodiscard]] std::size_t tasks() const noexcept { return table_.num_embeddings(); }
    [[nodiscard]] std::size_t hidden() const noexcept { return table_.dim(); }
    embedding<B, T>& table() noexcept { return table_; }
    linear<B, T>& transformation() noexcept { return transformation_; }

    /// task_ids: (batch) int32, each in [0, tasks).
    output forward(const ids_type& task_ids, context& ctx, run_mode mode = {}) const {
        if (task_ids.shape().rank() != 1 || task_ids.shape()[0] == 0)
            throw shape_error(name() + ": task ids have shape " + task_ids.shape().str() + ", expected (batch)");
        output out;
        out.z = table_.forward(task_ids, ctx.table, mode);
        out.z_prime = transformation_.forward(out.z, ctx.transformation, mode);
        return out;
    }

    /// Adds the parameter gradients for dL/dz (direct uses of z) and dL/dz' (uses of z'); either may be
    /// empty. Task ids are not differentiable, so nothing is returned.
    void backward(const tensor<B, T>& dz, const tensor<B, T>& dz_prime, context& ctx) {
        if (ctx.table.ids.empty()) throw error(name() + ": backward called without a training forward");
        const shape want{ctx.table.ids.shape()[0], hidden()};
        if (!dz.empty()) expect_shape(name().c_str(), "gradient of z", want, dz.shape());
        if (dz_prime.empty()) {
            table_.backward(dz.empty() ? tensor<B, T>::zeros(*backend_, want) : dz, ctx.table);
            return;
        }
        expect_shape(name().c_str(), "gradient of z'", want, dz_prime.shape());
        tensor<B, T> total = transformation_.backward(dz_prime, ctx.transformation);
        if (!dz.empty()) backend_->axpy(total.size(), T(1), dz.data(), total.data());
        table_.backward(total, ctx.table);
    }

    template <class F>
    void visit_parameters(F&& f) {
        table_.visit_parameters(f);
        transformation_.visit_parameters(f);
    }

private:
    B* backend_;
    embedding<B, T> table_;
    linear<B, T> transformation_;
};

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
// task_embedding: its input is task ids and it returns (z, z'): only parameterized + initializable.
static_assert(parameterized<task_embedding<archetype_backend, float>>,
              "hyperadapt::task_embedding must be parameterized (nn/layer.hpp)");
static_assert(initializable<task_embedding<archetype_backend, float>>,
              "hyperadapt::task_embedding must be initializable: initialize(rng)");
}  // namespace hyperadapt
