#pragma once
// One post-LayerNorm transformer encoder layer with slots — the single layer body behind plain BERT, CA-MTL's
// three layer kinds and the PHA / HyperFormer adapter layers:
//
//   s   = Attention(x | condition)                               slot: bert_attention, block_diagonal_attention
//   y1  = dense(s) [-> Serial.after_attention]                   slot: serial adapters (HyperFormer)
//   a   = Norm_1(x + dropout(y1) | condition)                    slot: post_layer_norm, conditional_post_layer_norm
//   y2  = W2 gelu(W1 a + b1) + b2 [-> Serial.after_ffn]
//   h   = Norm_2(a + (dropout(y2) [+ Parallel(a)]) | condition)  slot: parallel adapter (PHA, beside the FFN)
//   out = h, or Output(a, h | condition)                         slot: output adapter (CA-MTL's top layer)
//
// With every slot at its plain choice it is Hugging Face's BertLayer, parameter names included
// ("<name>.attention.self.*", "<name>.attention.output.{dense,LayerNorm}.*", "<name>.intermediate.dense.*",
// "<name>.output.{dense,LayerNorm}.*"). The slots are types (a slot is chosen at compile time); each is a
// small class template in the header of its architecture (the CA-MTL slots at the ends of
// layers/camtl/conditional_{attention,layer_norm,adapter}.hpp, the PHA ones in layers/pha/adapter_slots.hpp), and
// docs/design.md says how to write a new one.
//
// The layer is a conditioned layer (nn/conditioned_layer.hpp): forward(x, layer_condition, ctx, mode) and
// backward(dy, ctx, layer_condition_gradients&), which adds the task-embedding gradient of every conditioned
// slot and the gradients of the generated weights the layer was given.
#include <concepts>
#include <cstddef>
#include <string>
#include <type_traits>
#include <vector>

#include "hyperadapt/layers/attention.hpp"
#include "hyperadapt/layers/dense_gelu.hpp"
#include "hyperadapt/layers/dropout.hpp"
#include "hyperadapt/layers/layer_condition.hpp"
#include "hyperadapt/layers/layer_norm.hpp"
#include "hyperadapt/layers/layer_slots.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/nn/anomaly.hpp"
#include "hyperadapt/nn/compose.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {

// ---- The plain slots -----------------------------------------------------------------------------------------

/// BERT's self-attention (BertSelfAttention); reads the padding mask only.
struct bert_attention {
    template <class B, class T>
    class slot {
    public:
        using context = typename self_attention<B, T>::context;
        template <encoder_layer_sizes C>
        slot(B& backend, const C& c, const slot_site& site)
            : self_(backend, c.hidden, c.heads, static_cast<T>(c.attention_dropout), site.path("attention.self")) {}
        template <class Rng>
        void initialize(Rng& rng, T stddev) { self_.initialize(rng, stddev); }
        tensor<B, T> forward(const tensor<B, T>& x, const layer_condition<B, T>& c, context& ctx, run_mode mode) const {
            return self_.forward(x, c.mask ? *c.mask : attention_mask<B>{}, {}, ctx, mode);
        }
        tensor<B, T> backward(const tensor<B, T>& dy, context& ctx, tensor<B, T>& /*dz*/) {
            return std::move(self_.backward(dy, ctx).input);
        }
        template <class F>
        void visit_parameters(F&& f) { self_.visit_parameters(f); }
        self_attention<B, T>& layer() noexcept { return self_; }

    private:
        self_attention<B, T> self_;
    };
};

/// BERT's LayerNorm after the residual.
struct post_layer_norm {
    template <class B, class T>
    class slot {
    public:
        using context = typename layer_norm<B, T>::context;
        template <encoder_layer_sizes C>
        slot(B& backend, const C& c, std::string name)
            : norm_(backend, c.hidden, std::move(name), static_cast<T>(c.layer_norm_eps)) {}
        template <class Rng>
        void initialize(Rng&, T) {}
        tensor<B, T> forward(const tensor<B, T>& x, const layer_condition<B, T>&, context& ctx, run_mode mode) const {
            return norm_.forward(x, ctx, mode);
        }
        tensor<B, T> backward(const tensor<B, T>& dy, context& ctx, tensor<B, T>& /*dz*/) {
            return norm_.backward(dy, ctx);
        }
        template <class F>
        void visit_parameters(F&& f) { norm_.visit_parameters(f); }
        layer_norm<B, T>& layer() noexcept { return norm_; }

