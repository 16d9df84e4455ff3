#pragma once
// CA-MTL's encoder layers (spec §1.4-§1.6; the reference's ca_mtl_base.py / ca_mtl_large.py). Every kind uses
// the conditional self-attention (CBDA bias in every layer); they differ in the layer norms and the adapter:
//
//   kind              reference                      attention LN / FFN LN        after the FFN
//   plain_norm        BertLayer9, BertLayer10        LayerNorm                    -
//   conditional_norm  MyBertLayer9, MyBertLayer10    conditional LayerNorm (CLN)  -
//   adapter           MyBertAdapterLayer9            CLN                          conditional adapter
//
//   a   = LN_1(dropout(dense(conditional_self_attention(x, mask, z'))) + x)        ("attention output")
//   h   = LN_2(dropout(dense(gelu(dense(a)))) + a)
//   out = h, or for the adapter kind CLN_a(bottleneck(z', h) + a)                  (BertAdapter9: the residual
//                                                                                   is a, not the layer input)
//
// Inputs: x (batch, L, d) padded to exactly L; mask (batch, L) or empty; z' (batch, d) the transformed task
// embedding; task ids (batch) int32, read by the CLNs (may be empty for plain_norm, or with per-sample CLN rows).
// backward returns the gradients of x and z' (the CBDA, CLN and adapter paths summed).
//
// Names, under the layer path P ("encoder.layer.3"), as the reference's named_parameters():
//   P.attention.self.*  P.attention.output.{dense,LayerNorm}.*  P.intermediate.dense.*  P.output.{dense,LayerNorm}.*
// and for the adapter kind (the reference renames its sub-modules so that pretrained weights do not load):
//   P.new_attention.*   P.new_intermediate.*   P.new_output.*   P.adapter.{bottleneck,condlayernorm}.*
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "hyperadapt/layers/activations.hpp"
#include "hyperadapt/layers/camtl/conditional_adapter.hpp"
#include "hyperadapt/layers/camtl/conditional_attention.hpp"
#include "hyperadapt/layers/camtl/conditional_layer_norm.hpp"
#include "hyperadapt/layers/dropout.hpp"
#include "hyperadapt/layers/layer_norm.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/nn/anomaly.hpp"

namespace hyperadapt {

/// The sizes and options of a CA-MTL encoder layer (BERT's plus the padded length L that CBDA fixes).
struct camtl_layer_config {
    std::size_t seq_len = 128;  ///< L: every input is padded to exactly this length; hidden % seq_len == 0
    std::size_t hidden = 768;
    std::size_t heads = 12;
    std::size_t intermediate = 3072;
    double attention_dropout = 0.1;
    double hidden_dropout = 0.1;
    double layer_norm_eps = 1e-12;  ///< plain and conditional layer norms alike (CA-MTL passes 1e-12 to both)
    cln_variant norm_variant = cln_variant::gain_only;                        ///< the code's CLN (gain only)
    cln_condition_rows condition_rows = cln_condition_rows::first_of_task;  ///< the code's CLN rows
    /// Width of the large encoder's chained conditional bottlenecks; 0 = hidden / 3 as the reference. (The base
    /// encoder's adapter always uses hidden / 3: conditional_adapter takes no width.)
    std::size_t bottleneck = 0;
    /// Add the conditional block-diagonal bias to the attention scores (false: plain attention, for ablations;
    /// the CBDA parameters then stay in the model, unused).
    bool block_diagonal_bias = true;

