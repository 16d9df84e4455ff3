#pragma once
// The safetensors format (Hugging Face's checkpoint format): an 8-byte little-endian header length N, N
// bytes of JSON mapping each tensor name to {dtype, shape, data_offsets} (plus an optional "__metadata__"
// object of strings), then the raw little-endian tensor data; offsets are relative to the data section.
//
// The reader memory-maps the file and validates every header fact before any tensor is touched, so a
// truncated download or a hand-edited header is an io_error naming the file, the tensor and the fault
// rather than a wild read. It accepts exactly what the reference implementation accepts: the tensors must
// tile the data section with no overlap, no hole and no trailing bytes. Values are converted on read
// (F16/BF16/F32/F64 to float or double; integer types to int64 or int32, range-checked).
//
// The writer produces F32, F64, I64 and I32 tensors (and raw bytes of any dtype), keys sorted, the header
// space-padded so the data section starts 8-byte aligned, and writes atomically (io/atomic_file.hpp).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_set>
#include <vector>

#include "hyperadapt/core/errors.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/io/atomic_file.hpp"
#include "hyperadapt/io/half_float.hpp"
#include "hyperadapt/io/json.hpp"
#include "hyperadapt/io/mapped_file.hpp"

namespace hyperadapt::io {

static_assert(std::endian::native == std::endian::little,
              "hyperadapt's safetensors reader and writer copy little-endian data as is: a big-endian host "
              "would need byte swapping, which is not implemented");

/// The element types the safetensors format defines.
enum class dtype : std::uint8_t { boolean, u8, i8, u16, i16, u32, i32, u64, i64, f16, bf16, f32, f64, f8_e4m3, f8_e5m2 };

namespace detail {
struct dtype_row {
    dtype type;
    std::string_view name;
    std::size_t size;
};
inline constexpr dtype_row dtype_table[] = {
    {dtype::boolean, "BOOL", 1}, {dtype::u8, "U8", 1},           {dtype::i8, "I8", 1},
    {dtype::u16, "U16", 2},      {dtype::i16, "I16", 2},         {dtype::u32, "U32", 4},
    {dtype::i32, "I32", 4},      {dtype::u64, "U64", 8},         {dtype::i64, "I64", 8},
    {dtype::f16, "F16", 2},      {dtype::bf16, "BF16", 2},       {dtype::f32, "F32", 4},
    {dtype::f64, "F64", 8},      {dtype::f8_e4m3, "F8_E4M3", 1}, {dtype::f8_e5m2, "F8_E5M2", 1},
};
}  // namespace detail

[[nodiscard]] constexpr std::string_view dtype_name(dtype t) noexcept {
    for (const auto& r : detail::dtype_table)
        if (r.type == t) return r.name;
    return "?";
}
[[nodiscard]] constexpr std::size_t dtype_size(dtype t) noexcept {
    for (const auto& r : detail::dtype_table)
        if (r.type == t) return r.size;
    return 0;
}
[[nodiscard]] constexpr std::optional<dtype> parse_dtype(std::string_view name) noexcept {
    for (const auto& r : detail::dtype_table)
        if (r.name == name) return r.type;
    return std::nullopt;
}
[[nodiscard]] constexpr bool is_floating(dtype t) noexcept {
    return t == dtype::f16 || t == dtype::bf16 || t == dtype::f32 || t == dtype::f64;
}
[[nodiscard]] constexpr bool is_integral(dtype t) noexcept {
    return t == dtype::boolean || t == dtype::u8 || t == dtype::i8 || t == dtype::u16 || t == dtype::i16 ||
           t == dtype::u32 || t == dtype::i32 || t == dtype::u64 || t == dtype::i64;
}

/// The dtype the writer stores a C++ scalar as.
template <class T>
inline constexpr dtype dtype_of = [] {
    if constexpr (std::is_same_v<T, float>)
        return dtype::f32;
    else if constexpr (std::is_same_v<T, double>)
        return dtype::f64;
    else if constexpr (std::is_same_v<T, std::int64_t>)
        return dtype::i64;
    else if constexpr (std::is_same_v<T, std::int32_t>)
        return dtype::i32;
    else
        static_assert(sizeof(T) == 0, "safetensors: the writer stores float, double, int64_t and int32_t");
}();

/// "[2, 3]": safetensors shapes print as JSON arrays, to tell them apart from the library's "(2, 3)".
inline std::string shape_string(std::span<const std::size_t> dims) {
    std::string s = "[";
    for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
    return s + "]";
}

/// One tensor of a safetensors file, as its header describes it (already validated).
struct tensor_entry {
    std::string name;
    dtype type = dtype::f32;
    std::vector<std::size_t> shape;
    std::size_t begin = 0, end = 0;  ///< byte range [begin, end) within the data section