    private:
        layer_norm<B, T> norm_;
    };
};

namespace detail {
template <class Slot, class B, class T>
struct slot_of {
    using type = typename Slot::template slot<B, T>;
};
template <class B, class T>
struct slot_of<no_adapter, B, T> {
    struct type {
        struct context {};
    };
};
}  // namespace detail

/// The transformer layer; see the file comment. Slots:
///   Attention  bert_attention | block_diagonal_attention<L, d> (CA-MTL)
///   Norm       post_layer_norm | conditional_post_layer_norm (CA-MTL)
///   Parallel   no_adapter | parallel_adapter (PHA: own weights and/or generated ones, beside the FFN)
///   Serial     no_adapter | serial_adapters (HyperFormer: generated, after the attention and FFN outputs)
///   Output     no_adapter | conditional_output_adapter (CA-MTL's top layer; renames the sub-modules "new_*")
template <elementwise_backend B, class T, class Attention = bert_attention, class Norm = post_layer_norm,
          class Parallel = no_adapter, class Serial = no_adapter, class Output = no_adapter>
class transformer_layer {
    using attention_slot = typename Attention::template slot<B, T>;
    using norm_slot = typename Norm::template slot<B, T>;
    using parallel_slot = typename detail::slot_of<Parallel, B, T>::type;
    using serial_slot = typename detail::slot_of<Serial, B, T>::type;
    using output_slot = typename detail::slot_of<Output, B, T>::type;
    static constexpr bool has_parallel = !std::same_as<Parallel, no_adapter>;
    static constexpr bool has_serial = !std::same_as<Serial, no_adapter>;
    static constexpr bool has_output = !std::same_as<Output, no_adapter>;

public:
    using backend_type = B;
    using value_type = T;
    using condition_type = layer_condition<B, T>;
    using condition_gradients = layer_condition_gradients<B, T>;
    using attention_type = Attention;
    using norm_type = Norm;
    using parallel_type = Parallel;
    using serial_type = Serial;
    using output_type = Output;

    struct context {
        typename attention_slot::context self;
        typename linear<B, T>::context attention_dense;
        typename serial_slot::context serial;
        typename dropout<B, T>::context attention_drop;
        typename norm_slot::context attention_norm;
        typename dense_gelu<B, T>::context intermediate;  // the output dense's input is not kept: see backward
        typename dropout<B, T>::context output_drop;
        typename parallel_slot::context parallel;
        typename norm_slot::context output_norm;
        typename output_slot::context output;
        anomaly_detector* anomaly = nullptr;
    };

    /// `name` is the layer path ("encoder.layer.3"); `index` its position in the encoder (which generated
    /// weights of a layer_condition it reads).
    /// The config this layer is usually built from (a braced list builds one).
    using config_type = encoder_layer_config;

    template <encoder_layer_sizes C = config_type>
    transformer_layer(B& backend, const C& c, std::string name = "encoder.layer.0", std::size_t index = 0)
        : backend_(&backend),
          site_{std::move(name), index, renamed_prefix()},
          self_(backend, c, site_),
          attention_dense_(backend, c.hidden, c.hidden, site_.path("attention.output.dense")),
          attention_drop_(backend, static_cast<T>(c.hidden_dropout), site_.path("attention.output.dropout")),
          attention_norm_(backend, c, site_.path("attention.output.LayerNorm")),
          intermediate_(backend, c.hidden, c.intermediate, site_.path("intermediate.dense")),
          down_(backend, c.intermediate, c.hidden, site_.path("output.dense")),
          output_drop_(backend, static_cast<T>(c.hidden_dropout), site_.path("output.dropout")),
          output_norm_(backend, c, site_.path("output.LayerNorm")),
          serial_(make_slot<serial_slot, has_serial>(backend, c)),
          parallel_(make_slot<parallel_slot, has_parallel>(backend, c)),
          output_(make_slot<output_slot, has_output>(backend, c)) {}

