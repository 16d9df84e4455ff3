#pragma once
// Worst-error accumulation for the tests: std::max(acc, v) returns acc when v is NaN, so a NaN output would
// compare as "no error" and pass. max_keeping_nan makes the first NaN stick, so the bound check fails.
#include <cmath>

namespace hyperadapt::test {

[[nodiscard]] inline double max_keeping_nan(double acc, double v) noexcept {
    if (std::isnan(acc)) return acc;
    return (std::isnan(v) || v > acc) ? v : acc;
}

}  // namespace hyperadapt::test
