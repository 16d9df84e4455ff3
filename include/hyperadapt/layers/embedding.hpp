#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/nn/layer.hpp"

namespace hyperadapt {

/// A lookup table (num_embeddings, dim), as torch.nn.Embedding; its parameter is "<name>.weight".
///
/// Ids are a tensor<B, std::int32_t> in backend memory, because the gather runs where the table lives; a
/// backend therefore needs allocate<std::int32_t> (the CPU backend's allocate is a template). Ids of shape
/// (...) give an output of shape (..., dim); ids may have rank 1 to 3.
///
/// Every id is checked against the table before the gather: the backend kernel trusts its ids, and an
/// out-of-range id would read or, in backward, write outside the table. Checking costs one copy of the ids
/// to the host per forward (batch * seq integers).
///
/// `padding_idx` behaves as in PyTorch: the row is looked up normally but never receives a gradient, and
/// initialize() zeroes it.
template <elementwise_backend B, class T = float>
class embedding {
public:
    using backend_type = B;
    using value_type = T;
    using ids_type = tensor<B, std::int32_t>;
    struct context {
        ids_type ids;
    };

    embedding(B& backend, std::size_t num_embeddings, std::size_t dim, std::string name = "embedding",
              std::optional<std::int32_t> padding_idx = std::nullopt)
        : backend_(&backend),
          name_(std::move(name)),
          num_(num_embeddings),
          dim_(dim),
          padding_idx_(padding_idx),
          weight_(backend, {num_embeddings, dim}) {
        if (num_embeddings == 0 || dim == 0)
            throw config_error(name_ + ": embedding needs a non-empty table, got " + std::to_string(num_embeddings) +
                               " x " + std::to_string(dim));
        if (padding_idx && (*padding_idx < 0 || static_cast<std::size_t>(*padding_idx) >= num_embeddings))
            throw config_error(name_ + ": padding index " + std::to_string(*padding_idx) +
                               " is outside a table of " + std::to_string(num_embeddings) + " rows");
        weight_.value.zero();
    }

    /// BERT's initialisation: weights ~ N(0, stddev), the padding row 0.
    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        backend_->fill_normal(weight_.size(), rng.seed(), rng.take(weight_.size()), T(0), stddev,
                              weight_.value.data());
        if (padding_idx_)
            backend_->fill(weight_.value.data() + static_cast<std::size_t>(*padding_idx_) * dim_, dim_, T(0));
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] std::size_t num_embeddings() const noexcept { return num_; }
    [[nodiscard]] std::size_t dim() const noexcept { return dim_; }
    [[nodiscard]] std::optional<std::int32_t> padding_idx() const noexcept { return padding_idx_; }
    parameter<B, T>& weight() noexcept { return weight_; }
    const parameter<B, T>& weight() const noexcept { return weight_; }

    /// `host_ids`: the ids' host copy where the caller has it; the range check then reads it instead of copying
    /// the ids back (on a GPU, a wait). Empty: the layer copies them.
    tensor<B, T> forward(const ids_type& ids, context& ctx, run_mode = {},
                         std::span<const std::int32_t> host_ids = {}) const {
        tensor<B, T> y = apply(ids, host_ids);
        ctx.ids = ids;
        return y;
    }

    /// Forward without saving anything for backward.
    tensor<B, T> apply(const ids_type& ids, std::span<const std::int32_t> host_ids = {}) const {
        check_ids(ids, host_ids);
        tensor<B, T> y(*backend_, output_shape(ids.shape()));
        backend_->gather_rows(ids.size(), dim_, weight_.value.data(), ids.data(), y.data());
        return y;
    }

    /// Adds dy's rows into the weight gradient. Ids are not differentiable, so there is nothing to return.
    void backward(const tensor<B, T>& dy, context& ctx) {
        if (ctx.ids.empty()) throw error(name_ + ": backward called without a training forward");
        expect_shape(name_.c_str(), "output gradient", output_shape(ctx.ids.shape()), dy.shape());
        if (!weight_.trainable()) return;
        T* grad = weight_.grad.data();
        if (!padding_idx_) {
            backend_->scatter_add_rows(ctx.ids.size(), dim_, dy.data(), ctx.ids.data(), grad);
            return;
        }
        // The scatter has no row mask, so the padding row's gradient is saved and put back afterwards.
        T* pad_row = grad + static_cast<std::size_t>(*padding_idx_) * dim_;
        tensor<B, T> saved(*backend_, {dim_});
        backend_->copy(pad_row, saved.data(), dim_);
        backend_->scatter_add_rows(ctx.ids.size(), dim_, dy.data(), ctx.ids.data(), grad);
        backend_->copy(saved.data(), pad_row, dim_);
    }

    template <class F>
    void visit_parameters(F&& f) {
        f(join_name(name_, "weight"), weight_);
    }

    /// Throws unless every id indexes a row of the table; the message names the layer, the first bad id,
    /// its position and the table size.
    void check_ids(const ids_type& ids, std::span<const std::int32_t> host_ids = {}) const {
        if (ids.shape().rank() < 1 || ids.shape().rank() > 3)
            throw shape_error(name_ + ": ids have shape " + ids.shape().str() + ", expected rank 1 to 3");
        std::vector<std::int32_t> copied;
        const std::span<const std::int32_t> host = ids.host_values(host_ids, copied, name_);
        for (std::size_t i = 0; i < host.size(); ++i)
            if (host[i] < 0 || static_cast<std::size_t>(host[i]) >= num_)
                throw error(name_ + ": id " + std::to_string(host[i]) + " at position " + std::to_string(i) +
                            " is out of range for a table of " + std::to_string(num_) + " rows");
    }

private:
    hyperadapt::shape output_shape(const hyperadapt::shape& s) const {
        switch (s.rank()) {
            case 1: return {s[0], dim_};
            case 2: return {s[0], s[1], dim_};
            default: return {s[0], s[1], s[2], dim_};
        }
    }

    B* backend_;
    std::string name_;
    std::size_t num_, dim_;
    std::optional<std::int32_t> padding_idx_;
    parameter<B, T> weight_;
};

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
// embedding: its input is token ids, not a tensor of T: only parameterized + initializable.
static_assert(parameterized<embedding<archetype_backend, float>>,
              "hyperadapt::embedding must be parameterized (nn/layer.hpp)");
static_assert(initializable<embedding<archetype_backend, float>>,
              "hyperadapt::embedding must be initializable: initialize(rng)");
}  // namespace hyperadapt
