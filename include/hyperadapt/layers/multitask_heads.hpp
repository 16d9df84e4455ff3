#pragma once
// One output head per task on a shared pooled representation, for batches that mix tasks (CA-MTL §1.7):
// each row goes through its own task's head (dropout -> linear, classification or regression), each task
// present in the batch gets its mean loss (cross-entropy or MSE), and the batch loss is the mean over the
// tasks present, so every task counts equally whatever its number of rows.
#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "hyperadapt/layers/heads.hpp"
#include "hyperadapt/loss/cross_entropy.hpp"
#include "hyperadapt/loss/mse.hpp"
#include "hyperadapt/tensor/staged_upload.hpp"

namespace hyperadapt {

struct task_head_spec {
    std::string name;        ///< used in parameter names: "heads.<name>.weight"
    std::size_t num_labels;  ///< classes; 1 means a regression task (MSE on a single output)
    /// Regression only: the head learns target / target_scale and outputs() multiplies back. STS-B's 0-5
    /// scores give an MSE (and gradients) an order of magnitude above the classification losses; in a
    /// shared model under global-norm clipping that one task then sets the direction of every update.
    double target_scale = 1.0;
};

/// What a batch uploaded for the heads (data/multitask_batch.hpp): per task present, in ascending task order, its
/// rows of the batch, their labels and, for a regression task, their targets as the data gives them (before
/// target_scale; empty for a classification task). Empty: forward_loss stages and uploads them itself.
template <class B, class T>
struct staged_task_rows {
    std::span<const tensor<B, std::int32_t>> rows, labels;
    std::span<const tensor<B, T>> targets;
};

template <elementwise_backend B, class T = float>
class multitask_heads {
public:
    using backend_type = B;
    using value_type = T;
    using ids_type = tensor<B, std::int32_t>;

    struct task_part {
        std::size_t task = 0;
        std::vector<std::int32_t> rows;  // batch rows of this task
        ids_type row_ids;
        typename classification_head<B, T>::context head;
        typename cross_entropy_loss<B, T>::context ce;
        typename mse_loss<B, T>::context mse;
        double loss = 0;
        double weight = 0;  // of this task's mean loss in the batch loss (set with loss_task_rows)
    };
    struct context {
        std::vector<task_part> parts;
        std::size_t batch = 0;
        double loss = 0;
        bool weighted = false;  // the parts carry their weights (forward_loss with loss_task_rows)
    };

    multitask_heads(B& backend, std::size_t hidden, std::vector<task_head_spec> tasks, T dropout_p = T(0.1),
                    std::string prefix = "heads")
        : backend_(&backend), name_(std::move(prefix)), hidden_(hidden), specs_(std::move(tasks)), ce_(backend),
          mse_(backend) {
        if (specs_.empty()) throw config_error(name_ + ": at least one task head is needed");
        heads_.reserve(specs_.size());
        for (const auto& s : specs_) {
            if (s.num_labels == 0) throw config_error(name_ + ": task '" + s.name + "' has 0 labels");
            if (!(s.target_scale > 0)) throw config_error(name_ + ": task '" + s.name + "' has target_scale " +
                                                            std::to_string(s.target_scale) + "; it must be > 0");
            heads_.emplace_back(backend, hidden, s.num_labels, dropout_p, join_name(name_, s.name));
        }
    }

    template <class Rng>
    void initialize(Rng& rng, T stddev = T(0.02)) {
        for (auto& h : heads_) h.initialize(rng, stddev);
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] std::size_t num_tasks() const noexcept { return specs_.size(); }
    [[nodiscard]] const task_head_spec& spec(std::size_t t) const { return specs_.at(t); }
    [[nodiscard]] bool is_regression(std::size_t t) const { return specs_.at(t).num_labels == 1; }

