#pragma once
// Multi-head self-attention as Hugging Face's BertSelfAttention (BertSelfOutput, the dense -> dropout ->
// residual -> LayerNorm after it, is part of the transformer layer: layers/encoder_layer.hpp).
//
// The query, key and value projections are separate parameters with Hugging Face's names, but their
// storage is one (3H, H) matrix so that the forward projection is a single GEMM: the three weights (and the
// three biases) lie one after another in memory, a layout nn/flat_parameters.hpp keeps when it moves them.
//
// An optional additive score bias (batch, T, T), shared by every head and added to the scaled scores before
// the padding mask, is the hook for CA-MTL's task-conditioned attention; its gradient is returned.
#include <cmath>
#include <cstdint>
#include <string>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/layers/dropout.hpp"
#include "hyperadapt/layers/layer_condition.hpp"
#include "hyperadapt/nn/anomaly.hpp"
#include "hyperadapt/nn/layer.hpp"

namespace hyperadapt {

template <elementwise_backend B, class T = float>
class self_attention {
public:
    using backend_type = B;
    using value_type = T;
    struct context {
        tensor<B, T> input;        // (B, T, H)
        tensor<B, T> qkv;          // (B, T, 3H)
        tensor<B, T> probs;        // (B, heads, T, T) softmax output; its dropped copy is made again in backward
        typename dropout<B, T>::context drop;
        attention_mask<B> mask;
        bool has_bias = false;
        anomaly_detector* anomaly = nullptr;  // the forward's run_mode::anomaly, for backward's checks
    };
    struct gradients {
        tensor<B, T> input;       // (B, T, H)
        tensor<B, T> score_bias;  // (B, T, T), empty unless a bias was given
    };

    /// `name` is the module path, e.g. "encoder.layer.3.attention.self".
    self_attention(B& backend, std::size_t hidden, std::size_t heads, T attention_dropout,
                   std::string name = "attention.self")
        : backend_(&backend),
          name_(std::move(name)),
          hidden_(hidden),
          heads_(heads),
          head_dim_(heads ? hidden / heads : 0),
          drop_(backend, attention_dropout, name_ + ".dropout") {
        if (heads == 0 || hidden % heads != 0)
            throw config_error(name_ + ": hidden size " + std::to_string(hidden) +
                               " must be a positive multiple of the number of heads " + std::to_string(heads));
        const auto weight = tensor<B, T>::zeros(backend, {3 * hidden, hidden}), bias = tensor<B, T>::zeros(backend, {3, hidden});
        const auto weight_grad = tensor<B, T>::zeros(backend, {3 * hidden, hidden}),
                   bias_grad = tensor<B, T>::zeros(backend, {3, hidden});
        for (std::size_t i = 0; i < 3; ++i) {
            parts_[i].value = weight.row_range(i * hidden, hidden);
            parts_[i].grad = weight_grad.row_range(i * hidden, hidden);
            part_biases_[i].value = bias.row_range(i, 1).reshaped({hidden});
            part_biases_[i].grad = bias_grad.row_range(i, 1).reshaped({hidden});
            part_biases_[i].decay = false;
        }
    }

    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        const std::size_t n = 3 * hidden_ * hidden_;
        backend_->fill_normal(n, rng.seed(), rng.take(n), T(0), stddev, fused(parts_, "weights"));
        backend_->fill(fused(part_biases_, "biases"), 3 * hidden_, T(0));
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] std::size_t hidden() const noexcept { return hidden_; }
    [[nodiscard]] std::size_t heads() const noexcept { return heads_; }
    parameter<B, T>& query_weight() noexcept { return parts_[0]; }
    parameter<B, T>& key_weight() noexcept { return parts_[1]; }
    parameter<B, T>& value_weight() noexcept { return parts_[2]; }

