#pragma once
// Multi-task batch samplers: which (task, example) pairs make up each training batch.
//
// Every sampler is constructed from the per-task dataset sizes, a batch size b and an rng_stream, and runs
// the same two-phase protocol each step:
//
//   auto cand = s.candidates();          // the step's candidate (task, example) pairs
//   auto batch = S::needs_scores
//       ? s.select(outputs_of(cand))     // scoring samplers (MT-Uncertainty): keep the best b by score
//       : s.select();                    // every other sampler: the candidates are the batch
//
// `next_batch(s, score_fn)` does both, calling score_fn only for scoring samplers, so a trainer is written
// once for all samplers. MT-Uncertainty draws T·b candidates (b per task) and keeps b; the others draw b
// and keep them all. Each sampler counts the candidates it drew and the examples it handed out for updates
// (fraction_used(); 1 for samplers without a scoring phase).
//
// Randomness is counter-based (backend/counter_rng.hpp): every draw takes counters from the sampler's
// rng_stream, so a seed fixes the whole sequence, and no global generator is touched. Within a task,
// examples are drawn WITHOUT replacement: each task walks through its own permutation of [0, N_t), drawn
// from the stream when the previous one is used up (a fresh shuffle every epoch of that task). A sampler
// serialises its state (JSON text: rng position, each task's epoch/position/permutation counter, counts)
// with state() and continues bit-identically after restore(); save_sampler/restore_sampler put that text
// in a training_state's `extra` map and the stream in its `rng` map (train/checkpoint.hpp).
//
// The state text uses nlohmann-json: link hyperadapt::io.
#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyperadapt/backend/counter_rng.hpp"
#include "hyperadapt/core/errors.hpp"
#include "hyperadapt/data/example_ref.hpp"
#include "hyperadapt/nn/mode.hpp"

