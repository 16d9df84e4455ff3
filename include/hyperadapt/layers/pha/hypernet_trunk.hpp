#pragma once
// The trunk that PHA's prototypical hypernetwork (spec §2.4, layers/pha/hypernet.hpp) and HyperFormer's
// generators (spec §3.2, layers/pha/hyperformer_hypernet.hpp) share: from a batch of conditions k (a task
// prototype or task embedding per row) and one row of each of its embedding tables (the layer; HyperFormer++
// also the block type), the projected condition every adapter head reads:
//
//   u = [k ; E_1[i_1] ; ... ; E_m[i_m]]                                   (batch, c + e_1 + ... + e_m)
//   g = LayerNorm(W_2 ReLU(W_1 u + b_1) + b_2)      the LayerNorm optional (HyperFormer's task_layer_norm)
//
// The concatenation is never built: W_1 is applied as one GEMM per column block, the embedding blocks being
// one row each, so their products (and b_1) are summed into one row that is broadcast to the batch. Backward
// sees the same structure: an embedding row and its W_1 block get the column sums of d(W_1 u).
//
// What differs between the generators stays with them: the heads that turn g into adapter tensors, the
// parameter names (given here by the owner), the initialisation (the owner draws into the trunk's
// parameters, in its own order) and which rows are valid (the owner checks layer and block ids first).
//
// Parameters, in visiting order: the embedding tables (rows, e_i); W_1 (h, c + sum e_i) and b_1 (h) under
// `<linear1>.weight` / `.bias`; W_2, b_2 as a linear named `linear2`; the LayerNorm (p) named `norm`.
// All start at zero except the LayerNorm (ones and zeros) and W_2 (linear's own start): owners initialise.
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/errors.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/layers/layer_norm.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/layers/pha/pha_ops.hpp"
#include "hyperadapt/nn/layer.hpp"

namespace hyperadapt {

/// One embedding table of a hypernetwork's input (a layer or block-type embedding).
struct hypernet_embedding_table {
    std::string name;     ///< full parameter name, e.g. "layer_embed.weight"
    std::size_t rows = 0;
    std::size_t width = 0;
};

/// Sizes and names of a hypernet_trunk. Sizes must be non-zero (the owning generator checks them).
struct hypernet_trunk_config {
    std::size_t condition = 0;   ///< c: width of a condition row
    std::vector<hypernet_embedding_table> embeddings;
    std::size_t hidden = 0;      ///< h: W_1's output
    std::size_t projection = 0;  ///< p: W_2's output, the LayerNorm width, what the heads read
    bool layer_norm = true;
    double layer_norm_eps = 1e-6;
    std::string linear1;  ///< W_1 and b_1 are "<linear1>.weight" and "<linear1>.bias"
    std::string linear2;  ///< name of the W_2 linear
    std::string norm;     ///< name of the LayerNorm
};

template <elementwise_backend B, class T = float>
class hypernet_trunk {
public:
    struct context {
        tensor<B, T> condition;          // (batch, c)
        std::vector<std::size_t> rows;   // the embedding row used from each table
        tensor<B, T> h1;                 // W_1 u + b_1, pre-ReLU (batch, h)
        typename linear<B, T>::context l2;
        typename layer_norm<B, T>::context norm;
    };

    /// `owner` is the generator's name, which error messages start with.
    hypernet_trunk(B& backend, hypernet_trunk_config cfg, std::string owner)
        : backend_(&backend),
          owner_(std::move(owner)),
          cfg_(std::move(cfg)),
          w1_(backend, {cfg_.hidden, input_width()}),
          b1_(backend, {cfg_.hidden}, /*decay=*/false),
          l2_(backend, cfg_.hidden, cfg_.projection, cfg_.linear2) {
        embeddings_.reserve(cfg_.embeddings.size());
        for (const auto& table : cfg_.embeddings) {
            embeddings_.emplace_back(backend, shape{table.rows, table.width});
            embeddings_.back().value.zero();
        }
        w1_.value.zero();
        b1_.value.zero();
        if (cfg_.layer_norm)
            norm_.emplace(backend, cfg_.projection, cfg_.norm, static_cast<T>(cfg_.layer_norm_eps));
    }

    [[nodiscard]] const hypernet_trunk_config& config() const noexcept { return cfg_; }
    /// c + sum e_i: W_1's input width.
    [[nodiscard]] std::size_t input_width() const noexcept {
        std::size_t n = cfg_.condition;
        for (const auto& table : cfg_.embeddings) n += table.width;
        return n;
    }
    parameter<B, T>& embedding(std::size_t table) noexcept { return embeddings_[table]; }
    parameter<B, T>& linear1_weight() noexcept { return w1_; }
    parameter<B, T>& linear1_bias() noexcept { return b1_; }
    linear<B, T>& linear2() noexcept { return l2_; }
    /// Null without the LayerNorm.
    layer_norm<B, T>* norm() noexcept { return norm_ ? &*norm_ : nullptr; }

