#pragma once
// PHA's contrastive losses (spec §2.5; PHA third_party/trainers/t5_trainer.py::_ins_ins_loss,
// _pro_ins_loss). With f_i = e_i / ||e_i||, k_t = p_t / ||p_t|| (F.normalize, norms clamped at 1e-12) and
// temperature tau (0.1, hard-coded by the authors):
//
// instance-instance (supervised contrastive over the batch):
//   s_ij = f_i . f_j / tau,   P(i) = {j != i : task_j = task_i}
//   l_i  = -(1/|P(i)|) sum_{j in P(i)} [s_ij - log sum_{k != i} exp(s_ik)]
//   L    = weight * mean over anchors with |P(i)| > 0          (0 when no anchor has a positive)
//
// prototype-instance:
//   s_it = f_i . k_t / tau
//   l_i  = -[s_{i,t_i} - log sum_{t != t_i} exp(s_it)]         the code: the positive is EXCLUDED
//   l_i  = -[s_{i,t_i} - log sum_t exp(s_it)]                  pha_denominator::standard (InfoNCE)
//   L    = weight * mean_i l_i
//
// weight defaults to 0.1: the authors multiply each loss by 0.1 inside the method and add them unweighted.
//
// These are tiny ((batch, batch) and (batch, tasks) similarity matrices over 64-wide embeddings), so they
// run on the host in double after one copy of the embeddings; the returned gradients are backend tensors. The
// arithmetic is backend/contrastive_losses.hpp's host functions, which a model's training step reaches through
// the backend instead (contrastive_losses: on a GPU where the embeddings are): the same bits either way. Forward
// computes the gradients too (of the unscaled loss); backward scales them.
//
// Data-parallel training (distributed/): L_ins pairs every row of the global batch with every other, so each
// rank gathers the global batch's embeddings and task ids (host doubles) and calls the gathered forward with
// its loss_row_share: it computes the whole loss, keeps its own anchors' terms (the ranks' losses add up to
// the global one), and backward returns the gradient of the global loss for its own rows only (each row's
// gradient is back-propagated by the one rank that holds it, so the ranks' parameter gradients add up to the
// global ones). L_pro is a sum over rows: each rank keeps its rows' terms, divided by the global batch size.
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/backend/contrastive_losses.hpp"
#include "hyperadapt/core/errors.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/tensor/tensor.hpp"

namespace hyperadapt {

enum class pha_denominator {
    exclude_positive,  ///< the authors' code: sum over the other prototypes only
    standard,          ///< InfoNCE: the positive is in the denominator
};

/// The rows of a (gathered) batch whose loss terms and gradients are this process's: rows [first, first +
/// count); count = max: to the last row. The default is every row: a single process.
struct loss_row_share {
    std::size_t first = 0;
    std::size_t count = std::numeric_limits<std::size_t>::max();
    /// Rows [first, first + count) of an n-row batch; throws error naming `loss` when they are not in it.
    [[nodiscard]] loss_row_share within(std::size_t n, const std::string& loss) const {
        const std::size_t c = count == std::numeric_limits<std::size_t>::max() && first <= n ? n - first : count;
        if (first > n || c > n - first)
            throw error(loss + ": rows [" + std::to_string(first) + ", " + std::to_string(first) + " + " + std::to_string(c) +
                        ") are not all in a batch of " + std::to_string(n) + " rows");
        return {first, c};
    }
};

struct pha_contrastive_options {
    double temperature = 0.1;
    double weight = 0.1;
    pha_denominator denominator = pha_denominator::exclude_positive;  ///< prototype-instance loss only
};

namespace pha_detail {
inline void check_embeddings(const std::string& name, const char* what, const shape& s) {
    if (s.rank() != 2 || s[0] == 0 || s[1] == 0)
        throw shape_error(name + ": " + what + " have shape " + s.str() + ", expected (rows, features)");
}
inline contrastive_settings settings_of(const pha_contrastive_options& o) {
    return {.temperature = o.temperature,
            .weight = o.weight,
            .instance = true,
            .prototype = true,
            .exclude_positive = o.denominator == pha_denominator::exclude_positive};
}
/// scale x d, in double (a loss scale: a power of two, so the same bits as a gradient computed with it).
inline std::vector<double> scaled(const std::vector<double>& d, double scale) {
    std::vector<double> out(d);
    if (scale != 1.0)
        for (double& v : out) v *= scale;
    return out;
}
}  // namespace pha_detail

/// Instance-instance supervised contrastive loss.
template <memory_backend B, class T = float>
class pha_instance_loss {
public:
    using labels_type = tensor<B, std::int32_t>;
    struct context {
        std::vector<double> df;  // d(the whole batch's L) / d(the share's features), (share.count, dim)
        std::size_t rows = 0, dim = 0;
        loss_row_share share;  // the rows whose gradient backward returns
        double loss = 0;
        bool ready = false;
    };

