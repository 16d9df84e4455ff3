#pragma once
// PHA's two contrastive losses (loss/pha_contrastive.hpp has the maths and the authors' references) as one
// optional backend primitive, so that a GPU's training step computes them where the retriever's embeddings are
// (issue 13: no host fallback on the step's path; before, the embeddings and prototypes came to the host and the
// gradients went back). The matrices are tiny ((rows, rows) and (rows, tasks) similarities over 64-wide
// embeddings), so the primitive computes in double from the T inputs, as the host classes do.
//
//   contrastive_losses(rows, dim, tasks, features, task_ids, prototypes, settings, losses, feature_grad,
//                      prototype_grad)
//     features (rows, dim) and prototypes (tasks, dim): T, row-major; task_ids (rows): int32, each in [0, tasks)
//     (the caller checks: the batch's host copy has them); losses: two doubles in backend memory, L_ins and L_pro
//     (0 for a loss that settings leaves out); feature_grad (rows, dim) = T(dL_ins/df) + T(dL_pro/df), each
//     rounded to T and then added in T; prototype_grad (tasks, dim) = T(dL_pro/dP) (untouched when L_pro is
//     left out; null then allowed). Gradients are of the unscaled losses: a loss scale (a power of two) is
//     applied by the caller, exactly.
//
// A backend without it still trains PHA: the model then copies the embeddings to the host and runs the classes
// of loss/pha_contrastive.hpp (also what data-parallel training does, whose instance loss pairs rows of every
// rank). Those classes compute with the host functions below, and contrastive_losses_on_host, the CPU backend's
// implementation and the reference of the others, calls the same: the same bits either way.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace hyperadapt {

/// What contrastive_losses computes (loss/pha_contrastive.hpp's pha_contrastive_options, and which losses).
struct contrastive_settings {
    double temperature = 0.1;
    double weight = 0.1;           ///< each loss's factor (the authors' 0.1)
    bool instance = true;          ///< L_ins, instance against instance
    bool prototype = true;         ///< L_pro, prototype against instance
    bool exclude_positive = true;  ///< L_pro's denominator without the positive prototype (the authors' code)
};

template <class B, class T>
concept contrastive_primitives = requires(B& b, std::size_t n, const T* cx, const std::int32_t* ids, T* x,
                                          double* d, contrastive_settings s) {
    b.contrastive_losses(n, n, n, cx, ids, cx, s, d, x, x);
};

namespace detail {

/// max(a, b) that keeps a NaN from either side, as loss/pha_contrastive.hpp's.
inline double contrastive_max(double a, double b) noexcept { return b > a || std::isnan(b) ? b : a; }

/// Rows of x normalised in place (F.normalize, eps 1e-12); returns the norms used.
inline std::vector<double> contrastive_normalize(std::vector<double>& x, std::size_t rows, std::size_t cols) {
    std::vector<double> n(rows);
    for (std::size_t r = 0; r < rows; ++r) {
        double s = 0;
        for (std::size_t c = 0; c < cols; ++c) s += x[r * cols + c] * x[r * cols + c];
        n[r] = std::max(std::sqrt(s), 1e-12);
        for (std::size_t c = 0; c < cols; ++c) x[r * cols + c] /= n[r];
    }
    return n;
}

/// d through f = x / max(||x||, eps), in place: (d - f (f . d)) / ||x||, for rows [first, first + rows) of f and
/// norms; d holds those rows only.
inline void contrastive_normalize_backward(const std::vector<double>& f, const std::vector<double>& norms,
                                           std::vector<double>& d, std::size_t first, std::size_t rows,
                                           std::size_t cols) {
    for (std::size_t r = 0; r < rows; ++r) {
        const std::size_t g = first + r;
        double dot = 0;
        for (std::size_t c = 0; c < cols; ++c) dot += f[g * cols + c] * d[r * cols + c];
        const bool clamped = norms[g] <= 1e-12;
        for (std::size_t c = 0; c < cols; ++c)
            d[r * cols + c] = (d[r * cols + c] - (clamped ? 0.0 : f[g * cols + c] * dot)) / norms[g];
    }
}

/// L_ins over the n rows of `features` (n, dim) with task ids t, in double: returns the terms of the anchors in
/// rows [first, first + count) (all rows: the whole loss) and writes df (count, dim), the gradient of the WHOLE
/// loss with respect to those rows (data-parallel training: each rank back-propagates its own rows).
inline double contrastive_instance_on_host(const std::vector<double>& features, const std::int32_t* t, std::size_t n,
                                           std::size_t dim, const contrastive_settings& o, std::size_t first,
                                           std::size_t count, std::vector<double>& df) {
    std::vector<double> f = features;
    const std::vector<double> norms = contrastive_normalize(f, n, dim);
    std::vector<double> s(n * n);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) {
            double v = 0;
            for (std::size_t c = 0; c < dim; ++c) v += f[i * dim + c] * f[j * dim + c];
            s[i * n + j] = v / o.temperature;
        }
    std::size_t anchors = 0;
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j)
            if (j != i && t[j] == t[i]) {
                ++anchors;
                break;
            }
    std::vector<double> grad_s(n * n, 0.0);  // dL/ds for every pair: a row's gradient needs its column too
    double total = 0;
    if (anchors > 0) {
        const double c = o.weight / static_cast<double>(anchors);
        for (std::size_t i = 0; i < n; ++i) {
            std::size_t positives = 0;
            for (std::size_t j = 0; j < n; ++j) positives += (j != i && t[j] == t[i]);
            if (positives == 0) continue;
            double mx = -std::numeric_limits<double>::infinity();
            for (std::size_t k = 0; k < n; ++k)
                if (k != i) mx = contrastive_max(mx, s[i * n + k]);
            double z = 0;
            for (std::size_t k = 0; k < n; ++k)
                if (k != i) z += std::exp(s[i * n + k] - mx);
            const double lse = mx + std::log(z);
            if (i >= first && i - first < count) {
                double li = 0;
                for (std::size_t j = 0; j < n; ++j)
                    if (j != i && t[j] == t[i]) li -= s[i * n + j] - lse;
                total += li / static_cast<double>(positives);
            }
            for (std::size_t k = 0; k < n; ++k) {
                if (k == i) continue;
                const double p = std::exp(s[i * n + k] - lse);
                const double pos = (t[k] == t[i]) ? 1.0 / static_cast<double>(positives) : 0.0;
                grad_s[i * n + k] = c * (p - pos);
            }
        }
        total *= c;
    }
    // s = F F^T / tau: dF = (G + G^T) F / tau, then through the normalisation.
    df.assign(count * dim, 0.0);
    for (std::size_t r = 0; r < count; ++r) {
        const std::size_t i = first + r;
        for (std::size_t j = 0; j < n; ++j) {
            const double g = (grad_s[i * n + j] + grad_s[j * n + i]) / o.temperature;
            if (g == 0) continue;
            for (std::size_t c = 0; c < dim; ++c) df[r * dim + c] += g * f[j * dim + c];
        }
    }
    contrastive_normalize_backward(f, norms, df, first, count, dim);
    return total;
}