    [[nodiscard]] cln_options norm_options() const {
        return {.variant = norm_variant, .condition_rows = condition_rows, .eps = layer_norm_eps};
    }
};

enum class camtl_layer_kind {
    plain_norm,        ///< BertLayer9/10: CBDA attention, plain LayerNorms
    conditional_norm,  ///< MyBertLayer9/10: CBDA attention, conditional LayerNorms
    adapter,           ///< MyBertAdapterLayer9: conditional_norm + the conditional adapter, sub-modules renamed
};

template <elementwise_backend B, class T, camtl_layer_kind Kind, std::size_t SeqLen = std::dynamic_extent,
          std::size_t Hidden = std::dynamic_extent>
class camtl_encoder_layer {
    static constexpr bool conditional = Kind != camtl_layer_kind::plain_norm;
    static constexpr bool has_adapter = Kind == camtl_layer_kind::adapter;

public:
    using backend_type = B;
    using value_type = T;
    using ids_type = tensor<B, std::int32_t>;
    using attention_type = conditional_self_attention<B, T, SeqLen, Hidden>;
    using norm_type = std::conditional_t<conditional, conditional_layer_norm<B, T>, layer_norm<B, T>>;
    static constexpr camtl_layer_kind kind = Kind;

    struct context {
        typename attention_type::context self;
        typename linear<B, T>::context attention_dense;
        typename dropout<B, T>::context attention_drop;
        typename norm_type::context attention_norm;
        typename linear<B, T>::context up;
        typename gelu<B, T>::context act;
        typename linear<B, T>::context down;
        typename dropout<B, T>::context output_drop;
        typename norm_type::context output_norm;
        typename conditional_adapter<B, T>::context adapter;  // adapter kind only
        anomaly_detector* anomaly = nullptr;
    };
    struct gradients {
        tensor<B, T> input;      // (batch, L, d)
        tensor<B, T> condition;  // (batch, d): dz'
    };

    /// `name` is the layer path, e.g. "encoder.layer.3".
    camtl_encoder_layer(B& backend, const camtl_layer_config& c, std::string name = "encoder.layer.0")
        : backend_(&backend),
          name_(std::move(name)),
          self_(backend, c.seq_len, c.hidden, c.heads, static_cast<T>(c.attention_dropout),
                join_name(name_, sub("attention.self"))),
          attention_dense_(backend, c.hidden, c.hidden, join_name(name_, sub("attention.output.dense"))),
          attention_drop_(backend, static_cast<T>(c.hidden_dropout), join_name(name_, sub("attention.output.dropout"))),
          attention_norm_(make_norm(backend, c, join_name(name_, sub("attention.output.LayerNorm")))),
          up_(backend, c.hidden, c.intermediate, join_name(name_, sub("intermediate.dense"))),
          act_(backend, join_name(name_, sub("intermediate.gelu"))),
          down_(backend, c.intermediate, c.hidden, join_name(name_, sub("output.dense"))),
          output_drop_(backend, static_cast<T>(c.hidden_dropout), join_name(name_, sub("output.dropout"))),
          output_norm_(make_norm(backend, c, join_name(name_, sub("output.LayerNorm")))) {
        if constexpr (has_adapter)
            adapter_.emplace(backend, c.hidden, join_name(name_, "adapter"), c.norm_options());
        self_.set_bias_enabled(c.block_diagonal_bias);
    }

    /// BERT's init for every dense layer and projection (N(0, stddev), zero biases); CBDA's A stays zero,
    /// layer-norm gains one.
    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        self_.initialize(rng, stddev);
        attention_dense_.initialize(rng, stddev);
        if constexpr (conditional) attention_norm_.initialize(rng, stddev);
        up_.initialize(rng, stddev);
        down_.initialize(rng, stddev);
        if constexpr (conditional) output_norm_.initialize(rng, stddev);
        if constexpr (has_adapter) adapter_->initialize(rng, stddev);
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    attention_type& self_attention() noexcept { return self_; }
    norm_type& attention_norm() noexcept { return attention_norm_; }
    norm_type& output_norm() noexcept { return output_norm_; }
    conditional_adapter<B, T>& adapter() noexcept
        requires has_adapter
    {
        return *adapter_;
    }

