#pragma once
// Training checkpoints: everything a run needs to continue as if it had never stopped — parameter values,
// AdamW moments and per-parameter step counts, the global step, named random streams (dropout, data order,
// sampler) and free-form state strings (sampler, data position, schedule) — in one safetensors file.
//
//   * Written atomically (temporary file, fsync, rename): a crash mid-write leaves the previous file intact.
//   * Carries a 64-bit checksum over the state and every tensor's name, dtype, shape and bytes; a torn or
//     corrupted file is refused with an io_error naming the file, before anything in the model changes.
//   * checkpoint_directory keeps the last N step files and finds the newest one that validates, so a
//     corrupted latest checkpoint falls back to the previous one instead of ending the run; it holds one
//     run's checkpoints (a save never lands below a later step of another run) and clears the temporary
//     files of writers that were killed mid-save.
//
// Resuming reproduces an uninterrupted run bit for bit on the CPU: the counter-based random streams restart
// at their saved offsets and every update is deterministic.
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyperadapt/backend/counter_rng.hpp"
#include "hyperadapt/io/checksum.hpp"
#include "hyperadapt/io/json.hpp"
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
using io::checksum64;  // io/checksum.hpp
using io::hex64;

inline constexpr const char* checkpoint_format = "hyperadapt.training_checkpoint";
inline constexpr const char* checkpoint_version = "1";

