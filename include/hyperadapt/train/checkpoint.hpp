#pragma once
// Training checkpoints: everything a run needs to continue as if it had never stopped — parameter values,
// AdamW moments and per-parameter step counts, the global step, named random streams (dropout, data order,
// sampler) and free-form state strings (sampler, data position, schedule) — in one safetensors file.
//
//   * Written atomically (temporary file, fsync, rename): a crash mid-write leaves the previous file intact.
//   * Carries a 64-bit checksum over the state and every tensor's name, dtype, shape and bytes; a torn or
//     corrupted file is refused with an io_error naming the file, before anything in the model changes.
//   * checkpoint_directory keeps the last N step files and finds the newest one that validates, so a
//     corrupted latest checkpoint falls back to the previous one instead of ending the run.
//
// Resuming reproduces an uninterrupted run bit for bit on the CPU: the counter-based random streams restart
// at their saved offsets and every update is deterministic.
#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyperadapt/backend/counter_rng.hpp"
#include "hyperadapt/io/safetensors.hpp"
#include "hyperadapt/nn/layer.hpp"
#include "hyperadapt/nn/mode.hpp"
#include "hyperadapt/optim/adamw.hpp"

namespace hyperadapt {

/// The non-tensor state of a training run.
struct training_state {
    std::int64_t step = 0;   ///< optimizer steps completed
    std::int64_t epoch = 0;
    std::map<std::string, rng_stream> rng;         ///< e.g. "dropout", "data_order", "sampler"
    std::map<std::string, std::string> extra;      ///< e.g. a sampler's serialized state (any text, JSON advised)