    tensor<B, T> forward(const tensor<B, T>& x, const attention_mask<B>& mask, const tensor<B, T>& z,
                         const ids_type& task_ids, context& ctx, run_mode mode) const {
        ctx.anomaly = mode.anomaly;
        const tensor<B, T> att = self_.forward(x, mask, z, ctx.self, mode);
        check_output(mode.anomaly, name_, part("attention.self"), att);
        tensor<B, T> t = attention_drop_.forward(attention_dense_.forward(att, ctx.attention_dense, mode),
                                                 ctx.attention_drop, mode);
        tensor<B, T> sum(*backend_, x.shape());
        backend_->add(x.size(), x.data(), t.data(), sum.data());
        const tensor<B, T> a = norm_forward(attention_norm_, sum, z, task_ids, ctx.attention_norm, mode);
        check_output(mode.anomaly, name_, part("attention.output"), a);

        const tensor<B, T> inner = act_.forward(up_.forward(a, ctx.up, mode), ctx.act, mode);
        check_output(mode.anomaly, name_, part("intermediate"), inner);
        tensor<B, T> o = output_drop_.forward(down_.forward(inner, ctx.down, mode), ctx.output_drop, mode);
        tensor<B, T> sum2(*backend_, a.shape());
        backend_->add(a.size(), a.data(), o.data(), sum2.data());
        tensor<B, T> h = norm_forward(output_norm_, sum2, z, task_ids, ctx.output_norm, mode);
        check_output(mode.anomaly, name_, part("output"), h);
        if constexpr (has_adapter) {
            tensor<B, T> y = adapter_->forward(a, h, z, task_ids, ctx.adapter, mode);
            check_output(mode.anomaly, name_, "adapter", y);
            return y;
        }
        return h;
    }

    gradients backward(const tensor<B, T>& dy, context& ctx) {
        tensor<B, T> dz;  // contributions of the CLNs and the adapter, added to the CBDA one at the end
        tensor<B, T> dh = dy, da_adapter;
        if constexpr (has_adapter) {
            auto g = adapter_->backward(dy, ctx.adapter);
            dh = g.hidden_states;
            da_adapter = g.bert_layer_input;
            dz = g.task_embedding;
            check_input_gradient(ctx.anomaly, name_, "adapter", dh);
            check_input_gradient(ctx.anomaly, name_, "adapter", da_adapter);
            check_input_gradient(ctx.anomaly, name_, "adapter", dz, "task-embedding gradient");
        }
        const tensor<B, T> dsum2 = norm_backward(output_norm_, dh, ctx.output_norm, dz);
        check_input_gradient(ctx.anomaly, name_, part("output"), dsum2);
        if constexpr (conditional)
            check_input_gradient(ctx.anomaly, name_, part("output"), dz, "task-embedding gradient");
        const tensor<B, T> dinner = down_.backward(output_drop_.backward(dsum2, ctx.output_drop), ctx.down);
        check_input_gradient(ctx.anomaly, name_, part("output"), dinner);
        tensor<B, T> da = up_.backward(act_.backward(dinner, ctx.act), ctx.up);
        check_input_gradient(ctx.anomaly, name_, part("intermediate"), da);
        backend_->axpy(da.size(), T(1), dsum2.data(), da.data());  // residual
        if (!da_adapter.empty()) backend_->axpy(da.size(), T(1), da_adapter.data(), da.data());

        const tensor<B, T> dsum = norm_backward(attention_norm_, da, ctx.attention_norm, dz);
        check_input_gradient(ctx.anomaly, name_, part("attention.output"), dsum);
        if constexpr (conditional)
            check_input_gradient(ctx.anomaly, name_, part("attention.output"), dz, "task-embedding gradient");
        const tensor<B, T> datt =
            attention_dense_.backward(attention_drop_.backward(dsum, ctx.attention_drop), ctx.attention_dense);
        check_input_gradient(ctx.anomaly, name_, part("attention.output"), datt);
        auto gs = self_.backward(datt, ctx.self);
        check_input_gradient(ctx.anomaly, name_, part("attention.self"), gs.input);
        check_input_gradient(ctx.anomaly, name_, part("attention.self"), gs.condition, "task-embedding gradient");
        backend_->axpy(dsum.size(), T(1), dsum.data(), gs.input.data());  // residual
        if (!dz.empty()) backend_->axpy(dz.size(), T(1), dz.data(), gs.condition.data());
        return {std::move(gs.input), std::move(gs.condition)};
    }