    explicit pha_instance_loss(B& backend, pha_contrastive_options options = {}, std::string name = "ins_ins_loss")
        : backend_(&backend), options_(options), name_(std::move(name)) {}

    [[nodiscard]] const std::string& name() const noexcept { return name_; }

    /// The loss of a batch: features (rows, dim), task ids (rows).
    double forward(const tensor<B, T>& features, const labels_type& tasks, context& ctx) const {
        pha_detail::check_embeddings(name_, "features", features.shape());
        const std::size_t n = features.shape()[0], dim = features.shape()[1];
        expect_shape(name_.c_str(), "task ids", shape{n}, tasks.shape());
        const auto h = features.to_host();
        return forward(std::vector<double>(h.begin(), h.end()), tasks.to_host(), dim, {}, ctx);
    }

    /// The loss of a gathered batch (host values: features rows x dim, task ids), `share`'s anchors' terms only:
    /// summed over a partition of the rows into shares, these are the whole batch's loss.
    double forward(std::vector<double> features, const std::vector<std::int32_t>& t, std::size_t dim,
                   loss_row_share share, context& ctx) const {
        const std::size_t n = t.size();
        if (n == 0 || dim == 0 || features.size() != n * dim)
            throw shape_error(name_ + ": " + std::to_string(features.size()) + " feature values for " + std::to_string(n) +
                              " rows of " + std::to_string(dim));
        ctx = {};
        ctx.share = share.within(n, name_);
        ctx.rows = n;
        ctx.dim = dim;
        ctx.loss = detail::contrastive_instance_on_host(features, t.data(), n, dim, pha_detail::settings_of(options_),
                                                        ctx.share.first, ctx.share.count, ctx.df);
        ctx.ready = true;
        return ctx.loss;
    }

    /// d(scale * L) / d features of the share's rows (share.count, dim), L the whole batch's loss.
    tensor<B, T> backward(const context& ctx, double scale = 1.0) const {
        const std::vector<double> df = backward_values(ctx, scale);
        const std::vector<T> out(df.begin(), df.end());
        return tensor<B, T>::from_host(*backend_, shape{ctx.share.count, ctx.dim}, out);
    }

    /// The same on the host, in double (rows x dim, row-major), for a caller that uploads it with other values.
    [[nodiscard]] std::vector<double> backward_values(const context& ctx, double scale = 1.0) const {
        if (!ctx.ready) throw error(name_ + ": backward called without a forward");
        return pha_detail::scaled(ctx.df, scale);
    }

private:
    B* backend_;
    pha_contrastive_options options_;
    std::string name_;
};

/// Prototype-instance contrastive loss.
template <memory_backend B, class T = float>
class pha_prototype_loss {
public:
    using labels_type = tensor<B, std::int32_t>;
    struct context {
        std::vector<double> df, dk;        // the gradients of the share's terms: (share rows, dim), (tasks, dim)
        hyperadapt::shape fshape, kshape;  // (share rows, dim), (tasks, dim)
        double loss = 0;
        bool ready = false;
    };
    struct gradients {
        tensor<B, T> features;    // (share rows, dim)
        tensor<B, T> prototypes;  // (tasks, dim): the share's rows' part
    };

    explicit pha_prototype_loss(B& backend, pha_contrastive_options options = {}, std::string name = "pro_ins_loss")
        : backend_(&backend), options_(options), name_(std::move(name)) {}

    [[nodiscard]] const std::string& name() const noexcept { return name_; }