    /// x: (batch, seq, hidden); mask: (batch, seq) or empty; score_bias: (batch, seq, seq) or empty.
    tensor<B, T> forward(const tensor<B, T>& x, const attention_mask<B>& mask, const tensor<B, T>& score_bias,
                         context& ctx, run_mode mode) const {
        check_inputs(x, mask, score_bias);
        const std::size_t nb = x.shape()[0], seq = x.shape()[1], h = hidden_, d = head_dim_;
        ctx.input = x;
        ctx.mask = mask;
        ctx.has_bias = !score_bias.empty();
        ctx.anomaly = mode.anomaly;
        ctx.qkv = tensor<B, T>(*backend_, {nb, seq, 3 * h});
        backend_->gemm(transpose::no, transpose::yes, nb * seq, 3 * h, h, T(1), x.data(), h, fused(parts_, "weights"), h,
                       T(0), ctx.qkv.data(), 3 * h);
        backend_->add_row_vector(nb * seq, 3 * h, fused(part_biases_, "biases"), ctx.qkv.data());

        tensor<B, T> scores(*backend_, {nb, heads_, seq, seq});
        const grid_strides in_qkv{sd(seq * 3 * h), sd(d)}, in_scores{sd(heads_ * seq * seq), sd(seq * seq)};
        // S_bh = Q_bh K_bh^T
        gemm_per_example_and_head(transpose::no, transpose::yes, seq, seq, d, T(1), ctx.qkv.data(), 3 * h, in_qkv,
                                  ctx.qkv.data() + h, 3 * h, in_qkv, T(0), scores.data(), seq, in_scores, nb);
        ctx.probs = tensor<B, T>(*backend_, scores.shape());
        backend_->attention_softmax_forward(nb, heads_, seq, seq, T(1) / std::sqrt(static_cast<T>(d)), scores.data(),
                                            ctx.has_bias ? score_bias.data() : nullptr,
                                            mask.empty() ? nullptr : mask.data(), ctx.probs.data());
        // Not kept: backward makes it again with the dropout's input gradient (one more pass over the mask instead
        // of a (B, heads, T, T) tensor per layer held from forward to backward).
        const tensor<B, T> dropped = drop_.forward(ctx.probs, ctx.drop, mode);

        tensor<B, T> out(*backend_, {nb, seq, h});
        // C_bh = P_bh V_bh, written head-interleaved into (seq, H)
        gemm_per_example_and_head(transpose::no, transpose::no, seq, d, seq, T(1), dropped.data(), seq, in_scores,
                                  ctx.qkv.data() + 2 * h, 3 * h, in_qkv, T(0), out.data(), h, {sd(seq * h), sd(d)}, nb);
        check_output(mode.anomaly, name_, "", out);
        return out;
    }

    gradients backward(const tensor<B, T>& dout, context& ctx) {
        if (ctx.input.empty()) throw error(name_ + ": backward called without a training forward");
        expect_shape(name_.c_str(), "output gradient", ctx.input.shape(), dout.shape());
        const std::size_t nb = ctx.input.shape()[0], seq = ctx.input.shape()[1], h = hidden_, d = head_dim_;
        const T scale = T(1) / std::sqrt(static_cast<T>(d));
        tensor<B, T> dqkv(*backend_, {nb, seq, 3 * h});
        tensor<B, T> dprobs(*backend_, ctx.probs.shape());
        const grid_strides in_qkv{sd(seq * 3 * h), sd(d)}, in_scores{sd(heads_ * seq * seq), sd(seq * seq)},
            in_out{sd(seq * h), sd(d)};
        // dP_bh = dC_bh V_bh^T
        gemm_per_example_and_head(transpose::no, transpose::yes, seq, seq, d, T(1), dout.data(), h, in_out,
                                  ctx.qkv.data() + 2 * h, 3 * h, in_qkv, T(0), dprobs.data(), seq, in_scores, nb);
        // The dropped probabilities again, and the gradient through their dropout, from one draw of the mask.
        auto [dropped, dpre] = drop_.backward_with_output(ctx.probs, dprobs, ctx.drop);
        dprobs = {};
        // dV_bh = P_bh^T dC_bh
        gemm_per_example_and_head(transpose::yes, transpose::no, seq, d, seq, T(1), dropped.data(), seq, in_scores,
                                  dout.data(), h, in_out, T(0), dqkv.data() + 2 * h, 3 * h, in_qkv, nb);
        dropped = {};
        // dZ: gradient of the pre-softmax logits (scale * QK^T + bias); masked keys get exactly 0.
        tensor<B, T> dz(*backend_, ctx.probs.shape());
        backend_->softmax_backward(nb * heads_ * seq, seq, ctx.probs.data(), dpre.data(), T(1), dz.data());

        gradients g;
        if (ctx.has_bias) {
            // dBias_b = sum_h dZ_bh: one batched (1 x H) ones-row times (H x seq^2) product, not nb * H axpys.
            g.score_bias = tensor<B, T>(*backend_, {nb, seq, seq});
            tensor<B, T> ones(*backend_, {heads_});
            backend_->fill(ones.data(), heads_, T(1));
            backend_->gemm_strided_batched(transpose::no, transpose::no, 1, seq * seq, heads_, T(1), ones.data(), heads_,
                                           0, dz.data(), seq * seq, sd(heads_ * seq * seq), T(0), g.score_bias.data(),
                                           seq * seq, sd(seq * seq), nb);
        }
        // dQ_bh = scale dZ_bh K_bh ; dK_bh = scale dZ_bh^T Q_bh
        gemm_per_example_and_head(transpose::no, transpose::no, seq, d, seq, scale, dz.data(), seq, in_scores,
                                  ctx.qkv.data() + h, 3 * h, in_qkv, T(0), dqkv.data(), 3 * h, in_qkv, nb);
        gemm_per_example_and_head(transpose::yes, transpose::no, seq, d, seq, scale, dz.data(), seq, in_scores,
                                  ctx.qkv.data(), 3 * h, in_qkv, T(0), dqkv.data() + h, 3 * h, in_qkv, nb);
        const std::size_t rows = nb * seq;
        for (std::size_t i = 0; i < 3; ++i) {
            if (parts_[i].trainable())  // dW_i += dQKV_i^T x
                backend_->gemm(transpose::yes, transpose::no, h, h, rows, T(1), dqkv.data() + i * h, 3 * h,
                               ctx.input.data(), h, T(1), parts_[i].grad.data(), h);
            if (part_biases_[i].trainable()) {
                // column sums of a (rows, 3H) slice: reuse the full-width sum when all parts train.
                if (all_biases_trainable()) {
                    if (i == 0) backend_->accumulate_column_sums(rows, 3 * h, dqkv.data(), part_biases_[0].grad.data());
                } else {
                    tensor<B, T> tmp = tensor<B, T>::zeros(*backend_, {3 * h});
                    backend_->accumulate_column_sums(rows, 3 * h, dqkv.data(), tmp.data());
                    backend_->axpy(h, T(1), tmp.data() + i * h, part_biases_[i].grad.data());
                }
            }
        }
        g.input = tensor<B, T>(*backend_, ctx.input.shape());  // dx = dQKV W_qkv
        backend_->gemm(transpose::no, transpose::no, rows, h, 3 * h, T(1), dqkv.data(), 3 * h, fused(parts_, "weights"), h,
                       T(0), g.input.data(), h);
        check_input_gradient(ctx.anomaly, name_, "", g.input);
        if (ctx.has_bias) check_input_gradient(ctx.anomaly, name_, "", g.score_bias, "score-bias gradient");
        return g;
    }