namespace hyperadapt {

/// How a non-scoring sampler fills a batch.
enum class batch_composition {
    single_task,  ///< one task per batch (drawn by the sampler's rule), b examples of it (HyperFormer)
    mixed,        ///< the task of every row is drawn separately (a size-proportional shuffled union: CA-MTL
                  ///< without --use_mt_uncertainty)
};

[[nodiscard]] inline std::string_view to_string(batch_composition c) noexcept {
    return c == batch_composition::single_task ? "single_task" : "mixed";
}

/// What a sampler is: the two-phase protocol above, counts, and a serialisable state.
template <class S>
concept sampler = requires(S& s, const S& cs, std::string_view text) {
    { S::needs_scores } -> std::convertible_to<bool>;
    { cs.num_tasks() } -> std::same_as<std::size_t>;
    { cs.batch_size() } -> std::same_as<std::size_t>;
    { s.candidates() } -> std::same_as<std::vector<example_ref>>;
    { cs.candidates_drawn() } -> std::same_as<std::uint64_t>;
    { cs.examples_used() } -> std::same_as<std::uint64_t>;
    { cs.candidates_drawn(std::size_t{}) } -> std::same_as<std::uint64_t>;
    { cs.examples_used(std::size_t{}) } -> std::same_as<std::uint64_t>;
    { cs.fraction_used() } -> std::same_as<double>;
    { cs.steps() } -> std::same_as<std::uint64_t>;
    { cs.rng() } -> std::same_as<const rng_stream&>;
    { cs.state() } -> std::same_as<std::string>;
    { s.restore(text) } -> std::same_as<void>;
} && (S::needs_scores || requires(S& s) {
    { s.select() } -> std::same_as<std::vector<example_ref>>;
    { s.next_batch() } -> std::same_as<std::vector<example_ref>>;
});

/// A sampler that needs the model's outputs on its candidates before it can choose the batch.
template <class S>
concept scoring_sampler = sampler<S> && S::needs_scores;

/// One training step's batch. For a scoring sampler, `score(candidates)` must return what S::select takes
/// (the candidates' head outputs); other samplers never call it.
template <sampler S, class ScoreFn>
std::vector<example_ref> next_batch(S& s, ScoreFn&& score) {
    auto cand = s.candidates();
    if constexpr (S::needs_scores)
        return s.select(std::forward<ScoreFn>(score)(std::as_const(cand)));
    else
        return s.select();
}

/// For samplers without a scoring phase.
template <sampler S>
    requires(!S::needs_scores)
std::vector<example_ref> next_batch(S& s) {
    return s.next_batch();
}

/// Stores the sampler in a checkpoint's state (training_state or anything with `extra` and `rng` maps):
/// extra[key] = state text, rng[key] = the sampler's stream.
template <sampler S, class State>
void save_sampler(const S& s, State& st, const std::string& key = "sampler") {
    st.extra[key] = s.state();
    st.rng[key] = s.rng();
}

/// Restores what save_sampler stored. The stream in rng[key] must agree with the one inside the text (they
/// are written together); a mismatch means the two maps come from different checkpoints.
template <sampler S, class State>
void restore_sampler(S& s, const State& st, const std::string& key = "sampler") {
    const auto it = st.extra.find(key);
    if (it == st.extra.end()) throw config_error("restore_sampler: the state has no extra['" + key + "']");
    S copy = s;
    copy.restore(it->second);
    if (const auto r = st.rng.find(key); r != st.rng.end() && !(r->second == copy.rng()))
        throw config_error("restore_sampler: rng['" + key + "'] (seed " + std::to_string(r->second.seed()) +
                           ", offset " + std::to_string(r->second.offset()) +
                           ") disagrees with the stream in extra['" + key + "'] (seed " +
                           std::to_string(copy.rng().seed()) + ", offset " + std::to_string(copy.rng().offset()) +
                           ")");
    s = std::move(copy);
}

namespace detail {

/// floor(a * b / 2^64): maps a uniform 64-bit hash onto [0, b) (Lemire's method; the bias is below
/// b / 2^64, far below anything a sampler could detect).
inline std::uint64_t mulhi64(std::uint64_t a, std::uint64_t b) noexcept {
    const std::uint64_t a_lo = a & 0xffffffffULL, a_hi = a >> 32, b_lo = b & 0xffffffffULL, b_hi = b >> 32;
    const std::uint64_t p0 = a_lo * b_lo, p1 = a_lo * b_hi, p2 = a_hi * b_lo, p3 = a_hi * b_hi;
    const std::uint64_t mid = (p0 >> 32) + (p1 & 0xffffffffULL) + (p2 & 0xffffffffULL);
    return p3 + (p1 >> 32) + (p2 >> 32) + (mid >> 32);
}

inline std::uint64_t bounded_draw(std::uint64_t seed, std::uint64_t counter, std::uint64_t bound) noexcept {
    return mulhi64(counter_hash(seed, counter), bound);
}

/// Uniform in [0, 1) with 53 random bits.
inline double uniform_double(std::uint64_t seed, std::uint64_t counter) noexcept {
    return static_cast<double>(counter_hash(seed, counter) >> 11) * 0x1.0p-53;
}

/// One task's walk through its examples: a permutation of [0, size) per epoch, drawn from the sampler's
/// stream (Fisher-Yates on `size` counters starting at `base`) when the previous one is used up. Only
/// (epoch, position, base) is state; the permutation is regenerated from them on restore.
class epoch_order {
public:
    explicit epoch_order(std::size_t size = 0) : size_(size) {}

    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    /// Permutations started so far (1 during the first pass, 0 before any draw).
    [[nodiscard]] std::uint64_t epoch() const noexcept { return epoch_; }
    [[nodiscard]] std::size_t position() const noexcept { return position_; }
    [[nodiscard]] std::size_t remaining() const noexcept { return epoch_ == 0 ? 0 : size_ - position_; }

