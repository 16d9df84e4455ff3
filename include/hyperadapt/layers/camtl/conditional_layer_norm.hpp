#pragma once
// Conditional layer norm, CLN (spec §1.5, §9; CA-MTL conditional_modules.py::ConditionalLayerNorm).
//
// The authors' code (the default, cln_variant::gain_only) conditions only the gain:
//   g_hat = FiLM_w(c, g) = (1 + gamma(c)) * g + beta(c)       [gamma; beta] = ln_weight_modulation.gb_weights(c)
//   y     = LayerNorm(x; gain = g_hat, bias = b, eps)
// The paper conditions gain and bias; cln_variant::gain_and_bias adds a second FiLM for the bias,
//   b_hat = FiLM_b(c, b) = (1 + gamma'(c)) * b + beta'(c)     [gamma'; beta'] = ln_bias_modulation.gb_weights(c)
// The paper gives no code, so this bias form (the same FiLM form as the gain) is this library's reading.
//
// Which condition row each example uses (cln_condition_rows):
//   first_of_task (default, the code): for every task id in the batch, the condition row of the FIRST
//     example with that id drives all examples of the task; the other rows are never read and get a zero
//     gradient. With z' computed from the task id alone every row of a task is equal, so this only shows in
//     gradients with respect to per-example conditions. Needs the task ids (copied to the host: batch ints).
//   per_sample: every example uses its own condition row; the task ids may be left empty.
//
// Shapes: x (batch, seq, d) or (batch, d); condition (batch, d_cond); task_ids (batch) int32.
// eps defaults to 1e-12, as CA-MTL's encoders pass it (the class default in the authors' code is 1e-5).
//
// Parameters: "<name>.weight", "<name>.bias" (d; ones and zeros, so the BERT LayerNorm weights load into
// them), "<name>.ln_weight_modulation.gb_weights.{weight,bias}" (2 d, d_cond), and with gain_and_bias
// "<name>.ln_bias_modulation.gb_weights.{weight,bias}".
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/core/task_rows.hpp"
#include "hyperadapt/layers/camtl/film.hpp"
#include "hyperadapt/layers/layer_condition.hpp"
#include "hyperadapt/layers/layer_slots.hpp"
#include "hyperadapt/nn/layer.hpp"

namespace hyperadapt {

enum class cln_variant {
    gain_only,      ///< the authors' code: only the gain is conditioned
    gain_and_bias,  ///< the paper: gain and bias are conditioned
};

enum class cln_condition_rows {
    first_of_task,  ///< the authors' code: the first example of each task id supplies the condition
    per_sample,     ///< every example uses its own condition row
};

struct cln_options {
    cln_variant variant = cln_variant::gain_only;
    cln_condition_rows condition_rows = cln_condition_rows::first_of_task;
    double eps = 1e-12;
};

template <elementwise_backend B, class T = float>
class conditional_layer_norm {
public:
    using backend_type = B;
    using value_type = T;
    using ids_type = tensor<B, std::int32_t>;
    struct context {
        tensor<B, T> input;              // x
        tensor<B, T> gains, biases;      // (rows used, d); biases only with gain_and_bias
        tensor<B, T> mean, rstd;         // (batch * seq)
        ids_type source_rows;            // condition rows used (first_of_task); empty for per_sample
        std::vector<std::size_t> slot;   // example -> row of gains / biases
        std::size_t batch = 0;
        typename film<B, T>::context weight_mod, bias_mod;
    };
    struct gradients {
        tensor<B, T> input;      // like x
        tensor<B, T> condition;  // (batch, d_cond); zero on rows that were not read
    };

    conditional_layer_norm(B& backend, std::size_t features, std::size_t condition_features,
                           std::string name = "LayerNorm", cln_options options = {})
        : backend_(&backend),
          name_(std::move(name)),
          features_(features),
          cond_(condition_features),
          options_(options),
          weight_(backend, {features}, /*decay=*/false),
          bias_(backend, {features}, /*decay=*/false),
          weight_mod_(backend, condition_features, features, join_name(name_, "ln_weight_modulation")) {
        if (features == 0 || condition_features == 0)
            throw config_error(name_ + ": conditional_layer_norm needs non-zero feature and condition sizes, got " +
                               std::to_string(features) + " and " + std::to_string(condition_features));
        if (!(options_.eps > 0)) throw config_error(name_ + ": eps must be positive");
        weight_.value.fill(T(1));
        bias_.value.zero();
        if (options_.variant == cln_variant::gain_and_bias)
            bias_mod_.emplace(backend, condition_features, features, join_name(name_, "ln_bias_modulation"));
    }

