#pragma once
// CA-MTL's conditional self-attention (spec §1.4; the reference's MyBertSelfAttention9, and MyBertSelfAttention10,
// which is the same): multi-head self-attention whose scaled scores get the task-conditioned block-diagonal bias
// M(z') of block_diagonal_bias, the same (L, L) bias for every head, added before the padding mask.
//
// The attention is hyperadapt::self_attention unchanged (its score-bias hook); this layer only produces the bias
// and routes its gradient back to A, the CBDA projection and z'.
//
// Padding: the reference adds (1 - mask) * -10000 to the scores, self_attention gives masked keys exactly zero
// probability. The two agree to exp(-10000) as long as every example has at least one real token; an example
// with none would get zero probabilities here and a uniform average in the reference.
#include <span>
#include <string>

#include "hyperadapt/layers/attention.hpp"
#include "hyperadapt/layers/camtl/block_diagonal_bias.hpp"
#include "hyperadapt/layers/layer_condition.hpp"
#include "hyperadapt/layers/layer_slots.hpp"

namespace hyperadapt {

/// Self-attention + CBDA. `name` is the module path of the self-attention ("encoder.layer.3.attention.self");
/// parameters, in the reference's order:
///   "<name>.random_weight_matrix", "<name>.{query,key,value}.{weight,bias}",
///   "<name>.cond_block_diag_attn.gb_weights.{weight,bias}".
/// The reference leaves the CBDA projection frozen in frozen layers; that is a model-level choice made by name
/// (e.g. freeze "…cond_block_diag_attn.gb_weights.*" with the layer, keep "…random_weight_matrix" trainable).
template <elementwise_backend B, class T = float, std::size_t SeqLen = std::dynamic_extent,
          std::size_t Hidden = std::dynamic_extent>
class conditional_self_attention {
public:
    using backend_type = B;
    using value_type = T;
    using bias_type = block_diagonal_bias<B, T, SeqLen, Hidden>;
    struct context {
        typename bias_type::context bias;
        typename self_attention<B, T>::context attention;
        std::size_t batch = 0;
    };
    struct gradients {
        tensor<B, T> input;      // (batch, L, d)
        tensor<B, T> condition;  // (batch, d): dz'
    };

    /// Sizes from the template parameters (both static).
    conditional_self_attention(B& backend, std::size_t heads, T attention_dropout, std::string name = "attention.self")
        requires(SeqLen != std::dynamic_extent && Hidden != std::dynamic_extent)
        : conditional_self_attention(backend, SeqLen, Hidden, heads, attention_dropout, std::move(name)) {}

    conditional_self_attention(B& backend, std::size_t seq_len, std::size_t hidden, std::size_t heads,
                               T attention_dropout, std::string name = "attention.self")
        : name_(std::move(name)),
          bias_(backend, seq_len, hidden, name_),
          attention_(backend, hidden, heads, attention_dropout, name_) {}

    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        attention_.initialize(rng, stddev);
        bias_.initialize(rng, stddev);
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] std::size_t seq_len() const noexcept { return bias_.seq_len(); }
    [[nodiscard]] std::size_t hidden() const noexcept { return bias_.hidden(); }
    [[nodiscard]] std::size_t heads() const noexcept { return attention_.heads(); }
    bias_type& block_bias() noexcept { return bias_; }
    /// Turns the block-diagonal bias off (plain attention; for ablations) or back on.
    void set_bias_enabled(bool on) noexcept { bias_enabled_ = on; }
    [[nodiscard]] bool bias_enabled() const noexcept { return bias_enabled_; }
    self_attention<B, T>& attention() noexcept { return attention_; }