    /// BERT's init for every dense layer and projection (N(0, stddev), zero biases); each slot its own.
    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        self_.initialize(rng, stddev);
        attention_dense_.initialize(rng, stddev);
        attention_norm_.initialize(rng, stddev);
        intermediate_.initialize(rng, stddev);
        down_.initialize(rng, stddev);
        output_norm_.initialize(rng, stddev);
        if constexpr (has_serial) serial_.initialize(rng, stddev);
        if constexpr (has_parallel) parallel_.initialize(rng, stddev);
        if constexpr (has_output) output_.initialize(rng, stddev);
    }

    [[nodiscard]] const std::string& name() const noexcept { return site_.layer; }
    [[nodiscard]] std::size_t index() const noexcept { return site_.index; }
    attention_slot& attention() noexcept { return self_; }
    norm_slot& attention_norm() noexcept { return attention_norm_; }
    norm_slot& output_norm() noexcept { return output_norm_; }
    parallel_slot& parallel() noexcept requires has_parallel { return parallel_; }
    serial_slot& serial() noexcept requires has_serial { return serial_; }
    output_slot& output_adapter() noexcept requires has_output { return output_; }

    /// x (batch, seq, hidden).
    tensor<B, T> forward(const tensor<B, T>& x, const condition_type& c, context& ctx, run_mode mode) const {
        ctx.anomaly = mode.anomaly;
        const generated_adapters<B, T> g = c.generated_for(site_.index);
        tensor<B, T> y1 = attention_dense_.forward(self_.forward(x, c, ctx.self, mode), ctx.attention_dense, mode);
        if constexpr (has_serial) y1 = serial_.forward_after_attention(y1, g, ctx.serial, mode);
        const tensor<B, T> s1 = attention_drop_.forward_add(std::move(y1), x, ctx.attention_drop, mode);  // + residual
        const tensor<B, T> a = attention_norm_.forward(s1, c, ctx.attention_norm, mode);
        check_output(mode.anomaly, site_.layer, part_attention_output(), a);

        const tensor<B, T> inner = intermediate_.forward(a, ctx.intermediate, mode);
        check_output(mode.anomaly, site_.layer, part_intermediate(), inner);
        tensor<B, T> y2 = down_.apply(inner);  // inner is not kept: backward makes it again
        if constexpr (has_serial) y2 = serial_.forward_after_ffn(y2, g, ctx.serial, mode);
        tensor<B, T> s2 = output_drop_.forward_add(std::move(y2), a, ctx.output_drop, mode);  // + residual
        if constexpr (has_parallel) parallel_.add_forward(a, c, g, s2, ctx.parallel, mode);
        tensor<B, T> h = output_norm_.forward(s2, c, ctx.output_norm, mode);
        check_output(mode.anomaly, site_.layer, part_output(), h);
        if constexpr (has_output) {
            tensor<B, T> out = output_.forward(a, h, c, ctx.output, mode);
            check_output(mode.anomaly, site_.layer, "adapter", out);
            return out;
        }
        return h;
    }

    /// Returns the input gradient; adds the condition gradients into dc.
    tensor<B, T> backward(const tensor<B, T>& dy, context& ctx, condition_gradients& dc) {
        tensor<B, T> dz;  // this layer's task-embedding gradient, added into dc at the end
        tensor<B, T> dh = dy, da_output;
        if constexpr (has_output) {
            auto g = output_.backward(dy, ctx.output, dz);
            dh = std::move(g.hidden_states);
            da_output = std::move(g.layer_input);
            check_input_gradient(ctx.anomaly, site_.layer, "adapter", dh);
            check_input_gradient(ctx.anomaly, site_.layer, "adapter", da_output);
        }
        const tensor<B, T> ds2 = output_norm_.backward(dh, ctx.output_norm, dz);
        check_input_gradient(ctx.anomaly, site_.layer, part_output(), ds2);
        tensor<B, T> dy2 = output_drop_.backward(ds2, ctx.output_drop);
        if constexpr (has_serial) dy2 = serial_.backward_after_ffn(dy2, ctx.serial, site_.index, dc);
        const tensor<B, T> dinner = down_.input_gradient(dy2);
        check_input_gradient(ctx.anomaly, site_.layer, part_output(), dinner);
        // The GELU output (4 x hidden per token, the layer's widest activation) was not kept from forward: the
        // intermediate's backward makes it again, to the bit, for the output dense's weight gradient.
        tensor<B, T> da = intermediate_.backward_remaking_output(
            dinner, ctx.intermediate, [&](const tensor<B, T>& inner) { down_.accumulate_parameter_gradients(dy2, inner); });
        check_input_gradient(ctx.anomaly, site_.layer, part_intermediate(), da);
        backend_->axpy(da.size(), T(1), ds2.data(), da.data());  // residual
        if constexpr (has_parallel) parallel_.add_backward(ds2, ctx.parallel, site_.index, dc, da);
        if (!da_output.empty()) backend_->axpy(da.size(), T(1), da_output.data(), da.data());

        const tensor<B, T> ds1 = attention_norm_.backward(da, ctx.attention_norm, dz);
        check_input_gradient(ctx.anomaly, site_.layer, part_attention_output(), ds1);
        tensor<B, T> dy1 = attention_drop_.backward(ds1, ctx.attention_drop);
        if constexpr (has_serial) dy1 = serial_.backward_after_attention(dy1, ctx.serial, site_.index, dc);
        const tensor<B, T> ds = attention_dense_.backward(dy1, ctx.attention_dense);
        check_input_gradient(ctx.anomaly, site_.layer, part_attention_output(), ds);
        tensor<B, T> dx = self_.backward(ds, ctx.self, dz);
        backend_->axpy(ds1.size(), T(1), ds1.data(), dx.data());  // residual
        if (!dz.empty()) {
            check_input_gradient(ctx.anomaly, site_.layer, "", dz, "task-embedding gradient");
            accumulate_into(*backend_, dc.task_embedding, dz);
        }
        return dx;
    }

    /// Hugging Face's order: attention.self, attention.output, intermediate, output; then the slots' own.
    template <class F>
    void visit_parameters(F&& f) {
        self_.visit_parameters(f);
        attention_dense_.visit_parameters(f);
        attention_norm_.visit_parameters(f);
        intermediate_.visit_parameters(f);
        down_.visit_parameters(f);
        output_norm_.visit_parameters(f);
        if constexpr (has_serial) serial_.visit_parameters(f);
        if constexpr (has_parallel) parallel_.visit_parameters(f);
        if constexpr (has_output) output_.visit_parameters(f);
    }

