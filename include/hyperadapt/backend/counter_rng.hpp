#pragma once
// Counter-based random numbers: value i of a stream is a pure function of (seed, offset + i). Any backend
// computes the same numbers in any order on any number of threads, and dropout can regenerate its mask in
// backward instead of storing it.
#include <cmath>
#include <cstdint>

namespace hyperadapt::detail {

#if defined(__CUDACC__)
#define HYPERADAPT_HOST_DEVICE __host__ __device__
#else
#define HYPERADAPT_HOST_DEVICE
#endif

HYPERADAPT_HOST_DEVICE inline std::uint64_t mix64(std::uint64_t z) {
    // splitmix64's finaliser: a bijection with full avalanche.
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

HYPERADAPT_HOST_DEVICE inline std::uint64_t counter_hash(std::uint64_t seed, std::uint64_t counter) {
    return mix64(mix64(seed + 0x9e3779b97f4a7c15ULL) ^ (counter * 0xd1b54a32d192ed03ULL));
}

/// Uniform in [0, 1) with 24 random bits: exactly representable in float and double alike.
HYPERADAPT_HOST_DEVICE inline float uniform01(std::uint64_t seed, std::uint64_t counter) {
    return static_cast<float>(counter_hash(seed, counter) >> 40) * (1.0f / 16777216.0f);
}

/// Standard normal by Box-Muller on two 32-bit halves of one hash.
HYPERADAPT_HOST_DEVICE inline double standard_normal(std::uint64_t seed, std::uint64_t counter) {
    const std::uint64_t h = counter_hash(seed, counter);
    const double u1 = (static_cast<double>(h >> 32) + 1.0) * (1.0 / 4294967297.0);
    const double u2 = static_cast<double>(h & 0xffffffffULL) * (1.0 / 4294967296.0);
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

}  // namespace hyperadapt::detail