    /// x: (batch, n, d) padded to n <= L positions; mask: (batch, n) or empty; z: (batch, d) the task
    /// condition z'. A batch shorter than L gets the top-left n x n corner of the bias (block_diagonal_bias.hpp).
    tensor<B, T> forward(const tensor<B, T>& x, const attention_mask<B>& mask, const tensor<B, T>& z, context& ctx,
                         run_mode mode) const {
        if (x.shape().rank() != 3 || x.shape()[1] == 0 || x.shape()[1] > bias_.seq_len() ||
            x.shape()[2] != bias_.hidden())
            throw shape_error(name_ + ": input has shape " + x.shape().str() +
                              "; conditional block-diagonal attention takes inputs padded to at most L = " +
                              std::to_string(bias_.seq_len()) + " positions, (batch, n <= " +
                              std::to_string(bias_.seq_len()) + ", " + std::to_string(bias_.hidden()) + ")");
        if (z.shape().rank() != 2 || z.shape()[0] != x.shape()[0])
            throw shape_error(name_ + ": task condition has shape " + z.shape().str() + ", expected (" +
                              std::to_string(x.shape()[0]) + ", " + std::to_string(bias_.hidden()) + ")");
        if (!bias_enabled_) {
            ctx.batch = z.shape()[0];
            return attention_.forward(x, mask, {}, ctx.attention, mode);
        }
        tensor<B, T> m = bias_.forward(z, x.shape()[1], ctx.bias, mode);
        return attention_.forward(x, mask, m, ctx.attention, mode);
    }

    gradients backward(const tensor<B, T>& dy, context& ctx) {
        auto g = attention_.backward(dy, ctx.attention);
        if (!bias_enabled_)
            return {std::move(g.input), tensor<B, T>::zeros(g.input.backend(), {ctx.batch, bias_.hidden()})};
        return {std::move(g.input), bias_.backward(g.score_bias, ctx.bias)};
    }

    template <class F>
    void visit_parameters(F&& f) {
        // random_weight_matrix first, the projection last: the reference's named_parameters() order.
        f(join_name(name_, "random_weight_matrix"), bias_.matrix());
        attention_.visit_parameters(f);
        bias_.projection().visit_parameters(f);
    }

private:
    std::string name_;
    bias_type bias_;
    self_attention<B, T> attention_;
    bool bias_enabled_ = true;
};

/// The attention slot of a transformer layer (layers/encoder_layer.hpp) with CA-MTL's block-diagonal task bias
/// from the condition's task embedding z'. Reads config.seq_len and config.block_diagonal_bias.
template <std::size_t SeqLen = std::dynamic_extent, std::size_t Hidden = std::dynamic_extent>
struct block_diagonal_attention {
    template <class B, class T>
    class slot {
    public:
        using layer_type = conditional_self_attention<B, T, SeqLen, Hidden>;
        using context = typename layer_type::context;
        template <encoder_layer_sizes C>
        slot(B& backend, const C& c, const slot_site& site)
            : self_(backend, c.seq_len, c.hidden, c.heads, static_cast<T>(c.attention_dropout),
                    site.path("attention.self")) {
            self_.set_bias_enabled(c.block_diagonal_bias);
        }
        template <class Rng>
        void initialize(Rng& rng, T stddev) { self_.initialize(rng, stddev); }
        tensor<B, T> forward(const tensor<B, T>& x, const layer_condition<B, T>& c, context& ctx, run_mode mode) const {
            if (!c.task_embedding) throw error(self_.name() + ": the block-diagonal bias needs the task embedding z'");
            return self_.forward(x, c.mask ? *c.mask : attention_mask<B>{}, *c.task_embedding, ctx, mode);
        }
        /// Adds dz' into dz (after the contributions already there, as the reference sums them).
        tensor<B, T> backward(const tensor<B, T>& dy, context& ctx, tensor<B, T>& dz) {
            auto g = self_.backward(dy, ctx);
            if (self_.bias_enabled()) accumulate_into(g.input.backend(), dz, g.condition);
            return std::move(g.input);
        }
        template <class F>
        void visit_parameters(F&& f) { self_.visit_parameters(f); }
        layer_type& layer() noexcept { return self_; }

    private:
        layer_type self_;
    };
};

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
// conditional_self_attention: several inputs (x, padding mask, task embedding): only parameterized + initializable.
static_assert(parameterized<conditional_self_attention<archetype_backend, float>>,
              "hyperadapt::conditional_self_attention must be parameterized (nn/layer.hpp)");
static_assert(initializable<conditional_self_attention<archetype_backend, float>>,
              "hyperadapt::conditional_self_attention must be initializable: initialize(rng)");
}  // namespace hyperadapt
