#pragma once
// One value buffer and one gradient buffer for all of a model's parameters (issue 13, item 3).
//
// Layers allocate their parameters one tensor at a time, and generic code walks them one at a time: zeroing,
// unscaling and clipping the gradients cost a launch per tensor on a GPU (about 200 for a MiniLM CA-MTL), and a
// data-parallel all-reduce a message per tensor or bucket. flat_parameters moves every parameter's value into
// one buffer and every trainable parameter's gradient into another; the layers keep their parameter objects,
// whose tensors become views into those buffers (the layers never learn of it). Then
//   zero_grad()             is one fill,
//   clip_grad_norm(max)     is one reduction (one wait, for its total) and at most one scaling,
//   scale_gradients(s)      is one scaling (the loss scaler's unscale),
//   gradients(), values()   are one array each to all-reduce or broadcast (distributed/data_parallel.hpp).
// Names, shapes and checkpoints are unchanged (a checkpoint is written from the parameters, by name).
//
// Tensors that share storage when this object is made stay together (values by the values' storage, gradients by
// the gradients'): the query, key and value weights a self-attention layer reads as one (3H, H) matrix keep their
// places relative to one another, and so do their gradients (a part frozen and unfrozen later comes back to its
// place). Each such block starts on a 64-byte boundary; the gaps are zero and stay zero. A model flattened
// again (a second trainer run) keeps its layout: each buffer is then one block, and the gradients' holds only
// what was trainable.
//
// Freezing or unfreezing a parameter afterwards replaces its gradient tensor (freeze drops it, unfreeze
// allocates a new one). Every operation here first checks, by pointer, that each parameter still has the
// gradient it gave it, and lays the gradients out again (keeping their values) when one does not: a trainer
// that unfreezes layers as it goes stays correct, at the cost of one copy when it happens. A parameter's value
// tensor must not be replaced (copy into it): the check covers values too, and lays them out again.
//
// The model must outlive this object and stay in place (it holds pointers to the parameters), as adamw does.
// Destroying it leaves the model as it is: the parameters keep the buffers alive through their views.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/errors.hpp"
#include "hyperadapt/nn/layer.hpp"
#include "hyperadapt/nn/parameter.hpp"

namespace hyperadapt {

template <elementwise_backend B, class T = float>
class flat_parameters {
public:
    using backend_type = B;
    using value_type = T;

    /// Each storage block starts at a multiple of this many elements (64 bytes).
    static constexpr std::size_t alignment = 64 / sizeof(T) > 0 ? 64 / sizeof(T) : 1;

    template <parameterized M>
        requires std::same_as<typename M::backend_type, B> && std::same_as<typename M::value_type, T>
    explicit flat_parameters(M& model) {
        model.visit_parameters([&](const std::string& name, parameter<B, T>& p) {
            names_.push_back(name);
            params_.push_back(&p);
            if (!backend_ && !p.value.empty()) backend_ = &p.value.backend();
        });
        find_layouts();
        lay_out_values();
        lay_out_gradients();
    }

    flat_parameters(const flat_parameters&) = delete;
    flat_parameters& operator=(const flat_parameters&) = delete;

    /// Lays values and gradients out again where a parameter's tensor was replaced since (freeze, unfreeze);
    /// returns whether anything moved. Every operation below calls it first.
    bool refresh() {
        bool moved = false;
        if (!values_current()) {
            lay_out_values();
            moved = true;
        }
        if (!gradients_current()) {
            lay_out_gradients();
            moved = true;
        }
        return moved;
    }

    /// Whether every value and every trainable gradient still lies where this object put it.
    [[nodiscard]] bool values_current() const noexcept {
        for (std::size_t i = 0; i < params_.size(); ++i)
            if (params_[i]->value.data() != value_at_[i]) return false;
        return true;
    }
    [[nodiscard]] bool gradients_current() const noexcept {
        for (std::size_t i = 0; i < params_.size(); ++i)
            if ((params_[i]->trainable() ? params_[i]->grad.data() : nullptr) != grad_at_[i]) return false;
        return true;
    }

    /// Every parameter's value, in one array (gaps between storage blocks included; they hold zeros).
    [[nodiscard]] tensor<B, T>& values() {
        refresh();
        return values_;
    }
    /// Every trainable parameter's gradient, in one array (empty when nothing trains; gaps hold zeros).
    [[nodiscard]] tensor<B, T>& gradients() {
        refresh();
        return grads_;
    }
    /// How many times the gradients were laid out (1 after construction; more after freezing or unfreezing).
    [[nodiscard]] std::size_t gradient_layouts() const noexcept { return gradient_layouts_; }
    /// Parameters in visiting order.
    [[nodiscard]] std::size_t size() const noexcept { return params_.size(); }
    [[nodiscard]] const std::string& name(std::size_t i) const { return names_.at(i); }
    [[nodiscard]] const parameter<B, T>& at(std::size_t i) const { return *params_.at(i); }