    template <class F>
    void visit_parameters(F&& f) {
        self_.visit_parameters(f);
        attention_dense_.visit_parameters(f);
        attention_norm_.visit_parameters(f);
        up_.visit_parameters(f);
        down_.visit_parameters(f);
        output_norm_.visit_parameters(f);
        if constexpr (has_adapter) adapter_->visit_parameters(f);
    }

private:
    /// "attention.self" -> "new_attention.self" for the adapter layer (the reference's renamed sub-modules).
    static std::string sub(const std::string& path) { return has_adapter ? "new_" + path : path; }
    /// The same renaming for anomaly check sites, without building a string on the unchecked path.
    static constexpr std::string_view part(std::string_view path) {
        if (!has_adapter) return path;
        if (path == "attention.self") return "new_attention.self";
        if (path == "attention.output") return "new_attention.output";
        if (path == "intermediate") return "new_intermediate";
        if (path == "output") return "new_output";
        return path;
    }

    static norm_type make_norm(B& backend, const camtl_layer_config& c, std::string name) {
        if constexpr (conditional)
            return norm_type(backend, c.hidden, c.hidden, std::move(name), c.norm_options());
        else
            return norm_type(backend, c.hidden, std::move(name), static_cast<T>(c.layer_norm_eps));
    }

    tensor<B, T> norm_forward(const norm_type& n, const tensor<B, T>& x, const tensor<B, T>& z,
                              const ids_type& ids, typename norm_type::context& c, run_mode mode) const {
        if constexpr (conditional)
            return n.forward(x, z, ids, c, mode);
        else
            return n.forward(x, c, mode);
    }

    /// Returns the input gradient; a CLN's condition gradient is added into dz (created on first use).
    tensor<B, T> norm_backward(norm_type& n, const tensor<B, T>& dy, typename norm_type::context& c,
                               tensor<B, T>& dz) {
        if constexpr (conditional) {
            auto g = n.backward(dy, c);
            if (dz.empty())
                dz = g.condition;
            else
                backend_->axpy(dz.size(), T(1), g.condition.data(), dz.data());
            return g.input;
        } else {
            (void)dz;
            return n.backward(dy, c);
        }
    }

    B* backend_;
    std::string name_;
    attention_type self_;
    linear<B, T> attention_dense_;
    dropout<B, T> attention_drop_;
    norm_type attention_norm_;
    linear<B, T> up_;
    gelu<B, T> act_;
    linear<B, T> down_;
    dropout<B, T> output_drop_;
    norm_type output_norm_;
    std::optional<conditional_adapter<B, T>> adapter_;
};

/// The reference's class names (the 9 and 10 variants are the same maths; 10 has no adapter layer).
template <elementwise_backend B, class T = float, std::size_t SeqLen = std::dynamic_extent,
          std::size_t Hidden = std::dynamic_extent>
using bert_layer9 = camtl_encoder_layer<B, T, camtl_layer_kind::plain_norm, SeqLen, Hidden>;
template <elementwise_backend B, class T = float, std::size_t SeqLen = std::dynamic_extent,
          std::size_t Hidden = std::dynamic_extent>
using my_bert_layer9 = camtl_encoder_layer<B, T, camtl_layer_kind::conditional_norm, SeqLen, Hidden>;
template <elementwise_backend B, class T = float, std::size_t SeqLen = std::dynamic_extent,
          std::size_t Hidden = std::dynamic_extent>
using my_bert_adapter_layer9 = camtl_encoder_layer<B, T, camtl_layer_kind::adapter, SeqLen, Hidden>;

}  // namespace hyperadapt
