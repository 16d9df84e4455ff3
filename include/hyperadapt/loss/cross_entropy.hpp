#pragma once
#include <cstdint>
#include <span>
#include <string>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/tensor/tensor.hpp"

namespace hyperadapt {

/// Softmax cross-entropy, as torch.nn.functional.cross_entropy with reduction="mean": the mean of
/// -log softmax(logits)[label] over the rows whose label is not `ignore_index`.
///
/// Logits (..., classes), labels of the leading shape (...) as tensor<B, std::int32_t> (see
/// layers/embedding.hpp). Labels are copied to the host once per forward, to validate them and to count the
/// rows the mean runs over, unless the caller hands their host copy in.
///
/// `ignore_index` must be negative (default -1): the backend kernels skip every negative label, so a
/// non-negative one could not be honoured. Other negative labels are errors, like any label >= classes.
/// A batch whose labels are all ignored has loss 0 and a zero gradient (PyTorch returns NaN), so that an
/// unlabelled batch of one task cannot poison a multi-task step.
template <elementwise_backend B, class T = float>
class cross_entropy_loss {
public:
    using backend_type = B;
    using value_type = T;
    using labels_type = tensor<B, std::int32_t>;
    struct context {
        tensor<B, T> probs;
        labels_type labels;
        std::size_t counted = 0;  ///< rows not ignored: the mean's denominator
        std::size_t rows = 0;
        double loss = 0;
        bool forwarded = false;  ///< forward_rows ran (finish may follow)
    };

    explicit cross_entropy_loss(B& backend, std::string name = "cross_entropy", std::int32_t ignore_index = -1)
        : backend_(&backend), name_(std::move(name)), ignore_index_(ignore_index) {
        if (ignore_index >= 0)
            throw config_error(name_ + ": ignore_index must be negative, got " + std::to_string(ignore_index));
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] std::int32_t ignore_index() const noexcept { return ignore_index_; }

    /// Returns the mean loss (also kept in ctx.loss), summed in double.
    double forward(const tensor<B, T>& logits, const labels_type& labels, context& ctx) const {
        return forward(logits, labels, labels.to_host(), ctx);
    }
    /// The same with the labels' host copy given (`host_labels`, equal to `labels`): a caller that built the
    /// labels on the host saves the copy back (on a GPU, a wait).
    double forward(const tensor<B, T>& logits, const labels_type& labels, std::span<const std::int32_t> host_labels,
                   context& ctx) const {
        const std::size_t counted = checked_count(logits, labels, host_labels);
        tensor<B, T> losses(*backend_, {logits.rows()});
        forward_checked(logits, labels, counted, ctx, losses.data());
        return finish(ctx, losses.to_host());
    }

    /// forward in two halves, for a caller with several losses that copies all their per-row losses back at
    /// once (layers/multitask_heads.hpp; on a GPU one wait instead of one per loss). forward_rows checks the
    /// labels, keeps what backward needs and writes every row's loss (logits.rows() values, 0 for an ignored
    /// row) to `row_losses` in backend memory; finish takes their host copy and returns the mean, as forward.
    void forward_rows(const tensor<B, T>& logits, const labels_type& labels, std::span<const std::int32_t> host_labels,
                      context& ctx, T* row_losses) const {
        forward_checked(logits, labels, checked_count(logits, labels, host_labels), ctx, row_losses);
    }

    double finish(context& ctx, std::span<const T> host_row_losses) const {
        if (!ctx.forwarded) throw error(name_ + ": finish called without forward_rows");
        if (host_row_losses.size() != ctx.rows)
            throw shape_error(name_ + ": " + std::to_string(host_row_losses.size()) + " row losses for " +
                              std::to_string(ctx.rows) + " rows");
        double total = 0;
        for (const T l : host_row_losses) total += static_cast<double>(l);
        ctx.loss = ctx.counted ? total / static_cast<double>(ctx.counted) : 0.0;
        return ctx.loss;
    }

    /// d(scale * loss) / d logits.
    tensor<B, T> backward(const context& ctx, T scale = T(1)) const {
        if (ctx.probs.empty()) throw error(name_ + ": backward called without a forward");
        tensor<B, T> dlogits(*backend_, ctx.probs.shape());
        if (ctx.counted == 0) {
            dlogits.zero();
            return dlogits;
        }
        backend_->cross_entropy_backward(ctx.probs.rows(), ctx.probs.cols(), ctx.probs.data(), ctx.labels.data(),
                                         scale / static_cast<T>(ctx.counted), dlogits.data());
        return dlogits;
    }

private:
    /// Checks the shapes and labels; returns the rows the mean runs over (labels not ignore_index).
    std::size_t checked_count(const tensor<B, T>& logits, const labels_type& labels,
                              std::span<const std::int32_t> host_labels) const {
        const hyperadapt::shape& ls = logits.shape();
        if (ls.rank() < 2 || ls.cols() == 0)
            throw shape_error(name_ + ": logits have shape " + ls.str() + ", expected (..., classes)");
        expect_shape(name_.c_str(), "labels", leading_shape(ls), labels.shape());
        const std::size_t rows = logits.rows(), classes = logits.cols();
        if (host_labels.size() != rows)
            throw shape_error(name_ + ": " + std::to_string(host_labels.size()) + " host labels for " +
                              std::to_string(rows) + " rows");
        std::size_t counted = 0;
        for (std::size_t r = 0; r < rows; ++r) {
            const std::int32_t label = host_labels[r];
            if (label == ignore_index_) continue;
            if (label < 0 || static_cast<std::size_t>(label) >= classes)
                throw error(name_ + ": label " + std::to_string(label) + " at row " + std::to_string(r) +
                            " is out of range for " + std::to_string(classes) + " classes (ignore_index is " +
                            std::to_string(ignore_index_) + ")");
            ++counted;
        }
        return counted;
    }

    void forward_checked(const tensor<B, T>& logits, const labels_type& labels, std::size_t counted, context& ctx,
                         T* row_losses) const {
        ctx = {};
        ctx.probs = tensor<B, T>(*backend_, logits.shape());
        backend_->cross_entropy_forward(logits.rows(), logits.cols(), logits.data(), labels.data(), ctx.probs.data(),
                                        row_losses);
        ctx.labels = labels;
        ctx.counted = counted;
        ctx.rows = logits.rows();
        ctx.forwarded = true;
    }

    static hyperadapt::shape leading_shape(const hyperadapt::shape& s) {
        switch (s.rank()) {
            case 2: return {s[0]};
            case 3: return {s[0], s[1]};
            default: return {s[0], s[1], s[2]};
        }
    }

    B* backend_;
    std::string name_;
    std::int32_t ignore_index_;
};

}  // namespace hyperadapt