/// L_pro's terms of the `rows` rows of `features` (rows, dim) with task ids t (each in [0, nt)), each divided by
/// total_rows (the whole batch's rows: the rows given may be one rank's share), in double; writes their gradients
/// df (rows, dim) and dk (nt, dim) with respect to the prototypes k (nt, dim).
inline double contrastive_prototype_on_host(const std::vector<double>& features, const std::int32_t* t, std::size_t n,
                                            std::size_t total_rows, std::size_t dim, std::vector<double> k,
                                            std::size_t nt, const contrastive_settings& o, std::vector<double>& df,
                                            std::vector<double>& dk) {
    std::vector<double> f = features;
    const std::vector<double> fn = contrastive_normalize(f, n, dim), kn = contrastive_normalize(k, nt, dim);
    std::vector<double> grad_s(n * nt, 0.0), s(nt);
    const double c = o.weight / static_cast<double>(total_rows);
    double total = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const auto ti = static_cast<std::size_t>(t[i]);
        double mx = -std::numeric_limits<double>::infinity();
        for (std::size_t p = 0; p < nt; ++p) {
            double v = 0;
            for (std::size_t d = 0; d < dim; ++d) v += f[i * dim + d] * k[p * dim + d];
            s[p] = v / o.temperature;
            if (!o.exclude_positive || p != ti) mx = contrastive_max(mx, s[p]);
        }
        double z = 0;
        for (std::size_t p = 0; p < nt; ++p)
            if (!o.exclude_positive || p != ti) z += std::exp(s[p] - mx);
        const double lse = mx + std::log(z);
        total += lse - s[ti];
        for (std::size_t p = 0; p < nt; ++p) {
            const double prob = (!o.exclude_positive || p != ti) ? std::exp(s[p] - lse) : 0.0;
            grad_s[i * nt + p] = c * (prob - (p == ti ? 1.0 : 0.0));
        }
    }
    // s = F K^T / tau: dF = G K / tau, dK = G^T F / tau, then through both normalisations.
    df.assign(n * dim, 0.0);
    dk.assign(nt * dim, 0.0);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t p = 0; p < nt; ++p) {
            const double g = grad_s[i * nt + p] / o.temperature;
            if (g == 0) continue;
            for (std::size_t d = 0; d < dim; ++d) {
                df[i * dim + d] += g * k[p * dim + d];
                dk[p * dim + d] += g * f[i * dim + d];
            }
        }
    contrastive_normalize_backward(f, fn, df, 0, n, dim);
    contrastive_normalize_backward(k, kn, dk, 0, nt, dim);
    return c * total;
}

/// The primitive on host pointers (every pointer host memory): see the top of this file.
template <class T>
void contrastive_losses_on_host(std::size_t rows, std::size_t dim, std::size_t tasks, const T* features,
                                const std::int32_t* task_ids, const T* prototypes, const contrastive_settings& o,
                                double* losses, T* feature_grad, T* prototype_grad) {
    const std::vector<double> f(features, features + rows * dim);
    std::vector<double> d_ins, d_pro, dk;
    losses[0] = o.instance ? contrastive_instance_on_host(f, task_ids, rows, dim, o, 0, rows, d_ins) : 0.0;
    losses[1] = o.prototype ? contrastive_prototype_on_host(f, task_ids, rows, rows, dim,
                                                            std::vector<double>(prototypes, prototypes + tasks * dim),
                                                            tasks, o, d_pro, dk)
                            : 0.0;
    for (std::size_t i = 0; i < rows * dim; ++i) {
        const T a = o.instance ? static_cast<T>(d_ins[i]) : T(0), b = o.prototype ? static_cast<T>(d_pro[i]) : T(0);
        feature_grad[i] = o.instance && o.prototype ? a + b : o.instance ? a : b;
    }
    if (o.prototype)
        for (std::size_t i = 0; i < tasks * dim; ++i) prototype_grad[i] = static_cast<T>(dk[i]);
}

}  // namespace detail
}  // namespace hyperadapt