    /// The loss of a batch: features (rows, dim), task ids (rows), prototypes (tasks, dim).
    double forward(const tensor<B, T>& features, const labels_type& tasks, const tensor<B, T>& prototypes,
                   context& ctx) const {
        pha_detail::check_embeddings(name_, "features", features.shape());
        const std::size_t n = features.shape()[0], dim = features.shape()[1];
        expect_shape(name_.c_str(), "task ids", shape{n}, tasks.shape());
        const auto h = features.to_host();
        return forward(std::vector<double>(h.begin(), h.end()), tasks.to_host(), dim, prototypes, {}, ctx);
    }

    /// The loss of a gathered batch (host features rows x dim and task ids), `share`'s rows' terms only (each
    /// divided by the whole batch's row count): summed over a partition of the rows, the whole batch's loss.
    double forward(const std::vector<double>& features, const std::vector<std::int32_t>& t, std::size_t dim,
                   const tensor<B, T>& prototypes, loss_row_share share, context& ctx) const {
        pha_detail::check_embeddings(name_, "prototypes", prototypes.shape());
        const auto hk = prototypes.to_host();
        return forward(features, t, dim, std::vector<double>(hk.begin(), hk.end()), prototypes.shape(), share, ctx);
    }

    /// The same with the prototypes' values on the host (`prototype_shape` (tasks, dim), row-major), for a caller
    /// that copied them back with the features (one wait instead of two).
    double forward(const std::vector<double>& features, const std::vector<std::int32_t>& t, std::size_t dim,
                   std::vector<double> prototypes, const hyperadapt::shape& prototype_shape, loss_row_share share,
                   context& ctx) const {
        pha_detail::check_embeddings(name_, "prototypes", prototype_shape);
        const std::size_t total_rows = t.size(), nt = prototype_shape[0];
        if (prototypes.size() != prototype_shape.size())
            throw shape_error(name_ + ": " + std::to_string(prototypes.size()) + " prototype values for shape " +
                              prototype_shape.str());
        if (total_rows == 0 || dim == 0 || features.size() != total_rows * dim)
            throw shape_error(name_ + ": " + std::to_string(features.size()) + " feature values for " +
                              std::to_string(total_rows) + " rows of " + std::to_string(dim));
        expect_shape(name_.c_str(), "prototypes", shape{nt, dim}, prototype_shape);
        const bool exclude = options_.denominator == pha_denominator::exclude_positive;
        if (exclude && nt < 2)
            throw config_error(name_ + ": the positive-excluded denominator needs at least two prototypes, got " +
                               std::to_string(nt));
        for (std::size_t i = 0; i < total_rows; ++i)
            if (t[i] < 0 || static_cast<std::size_t>(t[i]) >= nt)
                throw error(name_ + ": task id " + std::to_string(t[i]) + " at row " + std::to_string(i) +
                            " is out of range for " + std::to_string(nt) + " prototypes");
        share = share.within(total_rows, name_);
        const std::size_t n = share.count;
        ctx = {};
        ctx.fshape = shape{n, dim};
        ctx.kshape = prototype_shape;
        const auto first = features.begin() + static_cast<std::ptrdiff_t>(share.first * dim);
        const std::vector<double> rows(first, first + static_cast<std::ptrdiff_t>(n * dim));
        ctx.loss = detail::contrastive_prototype_on_host(rows, t.data() + share.first, n, total_rows, dim,
                                                         std::move(prototypes), nt, pha_detail::settings_of(options_),
                                                         ctx.df, ctx.dk);
        ctx.ready = true;
        return ctx.loss;
    }

    gradients backward(const context& ctx, double scale = 1.0) const {
        const host_gradients g = backward_values(ctx, scale);
        const std::vector<T> of(g.features.begin(), g.features.end()), ok(g.prototypes.begin(), g.prototypes.end());
        return {tensor<B, T>::from_host(*backend_, ctx.fshape, of), tensor<B, T>::from_host(*backend_, ctx.kshape, ok)};
    }

    /// The same on the host, in double, for a caller that uploads them with other values.
    struct host_gradients {
        std::vector<double> features;    // (share rows, dim), row-major
        std::vector<double> prototypes;  // (tasks, dim)
    };
    [[nodiscard]] host_gradients backward_values(const context& ctx, double scale = 1.0) const {
        if (!ctx.ready) throw error(name_ + ": backward called without a forward");
        return {pha_detail::scaled(ctx.df, scale), pha_detail::scaled(ctx.dk, scale)};
    }

private:
    B* backend_;
    pha_contrastive_options options_;
    std::string name_;
};

}  // namespace hyperadapt