    /// Appends the next `n` examples. wrap = true: crosses into the next epoch (a new permutation) as needed,
    /// so exactly n are appended. wrap = false (a PyTorch DataLoader without drop_last): starts a new epoch
    /// only if this one is used up, then appends min(n, remaining) examples.
    void take(std::size_t n, bool wrap, rng_stream& rng, std::vector<std::size_t>& out) {
        while (n > 0) {
            if (remaining() == 0) reshuffle(rng);
            const std::size_t k = std::min(n, remaining());
            out.insert(out.end(), perm_.begin() + static_cast<std::ptrdiff_t>(position_),
                       perm_.begin() + static_cast<std::ptrdiff_t>(position_ + k));
            position_ += k;
            n -= k;
            if (!wrap) break;
        }
    }

    [[nodiscard]] nlohmann::json to_json() const { return {{"epoch", epoch_}, {"position", position_}, {"base", base_}}; }

    /// Checks j against this task (size) and returns the order it describes; *this is unchanged.
    [[nodiscard]] epoch_order from_json(const nlohmann::json& j, std::uint64_t seed, const std::string& where) const {
        epoch_order o(size_);
        o.epoch_ = j.at("epoch").get<std::uint64_t>();
        o.position_ = j.at("position").get<std::size_t>();
        o.base_ = j.at("base").get<std::uint64_t>();
        if (o.position_ > size_ || (o.epoch_ == 0 && o.position_ != 0))
            throw config_error(where + "position " + std::to_string(o.position_) + " does not fit a task of " +
                               std::to_string(size_) + " examples");
        if (o.epoch_ > 0) o.generate(seed);
        return o;
    }

private:
    void reshuffle(rng_stream& rng) {
        base_ = rng.take(size_);
        generate(rng.seed());
        position_ = 0;
        ++epoch_;
    }
    void generate(std::uint64_t seed) {
        perm_.resize(size_);
        for (std::size_t i = 0; i < size_; ++i) perm_[i] = i;
        for (std::size_t i = size_; i > 1; --i) {
            const auto j = static_cast<std::size_t>(bounded_draw(seed, base_ + (size_ - i), i));
            std::swap(perm_[i - 1], perm_[j]);
        }
    }

    std::size_t size_ = 0;
    std::uint64_t epoch_ = 0;
    std::size_t position_ = 0;
    std::uint64_t base_ = 0;
    std::vector<std::size_t> perm_;
};

/// What every sampler shares: per-task example orders, the stream, the candidates pending between
/// candidates() and select(), the counts, and the common part of the state text. Samplers derive from it
/// publicly for the observers; the protocol helpers are protected.
class sampler_base {
public:
    [[nodiscard]] const std::string& kind() const noexcept { return kind_; }
    [[nodiscard]] std::size_t num_tasks() const noexcept { return orders_.size(); }
    [[nodiscard]] std::size_t batch_size() const noexcept { return batch_size_; }
    [[nodiscard]] std::size_t task_size(std::size_t t) const { return orders_.at(t).size(); }
    /// Passes started through task t's examples (1 during the first, 0 before its first draw).
    [[nodiscard]] std::uint64_t task_epoch(std::size_t t) const { return orders_.at(t).epoch(); }
    [[nodiscard]] const rng_stream& rng() const noexcept { return rng_; }
    /// Completed steps (select() calls).
    [[nodiscard]] std::uint64_t steps() const noexcept { return steps_; }
    /// True between candidates() and select().
    [[nodiscard]] bool pending() const noexcept { return pending_; }

