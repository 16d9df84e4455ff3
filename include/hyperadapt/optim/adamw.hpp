#pragma once
// AdamW with decoupled weight decay, step for step the update of torch.optim.AdamW (amsgrad=False):
//
//   p -= lr * weight_decay * p                      (only where parameter.decay is true)
//   m  = beta1 * m + (1 - beta1) * g
//   v  = beta2 * v + (1 - beta2) * g^2
//   p -= lr / (1 - beta1^t) * m / (sqrt(v / (1 - beta2^t)) + eps)
//
// As in PyTorch, state is created lazily the first time a parameter is trainable at a step, and t counts
// that parameter's own updates. So frozen parameters own no moments, and a parameter unfrozen later
// (gradual unfreezing) starts with fresh bias correction. Freezing a parameter keeps its state.
//
// Parameter groups (optim/parameter_groups.hpp): each parameter updates with its group's learning rate and
// weight decay; group 0 is the default group (the options' rate and decay) of every parameter that matches
// no pattern. A schedule sets each group's rate before each step (set_group_lr).
//
// Storage and launches (issue 13, item 3): the moments of every parameter that has them lie in two flat
// buffers (m and v; each parameter's state is a view), and a step updates every trainable parameter in one
// backend call (segmented_adamw: one launch on a GPU) with each segment's own rate, decay and bias
// corrections; frozen parameters are left out of the call. Backends without that call get one update per
// tensor, with the same bits. The buffers grow (one copy) when a parameter first needs state: at the first step
// for all trainable parameters at once, later only when one is unfrozen.
//
// The optimizer holds pointers to the model's parameters: the model must outlive it and stay in place.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <regex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hyperadapt/backend/adamw_segment.hpp"
#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/errors.hpp"
#include "hyperadapt/nn/layer.hpp"
#include "hyperadapt/nn/parameter.hpp"
#include "hyperadapt/optim/parameter_groups.hpp"

namespace hyperadapt {

/// torch.optim.AdamW's defaults.
struct adamw_options {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0.01;
};

/// One parameter's optimizer state: first and second moments and its own update count.
template <memory_backend B, class T>
struct adamw_moments {
    tensor<B, T> m;
    tensor<B, T> v;
    std::int64_t step = 0;
};

template <elementwise_backend B, class T = float>
class adamw {
public:
    using backend_type = B;
    using value_type = T;

    template <parameterized M>
        requires std::same_as<typename M::backend_type, B> && std::same_as<typename M::value_type, T>
    explicit adamw(M& model, adamw_options opts = {}, const std::vector<parameter_group>& groups = {}) : opts_(opts) {
        validate(opts_);
        groups_.push_back({"", opts_.lr, opts_.weight_decay, 0});
        std::vector<std::regex> patterns;
        for (const auto& g : groups) {
            hyperadapt::validate(g);
            groups_.push_back({g.pattern, g.lr, g.weight_decay.value_or(opts_.weight_decay), 0});
            patterns.emplace_back(g.pattern, std::regex::ECMAScript);
        }
        std::string example_name;
        std::vector<bool> shadowed(patterns.size(), false);  // matched a parameter an earlier group took
        model.visit_parameters([&](const std::string& name, parameter<B, T>& p) {
            for (const auto& e : entries_)
                if (e.name == name)
                    throw config_error("hyperadapt::adamw: two parameters are named \"" + name +
                                       "\"; optimizer state is keyed by name");
            std::size_t group = 0;
            for (std::size_t g = 0; g < patterns.size(); ++g)
                if (std::regex_search(name, patterns[g])) {
                    if (group == 0) group = g + 1;
                    shadowed[g] = shadowed[g] || group != g + 1;
                }
            ++groups_[group].parameters;
            if (example_name.empty() || (example_name.find('.') == std::string::npos && name.find('.') != std::string::npos))
                example_name = name;
            entries_.push_back({name, &p, {}, group});
        });
        for (std::size_t g = 1; g < groups_.size(); ++g)
            if (groups_[g].parameters == 0)
                throw config_error("hyperadapt::adamw: parameter group '" + to_string(groups[g - 1]) + "' " +
                                   (shadowed[g - 1] ? "takes no parameter: earlier groups match every one it matches"
                                                    : "matches no parameter of the model (names look like '" +
                                                          example_name + "')"));
    }