    /// Per-row head outputs (logits, or the score for a regression task), at inference: one vector per row.
    /// `known_rows`: per task present, ascending, its rows of the batch as the batch uploaded them
    /// (multitask_batch::rows_of_task; they must hold what task_of_row says, sizes checked); empty: uploaded
    /// here, in one copy. Every task's outputs come back in one copy (on a GPU one wait, not one per task).
    std::vector<std::vector<T>> outputs(const tensor<B, T>& pooled, const std::vector<std::int32_t>& task_of_row,
                                        run_mode mode = {},
                                        std::span<const tensor<B, std::int32_t>> known_rows = {}) const {
        std::vector<std::vector<std::int32_t>> rows_of(heads_.size());
        for (std::size_t r = 0; r < task_of_row.size(); ++r) {
            if (task_of_row[r] < 0 || static_cast<std::size_t>(task_of_row[r]) >= heads_.size())
                throw config_error(name_ + ": row " + std::to_string(r) + " has task id " +
                                   std::to_string(task_of_row[r]) + "; there are " + std::to_string(heads_.size()) +
                                   " task heads");
            rows_of[static_cast<std::size_t>(task_of_row[r])].push_back(static_cast<std::int32_t>(r));
        }
        std::vector<std::size_t> present;
        for (std::size_t t = 0; t < heads_.size(); ++t)
            if (!rows_of[t].empty()) present.push_back(t);
        if (!known_rows.empty() && known_rows.size() != present.size())
            throw shape_error(name_ + ": the batch uploaded rows for " + std::to_string(known_rows.size()) +
                              " tasks; its rows hold " + std::to_string(present.size()));
        staged_upload<B> stage;
        std::vector<staged_array<std::int32_t>> rows_at;
        if (known_rows.empty())
            for (const std::size_t t : present) rows_at.push_back(stage.add(rows_of[t]));
        stage.upload(*backend_);
        std::size_t total = 0;
        std::vector<std::size_t> outputs_at;
        for (const std::size_t t : present) outputs_at.push_back(total), total += rows_of[t].size() * specs_[t].num_labels;
        tensor<B, T> all(*backend_, {total});
        for (std::size_t k = 0; k < present.size(); ++k) {
            const std::size_t t = present[k], n = rows_of[t].size();
            const ids_type rows = known_rows.empty() ? stage.view(rows_at[k], {n}) : known_rows[k];
            expect_shape(name_.c_str(), ("rows of task " + specs_[t].name).c_str(), shape{n}, rows.shape());
            typename classification_head<B, T>::context hctx;
            const auto y = heads_[t].forward(gather(pooled, rows), hctx, mode);
            backend_->copy(y.data(), all.data() + outputs_at[k], y.size());
        }
        const std::vector<T> host = all.to_host();
        std::vector<std::vector<T>> out(task_of_row.size());
        for (std::size_t k = 0; k < present.size(); ++k) {
            const std::size_t t = present[k], c = specs_[t].num_labels;
            const auto first = host.begin() + static_cast<std::ptrdiff_t>(outputs_at[k]);
            for (std::size_t i = 0; i < rows_of[t].size(); ++i) {
                auto& row = out[static_cast<std::size_t>(rows_of[t][i])];
                row.assign(first + static_cast<std::ptrdiff_t>(i * c), first + static_cast<std::ptrdiff_t>((i + 1) * c));
                if (is_regression(t))
                    for (auto& v : row) v = static_cast<T>(static_cast<double>(v) * specs_[t].target_scale);
            }
        }
        return out;
    }