    [[nodiscard]] std::size_t elements() const noexcept {
        std::size_t n = 1;
        for (auto d : shape) n *= d;
        return n;
    }
    [[nodiscard]] std::size_t bytes() const noexcept { return end - begin; }
    [[nodiscard]] std::string shape_str() const { return shape_string(shape); }
    /// The shape as a library shape; throws io_error when the rank exceeds the library's 4.
    [[nodiscard]] hyperadapt::shape to_shape() const {
        if (shape.size() > hyperadapt::shape::max_rank)
            throw io_error("tensor '" + name + "': rank " + std::to_string(shape.size()) + " exceeds 4");
        hyperadapt::shape s;
        switch (shape.size()) {
            case 0: s = {}; break;
            case 1: s = {shape[0]}; break;
            case 2: s = {shape[0], shape[1]}; break;
            case 3: s = {shape[0], shape[1], shape[2]}; break;
            default: s = {shape[0], shape[1], shape[2], shape[3]}; break;
        }
        return s;
    }
};

class safetensors_reader {
public:
    /// Headers beyond this are refused before parsing, as in the reference implementation: a corrupted
    /// length field must not make the reader parse (or allocate for) gigabytes of tensor data as JSON.
    static constexpr std::size_t max_header_bytes = 100u << 20;

    explicit safetensors_reader(std::filesystem::path path) : file_(std::move(path)) { parse_header(); }

    [[nodiscard]] const std::filesystem::path& path() const noexcept { return file_.path(); }
    /// All tensors, sorted by name.
    [[nodiscard]] const std::vector<tensor_entry>& entries() const noexcept { return entries_; }
    [[nodiscard]] const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }
    [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }

    [[nodiscard]] const tensor_entry* find(std::string_view name) const noexcept {
        auto it = std::lower_bound(entries_.begin(), entries_.end(), name,
                                   [](const tensor_entry& e, std::string_view n) { return e.name < n; });
        return it != entries_.end() && it->name == name ? &*it : nullptr;
    }
    [[nodiscard]] bool contains(std::string_view name) const noexcept { return find(name) != nullptr; }
    [[nodiscard]] const tensor_entry& at(std::string_view name) const {
        if (const auto* e = find(name)) return *e;
        throw io_error(where() + "no tensor named '" + std::string(name) + "'");
    }

    /// The tensor's bytes in the mapped file (valid while the reader lives).
    [[nodiscard]] std::span<const std::byte> raw(const tensor_entry& e) const noexcept {
        return file_.bytes().subspan(data_start_ + e.begin, e.bytes());
    }

    /// Converts the tensor's values into `out` (out.size() must equal its element count). T: float or
    /// double for F16, BF16, F32, F64 tensors; std::int64_t or std::int32_t for integer and BOOL tensors.
    template <class T>
    void read_into(const tensor_entry& e, std::span<T> out) const {
        static_assert(std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, std::int64_t> ||
                          std::is_same_v<T, std::int32_t>,
                      "safetensors_reader converts to float, double, int64_t or int32_t");
        if (out.size() != e.elements())
            throw shape_error(where(e) + "destination holds " + std::to_string(out.size()) +
                              " values, the tensor has " + std::to_string(e.elements()));
        const std::byte* src = raw(e).data();
        if constexpr (std::is_floating_point_v<T>)
            convert_floating(e, src, out);
        else
            convert_integral(e, src, out);
    }
    template <class T>
    [[nodiscard]] std::vector<T> read(const tensor_entry& e) const {
        std::vector<T> v(e.elements());
        read_into(e, std::span<T>(v));
        return v;
    }
    template <class T>
    [[nodiscard]] std::vector<T> read(std::string_view name) const {
        return read<T>(at(name));
    }

private:
    [[nodiscard]] std::string where() const { return file_.path().string() + ": "; }
    [[nodiscard]] std::string where(const tensor_entry& e) const { return where() + "tensor '" + e.name + "': "; }
    [[noreturn]] void fail(const std::string& what) const { throw io_error(where() + what); }

