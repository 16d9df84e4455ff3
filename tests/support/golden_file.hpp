#pragma once
// Golden reference files (the authors' modules evaluated in float64; ../shared/data/reference/README.md):
// where they are, which belong to a module, and the facts a reference test reads from a file's tensors and
// __metadata__. A reference test takes every shape, option and task order from here, never from a constant
// that happens to match today's files; when a fact is missing or unparsable, golden_error names the file and
// the tensor or metadata key.
//
// The folder is tests/data/reference unless HYPERADAPT_REFERENCE_DIR names another one (searched
// recursively), so that any further golden file of a module can be dropped in and checked: a module's test
// runs over every file whose name starts with one of the module's prefixes (camtl_cbda_*, pha_adapter_*, ...).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyperadapt/io/safetensors.hpp"
#include "shared_data.hpp"

namespace hyperadapt::test::reference {

/// A fact a reference test needs is missing from, or contradicted by, a golden file.
struct golden_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// The repository's copies of the authors' files.
inline std::filesystem::path repository_reference_dir() {
    return std::filesystem::path(HYPERADAPT_TEST_DATA_DIR) / "reference";
}

/// Whether $HYPERADAPT_REFERENCE_DIR (set and not empty) chooses the folder.
inline bool reference_dir_overridden() {
    const char* env = std::getenv("HYPERADAPT_REFERENCE_DIR");
    return env != nullptr && *env != '\0';
}

/// $HYPERADAPT_REFERENCE_DIR when set and not empty, else the repository's copies.
inline std::filesystem::path reference_dir() {
    if (reference_dir_overridden()) return std::getenv("HYPERADAPT_REFERENCE_DIR");
    return repository_reference_dir();
}

/// The authors' files in the shared data (HYPERADAPT_SHARED_DATA/reference), of which the repository holds
/// copies.
inline std::filesystem::path shared_reference_dir() { return std::filesystem::path(shared_data_dir()) / "reference"; }

/// Every *.safetensors under `dir` (recursively) whose file name starts with one of `prefixes`, sorted by file
/// name (then path), so the order of the cases does not depend on the file system.
inline std::vector<std::filesystem::path> golden_files(const std::vector<std::string>& prefixes,
                                                       const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    if (!fs::is_directory(dir))
        throw golden_error("reference folder " + dir.string() + " does not exist (set HYPERADAPT_REFERENCE_DIR)");
    std::vector<fs::path> out;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
        if (!e.is_regular_file() || e.path().extension() != ".safetensors") continue;
        const std::string name = e.path().filename().string();
        if (std::any_of(prefixes.begin(), prefixes.end(), [&](const std::string& p) { return name.rfind(p, 0) == 0; }))
            out.push_back(e.path());
    }
    std::sort(out.begin(), out.end(), [](const fs::path& a, const fs::path& b) {
        return a.filename() != b.filename() ? a.filename() < b.filename() : a < b;
    });
    return out;
}

/// The golden files of one module in reference_dir(): every file whose name starts with one of `prefixes`.
/// None is an error, so that a mistyped HYPERADAPT_REFERENCE_DIR cannot pass.
inline std::vector<std::filesystem::path> module_golden_files(const std::vector<std::string>& prefixes) {
    const auto dir = reference_dir();
    auto files = golden_files(prefixes, dir);
    if (files.empty()) {
        std::string names;
        for (const auto& p : prefixes) names += (names.empty() ? "" : ", ") + p + "*";
        throw golden_error("no golden file " + names + " under " + dir.string());
    }
    return files;
}

