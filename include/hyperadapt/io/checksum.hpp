#pragma once
// A 64-bit checksum for files hyperadapt writes and reads back (training checkpoints, model directories): it
// detects corruption and torn writes, not deliberate tampering.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "hyperadapt/backend/counter_rng.hpp"
#include "hyperadapt/io/safetensors.hpp"

namespace hyperadapt::io {

/// xxHash64's core loop in style (word-wise multiply-rotate) with splitmix64's avalanche at the end.
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
    [[nodiscard]] std::uint64_t digest() const noexcept { return ::hyperadapt::detail::mix64(h_ ^ length_); }

private:
    static constexpr std::uint64_t p1 = 0x9e3779b185ebca87ULL, p2 = 0xc2b2ae3d27d4eb4fULL;
    void mix(std::uint64_t w) noexcept { h_ = std::rotl(h_ ^ (w * p2), 31) * p1; }
    std::uint64_t h_ = 0x27d4eb2f165667c5ULL;
    std::uint64_t length_ = 0;
};

/// Sixteen lower-case hex digits.
inline std::string hex64(std::uint64_t v) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

/// Every tensor of a safetensors file in name order: its name, dtype, shape and bytes (not the metadata).
inline void update_with_tensors(checksum64& c, const safetensors_reader& r) {
    for (const auto& e : r.entries()) {  // sorted by name
        c.update(e.name);
        c.update(dtype_name(e.type));
        for (auto d : e.shape) c.update_value(static_cast<std::uint64_t>(d));
        c.update(r.raw(e));
    }
}

}  // namespace hyperadapt::io