/// Checksum over the state text and, in name order, every tensor's name, dtype, shape and bytes.
inline std::uint64_t checkpoint_digest(const io::safetensors_reader& r, const std::string& state_text) {
    checksum64 c;
    c.update(state_text);
    io::update_with_tensors(c, r);
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
    if (optimizer.group_count() > 1) {  // the default group is "lr"; a checkpoint without groups has only it
        nlohmann::json groups = nlohmann::json::array();
        for (std::size_t g = 1; g < optimizer.group_count(); ++g) {
            const auto& gs = optimizer.group(g);
            groups.push_back({{"pattern", gs.pattern}, {"lr", gs.lr}, {"weight_decay", gs.weight_decay}});
        }
        j["optimizer"]["groups"] = std::move(groups);
    }
    j["rng"] = nlohmann::json::object();
    for (const auto& [k, r] : state.rng) j["rng"][k] = {r.seed(), r.offset()};
    j["extra"] = state.extra;
    std::string text;
    try {
        text = j.dump();
    } catch (const nlohmann::json::type_error& e) {  // a state string (extra, rng name) that is not UTF-8
        throw io_error(path.string() + ": cannot write the state (" + e.what() + ")");
    }

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

namespace detail {
/// The state metadata of a training checkpoint, parsed and checked.
struct checkpoint_state_record {
    training_state state;
    std::int64_t optimizer_steps = 0;
    double lr = 0;
    std::vector<std::pair<std::string, std::int64_t>> parameter_steps;  ///< AdamW's per-parameter step
    struct group {
        std::string pattern;
        double lr = 0, weight_decay = 0;
    };
    std::vector<group> groups;  ///< AdamW's parameter groups after the default one (none: a single group)
};

/// Parses the "state" metadata text that save_training_checkpoint writes. Every missing or mistyped field
/// is an io_error naming `where` (the file) and the field; nlohmann's own exceptions never escape.
inline checkpoint_state_record parse_checkpoint_state(std::string_view text, const std::string& where) {
    const nlohmann::json j = io::parse_json(text, where + "state metadata");
    auto fail = [&](const std::string& field, const std::string& what) -> void {
        throw io_error(where + "state metadata: '" + field + "' " + what);
    };
    if (!j.is_object()) throw io_error(where + "state metadata is " + io::json_summary(j) + ", not an object");
    auto member = [&](const nlohmann::json& obj, const char* key, const std::string& field) -> const nlohmann::json& {
        const auto it = obj.find(key);
        if (it == obj.end()) fail(field, "is missing");
        return *it;
    };
    auto int64 = [&](const nlohmann::json& v, const std::string& field) -> std::int64_t {
        if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            fail(field, "is " + io::json_summary(v) + ", beyond a 64-bit signed integer");
        if (!v.is_number_integer()) fail(field, "is " + io::json_summary(v) + ", not an integer");
        return v.get<std::int64_t>();
    };
    auto uint64 = [&](const nlohmann::json& v, const std::string& field) -> std::uint64_t {
        if (!v.is_number_unsigned()) fail(field, "is " + io::json_summary(v) + ", not a non-negative integer");
        return v.get<std::uint64_t>();
    };
    auto object = [&](const nlohmann::json& v, const std::string& field) -> const nlohmann::json& {
        if (!v.is_object()) fail(field, "is " + io::json_summary(v) + ", not an object");
        return v;
    };

    checkpoint_state_record rec;
    rec.state.step = int64(member(j, "step", "step"), "step");
    rec.state.epoch = int64(member(j, "epoch", "epoch"), "epoch");
    const auto& opt = object(member(j, "optimizer", "optimizer"), "optimizer");
    rec.optimizer_steps = int64(member(opt, "steps", "optimizer.steps"), "optimizer.steps");
    const auto& lr = member(opt, "lr", "optimizer.lr");
    if (!lr.is_number() || !(lr.get<double>() >= 0) || !std::isfinite(lr.get<double>()))
        fail("optimizer.lr", "is " + io::json_summary(lr) + ", not a finite number >= 0");
    rec.lr = lr.get<double>();
    auto rate = [&](const nlohmann::json& v, const std::string& field) {
        if (!v.is_number() || !(v.get<double>() >= 0) || !std::isfinite(v.get<double>()))
            fail(field, "is " + io::json_summary(v) + ", not a finite number >= 0");
        return v.get<double>();
    };
    if (const auto groups = opt.find("groups"); groups != opt.end()) {
        if (!groups->is_array()) fail("optimizer.groups", "is " + io::json_summary(*groups) + ", not an array");
        for (std::size_t g = 0; g < groups->size(); ++g) {
            const std::string field = "optimizer.groups[" + std::to_string(g) + "]";
            const auto& v = object((*groups)[g], field);
            const auto& pattern = member(v, "pattern", field + ".pattern");
            if (!pattern.is_string()) fail(field + ".pattern", "is " + io::json_summary(pattern) + ", not a string");
            rec.groups.push_back({pattern.get<std::string>(), rate(member(v, "lr", field + ".lr"), field + ".lr"),
                                  rate(member(v, "weight_decay", field + ".weight_decay"), field + ".weight_decay")});
        }
    }
    for (const auto& [name, v] : object(member(opt, "parameter_steps", "optimizer.parameter_steps"),
                                        "optimizer.parameter_steps")
                                     .items())
        rec.parameter_steps.emplace_back(name, int64(v, "optimizer.parameter_steps." + name));
    for (const auto& [name, v] : object(member(j, "rng", "rng"), "rng").items()) {
        if (!v.is_array() || v.size() != 2) fail("rng." + name, "is " + io::json_summary(v) + ", not [seed, offset]");
        rec.state.rng[name] = rng_stream(uint64(v[0], "rng." + name + "[0]"), uint64(v[1], "rng." + name + "[1]"));
    }
    for (const auto& [name, v] : object(member(j, "extra", "extra"), "extra").items()) {
        if (!v.is_string()) fail("extra." + name, "is " + io::json_summary(v) + ", not a string");
        rec.state.extra[name] = v.get<std::string>();
    }
    return rec;
}
}  // namespace detail

/// Restores model parameters, optimizer state and the run state from `path`. Everything is validated and
/// read (format, checksum, state fields, every parameter and moment present with its shape and readable)
/// before the model or optimizer is touched; on any fault io_error names the file and the fault and
/// nothing changes.
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
    const detail::checkpoint_state_record rec = detail::parse_checkpoint_state(text, where);
    // A resumed run must update every parameter as the interrupted one did: the same groups, in order.
    auto describe = [](const std::vector<std::pair<std::string, double>>& groups) {
        std::string s;
        for (const auto& [pattern, wd] : groups) s += (s.empty() ? "'" : ", '") + pattern + "' (wd " + std::to_string(wd) + ")";
        return s.empty() ? std::string("none besides the default") : s;
    };
    std::vector<std::pair<std::string, double>> stored, wanted;
    for (const auto& g : rec.groups) stored.emplace_back(g.pattern, g.weight_decay);
    for (std::size_t g = 1; g < optimizer.group_count(); ++g)
        wanted.emplace_back(optimizer.group(g).pattern, optimizer.group(g).weight_decay);
    if (stored != wanted)
        throw io_error(where + "the checkpoint was trained with parameter groups " + describe(stored) +
                       "; this optimizer has " + describe(wanted) + " (resume with the same --lr-group options)");

    // Read every value before writing anything: a conversion error half way must not leave a mixed model.
    auto read_checked = [&](const io::tensor_entry& e, const parameter<B, T>& p, const std::string& what) {
        if (e.elements() != p.size() || !(e.to_shape() == p.value.shape()))
            throw io_error(where + what + " has shape " + e.shape_str() + ", the model expects " +
                           p.value.shape().str());
        return r.read<T>(e);
    };
    std::map<std::string, parameter<B, T>*, std::less<>> params;
    std::vector<std::pair<parameter<B, T>*, std::vector<T>>> values;
    model.visit_parameters([&](const std::string& name, parameter<B, T>& p) {
        const auto* e = r.find("model/" + name);
        if (!e) throw io_error(where + "parameter '" + name + "' is missing");
        values.emplace_back(&p, read_checked(*e, p, "parameter '" + name + "'"));
        params.emplace(name, &p);
    });
    struct moments {
        std::string name;
        std::int64_t step;
        std::vector<T> m, v;
    };
    std::vector<moments> optim;
    for (const auto& [name, step] : rec.parameter_steps) {
        const auto p = params.find(name);
        if (p == params.end()) throw io_error(where + "optimizer state names '" + name + "', which the model lacks");
        const auto *m = r.find("optim/m/" + name), *v = r.find("optim/v/" + name);
        if (!m || !v) throw io_error(where + "optimizer moments of '" + name + "' are missing");
        optim.push_back({name, step, read_checked(*m, *p->second, "optimizer moment m of '" + name + "'"),
                         read_checked(*v, *p->second, "optimizer moment v of '" + name + "'")});
    }

    for (auto& [p, host] : values) p->value.backend().copy_from_host(host.data(), p->value.data(), host.size());
    for (const auto& o : optim) {
        auto& s = optimizer.state(o.name);
        s.m.backend().copy_from_host(o.m.data(), s.m.data(), o.m.size());
        s.v.backend().copy_from_host(o.v.data(), s.v.data(), o.v.size());
        s.step = o.step;
    }
    optimizer.set_step_count(rec.optimizer_steps);
    optimizer.set_lr(rec.lr);
    for (std::size_t g = 0; g < rec.groups.size(); ++g) optimizer.set_group_lr(g + 1, rec.groups[g].lr);
    return rec.state;
}