/// A file's bytes (golden files are small).
inline std::vector<char> file_bytes(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

/// The files a module's reference cases check: module_golden_files(prefixes) and, unless
/// HYPERADAPT_REFERENCE_DIR chose the folder, every file of the module in the shared reference folder that is
/// not byte-identical to one of them. The repository's copies normally equal the shared files; a shared file
/// that differs from its copy, or that has none, is a golden file the repository has not seen, and is
/// checked as well (so replacing or adding files in the shared data is enough to check them).
inline std::vector<std::filesystem::path> checked_golden_files(const std::vector<std::string>& prefixes) {
    auto files = module_golden_files(prefixes);
    const auto shared = shared_reference_dir();
    if (reference_dir_overridden() || !std::filesystem::is_directory(shared)) return files;
    std::vector<std::vector<char>> seen;
    for (const auto& f : files) seen.push_back(file_bytes(f));
    for (const auto& f : golden_files(prefixes, shared)) {
        auto bytes = file_bytes(f);
        if (std::find(seen.begin(), seen.end(), bytes) != seen.end()) continue;
        files.push_back(f);
        seen.push_back(std::move(bytes));
    }
    return files;
}

/// One golden file: its tensors and the facts of its __metadata__.
class golden {
public:
    explicit golden(std::filesystem::path path) : path_(std::move(path)), reader_(path_) {}

    [[nodiscard]] const io::safetensors_reader& reader() const noexcept { return reader_; }
    [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
    /// The file name without ".safetensors", as the test messages name the case.
    [[nodiscard]] std::string name() const { return path_.stem().string(); }

    [[noreturn]] void fail(const std::string& what) const { throw golden_error(path_.string() + ": " + what); }

    // ---- tensors -------------------------------------------------------------------------------------------

    [[nodiscard]] bool has(const std::string& tensor) const { return reader_.find(tensor) != nullptr; }
    [[nodiscard]] const std::vector<std::size_t>& shape(const std::string& tensor) const {
        return reader_.at(tensor).shape;
    }
    /// Dimension `axis` of `tensor`; negative axes count from the end.
    [[nodiscard]] std::size_t dim(const std::string& tensor, int axis) const {
        const auto& s = shape(tensor);
        const auto rank = static_cast<int>(s.size());
        const int a = axis < 0 ? rank + axis : axis;
        if (a < 0 || a >= rank)
            fail("tensor '" + tensor + "' has rank " + std::to_string(rank) + ", no axis " + std::to_string(axis));
        return s[static_cast<std::size_t>(a)];
    }
    [[nodiscard]] std::vector<double> values(const std::string& tensor) const { return reader_.read<double>(tensor); }
    [[nodiscard]] std::vector<std::int64_t> ints(const std::string& tensor) const {
        return reader_.read<std::int64_t>(tensor);
    }
    /// A non-negative integer tensor (task ids, sizes) as size_t; a negative value is an error naming the tensor.
    [[nodiscard]] std::vector<std::size_t> indices(const std::string& tensor) const {
        std::vector<std::size_t> out;
        for (auto v : ints(tensor)) {
            if (v < 0) fail("tensor '" + tensor + "' holds the negative value " + std::to_string(v));
            out.push_back(static_cast<std::size_t>(v));
        }
        return out;
    }
    /// Names of the tensors that start with `prefix`, sorted.
    [[nodiscard]] std::vector<std::string> names_with_prefix(const std::string& prefix) const {
        std::vector<std::string> out;
        for (const auto& e : reader_.entries())
            if (e.name.rfind(prefix, 0) == 0) out.push_back(e.name);
        return out;
    }
    /// How many output.* and grad.* tensors the file has: a test must compare each of them.
    [[nodiscard]] std::size_t output_and_gradient_count() const {
        return names_with_prefix("output.").size() + names_with_prefix("grad.").size();
    }
    /// Requires that `tensor` has `dims` (a consistency check between two facts of the file).
    void require_shape(const std::string& tensor, const std::vector<std::size_t>& dims, const std::string& why) const {
        if (shape(tensor) != dims)
            fail("tensor '" + tensor + "' has shape " + io::shape_string(shape(tensor)) + ", expected " +
                 io::shape_string(dims) + " (" + why + ")");
    }

    // ---- metadata ------------------------------------------------------------------------------------------

    [[nodiscard]] bool has_meta(const std::string& key) const { return reader_.metadata().count(key) != 0; }
    [[nodiscard]] const std::string& meta(const std::string& key) const {
        const auto it = reader_.metadata().find(key);
        if (it == reader_.metadata().end()) fail("__metadata__ has no key '" + key + "'");
        return it->second;
    }
    /// A metadata value that is JSON (config, tasks, num_classes, ...).
    [[nodiscard]] nlohmann::json meta_json(const std::string& key) const {
        try {
            return nlohmann::json::parse(meta(key));
        } catch (const nlohmann::json::exception& e) {
            fail("__metadata__ key '" + key + "' is not JSON: " + e.what());
        }
    }
    /// Field `field` of the JSON metadata value `key`, converted to T.
    template <class T>
    [[nodiscard]] T meta_field(const std::string& key, const std::string& field) const {
        const auto j = meta_json(key);
        if (!j.is_object() || !j.contains(field)) fail("__metadata__ key '" + key + "' has no field '" + field + "'");
        try {
            return j.at(field).get<T>();
        } catch (const nlohmann::json::exception& e) {
            fail("__metadata__ key '" + key + "' field '" + field + "': " + e.what());
        }
    }
    /// Whether metadata `key` contains `text`; the key must exist.
    [[nodiscard]] bool meta_mentions(const std::string& key, const std::string& text) const {
        return meta(key).find(text) != std::string::npos;
    }
    /// The value of "name=value" in metadata `key` (as in "eps=1e-12", "layer_norm=False").
    [[nodiscard]] std::string meta_option(const std::string& key, const std::string& name) const {
        const std::regex re("(^|[^A-Za-z0-9_])" + name + R"(\s*=\s*([^,;)\s]+))");
        std::smatch m;
        if (!std::regex_search(meta(key), m, re))
            fail("__metadata__ key '" + key + "' does not give " + name + "=<value>");
        return m[2].str();
    }
    /// meta_option from the first of `keys` that gives name=<value> (e.g. "options", then the "call" line).
    [[nodiscard]] std::string meta_option_any(const std::vector<std::string>& keys, const std::string& name) const {
        const std::regex re("(^|[^A-Za-z0-9_])" + name + R"(\s*=)");
        for (const auto& k : keys)
            if (has_meta(k) && std::regex_search(meta(k), re)) return meta_option(k, name);
        std::string list;
        for (const auto& k : keys) list += (list.empty() ? "'" : ", '") + k + "'";
        fail("no __metadata__ key of " + list + " gives " + name + "=<value>");
    }
    [[nodiscard]] bool meta_option_bool(const std::vector<std::string>& keys, const std::string& name) const {
        const auto v = meta_option_any(keys, name);
        if (v == "True" || v == "true") return true;
        if (v == "False" || v == "false") return false;
        fail("__metadata__ " + name + "=" + v + " is not a boolean");
    }
    [[nodiscard]] double meta_option_number(const std::vector<std::string>& keys, const std::string& name) const {
        return to_number(keys.front(), meta_option_any(keys, name));
    }
    /// The number that follows `label` in metadata `key` (as "eps 1e-6" in a maths line: label "eps ").
    [[nodiscard]] double meta_number_after(const std::string& key, const std::string& label) const {
        const std::string& text = meta(key);
        const auto at = text.find(label);
        if (at == std::string::npos) fail("__metadata__ key '" + key + "' does not mention '" + label + "'");
        std::smatch m;
        const std::string rest = text.substr(at + label.size());
        if (!std::regex_search(rest, m, std::regex(R"(^\s*([-+]?[0-9.]+(?:[eE][-+]?[0-9]+)?))")))
            fail("__metadata__ key '" + key + "': no number after '" + label + "'");
        return to_number(key, m[1].str());
    }
    /// Requires that metadata `key` contains `symbol` (the module a test reproduces, e.g. "::CBDA.forward").
    void require_meta_mentions(const std::string& key, const std::string& symbol) const {
        if (!meta_mentions(key, symbol))
            fail("__metadata__ key '" + key + "' does not name " + symbol + ": '" + meta(key) + "'");
    }

private:
    [[nodiscard]] double to_number(const std::string& key, const std::string& v) const {
        try {
            std::size_t used = 0;
            const double d = std::stod(v, &used);
            if (used == v.size()) return d;
        } catch (const std::exception&) {
        }
        fail("__metadata__ key '" + key + "': '" + v + "' is not a number");
    }

    std::filesystem::path path_;
    io::safetensors_reader reader_;
};

}  // namespace hyperadapt::test::reference