    /// Candidates drawn and examples handed out for updates, over completed steps (counted at select()).
    [[nodiscard]] std::uint64_t candidates_drawn() const noexcept { return sum(drawn_); }
    [[nodiscard]] std::uint64_t examples_used() const noexcept { return sum(used_); }
    [[nodiscard]] std::uint64_t candidates_drawn(std::size_t t) const { return drawn_.at(t); }
    [[nodiscard]] std::uint64_t examples_used(std::size_t t) const { return used_.at(t); }
    /// examples_used() / candidates_drawn(): the fraction of candidate examples used for updates (0 before
    /// the first step; 1 for samplers without a scoring phase).
    [[nodiscard]] double fraction_used() const noexcept {
        const auto d = candidates_drawn();
        return d == 0 ? 0.0 : static_cast<double>(examples_used()) / static_cast<double>(d);
    }

    /// "task 2" or "task 2 ('mrpc')", for messages.
    [[nodiscard]] std::string task_name(std::size_t t) const {
        return names_.empty() ? "task " + std::to_string(t) : "task " + std::to_string(t) + " ('" + names_[t] + "')";
    }

protected:
    sampler_base(std::string kind, std::vector<std::size_t> sizes, std::size_t batch_size, rng_stream rng,
                 std::vector<std::string> names = {})
        : kind_(std::move(kind)), names_(std::move(names)), batch_size_(batch_size), rng_(rng) {
        if (sizes.empty()) throw config_error(kind_ + " sampler: the task list is empty (at least one task is needed)");
        if (!names_.empty() && names_.size() != sizes.size())
            throw config_error(kind_ + " sampler: " + std::to_string(names_.size()) + " task names for " +
                               std::to_string(sizes.size()) + " tasks");
        if (batch_size == 0) throw config_error(kind_ + " sampler: batch size must be at least 1, got 0");
        for (std::size_t t = 0; t < sizes.size(); ++t)
            if (sizes[t] == 0)
                throw config_error(kind_ + " sampler: " + task_name(t) +
                                   " has an empty dataset (0 examples); remove it from the task list");
        for (auto n : sizes) orders_.emplace_back(n);
        drawn_.assign(sizes.size(), 0);
        used_.assign(sizes.size(), 0);
    }

    // ---- protocol --------------------------------------------------------------------------------------
    void begin_candidates() {
        if (pending_)
            throw config_error(kind_ + " sampler: candidates() called twice; call select() on the pending "
                                       "candidates first");
    }
    const std::vector<example_ref>& set_pending(std::vector<example_ref> c) {
        pending_ = true;
        candidates_ = std::move(c);
        return candidates_;
    }
    [[nodiscard]] const std::vector<example_ref>& pending_candidates() const {
        if (!pending_) throw config_error(kind_ + " sampler: select() called without candidates(); call candidates() first");
        return candidates_;
    }
    /// Completes the step: counts the candidates and the chosen rows.
    std::vector<example_ref> finish(std::vector<example_ref> chosen) {
        for (const auto& c : candidates_) ++drawn_[c.task];
        for (const auto& c : chosen) ++used_[c.task];
        ++steps_;
        pending_ = false;
        candidates_.clear();
        return chosen;
    }

    /// Appends n examples of task t (see epoch_order::take).
    void take(std::size_t t, std::size_t n, bool wrap, std::vector<example_ref>& out) {
        scratch_.clear();
        orders_[t].take(n, wrap, rng_, scratch_);
        for (auto i : scratch_) out.push_back({t, i});
    }
    rng_stream& stream() noexcept { return rng_; }

    // ---- state -------------------------------------------------------------------------------------------
    /// The shared part of the state; `config` holds the sampler's own settings, which restore() compares.
    [[nodiscard]] nlohmann::json to_json(nlohmann::json config, nlohmann::json extra = nlohmann::json::object()) const {
        if (pending_)
            throw config_error(kind_ + " sampler: state() between candidates() and select(); save the state "
                                       "after the step's select()");
        nlohmann::json tasks = nlohmann::json::array();
        std::vector<std::size_t> sizes;
        for (const auto& o : orders_) {
            tasks.push_back(o.to_json());
            sizes.push_back(o.size());
        }
        return {{"format", "hyperadapt.sampler"},
                {"version", 1},
                {"kind", kind_},
                {"sizes", sizes},
                {"batch_size", batch_size_},
                {"config", std::move(config)},
                {"rng", {rng_.seed(), rng_.offset()}},
                {"steps", steps_},
                {"tasks", std::move(tasks)},
                {"candidates_drawn", drawn_},
                {"examples_used", used_},
                {"extra", std::move(extra)}};
    }