    /// Zeroes every gradient: one fill.
    void zero_grad() {
        refresh();
        if (!grads_.empty()) grads_.zero();
    }

    /// Multiplies every gradient by s: one launch.
    void scale_gradients(T s) {
        refresh();
        if (!grads_.empty()) backend_->scale(grads_.size(), s, grads_.data());
    }

    /// The L2 norm of all gradients taken together: one reduction, one wait for its value.
    [[nodiscard]] double gradient_norm() {
        refresh();
        if (grads_.empty()) return 0.0;
        if constexpr (accumulating_reductions<B, T>) {
            // Summed in backend memory and copied back: the one wait is the copy (as gradient_norm(model) does).
            auto total = backend_->template allocate<double>(1);
            backend_->fill(total.data(), 1, 0.0);
            backend_->sum_squares_accumulate(grads_.size(), grads_.data(), total.data());
            double sum = 0;
            backend_->copy_to_host(total.data(), &sum, 1);
            return std::sqrt(sum);
        } else {
            return std::sqrt(backend_->sum_squares(grads_.size(), grads_.data()));
        }
    }

    /// As hyperadapt::clip_grad_norm (optim/clip.hpp): scales every gradient by max_norm / (norm + 1e-6) when the
    /// norm exceeds max_norm and returns the norm before clipping; a non-finite norm leaves the gradients as they
    /// are (or throws, with error_if_nonfinite).
    double clip_grad_norm(double max_norm, bool error_if_nonfinite = false) {
        if (!(max_norm > 0))
            throw config_error("hyperadapt::flat_parameters::clip_grad_norm: max_norm must be > 0, got " +
                               std::to_string(max_norm));
        const double norm = gradient_norm();
        if (!std::isfinite(norm)) {
            if (error_if_nonfinite)
                throw error("hyperadapt::flat_parameters::clip_grad_norm: the total gradient norm is " +
                            std::to_string(norm) + "; gradients are not finite");
            return norm;
        }
        const double coef = max_norm / (norm + 1e-6);
        if (coef < 1) backend_->scale(grads_.size(), T(coef), grads_.data());
        return norm;
    }

private:
    static std::size_t aligned(std::size_t n) { return (n + alignment - 1) / alignment * alignment; }

    static constexpr std::size_t none = static_cast<std::size_t>(-1);

    /// Runs of parameters whose tensors shared one storage when this object was made (the attention's query, key
    /// and value weights; their gradients): each run laid out together, each member at its first offset.
    struct block_layout {
        std::vector<std::size_t> extent;     ///< per block: from its lowest member's first element to its highest's last
        std::vector<std::size_t> block_of;   ///< per parameter: its block, or none
        std::vector<std::size_t> offset;     ///< per parameter: its place in its block
    };

    /// The blocks of `field(p)` over the parameters `take` accepts, from the storage the tensors have now.
    template <class Field, class Take>
    block_layout find_blocks(Field field, Take take) const {
        block_layout l;
        std::vector<const void*> storage;
        std::vector<const T*> lo;
        const std::less<const T*> before;
        l.block_of.assign(params_.size(), none);
        l.offset.assign(params_.size(), 0);
        for (std::size_t i = 0; i < params_.size(); ++i) {
            const tensor<B, T>& t = field(*params_[i]);
            if (!take(*params_[i]) || t.empty() || t.size() == 0) continue;
            std::size_t k = 0;
            while (k < storage.size() && storage[k] != t.storage_id()) ++k;
            if (k == storage.size()) {
                storage.push_back(t.storage_id());
                lo.push_back(t.data());
                l.extent.push_back(0);
            } else if (before(t.data(), lo[k])) {
                lo[k] = t.data();
            }
            l.block_of[i] = k;
        }
        for (std::size_t i = 0; i < params_.size(); ++i) {
            if (l.block_of[i] == none) continue;
            const tensor<B, T>& t = field(*params_[i]);
            l.offset[i] = static_cast<std::size_t>(t.data() - lo[l.block_of[i]]);
            l.extent[l.block_of[i]] = std::max(l.extent[l.block_of[i]], l.offset[i] + t.size());
        }
        return l;
    }