    /// g for every row of `condition` (batch, c), with row rows[i] of embedding table i.
    tensor<B, T> forward(const tensor<B, T>& condition, std::span<const std::size_t> rows, context& ctx,
                         run_mode mode = {}) const {
        const std::size_t c = cfg_.condition, h = cfg_.hidden, in1 = input_width();
        if (condition.shape().rank() != 2 || condition.shape()[1] != c || condition.shape()[0] == 0)
            throw shape_error(owner_ + ": condition has shape " + condition.shape().str() + ", expected (batch, " +
                              std::to_string(c) + ")");
        if (rows.size() != embeddings_.size())
            throw error(owner_ + ": " + std::to_string(rows.size()) + " embedding rows given for " +
                        std::to_string(embeddings_.size()) + " embedding tables");
        const std::size_t nb = condition.shape()[0];
        ctx = {};
        ctx.condition = condition;
        ctx.rows.assign(rows.begin(), rows.end());
        // W_1 u + b_1 = k W_1[:, :c]^T + (sum_i E_i[row_i] W_1[:, block i]^T + b_1)
        ctx.h1 = tensor<B, T>(*backend_, {nb, h});
        backend_->gemm(transpose::no, transpose::yes, nb, h, c, T(1), condition.data(), c, w1_.value.data(), in1, T(0),
                       ctx.h1.data(), h);
        tensor<B, T> row = b1_.value.clone();
        std::size_t offset = c;
        for (std::size_t i = 0; i < embeddings_.size(); ++i) {
            const std::size_t e = cfg_.embeddings[i].width;
            backend_->gemm(transpose::no, transpose::yes, 1, h, e, T(1), embeddings_[i].value.data() + rows[i] * e, e,
                           w1_.value.data() + offset, in1, T(1), row.data(), h);
            offset += e;
        }
        backend_->add_row_vector(nb, h, row.data(), ctx.h1.data());
        tensor<B, T> a(*backend_, ctx.h1.shape());
        pha_ops::relu_forward(*backend_, a.size(), ctx.h1.data(), a.data());
        tensor<B, T> g = l2_.forward(a, ctx.l2, mode);
        if (norm_) g = norm_->forward(g, ctx.norm, mode);
        return g;
    }

    /// Adds the parameter gradients (only the used embedding rows) and returns d condition.
    tensor<B, T> backward(const tensor<B, T>& dg, context& ctx) {
        const tensor<B, T> dl2 = norm_ ? norm_->backward(dg, ctx.norm) : dg;
        tensor<B, T> dh1 = l2_.backward(dl2, ctx.l2);
        pha_ops::relu_backward(*backend_, dh1.size(), ctx.h1.data(), dh1.data(), dh1.data());
        const std::size_t c = cfg_.condition, h = cfg_.hidden, in1 = input_width();
        const std::size_t nb = ctx.condition.shape()[0];
        // The broadcast embedding rows see the column sums of dh1.
        tensor<B, T> colsum = tensor<B, T>::zeros(*backend_, {h});
        backend_->accumulate_column_sums(nb, h, dh1.data(), colsum.data());
        if (w1_.trainable()) {
            backend_->gemm(transpose::yes, transpose::no, h, c, nb, T(1), dh1.data(), h, ctx.condition.data(), c, T(1),
                           w1_.grad.data(), in1);
            std::size_t offset = c;
            for (std::size_t i = 0; i < embeddings_.size(); ++i) {
                const std::size_t e = cfg_.embeddings[i].width;
                backend_->gemm(transpose::yes, transpose::no, h, e, 1, T(1), colsum.data(), h,
                               embeddings_[i].value.data() + ctx.rows[i] * e, e, T(1), w1_.grad.data() + offset, in1);
                offset += e;
            }
        }
        if (b1_.trainable()) backend_->axpy(h, T(1), colsum.data(), b1_.grad.data());
        std::size_t offset = c;
        for (std::size_t i = 0; i < embeddings_.size(); ++i) {
            const std::size_t e = cfg_.embeddings[i].width;
            if (embeddings_[i].trainable())
                backend_->gemm(transpose::no, transpose::no, 1, e, h, T(1), colsum.data(), h, w1_.value.data() + offset,
                               in1, T(1), embeddings_[i].grad.data() + ctx.rows[i] * e, e);
            offset += e;
        }
        tensor<B, T> dcond(*backend_, ctx.condition.shape());
        backend_->gemm(transpose::no, transpose::no, nb, c, h, T(1), dh1.data(), h, w1_.value.data(), in1, T(0),
                       dcond.data(), c);
        return dcond;
    }

    template <class F>
    void visit_parameters(F&& f) {
        for (std::size_t i = 0; i < embeddings_.size(); ++i) f(cfg_.embeddings[i].name, embeddings_[i]);
        f(join_name(cfg_.linear1, "weight"), w1_);
        f(join_name(cfg_.linear1, "bias"), b1_);
        l2_.visit_parameters(f);
        if (norm_) norm_->visit_parameters(f);
    }

private:
    B* backend_;
    std::string owner_;
    hypernet_trunk_config cfg_;
    std::vector<parameter<B, T>> embeddings_;
    parameter<B, T> w1_, b1_;
    linear<B, T> l2_;
    std::optional<layer_norm<B, T>> norm_;
};

}  // namespace hyperadapt