    /// Batch loss: the mean over tasks present of each task's mean loss. labels: class id per row (any value
    /// for regression rows); scores: target per row (any value for classification rows). With
    /// `loss_task_rows` (rows per task id of a larger batch this one is a share of, as multitask_batch holds it),
    /// the share of that batch's loss these rows carry: task t's mean weighs n_t / (K N_t), K the tasks present
    /// there, so that the shares' losses add up to the larger batch's. `known`: the rows and labels per task as
    /// the batch uploaded them; they must hold what task_of_row, labels and scores say (sizes checked). With
    /// them, and a regression task's target_scale 1, nothing is uploaded here; a target_scale other than 1
    /// divides the batch's targets on the backend (T(1 / scale) times each, where the heads' own upload divides
    /// in double on the host: the targets may differ in their last bit).
    double forward_loss(const tensor<B, T>& pooled, const std::vector<std::int32_t>& task_of_row,
                        const std::vector<std::int32_t>& labels, const std::vector<float>& scores, context& ctx,
                        run_mode mode, const std::vector<std::size_t>& loss_task_rows = {},
                        staged_task_rows<B, T> known = {}) const {
        if (pooled.shape().rank() != 2 || pooled.cols() != hidden_ || pooled.rows() != task_of_row.size())
            throw shape_error(name_ + ": pooled input has shape " + pooled.shape().str() + ", expected (" +
                              std::to_string(task_of_row.size()) + ", " + std::to_string(hidden_) + ")");
        ctx = {};
        ctx.batch = task_of_row.size();
        for (std::size_t r = 0; r < task_of_row.size(); ++r)
            if (task_of_row[r] < 0 || static_cast<std::size_t>(task_of_row[r]) >= heads_.size())
                throw config_error(name_ + ": row " + std::to_string(r) + " has task id " +
                                   std::to_string(task_of_row[r]) + "; there are " + std::to_string(heads_.size()) +
                                   " task heads");
        // Every task's rows, labels and targets, gathered on the host and uploaded in one copy
        // (tensor/staged_upload.hpp): on a GPU one wait for the whole batch instead of two per task, and none
        // when the batch uploaded them (`known`).
        struct staged_part {
            staged_array<std::int32_t> rows_at, labels_at;
            staged_array<T> targets_at;
            std::vector<std::int32_t> labels;
        };
        const bool uploaded = !known.rows.empty() || !known.labels.empty() || !known.targets.empty();
        staged_upload<B> stage;
        std::vector<staged_part> staged;
        for (std::size_t t = 0; t < heads_.size(); ++t) {
            task_part part;
            part.task = t;
            for (std::size_t r = 0; r < task_of_row.size(); ++r)
                if (static_cast<std::size_t>(task_of_row[r]) == t) part.rows.push_back(static_cast<std::int32_t>(r));
            if (part.rows.empty()) continue;
            staged_part sp;
            for (auto r : part.rows) sp.labels.push_back(labels[static_cast<std::size_t>(r)]);
            if (!uploaded) {
                sp.rows_at = stage.add(part.rows);
                if (is_regression(t)) {
                    std::vector<T> target;
                    for (auto r : part.rows)
                        target.push_back(static_cast<T>(scores[static_cast<std::size_t>(r)] / specs_[t].target_scale));
                    sp.targets_at = stage.add(target);
                } else {
                    sp.labels_at = stage.add(sp.labels);
                }
            }
            staged.push_back(std::move(sp));
            ctx.parts.push_back(std::move(part));
        }
        if (uploaded && (known.rows.size() != ctx.parts.size() || known.labels.size() != ctx.parts.size() ||
                         known.targets.size() != ctx.parts.size()))
            throw shape_error(name_ + ": the batch uploaded rows, labels and targets for " +
                              std::to_string(known.rows.size()) + ", " + std::to_string(known.labels.size()) + " and " +
                              std::to_string(known.targets.size()) + " tasks; its rows hold " +
                              std::to_string(ctx.parts.size()));
        stage.upload(*backend_);
        // Every task's per-row losses (classification) or differences from the target (regression) land in one
        // buffer and come back in one copy; the means are taken on the host, in double.
        std::size_t total_rows = 0;
        std::vector<std::size_t> losses_at(ctx.parts.size(), 0);
        for (std::size_t k = 0; k < ctx.parts.size(); ++k) losses_at[k] = total_rows, total_rows += ctx.parts[k].rows.size();
        tensor<B, T> row_losses(*backend_, {total_rows});
        for (std::size_t k = 0; k < ctx.parts.size(); ++k) {
            task_part& part = ctx.parts[k];
            const staged_part& sp = staged[k];
            const std::size_t n = part.rows.size(), t = part.task;
            part.row_ids = uploaded ? known.rows[k] : stage.view(sp.rows_at, {n});
            expect_shape(name_.c_str(), ("rows of task " + specs_[t].name).c_str(), shape{n}, part.row_ids.shape());
            const auto y = heads_[t].forward(gather(pooled, part.row_ids), part.head, mode);
            if (is_regression(t))
                mse_.forward_rows(y, uploaded ? scaled_targets(known.targets[k], t) : stage.view(sp.targets_at, {n, 1}),
                                  part.mse, row_losses.data() + losses_at[k]);
            else
                ce_.forward_rows(y, uploaded ? known.labels[k] : stage.view(sp.labels_at, {n}), sp.labels, part.ce,
                                 row_losses.data() + losses_at[k]);
        }
        const std::vector<T> host_losses = row_losses.to_host();
        for (std::size_t k = 0; k < ctx.parts.size(); ++k) {
            task_part& part = ctx.parts[k];
            const auto values = std::span<const T>(host_losses).subspan(losses_at[k], part.rows.size());
            part.loss = is_regression(part.task) ? mse_.finish(part.mse, values) : ce_.finish(part.ce, values);
            ctx.loss += part.loss;
        }
        if (loss_task_rows.empty()) {
            ctx.loss /= static_cast<double>(ctx.parts.size());
            return ctx.loss;
        }
        if (loss_task_rows.size() != heads_.size())
            throw config_error(name_ + ": loss_task_rows has " + std::to_string(loss_task_rows.size()) +
                               " counts for " + std::to_string(heads_.size()) + " task heads");
        const auto present = static_cast<double>(
            std::count_if(loss_task_rows.begin(), loss_task_rows.end(), [](std::size_t n) { return n > 0; }));
        ctx.loss = 0;
        for (auto& part : ctx.parts) {
            if (loss_task_rows[part.task] < part.rows.size())
                throw config_error(name_ + ": task " + specs_[part.task].name + " has " + std::to_string(part.rows.size()) +
                                   " rows here but " + std::to_string(loss_task_rows[part.task]) + " in loss_task_rows");
            part.weight = static_cast<double>(part.rows.size()) / (present * static_cast<double>(loss_task_rows[part.task]));
            ctx.loss += part.weight * part.loss;
        }
        ctx.weighted = true;
        return ctx.loss;
    }