    /// The modulation projections ~ N(0, stddev), their biases zero; gain ones and bias zeros stay.
    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        weight_mod_.initialize(rng, stddev);
        if (bias_mod_) bias_mod_->initialize(rng, stddev);
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] std::size_t features() const noexcept { return features_; }
    [[nodiscard]] std::size_t condition_features() const noexcept { return cond_; }
    [[nodiscard]] const cln_options& options() const noexcept { return options_; }
    parameter<B, T>& weight() noexcept { return weight_; }
    parameter<B, T>& bias() noexcept { return bias_; }
    film<B, T>& weight_modulation() noexcept { return weight_mod_; }

    /// `known`: what the batch builder knows of task_ids (layer_condition::tasks); where it is empty the layer
    /// copies task_ids back and uploads the rows it reads itself.
    tensor<B, T> forward(const tensor<B, T>& x, const tensor<B, T>& condition, const ids_type& task_ids,
                         context& ctx, run_mode mode = {}, const batch_tasks<B>& known = {}) const {
        check_inputs(x, condition, task_ids);
        const std::size_t nb = x.shape()[0], rows = x.rows() / nb, d = features_;
        ctx.input = x;
        ctx.batch = nb;
        tensor<B, T> cond = select_condition_rows(condition, task_ids, known, ctx);  // (used, d_cond)
        const std::size_t used = cond.shape()[0];

        ctx.gains = weight_mod_.forward(broadcast(weight_, used), cond, ctx.weight_mod, mode);
        if (bias_mod_) ctx.biases = bias_mod_->forward(broadcast(bias_, used), cond, ctx.bias_mod, mode);
        ctx.mean = tensor<B, T>(*backend_, {nb * rows});
        ctx.rstd = tensor<B, T>(*backend_, {nb * rows});
        tensor<B, T> y(*backend_, x.shape());
        const T eps = static_cast<T>(options_.eps);
        for (std::size_t b = 0; b < nb; ++b) {
            const std::size_t s = ctx.slot[b];
            const T* bias = bias_mod_ ? ctx.biases.data() + s * d : bias_.value.data();
            backend_->layer_norm_forward(rows, d, eps, x.data() + b * rows * d, ctx.gains.data() + s * d, bias,
                                         y.data() + b * rows * d, ctx.mean.data() + b * rows,
                                         ctx.rstd.data() + b * rows);
        }
        return y;
    }

    gradients backward(const tensor<B, T>& dy, context& ctx) {
        if (ctx.input.empty()) throw error(name_ + ": backward called without a training forward");
        expect_shape(name_.c_str(), "output gradient", ctx.input.shape(), dy.shape());
        const tensor<B, T>& x = ctx.input;
        const std::size_t nb = ctx.batch, rows = x.rows() / nb, d = features_, used = ctx.gains.shape()[0];
        tensor<B, T> dgains = tensor<B, T>::zeros(*backend_, {used, d});
        tensor<B, T> dbiases = bias_mod_ ? tensor<B, T>::zeros(*backend_, {used, d}) : tensor<B, T>{};
        gradients g;
        g.input = tensor<B, T>(*backend_, x.shape());
        for (std::size_t b = 0; b < nb; ++b) {
            const std::size_t s = ctx.slot[b];
            T* dbias = bias_mod_ ? dbiases.data() + s * d : bias_.grad_data();
            backend_->layer_norm_backward(rows, d, x.data() + b * rows * d, ctx.gains.data() + s * d,
                                          ctx.mean.data() + b * rows, ctx.rstd.data() + b * rows,
                                          dy.data() + b * rows * d, g.input.data() + b * rows * d,
                                          dgains.data() + s * d, dbias);
        }
        auto gw = weight_mod_.backward(dgains, ctx.weight_mod);
        if (weight_.trainable()) backend_->accumulate_column_sums(used, d, gw.input.data(), weight_.grad.data());
        tensor<B, T> dcond = gw.condition;  // (used, d_cond)
        if (bias_mod_) {
            auto gb = bias_mod_->backward(dbiases, ctx.bias_mod);
            if (bias_.trainable()) backend_->accumulate_column_sums(used, d, gb.input.data(), bias_.grad.data());
            backend_->axpy(dcond.size(), T(1), gb.condition.data(), dcond.data());
        }
        if (ctx.source_rows.empty()) {
            g.condition = dcond;
        } else {
            g.condition = tensor<B, T>::zeros(*backend_, {nb, cond_});
            backend_->scatter_add_rows(used, cond_, dcond.data(), ctx.source_rows.data(), g.condition.data());
        }
        return g;
    }