    static bool mul_overflows(std::size_t a, std::size_t b, std::size_t& out) noexcept {
        if (a != 0 && b > std::numeric_limits<std::size_t>::max() / a) return true;
        out = a * b;
        return false;
    }

    void parse_header() {
        const auto bytes = file_.bytes();
        if (bytes.size() < 8)
            fail("file is " + std::to_string(bytes.size()) +
                 " bytes long, too short for the 8-byte header length (truncated or not a safetensors file)");
        std::uint64_t n = 0;
        std::memcpy(&n, bytes.data(), 8);
        if (n > bytes.size() - 8)
            fail("header length " + std::to_string(n) + " exceeds the " + std::to_string(bytes.size() - 8) +
                 " bytes that follow it (truncated or not a safetensors file)");
        if (n > max_header_bytes)
            fail("header length " + std::to_string(n) + " exceeds the limit of " + std::to_string(max_header_bytes) +
                 " bytes");
        const auto header_size = static_cast<std::size_t>(n);
        data_start_ = 8 + header_size;
        data_size_ = bytes.size() - data_start_;
        const auto* text = reinterpret_cast<const char*>(bytes.data() + 8);

        // nlohmann::json keeps the last of duplicate keys silently; a duplicate tensor name is a corrupt
        // header, so the top-level keys are collected while parsing.
        std::unordered_set<std::string> seen;
        std::string duplicate;
        auto on_event = [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
            if (depth == 1 && ev == nlohmann::json::parse_event_t::key && duplicate.empty()) {
                auto key = parsed.get<std::string>();
                if (!seen.insert(key).second) duplicate = std::move(key);
            }
            return true;
        };
        const nlohmann::json header = parse_json(text, text + header_size, where() + "header", on_event);
        if (!header.is_object()) fail("header is JSON but not an object (found " + std::string(header.type_name()) + ")");
        if (!duplicate.empty()) fail("header names '" + duplicate + "' twice");

        for (const auto& [name, value] : header.items()) {
            if (name == "__metadata__") {
                parse_metadata(value);
                continue;
            }
            entries_.push_back(parse_entry(name, value));
        }
        std::sort(entries_.begin(), entries_.end(),
                  [](const tensor_entry& a, const tensor_entry& b) { return a.name < b.name; });
        check_layout();
    }

    void parse_metadata(const nlohmann::json& m) {
        if (!m.is_object()) fail("__metadata__ is not an object of strings");
        for (const auto& [k, v] : m.items()) {
            if (!v.is_string()) fail("__metadata__ entry '" + k + "' is not a string (found " + json_summary(v) + ")");
            metadata_.emplace(k, v.get<std::string>());
        }
    }

    tensor_entry parse_entry(const std::string& name, const nlohmann::json& v) const {
        tensor_entry e;
        e.name = name;
        const std::string at = "tensor '" + name + "': ";
        if (!v.is_object()) fail(at + "entry is not an object");
        for (const char* field : {"dtype", "shape", "data_offsets"})
            if (!v.contains(field)) fail(at + "entry has no '" + field + "'");

        const auto& dt = v["dtype"];
        if (!dt.is_string()) fail(at + "dtype is not a string");
        const auto parsed = parse_dtype(dt.get<std::string>());
        if (!parsed) fail(at + "unknown dtype '" + dt.get<std::string>() + "'");
        e.type = *parsed;

        const auto& sh = v["shape"];
        if (!sh.is_array()) fail(at + "shape is not an array");
        for (std::size_t i = 0; i < sh.size(); ++i) {
            if (!sh[i].is_number_unsigned())
                fail(at + "shape entry " + std::to_string(i) + " is " + json_summary(sh[i]) +
                     ", not a non-negative integer");
            e.shape.push_back(sh[i].get<std::size_t>());
        }

        const auto& off = v["data_offsets"];
        if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
            fail(at + "data_offsets (" + json_summary(off) + ") is not a pair of non-negative integers");
        e.begin = off[0].get<std::size_t>();
        e.end = off[1].get<std::size_t>();
        if (e.begin > e.end)
            fail(at + "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + ") end before they begin");
        if (e.end > data_size_)
            fail(at + "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                 ") exceed the data section of " + std::to_string(data_size_) + " bytes");

        std::size_t expected = dtype_size(e.type);
        for (auto d : e.shape)
            if (mul_overflows(expected, d, expected)) fail(at + "shape " + e.shape_str() + " overflows the byte count");
        if (expected != e.bytes())
            fail(at + "shape " + e.shape_str() + " of " + std::string(dtype_name(e.type)) + " needs " +
                 std::to_string(expected) + " bytes, data_offsets [" + std::to_string(e.begin) + ", " +
                 std::to_string(e.end) + ") hold " + std::to_string(e.bytes()));
        return e;
    }