private:
    static std::string renamed_prefix() {
        if constexpr (has_output) return output_slot::renames_submodules ? "new_" : "";
        return "";
    }
    // Anomaly sites without building a string on the unchecked path.
    static constexpr bool renamed = [] {
        if constexpr (has_output) return output_slot::renames_submodules;
        return false;
    }();
    static constexpr const char* part_attention_output() { return renamed ? "new_attention.output" : "attention.output"; }
    static constexpr const char* part_intermediate() { return renamed ? "new_intermediate" : "intermediate"; }
    static constexpr const char* part_output() { return renamed ? "new_output" : "output"; }

    template <class Slot, bool Present, class C>
    Slot make_slot(B& backend, const C& c) const {
        if constexpr (Present)
            return Slot(backend, c, site_);
        else
            return Slot{};
    }

    B* backend_;
    slot_site site_;
    attention_slot self_;
    linear<B, T> attention_dense_;
    dropout<B, T> attention_drop_;
    norm_slot attention_norm_;
    dense_gelu<B, T> intermediate_;
    linear<B, T> down_;
    dropout<B, T> output_drop_;
    norm_slot output_norm_;
    [[no_unique_address]] serial_slot serial_;
    [[no_unique_address]] parallel_slot parallel_;
    [[no_unique_address]] output_slot output_;
};

/// Hugging Face's BertLayer.
template <elementwise_backend B, class T = float>
using encoder_layer = transformer_layer<B, T>;

/// Hugging Face's BertEncoder: n BertLayers named "<prefix>.layer.<i>".
template <elementwise_backend B, class T = float>
using encoder = layer_stack<encoder_layer<B, T>>;

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
static_assert(conditioned_layer<encoder_layer<archetype_backend, float>>,
              "hyperadapt::encoder_layer must be a conditioned layer (nn/conditioned_layer.hpp)");
static_assert(initializable<encoder_layer<archetype_backend, float>>,
              "hyperadapt::encoder_layer must be initializable: initialize(rng)");
// encoder = layer_stack<encoder_layer>.
static_assert(conditioned_layer<encoder<archetype_backend, float>>,
              "hyperadapt::encoder must be a conditioned layer (nn/conditioned_layer.hpp)");
static_assert(initializable<encoder<archetype_backend, float>>,
              "hyperadapt::encoder must be initializable: initialize(rng)");
}  // namespace hyperadapt