    friend bool operator==(const training_state&, const training_state&) = default;
};

namespace detail {
/// A 64-bit checksum in the style of xxHash64's core loop (word-wise multiply-rotate, final avalanche). It
/// detects corruption and torn writes; it is not a defence against deliberate tampering.
class checksum64 {
public:
    void update(std::span<const std::byte> bytes) {
        std::size_t i = 0;
        for (; i + 8 <= bytes.size(); i += 8) {
            std::uint64_t w;
            std::memcpy(&w, bytes.data() + i, 8);
            mix(w);
        }
        std::uint64_t tail = 0;
        const std::size_t rest = bytes.size() - i;
        if (rest) {
            std::memcpy(&tail, bytes.data() + i, rest);
            mix(tail ^ (static_cast<std::uint64_t>(rest) << 56));
        }
        length_ += bytes.size();
    }
    void update(std::string_view s) { update(std::as_bytes(std::span(s.data(), s.size()))); }
    template <class T>
        requires std::is_trivially_copyable_v<T>
    void update_value(const T& v) {
        update(std::as_bytes(std::span(&v, 1)));
    }
    [[nodiscard]] std::uint64_t digest() const noexcept { return mix64(h_ ^ length_); }

private:
    static constexpr std::uint64_t p1 = 0x9e3779b185ebca87ULL, p2 = 0xc2b2ae3d27d4eb4fULL;
    void mix(std::uint64_t w) noexcept { h_ = std::rotl(h_ ^ (w * p2), 31) * p1; }
    std::uint64_t h_ = 0x27d4eb2f165667c5ULL;
    std::uint64_t length_ = 0;
};

inline std::string hex64(std::uint64_t v) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

inline constexpr const char* checkpoint_format = "hyperadapt.training_checkpoint";
inline constexpr const char* checkpoint_version = "1";

/// Checksum over the state text and, in name order, every tensor's name, dtype, shape and bytes.
inline std::uint64_t checkpoint_digest(const io::safetensors_reader& r, const std::string& state_text) {
    checksum64 c;
    c.update(state_text);
    for (const auto& e : r.entries()) {  // sorted by name
        c.update(e.name);
        c.update(io::dtype_name(e.type));
        for (auto d : e.shape) c.update_value(static_cast<std::uint64_t>(d));
        c.update(r.raw(e));
    }
    return c.digest();
}
}  // namespace detail

/// Writes model parameters, the optimizer's state and `state` to `path` atomically.
template <parameterized Model, class B = typename Model::backend_type, class T = typename Model::value_type>
void save_training_checkpoint(const std::filesystem::path& path, Model& model, const adamw<B, T>& optimizer,
                              const training_state& state) {
    auto dims = [](const tensor<B, T>& t) {
        std::vector<std::size_t> d;
        for (std::size_t i = 0; i < t.shape().rank(); ++i) d.push_back(t.shape()[i]);
        return d;
    };
    struct item {
        std::string name;
        std::vector<std::size_t> shape;
        std::vector<T> values;
    };
    std::vector<item> items;
    model.visit_parameters([&](const std::string& name, parameter<B, T>& p) {
        items.push_back({"model/" + name, dims(p.value), p.value.to_host()});
    });
    nlohmann::json opt_steps = nlohmann::json::object();
    optimizer.visit_state([&](const std::string& name, const adamw_moments<B, T>& s) {
        items.push_back({"optim/m/" + name, dims(s.m), s.m.to_host()});
        items.push_back({"optim/v/" + name, dims(s.v), s.v.to_host()});
        opt_steps[name] = s.step;
    });
    nlohmann::json j;
    j["step"] = state.step;
    j["epoch"] = state.epoch;
    j["optimizer"] = {{"steps", optimizer.step_count()}, {"lr", optimizer.lr()}, {"parameter_steps", opt_steps}};
    j["rng"] = nlohmann::json::object();
    for (const auto& [k, r] : state.rng) j["rng"][k] = {r.seed(), r.offset()};
    j["extra"] = state.extra;
    const std::string text = j.dump();

    // The same fields, in the same (name) order, as detail::checkpoint_digest reads them back.
    std::sort(items.begin(), items.end(), [](const item& a, const item& b) { return a.name < b.name; });
    detail::checksum64 c;
    c.update(text);
    io::safetensors_writer w;
    for (auto& it : items) {
        c.update(it.name);
        c.update(io::dtype_name(io::dtype_of<T>));
        for (auto d : it.shape) c.update_value(static_cast<std::uint64_t>(d));
        c.update(std::as_bytes(std::span(it.values)));
        w.add(it.name, it.shape, it.values);
    }
    w.set_metadata("format", detail::checkpoint_format);
    w.set_metadata("version", detail::checkpoint_version);
    w.set_metadata("state", text);
    w.set_metadata("checksum", detail::hex64(c.digest()));
    w.write(path);
}

/// Restores model parameters, optimizer state and the run state from `path`. Everything is validated (format,
/// checksum, every parameter present with its shape) before the model or optimizer is touched; on any fault
/// io_error names the file and the fault and nothing changes.
template <parameterized Model, class B = typename Model::backend_type, class T = typename Model::value_type>
training_state load_training_checkpoint(const std::filesystem::path& path, Model& model, adamw<B, T>& optimizer) {
    const io::safetensors_reader r(path);
    const std::string where = path.string() + ": ";
    auto meta = [&](const char* key) -> const std::string& {
        auto it = r.metadata().find(key);
        if (it == r.metadata().end())
            throw io_error(where + "not a hyperadapt training checkpoint (metadata '" + key + "' missing)");
        return it->second;
    };
    if (meta("format") != detail::checkpoint_format)
        throw io_error(where + "metadata 'format' is '" + meta("format") + "', expected '" +
                       detail::checkpoint_format + "'");
    if (meta("version") != detail::checkpoint_version)
        throw io_error(where + "checkpoint version " + meta("version") + " is not supported (this build reads " +
                       detail::checkpoint_version + ")");
    const std::string& text = meta("state");
    const std::string computed = detail::hex64(detail::checkpoint_digest(r, text));
    if (computed != meta("checksum"))
        throw io_error(where + "checksum mismatch (stored " + meta("checksum") + ", computed " + computed +
                       "): the checkpoint is corrupted or was torn while writing");

    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        throw io_error(where + "state metadata is not valid JSON (" + e.what() + ")");
    }

    // Validate every parameter before writing anything.
    std::vector<std::pair<parameter<B, T>*, const io::tensor_entry*>> plan;
    model.visit_parameters([&](const std::string& name, parameter<B, T>& p) {
        const auto* e = r.find("model/" + name);
        if (!e) throw io_error(where + "parameter '" + name + "' is missing");
        if (e->elements() != p.size() || !(e->to_shape() == p.value.shape()))
            throw io_error(where + "parameter '" + name + "' has shape " + e->shape_str() + ", the model expects " +
                           p.value.shape().str());
        plan.emplace_back(&p, e);
    });
    const auto& psteps = j.at("optimizer").at("parameter_steps");
    for (const auto& [name, t] : psteps.items()) {
        const auto *m = r.find("optim/m/" + name), *v = r.find("optim/v/" + name);
        if (!m || !v) throw io_error(where + "optimizer moments of '" + name + "' are missing");
    }