    /// Gradient of `loss_scale` x the batch loss with respect to `pooled`; accumulates the heads' parameter
    /// gradients.
    tensor<B, T> backward(context& ctx, T loss_scale = T(1)) {
        auto dpooled = tensor<B, T>::zeros(*backend_, {ctx.batch, hidden_});
        for (auto& part : ctx.parts) {
            const T scale = ctx.weighted ? loss_scale * static_cast<T>(part.weight)
                                         : loss_scale / static_cast<T>(ctx.parts.size());
            const auto dy = is_regression(part.task) ? mse_.backward(part.mse, scale) : ce_.backward(part.ce, scale);
            const auto drows = heads_[part.task].backward(dy, part.head);
            backend_->scatter_add_rows(part.rows.size(), hidden_, drows.data(), part.row_ids.data(), dpooled.data());
        }
        return dpooled;
    }

    template <class F>
    void visit_parameters(F&& f) {
        for (auto& h : heads_) h.visit_parameters(f);
    }

private:
    /// A regression task's targets as its head learns them: the batch's divided by the task's target_scale, as
    /// an (n, 1) column.
    tensor<B, T> scaled_targets(const tensor<B, T>& targets, std::size_t t) const {
        const std::size_t n = targets.size();
        if (specs_[t].target_scale == 1.0) return targets.reshaped({n, 1});
        tensor<B, T> out(*backend_, {n, 1});
        backend_->copy(targets.data(), out.data(), n);
        backend_->scale(n, static_cast<T>(1.0 / specs_[t].target_scale), out.data());
        return out;
    }
    tensor<B, T> gather(const tensor<B, T>& pooled, const ids_type& rows) const {
        tensor<B, T> out(*backend_, {rows.size(), hidden_});
        backend_->gather_rows(rows.size(), hidden_, pooled.data(), rows.data(), out.data());
        return out;
    }

    B* backend_;
    std::string name_;
    std::size_t hidden_;
    std::vector<task_head_spec> specs_;
    std::vector<classification_head<B, T>> heads_;
    cross_entropy_loss<B, T> ce_;
    mse_loss<B, T> mse_;
};

}  // namespace hyperadapt

// ---- The layer contract checked where the layer is defined (nn/layer.hpp, nn/conditioned_layer.hpp), over
// backend/archetype.hpp: a backend of declarations only, so this header names no real backend and the
// check instantiates no function body.
#include "hyperadapt/backend/archetype.hpp"
#include "hyperadapt/nn/conditioned_layer.hpp"

namespace hyperadapt {
// multitask_heads: several inputs (pooled output, task ids, targets): only parameterized + initializable.
static_assert(parameterized<multitask_heads<archetype_backend, float>>,
              "hyperadapt::multitask_heads must be parameterized (nn/layer.hpp)");
static_assert(initializable<multitask_heads<archetype_backend, float>>,
              "hyperadapt::multitask_heads must be initializable: initialize(rng)");
}  // namespace hyperadapt