    /// Parses and validates `text` against this sampler's configuration; returns the parsed state's "extra"
    /// object and commits the shared part only when everything validates (no change on a throw).
    nlohmann::json restore_json(std::string_view text, const nlohmann::json& config) {
        const std::string where = kind_ + " sampler: cannot restore state: ";
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(text);
        } catch (const nlohmann::json::exception& e) {
            throw config_error(where + "not valid JSON (" + e.what() + ")");
        }
        try {
            if (!j.is_object() || j.value("format", "") != "hyperadapt.sampler")
                throw config_error(where + "not a hyperadapt sampler state");
            if (j.at("version").get<int>() != 1)
                throw config_error(where + "state version " + j.at("version").dump() + " is not supported");
            if (j.at("kind").get<std::string>() != kind_)
                throw config_error(where + "the state was saved by a '" + j.at("kind").get<std::string>() +
                                   "' sampler");
            std::vector<std::size_t> sizes;
            for (const auto& o : orders_) sizes.push_back(o.size());
            if (j.at("sizes").get<std::vector<std::size_t>>() != sizes)
                throw config_error(where + "dataset sizes " + j.at("sizes").dump() + " differ from this sampler's " +
                                   nlohmann::json(sizes).dump());
            if (j.at("batch_size").get<std::size_t>() != batch_size_)
                throw config_error(where + "batch size " + j.at("batch_size").dump() + " differs from this sampler's " +
                                   std::to_string(batch_size_));
            if (j.at("config") != config)
                throw config_error(where + "settings " + j.at("config").dump() + " differ from this sampler's " +
                                   config.dump());
            const rng_stream rng(j.at("rng").at(0).get<std::uint64_t>(), j.at("rng").at(1).get<std::uint64_t>());
            const auto& tasks = j.at("tasks");
            auto drawn = j.at("candidates_drawn").get<std::vector<std::uint64_t>>();
            auto used = j.at("examples_used").get<std::vector<std::uint64_t>>();
            if (tasks.size() != orders_.size() || drawn.size() != orders_.size() || used.size() != orders_.size())
                throw config_error(where + "per-task entries do not match " + std::to_string(orders_.size()) + " tasks");
            std::vector<epoch_order> orders;
            for (std::size_t t = 0; t < orders_.size(); ++t)
                orders.push_back(orders_[t].from_json(tasks[t], rng.seed(), where + task_name(t) + ": "));
            nlohmann::json extra = j.at("extra");
            // Commit.
            rng_ = rng;
            steps_ = j.at("steps").get<std::uint64_t>();
            orders_ = std::move(orders);
            drawn_ = std::move(drawn);
            used_ = std::move(used);
            pending_ = false;
            candidates_.clear();
            return extra;
        } catch (const nlohmann::json::exception& e) {
            throw config_error(where + "malformed state (" + e.what() + ")");
        }
    }

private:
    static std::uint64_t sum(const std::vector<std::uint64_t>& v) noexcept {
        std::uint64_t s = 0;
        for (auto x : v) s += x;
        return s;
    }

    std::string kind_;
    std::vector<std::string> names_;
    std::size_t batch_size_;
    rng_stream rng_;
    std::vector<epoch_order> orders_;
    std::vector<std::uint64_t> drawn_, used_;
    std::uint64_t steps_ = 0;
    bool pending_ = false;
    std::vector<example_ref> candidates_;
    std::vector<std::size_t> scratch_;
};

}  // namespace detail
}  // namespace hyperadapt