    // The tensors must tile the data section exactly; otherwise a writer bug (or an edit) has made two
    // tensors share bytes or left bytes that nothing describes.
    void check_layout() const {
        std::vector<const tensor_entry*> by_offset;
        for (const auto& e : entries_) by_offset.push_back(&e);
        std::sort(by_offset.begin(), by_offset.end(), [](const tensor_entry* a, const tensor_entry* b) {
            return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
        });
        std::size_t pos = 0;
        const tensor_entry* prev = nullptr;
        for (const auto* e : by_offset) {
            if (e->begin < pos)
                fail("tensors '" + prev->name + "' [" + std::to_string(prev->begin) + ", " + std::to_string(prev->end) +
                     ") and '" + e->name + "' [" + std::to_string(e->begin) + ", " + std::to_string(e->end) +
                     ") overlap");
            if (e->begin > pos)
                fail("bytes [" + std::to_string(pos) + ", " + std::to_string(e->begin) +
                     ") of the data section belong to no tensor (before tensor '" + e->name + "')");
            pos = e->end;
            prev = e;
        }
        if (pos != data_size_)
            fail("the data section has " + std::to_string(data_size_) + " bytes but its tensors end at byte " +
                 std::to_string(pos) + " (" + std::to_string(data_size_ - pos) + " trailing bytes)");
    }

    template <class T, class Raw>
    static Raw load(const std::byte* src, std::size_t i) noexcept {
        Raw r;
        std::memcpy(&r, src + i * sizeof(Raw), sizeof(Raw));
        return r;
    }

    template <class T>
    void convert_floating(const tensor_entry& e, const std::byte* src, std::span<T> out) const {
        const std::size_t n = out.size();
        switch (e.type) {
            case dtype::f32:
                if constexpr (std::is_same_v<T, float>) {
                    if (n) std::memcpy(out.data(), src, n * sizeof(float));
                } else {
                    for (std::size_t i = 0; i < n; ++i) out[i] = load<T, float>(src, i);
                }
                return;
            case dtype::f64:
                if constexpr (std::is_same_v<T, double>) {
                    if (n) std::memcpy(out.data(), src, n * sizeof(double));
                } else {
                    for (std::size_t i = 0; i < n; ++i) {
                        const double d = load<T, double>(src, i);
                        const auto f = static_cast<float>(d);
                        // A finite double beyond float's range would silently become infinity.
                        if (std::isinf(f) && std::isfinite(d))
                            throw io_error(where(e) + "value " + std::to_string(d) + " at index " +
                                           std::to_string(i) + " overflows float");
                        out[i] = f;
                    }
                }
                return;
            case dtype::f16:
                for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<T>(f16_to_float(load<T, std::uint16_t>(src, i)));
                return;
            case dtype::bf16:
                for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<T>(bf16_to_float(load<T, std::uint16_t>(src, i)));
                return;
            default:
                throw io_error(where(e) + "dtype " + std::string(dtype_name(e.type)) + " cannot be read as " +
                               (std::is_same_v<T, float> ? "float" : "double") +
                               " (expected F16, BF16, F32 or F64)");
        }
    }

    template <class T>
    void convert_integral(const tensor_entry& e, const std::byte* src, std::span<T> out) const {
        auto put = [&](std::size_t i, auto v) {
            if (!std::in_range<T>(v))
                throw io_error(where(e) + "value " + std::to_string(v) + " at index " + std::to_string(i) +
                               " does not fit " + (std::is_same_v<T, std::int32_t> ? "int32" : "int64"));
            out[i] = static_cast<T>(v);
        };
        auto each = [&]<class Raw>(Raw) {
            for (std::size_t i = 0; i < out.size(); ++i) put(i, load<T, Raw>(src, i));
        };
        switch (e.type) {
            case dtype::boolean:
            case dtype::u8: each(std::uint8_t{}); return;
            case dtype::i8: each(std::int8_t{}); return;
            case dtype::u16: each(std::uint16_t{}); return;
            case dtype::i16: each(std::int16_t{}); return;
            case dtype::u32: each(std::uint32_t{}); return;
            case dtype::i32: each(std::int32_t{}); return;
            case dtype::u64: each(std::uint64_t{}); return;
            case dtype::i64: each(std::int64_t{}); return;
            default:
                throw io_error(where(e) + "dtype " + std::string(dtype_name(e.type)) + " cannot be read as " +
                               (std::is_same_v<T, std::int32_t> ? "int32" : "int64") + " (expected an integer dtype)");
        }
    }