/// Step-numbered checkpoints of one run in one folder ("<prefix>-<step>.safetensors"), keeping the newest
/// `keep`.
///
/// One folder, one run: save() never writes a step below one already in the folder. A new run started in
/// the folder of an earlier, longer run would otherwise write step 4 next to the old run's step 100 and the
/// keep-N rule would delete the new file at once, while resume() would pick the old run's step. So save()
/// refuses with an io_error naming the later file; a new run resumes from the folder, uses an empty one,
/// or discards the later steps explicitly (discard_after). check_fresh_start() lets a trainer refuse at its
/// start instead of at its first save.
///
/// Temporary files of writers that died mid-save ("<name>.tmp.<pid>", io/atomic_file.hpp) are removed by
/// save() and resume() once their process no longer exists. File names whose step does not fit a 64-bit
/// integer are not checkpoints of this class: list() leaves them out and resume() reports them.
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

    /// Saves the checkpoint for state.step, then removes all but the newest `keep` files. Throws io_error,
    /// writing nothing, when the folder holds a checkpoint of a later step (see the class comment).
    template <parameterized Model, class B = typename Model::backend_type, class T = typename Model::value_type>
    std::filesystem::path save(Model& model, const adamw<B, T>& optimizer, const training_state& state) {
        std::error_code ec;
        std::filesystem::create_directories(dir_, ec);
        if (ec) throw io_error(dir_.string() + ": cannot create the checkpoint folder (" + ec.message() + ")");
        remove_stale_temporaries();
        auto all = list();
        if (!all.empty() && all.back().first > state.step)
            throw io_error(dir_.string() + ": holds " + all.back().second.filename().string() + " of step " +
                           std::to_string(all.back().first) + ", later than this run's step " +
                           std::to_string(state.step) +
                           ": the folder holds another run's checkpoints (resume from them, use an empty folder, "
                           "or discard the later steps); nothing written");
        const auto file = file_for(state.step);
        save_training_checkpoint(file, model, optimizer, state);
        all = list();
        while (all.size() > keep_) {
            std::filesystem::remove(all.front().second, ec);
            all.erase(all.begin());
        }
        return file;
    }

    /// Checkpoint files by step, oldest first.
    [[nodiscard]] std::vector<std::pair<std::int64_t, std::filesystem::path>> list() const { return scan().files; }

    /// Throws io_error naming the folder and its newest checkpoint when the folder holds any: a run that
    /// does not resume calls this before training so that it does not find out at its first save.
    void check_fresh_start() const {
        const auto all = list();
        if (!all.empty())
            throw io_error(dir_.string() + ": already holds " + std::to_string(all.size()) +
                           " checkpoint(s) up to " + all.back().second.filename().string() +
                           ": resume from them, use an empty folder, or discard them");
    }

    /// Removes the checkpoints of steps after `step` (all of them for a negative step): an explicit
    /// decision to overwrite an earlier run's later checkpoints. Returns how many were removed.
    std::size_t discard_after(std::int64_t step) const {
        std::size_t removed = 0;
        for (const auto& [s, f] : list()) {
            std::error_code ec;
            if (s > step && std::filesystem::remove(f, ec)) ++removed;
        }
        return removed;
    }

    /// Removes "<prefix>-*.safetensors.tmp.<pid>" files whose writer process no longer exists (a kill during
    /// a save leaves one behind). Files of live processes, this one included, are left alone. Returns how
    /// many were removed.
    std::size_t remove_stale_temporaries() const {
        std::size_t removed = 0;
        std::error_code ec;
        for (std::filesystem::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
            const std::string name = it->path().filename().string();
            const auto tmp = name.rfind(".safetensors.tmp.");
            if (tmp == std::string::npos || !parse_step(name.substr(0, tmp + 12))) continue;
            const std::string_view pid_text = std::string_view(name).substr(tmp + 17);
            long long pid = 0;
            const auto [end_ptr, err] = std::from_chars(pid_text.data(), pid_text.data() + pid_text.size(), pid);
            if (err != std::errc{} || end_ptr != pid_text.data() + pid_text.size() || pid <= 0 ||
                pid > std::numeric_limits<::pid_t>::max())
                continue;
            const auto writer = static_cast<::pid_t>(pid);
            if (writer == ::getpid() || ::kill(writer, 0) == 0 || errno != ESRCH) continue;
            std::error_code remove_ec;
            if (std::filesystem::remove(it->path(), remove_ec)) ++removed;
        }
        return removed;
    }

    /// Loads the newest checkpoint that validates. Files that fail are reported through `skipped` (file and
    /// reason) and left in place for inspection, as are names whose step number does not fit 64 bits.
    /// Returns nothing when no valid checkpoint exists.
    template <parameterized Model, class B = typename Model::backend_type, class T = typename Model::value_type>
    std::optional<training_state> resume(Model& model, adamw<B, T>& optimizer,
                                         std::vector<std::string>* skipped = nullptr) const {
        remove_stale_temporaries();
        const auto found = scan();
        if (skipped)
            for (const auto& f : found.unreadable_steps)
                skipped->push_back(f.string() + ": step number does not fit a 64-bit integer; ignored");
        for (auto it = found.files.rbegin(); it != found.files.rend(); ++it) {
            try {
                return load_training_checkpoint(it->second, model, optimizer);
            } catch (const io_error& e) {
                if (skipped) skipped->push_back(e.what());
            }
        }
        return std::nullopt;
    }