    template <class F>
    void visit_parameters(F&& f) {
        static constexpr const char* names[3] = {"query", "key", "value"};
        for (std::size_t i = 0; i < 3; ++i) {
            f(join_name(join_name(name_, names[i]), "weight"), parts_[i]);
            f(join_name(join_name(name_, names[i]), "bias"), part_biases_[i]);
        }
    }

private:
    static std::ptrdiff_t sd(std::size_t v) { return static_cast<std::ptrdiff_t>(v); }

    /// One GEMM per (example, head), as one grid of products: every operand's example (outer) and head
    /// (inner) strides are uniform. On a GPU this is one launch; a loop of strided-batched calls over either
    /// axis was 12-32 launches of small kernels per product (measured in docs/benchmarks.md).
    void gemm_per_example_and_head(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha,
                                   const T* a, std::size_t lda, grid_strides sa, const T* b, std::size_t ldb,
                                   grid_strides sb, T beta, T* c, std::size_t ldc, grid_strides sc,
                                   std::size_t examples) const {
        backend_->gemm_batched_grid(ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, examples, heads_);
    }
    bool all_biases_trainable() const {
        // After freeze()/unfreeze() a part's gradient is its own buffer, no longer next to the others.
        for (std::size_t i = 0; i < 3; ++i)
            if (!part_biases_[i].trainable() || part_biases_[i].grad.data() != part_biases_[0].grad.data() + i * hidden_)
                return false;
        return true;
    }
    /// The first of three parts' values, which the fused products read as one (3 * rows, cols) array: checked to
    /// lie one after another (a value replaced by a tensor of its own would otherwise be read past its end).
    T* fused(const parameter<B, T> (&parts)[3], const char* what) const {
        T* first = const_cast<T*>(parts[0].value.data());
        const std::size_t n = parts[0].size();
        for (std::size_t i = 1; i < 3; ++i)
            if (parts[i].value.data() != first + i * n)
                throw error(name_ + ": the query, key and value " + what +
                            " no longer lie one after another in memory (a parameter's value tensor was replaced; "
                            "copy into it instead)");
        return first;
    }

    void check_inputs(const tensor<B, T>& x, const attention_mask<B>& mask, const tensor<B, T>& bias) const {
        if (x.shape().rank() != 3 || x.shape()[2] != hidden_)
            throw shape_error(name_ + ": input has shape " + x.shape().str() + ", expected (batch, seq, " +
                              std::to_string(hidden_) + ")");
        const std::size_t nb = x.shape()[0], seq = x.shape()[1];
        if (!mask.empty()) expect_shape(name_.c_str(), "attention mask", shape{nb, seq}, mask.shape());
        if (!bias.empty()) expect_shape(name_.c_str(), "score bias", shape{nb, seq, seq}, bias.shape());
    }

    B* backend_;
    std::string name_;
    std::size_t hidden_, heads_, head_dim_;
    parameter<B, T> parts_[3];
    parameter<B, T> part_biases_[3];
    dropout<B, T> drop_;
};

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
// self_attention: several inputs (x, padding mask, score bias): only parameterized + initializable.
static_assert(parameterized<self_attention<archetype_backend, float>>,
              "hyperadapt::self_attention must be parameterized (nn/layer.hpp)");
static_assert(initializable<self_attention<archetype_backend, float>>,
              "hyperadapt::self_attention must be initializable: initialize(rng)");
}  // namespace hyperadapt