    mapped_file file_;
    std::size_t data_start_ = 0, data_size_ = 0;
    std::vector<tensor_entry> entries_;
    std::map<std::string, std::string> metadata_;
};

/// Collects tensors (copied: the caller's buffers may go away before write) and writes them in one go.
class safetensors_writer {
public:
    /// Adds a tensor stored as dtype_of<T> (F32, F64, I64, I32).
    template <class T>
    void add(std::string name, std::vector<std::size_t> shape, std::span<const T> values) {
        add_raw(std::move(name), dtype_of<T>, std::move(shape), std::as_bytes(values));
    }
    template <class T>
    void add(std::string name, std::vector<std::size_t> shape, const std::vector<T>& values) {
        add(std::move(name), std::move(shape), std::span<const T>(values));
    }

    /// Adds little-endian bytes of any dtype (e.g. F16 produced elsewhere); their size must match the shape.
    void add_raw(std::string name, dtype type, std::vector<std::size_t> shape, std::span<const std::byte> bytes) {
        if (name.empty() || name == "__metadata__")
            throw io_error("safetensors_writer: '" + name + "' cannot name a tensor");
        if (names_.count(name)) throw io_error("safetensors_writer: tensor '" + name + "' added twice");
        std::size_t n = 1;
        for (auto d : shape) n *= d;
        if (n * dtype_size(type) != bytes.size())
            throw shape_error("safetensors_writer: tensor '" + name + "' of shape " + shape_string(shape) + " and dtype " +
                              std::string(dtype_name(type)) + " needs " + std::to_string(n * dtype_size(type)) +
                              " bytes, got " + std::to_string(bytes.size()));
        names_.insert(name);
        pending_.push_back({std::move(name), type, std::move(shape), {bytes.begin(), bytes.end()}});
    }

    void set_metadata(std::string key, std::string value) { metadata_[std::move(key)] = std::move(value); }
    [[nodiscard]] std::size_t size() const noexcept { return pending_.size(); }

    /// Writes the file atomically; on any failure `path` keeps its old content and io_error says why.
    void write(const std::filesystem::path& path) const {
        // Data in order of decreasing element size, so every tensor starts aligned to its own element size
        // (the data section is 8-aligned): readers that map tensors in place may rely on that.
        std::vector<const pending_tensor*> order;
        for (const auto& t : pending_) order.push_back(&t);
        std::sort(order.begin(), order.end(), [](const pending_tensor* a, const pending_tensor* b) {
            const auto sa = dtype_size(a->type), sb = dtype_size(b->type);
            return sa != sb ? sa > sb : a->name < b->name;
        });
        nlohmann::json header = nlohmann::json::object();  // std::map-backed: keys come out sorted
        std::size_t offset = 0;
        for (const auto* t : order) {
            header[t->name] = {{"dtype", dtype_name(t->type)},
                               {"shape", t->shape},
                               {"data_offsets", {offset, offset + t->bytes.size()}}};
            offset += t->bytes.size();
        }
        if (!metadata_.empty()) header["__metadata__"] = metadata_;
        std::string text;
        try {
            text = header.dump();
        } catch (const nlohmann::json::type_error& e) {  // a name or metadata string that is not UTF-8
            throw io_error(path.string() + ": cannot write the header (" + e.what() + ")");
        }
        text.append((8 - text.size() % 8) % 8, ' ');  // the format pads with spaces to keep data 8-aligned
        const auto length = static_cast<std::uint64_t>(text.size());

        write_file_atomically(path, [&](file_sink& out) {
            std::byte prefix[8];
            std::memcpy(prefix, &length, 8);
            out.write(std::span<const std::byte>(prefix));
            out.write(text);
            for (const auto* t : order) out.write(std::span<const std::byte>(t->bytes));
        });
    }

private:
    struct pending_tensor {
        std::string name;
        dtype type;
        std::vector<std::size_t> shape;
        std::vector<std::byte> bytes;
    };
    std::vector<pending_tensor> pending_;
    std::unordered_set<std::string> names_;
    std::map<std::string, std::string> metadata_;
};

}  // namespace hyperadapt::io