    [[nodiscard]] const adamw_options& options() const noexcept { return opts_; }
    /// The default group's learning rate.
    [[nodiscard]] double lr() const noexcept { return groups_[0].lr; }
    /// Sets the default group's learning rate for the next step (with one group, the only rate).
    void set_lr(double lr) { set_group_lr(0, lr); }

    /// A group as the optimizer holds it: its pattern (empty for the default group 0), current rate, decay
    /// and how many parameters it took.
    struct group_state {
        std::string pattern;
        double lr;
        double weight_decay;
        std::size_t parameters;
    };
    [[nodiscard]] std::size_t group_count() const noexcept { return groups_.size(); }
    [[nodiscard]] const group_state& group(std::size_t g) const { return groups_.at(g); }
    /// The group of parameter `name` (0: the default group); throws config_error for an unknown name.
    [[nodiscard]] std::size_t group_of(std::string_view name) const {
        const entry* e = find(name);
        if (!e) throw config_error("hyperadapt::adamw: no parameter named \"" + std::string(name) + "\"");
        return e->group;
    }
    /// Sets group g's learning rate for the next step (a schedule calls this before each step).
    void set_group_lr(std::size_t g, double lr) {
        if (g >= groups_.size())
            throw config_error("hyperadapt::adamw: no parameter group " + std::to_string(g) + " (there are " +
                               std::to_string(groups_.size()) + ")");
        if (!(lr >= 0)) throw config_error("hyperadapt::adamw: learning rate must be >= 0, got " + std::to_string(lr));
        groups_[g].lr = lr;
    }
    /// How many times step() has run.
    [[nodiscard]] std::int64_t step_count() const noexcept { return steps_; }
    /// Restores the step counter from a checkpoint.
    void set_step_count(std::int64_t n) { steps_ = n; }

    /// Updates every trainable parameter from its gradient; frozen parameters are skipped.
    void step() {
        for (auto& e : entries_)
            if (e.param->trainable() && !e.has_state) create_state(e);
        segments_.clear();
        B* backend = nullptr;
        for (auto& e : entries_) {
            parameter<B, T>& p = *e.param;
            if (!p.trainable()) continue;
            const std::int64_t t = ++e.state.step;
            const double bc1 = 1 - std::pow(opts_.beta1, static_cast<double>(t));
            const double bc2 = 1 - std::pow(opts_.beta2, static_cast<double>(t));
            const group_state& g = groups_[e.group];
            const T lr = T(g.lr), decay = T(p.decay ? g.weight_decay : 0.0);
            if constexpr (segmented_adamw<B, T>) {
                if (p.size() == 0) continue;
                backend = &p.value.backend();
                segments_.push_back(adamw_segment<T>::make(p.size(), lr, decay, T(bc1), T(bc2), p.grad.data(),
                                                           p.value.data(), e.state.m.data(), e.state.v.data()));
            } else {
                p.value.backend().adamw_update(p.size(), lr, T(opts_.beta1), T(opts_.beta2), T(opts_.eps), decay, T(bc1),
                                               T(bc2), p.grad.data(), p.value.data(), e.state.m.data(),
                                               e.state.v.data());
            }
        }
        if constexpr (segmented_adamw<B, T>) {
            if (backend)
                backend->adamw_update_segments(std::span<const adamw_segment<T>>(segments_), T(opts_.beta1),
                                               T(opts_.beta2), T(opts_.eps));
        }
        ++steps_;
    }

    /// The state of parameter `name`, or null when it has none yet (never trainable at a step).
    [[nodiscard]] const adamw_moments<B, T>* find_state(std::string_view name) const {
        const entry* e = find(name);
        return e && e->has_state ? &e->state : nullptr;
    }

    /// The state of parameter `name`, created zeroed if absent, for a checkpoint loader to write into.
    /// Throws config_error for a name the model does not have.
    adamw_moments<B, T>& state(std::string_view name) {
        entry* e = find(name);
        if (!e) throw config_error("hyperadapt::adamw: no parameter named \"" + std::string(name) + "\"");
        if (!e->has_state) create_state(*e);
        return e->state;
    }