    template <class F>
    void visit_parameters(F&& f) {
        f(join_name(name_, "weight"), weight_);
        f(join_name(name_, "bias"), bias_);
        weight_mod_.visit_parameters(f);
        if (bias_mod_) bias_mod_->visit_parameters(f);
    }

private:
    /// The condition rows the modulation reads, and which of them each example uses (ctx.slot).
    tensor<B, T> select_condition_rows(const tensor<B, T>& condition, const ids_type& task_ids,
                                       const batch_tasks<B>& known, context& ctx) const {
        const std::size_t nb = condition.shape()[0];
        ctx.slot.assign(nb, 0);
        ctx.source_rows = {};
        if (options_.condition_rows == cln_condition_rows::per_sample) {
            for (std::size_t b = 0; b < nb; ++b) ctx.slot[b] = b;
            return condition;
        }
        // Task ids in ascending order (as torch.unique), each with the first example that carries it.
        std::vector<std::int32_t> copied;
        task_rows present = tasks_in_order(task_ids.host_values(known.host_task_ids, copied, name_));
        ctx.slot = std::move(present.slot);
        const std::vector<std::int32_t>& first = present.first_rows;
        if (known.first_rows && !known.host_first_rows.empty()) {
            // The batch's own upload of these rows; it must say what the ids say.
            if (!std::ranges::equal(known.host_first_rows, first) || known.first_rows->size() != first.size())
                throw error(name_ + ": the batch's first rows per task do not match its task ids");
            ctx.source_rows = *known.first_rows;
        } else {
            ctx.source_rows = ids_type::from_host(*backend_, {first.size()}, first);
        }
        tensor<B, T> cond(*backend_, {first.size(), cond_});
        backend_->gather_rows(first.size(), cond_, condition.data(), ctx.source_rows.data(), cond.data());
        return cond;
    }

    /// The vector p repeated in `rows` rows: the (rows, d) input of a FiLM over the gain or bias.
    tensor<B, T> broadcast(const parameter<B, T>& p, std::size_t rows) const {
        tensor<B, T> m = tensor<B, T>::zeros(*backend_, {rows, features_});
        backend_->add_row_vector(rows, features_, p.value.data(), m.data());
        return m;
    }

    void check_inputs(const tensor<B, T>& x, const tensor<B, T>& c, const ids_type& ids) const {
        const auto& xs = x.shape();
        if (xs.rank() < 2 || xs.rank() > 3 || xs.cols() != features_ || xs[0] == 0)
            throw shape_error(name_ + ": input has shape " + xs.str() + ", expected (batch, seq, " +
                              std::to_string(features_) + ") or (batch, " + std::to_string(features_) + ")");
        expect_shape(name_.c_str(), "condition", shape{xs[0], cond_}, c.shape());
        if (options_.condition_rows == cln_condition_rows::per_sample && ids.empty()) return;
        if (ids.empty())
            throw shape_error(name_ + ": task ids are required (one per example) to pick the first example of "
                                      "each task; expected shape " + shape{xs[0]}.str());
        expect_shape(name_.c_str(), "task ids", shape{xs[0]}, ids.shape());
    }

    B* backend_;
    std::string name_;
    std::size_t features_, cond_;
    cln_options options_;
    parameter<B, T> weight_;
    parameter<B, T> bias_;
    film<B, T> weight_mod_;
    std::optional<film<B, T>> bias_mod_;
};

/// The norm slot of a transformer layer (layers/encoder_layer.hpp): CA-MTL's conditional LayerNorm after the
/// residual, conditioned on the task embedding z' and the task ids. Reads config.norm_options().
struct conditional_post_layer_norm {
    template <class B, class T>
    class slot {
    public:
        using layer_type = conditional_layer_norm<B, T>;
        using context = typename layer_type::context;
        template <encoder_layer_sizes C>
        slot(B& backend, const C& c, std::string name)
            : norm_(backend, c.hidden, c.hidden, std::move(name), c.norm_options()) {}
        template <class Rng>
        void initialize(Rng& rng, T stddev) { norm_.initialize(rng, stddev); }
        tensor<B, T> forward(const tensor<B, T>& x, const layer_condition<B, T>& c, context& ctx, run_mode mode) const {
            if (!c.task_embedding) throw error(norm_.name() + ": a conditional layer norm needs the task embedding z'");
            return norm_.forward(x, *c.task_embedding, c.task_ids ? *c.task_ids : tensor<B, std::int32_t>{}, ctx, mode,
                                 c.tasks);
        }
        /// Adds dz' into dz.
        tensor<B, T> backward(const tensor<B, T>& dy, context& ctx, tensor<B, T>& dz) {
            auto g = norm_.backward(dy, ctx);
            accumulate_into(dy.backend(), dz, g.condition);
            return std::move(g.input);
        }
        template <class F>
        void visit_parameters(F&& f) { norm_.visit_parameters(f); }
        layer_type& layer() noexcept { return norm_; }

    private:
        layer_type norm_;
    };
};

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
// conditional_layer_norm: several inputs (x, task embedding, task ids): only parameterized + initializable.
static_assert(parameterized<conditional_layer_norm<archetype_backend, float>>,
              "hyperadapt::conditional_layer_norm must be parameterized (nn/layer.hpp)");
static_assert(initializable<conditional_layer_norm<archetype_backend, float>>,
              "hyperadapt::conditional_layer_norm must be initializable: initialize(rng)");
}  // namespace hyperadapt