private:
    struct scan_result {
        std::vector<std::pair<std::int64_t, std::filesystem::path>> files;  // by step
        std::vector<std::filesystem::path> unreadable_steps;                // "<prefix>-<too many digits>..."
    };

    /// The step of "<prefix>-<digits>.safetensors"; an unexpected name or a step beyond int64 gives nothing.
    [[nodiscard]] std::optional<std::int64_t> parse_step(std::string_view name, bool* out_of_range = nullptr) const {
        constexpr std::string_view suffix = ".safetensors";
        if (name.size() <= prefix_.size() + 1 + suffix.size() || !name.starts_with(prefix_) ||
            name[prefix_.size()] != '-' || !name.ends_with(suffix))
            return std::nullopt;
        const std::string_view digits = name.substr(prefix_.size() + 1, name.size() - prefix_.size() - 1 - suffix.size());
        if (digits.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
        std::int64_t step = 0;
        const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), step);
        if (ec != std::errc{} || end != digits.data() + digits.size()) {
            if (out_of_range) *out_of_range = true;
            return std::nullopt;
        }
        return step;
    }

    [[nodiscard]] scan_result scan() const {
        scan_result out;
        std::error_code ec;
        if (!std::filesystem::is_directory(dir_, ec)) return out;
        for (std::filesystem::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
            bool out_of_range = false;
            const std::string name = it->path().filename().string();
            if (const auto step = parse_step(name, &out_of_range))
                out.files.emplace_back(*step, it->path());
            else if (out_of_range)
                out.unreadable_steps.push_back(it->path());
        }
        std::sort(out.files.begin(), out.files.end());
        std::sort(out.unreadable_steps.begin(), out.unreadable_steps.end());
        return out;
    }

    std::filesystem::path dir_;
    std::size_t keep_;
    std::string prefix_;
};

}  // namespace hyperadapt