    for (auto& [p, e] : plan) {
        auto values = r.read<T>(*e);
        p->value.backend().copy_from_host(values.data(), p->value.data(), values.size());
    }
    for (const auto& [name, t] : psteps.items()) {
        auto& s = optimizer.state(name);
        auto m = r.read<T>("optim/m/" + name), v = r.read<T>("optim/v/" + name);
        if (m.size() != s.m.size() || v.size() != s.v.size())
            throw io_error(where + "optimizer moments of '" + name + "' do not match the parameter's size");
        s.m.backend().copy_from_host(m.data(), s.m.data(), m.size());
        s.v.backend().copy_from_host(v.data(), s.v.data(), v.size());
        s.step = t.template get<std::int64_t>();
    }
    optimizer.set_step_count(j.at("optimizer").at("steps").get<std::int64_t>());
    optimizer.set_lr(j.at("optimizer").at("lr").get<double>());

    training_state st;
    st.step = j.at("step").get<std::int64_t>();
    st.epoch = j.at("epoch").get<std::int64_t>();
    for (const auto& [k, v] : j.at("rng").items())
        st.rng[k] = rng_stream(v.at(0).template get<std::uint64_t>(), v.at(1).template get<std::uint64_t>());
    st.extra = j.at("extra").get<std::map<std::string, std::string>>();
    return st;
}

/// Step-numbered checkpoints in one folder ("<prefix>-<step>.safetensors"), keeping the newest `keep`.
class checkpoint_directory {
public:
    explicit checkpoint_directory(std::filesystem::path dir, std::size_t keep = 2, std::string prefix = "checkpoint")
        : dir_(std::move(dir)), keep_(std::max<std::size_t>(keep, 1)), prefix_(std::move(prefix)) {}

    [[nodiscard]] const std::filesystem::path& path() const noexcept { return dir_; }
    [[nodiscard]] std::filesystem::path file_for(std::int64_t step) const {
        char buf[32];
        std::snprintf(buf, sizeof buf, "-%010lld.safetensors", static_cast<long long>(step));
        return dir_ / (prefix_ + buf);
    }

    /// Saves the checkpoint for state.step, then removes all but the newest `keep` files.
    template <parameterized Model, class B = typename Model::backend_type, class T = typename Model::value_type>
    std::filesystem::path save(Model& model, const adamw<B, T>& optimizer, const training_state& state) {
        std::filesystem::create_directories(dir_);
        const auto file = file_for(state.step);
        save_training_checkpoint(file, model, optimizer, state);
        auto all = list();
        while (all.size() > keep_) {
            std::error_code ec;
            std::filesystem::remove(all.front().second, ec);
            all.erase(all.begin());
        }
        return file;
    }

    /// Checkpoint files by step, oldest first.
    [[nodiscard]] std::vector<std::pair<std::int64_t, std::filesystem::path>> list() const {
        std::vector<std::pair<std::int64_t, std::filesystem::path>> out;
        std::error_code ec;
        if (!std::filesystem::is_directory(dir_, ec)) return out;
        const std::regex pattern(prefix_ + "-([0-9]+)\\.safetensors");
        for (const auto& f : std::filesystem::directory_iterator(dir_)) {
            std::smatch m;
            const std::string name = f.path().filename().string();
            if (std::regex_match(name, m, pattern)) out.emplace_back(std::stoll(m[1].str()), f.path());
        }
        std::sort(out.begin(), out.end());
        return out;
    }

    /// Loads the newest checkpoint that validates. Files that fail are reported through `skipped` (file and
    /// reason) and left in place for inspection. Returns nothing when no valid checkpoint exists.
    template <parameterized Model, class B = typename Model::backend_type, class T = typename Model::value_type>
    std::optional<training_state> resume(Model& model, adamw<B, T>& optimizer,
                                         std::vector<std::string>* skipped = nullptr) const {
        auto all = list();
        for (auto it = all.rbegin(); it != all.rend(); ++it) {
            try {
                return load_training_checkpoint(it->second, model, optimizer);
            } catch (const io_error& e) {
                if (skipped) skipped->push_back(e.what());
            }
        }
        return std::nullopt;
    }

private:
    std::filesystem::path dir_;
    std::size_t keep_;
    std::string prefix_;
};

}  // namespace hyperadapt