    /// Calls f(name, moments) for every parameter that has state, in the model's parameter order.
    template <class F>
    void visit_state(F&& f) const {
        for (const auto& e : entries_)
            if (e.has_state) f(e.name, e.state);
    }

    /// Number of parameters with state.
    [[nodiscard]] std::size_t state_size() const noexcept {
        std::size_t n = 0;
        for (const auto& e : entries_) n += e.has_state ? 1 : 0;
        return n;
    }

private:
    struct entry {
        std::string name;
        parameter<B, T>* param;
        adamw_moments<B, T> state;
        std::size_t group = 0;
        bool has_state = false;                                  ///< created (lazily, as PyTorch's)
        std::size_t slot = std::numeric_limits<std::size_t>::max();  ///< offset in m_ and v_; max: none yet
    };
    static constexpr std::size_t no_slot = std::numeric_limits<std::size_t>::max();

    static void validate(const adamw_options& o) {
        auto fail = [](const std::string& what) { throw config_error("hyperadapt::adamw: " + what); };
        if (!(o.lr >= 0)) fail("learning rate must be >= 0, got " + std::to_string(o.lr));
        if (!(o.beta1 >= 0 && o.beta1 < 1)) fail("beta1 must be in [0, 1), got " + std::to_string(o.beta1));
        if (!(o.beta2 >= 0 && o.beta2 < 1)) fail("beta2 must be in [0, 1), got " + std::to_string(o.beta2));
        if (!(o.eps >= 0)) fail("eps must be >= 0, got " + std::to_string(o.eps));
        if (!(o.weight_decay >= 0)) fail("weight_decay must be >= 0, got " + std::to_string(o.weight_decay));
    }

    /// Gives e zeroed moments and step 0. Moments live in m_ and v_; when e has no place there yet, both grow by
    /// every parameter that is trainable now and has none either (they will need one at the next step), so the
    /// first step copies once, not once per parameter.
    void create_state(entry& e) {
        // A slot comes from grow() zeroed, and one without state is never written: nothing to clear.
        if (e.slot == no_slot) grow(e);
        e.state.step = 0;
        e.has_state = true;
    }

    void grow(const entry& needed) {
        constexpr std::size_t align = 64 / sizeof(T) > 0 ? 64 / sizeof(T) : 1;
        std::vector<std::size_t> slots(entries_.size(), no_slot);
        std::size_t total = 0;
        for (std::size_t i = 0; i < entries_.size(); ++i) {
            const entry& e = entries_[i];
            if (e.slot == no_slot && &e != &needed && !e.param->trainable()) continue;
            slots[i] = (total + align - 1) / align * align;
            total = slots[i] + e.param->size();
        }
        B& b = needed.param->value.backend();
        auto m = tensor<B, T>::zeros(b, {total}), v = tensor<B, T>::zeros(b, {total});
        for (std::size_t i = 0; i < entries_.size(); ++i) {
            entry& e = entries_[i];
            if (slots[i] == no_slot) continue;
            tensor<B, T> em = m.slice(slots[i], e.param->value.shape()), ev = v.slice(slots[i], e.param->value.shape());
            if (e.has_state) {
                b.copy(e.state.m.data(), em.data(), em.size());
                b.copy(e.state.v.data(), ev.data(), ev.size());
            }
            e.state.m = std::move(em);
            e.state.v = std::move(ev);
            e.slot = slots[i];
        }
        m_ = std::move(m);
        v_ = std::move(v);
    }

    entry* find(std::string_view name) {
        for (auto& e : entries_)
            if (e.name == name) return &e;
        return nullptr;
    }
    const entry* find(std::string_view name) const {
        for (const auto& e : entries_)
            if (e.name == name) return &e;
        return nullptr;
    }

    adamw_options opts_;
    std::vector<group_state> groups_;
    std::vector<entry> entries_;
    tensor<B, T> m_, v_;                         ///< every parameter's moments, each entry's state a view
    std::vector<adamw_segment<T>> segments_;     ///< the step's update list (kept: no allocation per step)
    std::int64_t steps_ = 0;
};

}  // namespace hyperadapt
