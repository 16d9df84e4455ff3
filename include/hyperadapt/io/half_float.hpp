#pragma once
// IEEE binary16 (F16) and bfloat16 (BF16) bit patterns <-> float. Checkpoints are often stored in these
// formats; the library computes in float or double, so conversions happen once, on load. Done in integer
// arithmetic so the result does not depend on the compiler's or the CPU's half-precision support.
#include <bit>
#include <cstdint>

namespace hyperadapt::io {

/// binary16 -> float, exact for every input (subnormals, infinities, NaN payloads' top bits).
[[nodiscard]] inline float f16_to_float(std::uint16_t h) noexcept {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    const std::uint32_t exp = (h >> 10) & 0x1Fu;
    std::uint32_t mant = h & 0x3FFu;
    std::uint32_t bits;
    if (exp == 0x1Fu) {
        bits = sign | 0x7F800000u | (mant << 13);  // inf or NaN
    } else if (exp != 0) {
        bits = sign | ((exp + 112u) << 23) | (mant << 13);  // rebias 15 -> 127
    } else if (mant == 0) {
        bits = sign;  // signed zero
    } else {
        // Subnormal half: normalise the mantissa; every half subnormal is a normal float.
        std::uint32_t e = 113;
        while ((mant & 0x400u) == 0) {
            mant <<= 1;
            --e;
        }
        bits = sign | (e << 23) | ((mant & 0x3FFu) << 13);
    }
    return std::bit_cast<float>(bits);
}

/// float -> binary16 with round-to-nearest-even; overflow gives infinity, NaN stays NaN.
[[nodiscard]] inline std::uint16_t float_to_f16(float f) noexcept {
    const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
    const auto sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
    const std::uint32_t exp = (x >> 23) & 0xFFu;
    const std::uint32_t mant = x & 0x7FFFFFu;
    if (exp == 0xFFu) return static_cast<std::uint16_t>(sign | 0x7C00u | (mant ? 0x200u : 0u));
    const int e = static_cast<int>(exp) - 127 + 15;
    if (e >= 0x1F) return static_cast<std::uint16_t>(sign | 0x7C00u);
    if (e <= 0) {
        if (e < -10) return sign;  // below half the smallest subnormal
        const std::uint32_t m = mant | 0x800000u;
        const auto shift = static_cast<std::uint32_t>(14 - e);
        std::uint32_t r = m >> shift;
        const std::uint32_t rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (r & 1u))) ++r;
        return static_cast<std::uint16_t>(sign | r);
    }
    std::uint32_t r = (static_cast<std::uint32_t>(e) << 10) | (mant >> 13);
    const std::uint32_t rem = mant & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;  // a carry into the exponent is still correct
    return static_cast<std::uint16_t>(sign | r);
}

/// bfloat16 -> float: bfloat16 is the top half of a float, so this is exact.
[[nodiscard]] inline float bf16_to_float(std::uint16_t b) noexcept {
    return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

/// float -> bfloat16 with round-to-nearest-even; NaN stays NaN.
[[nodiscard]] inline std::uint16_t float_to_bf16(float f) noexcept {
    const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((x >> 16) | 0x40u);
    const std::uint32_t rounding = 0x7FFFu + ((x >> 16) & 1u);
    return static_cast<std::uint16_t>((x + rounding) >> 16);
}

}  // namespace hyperadapt::io