    /// Refuses parameters whose values overlap but whose gradients do not: tied values with gradients of their own
    /// would be updated twice, from different sums.
    void check_ties() const {
        const block_layout& v = value_blocks_;
        for (std::size_t i = 0; i < params_.size(); ++i)
            for (std::size_t j = i + 1; j < params_.size(); ++j) {
                if (v.block_of[i] == none || v.block_of[i] != v.block_of[j]) continue;
                const std::size_t a0 = v.offset[i], a1 = a0 + params_[i]->size();
                const std::size_t b0 = v.offset[j], b1 = b0 + params_[j]->size();
                if (a1 <= b0 || b1 <= a0) continue;
                const parameter<B, T>& p = *params_[i];
                const parameter<B, T>& q = *params_[j];
                const bool same_grads = !p.trainable() || !q.trainable() ||
                                        (p.grad.storage_id() == q.grad.storage_id() &&
                                         p.grad.data() - q.grad.data() == p.value.data() - q.value.data());
                if (!same_grads)
                    throw config_error("hyperadapt::flat_parameters: parameters '" + names_[i] + "' and '" + names_[j] +
                                       "' share values but not gradients; tie their gradients too, or keep their "
                                       "values apart");
            }
    }

    /// One new zeroed buffer holding the blocks of `layout` that have a member `take` accepts, each at a 64-byte
    /// boundary; `field(p)` of each such member is copied to its place and becomes a view there.
    template <class Field, class Take>
    tensor<B, T> relocate(const block_layout& layout, Field field, Take take, std::vector<const T*>& at) {
        std::vector<bool> used(layout.extent.size(), false);
        for (std::size_t i = 0; i < params_.size(); ++i)
            if (layout.block_of[i] != none && take(*params_[i]) && !field(*params_[i]).empty())
                used[layout.block_of[i]] = true;
        std::vector<std::size_t> block_offset(layout.extent.size(), 0);
        std::size_t total = 0;
        for (std::size_t k = 0; k < layout.extent.size(); ++k) {
            if (!used[k]) continue;
            block_offset[k] = aligned(total);
            total = block_offset[k] + layout.extent[k];
        }
        at.assign(params_.size(), nullptr);
        if (total == 0) return {};
        auto flat = tensor<B, T>::zeros(*backend_, {total});
        for (std::size_t i = 0; i < params_.size(); ++i) {
            parameter<B, T>& p = *params_[i];
            if (layout.block_of[i] == none || !take(p) || field(p).empty()) continue;
            tensor<B, T>& t = field(p);
            if (t.size() != p.size())
                throw shape_error("hyperadapt::flat_parameters: parameter '" + names_[i] + "' has " +
                                  std::to_string(t.size()) + " gradient values for " + std::to_string(p.size()) +
                                  " values");
            tensor<B, T> moved = flat.slice(block_offset[layout.block_of[i]] + layout.offset[i], t.shape());
            backend_->copy(t.data(), moved.data(), t.size());
            t = std::move(moved);
            at[i] = t.data();
        }
        return flat;
    }

    void find_layouts() {
        value_blocks_ = find_blocks([](const parameter<B, T>& p) -> const tensor<B, T>& { return p.value; },
                                    [](const parameter<B, T>&) { return true; });
        grad_blocks_ = find_blocks([](const parameter<B, T>& p) -> const tensor<B, T>& { return p.grad; },
                                   [](const parameter<B, T>& p) { return p.trainable(); });
        check_ties();
    }
    void lay_out_values() {
        values_ = relocate(value_blocks_, [](parameter<B, T>& p) -> tensor<B, T>& { return p.value; },
                           [](const parameter<B, T>&) { return true; }, value_at_);
    }
    void lay_out_gradients() {
        // A parameter frozen when this object was made and trainable now gets a block of its own.
        for (std::size_t i = 0; i < params_.size(); ++i)
            if (params_[i]->trainable() && grad_blocks_.block_of[i] == none && params_[i]->size() > 0) {
                grad_blocks_.block_of[i] = grad_blocks_.extent.size();
                grad_blocks_.offset[i] = 0;
                grad_blocks_.extent.push_back(params_[i]->size());
            }
        grads_ = relocate(grad_blocks_, [](parameter<B, T>& p) -> tensor<B, T>& { return p.grad; },
                          [](const parameter<B, T>& p) { return p.trainable(); }, grad_at_);
        ++gradient_layouts_;
    }

    B* backend_ = nullptr;
    std::vector<std::string> names_;
    std::vector<parameter<B, T>*> params_;
    block_layout value_blocks_, grad_blocks_;  ///< found when this object is made; grad_blocks_ grows by unfreezing
    std::vector<const T*> value_at_, grad_at_;  ///< where each parameter's value and gradient were put
    tensor<B, T> values_, grads_;
    std::size_t gradient_layouts_ = 0;
};

/// `flat_parameters flat(model);` takes the model's backend and value type.
template <parameterized M>
flat_parameters(M&) -> flat_parameters<typename M::backend_type, typename M::value_type>;

}  // namespace hyperadapt
