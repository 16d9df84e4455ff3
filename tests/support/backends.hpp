#pragma once
// The backends every CPU test runs on, and small helpers shared by the tests.
#include <boost/mpl/list.hpp>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "hyperadapt/backend/cpu.hpp"
#if __has_include(<cblas.h>) && defined(HYPERADAPT_TEST_WITH_CBLAS)
#include "hyperadapt/backend/cpu_cblas.hpp"
#endif
#include "hyperadapt/tensor/tensor.hpp"

namespace hyperadapt::test {

#if __has_include(<cblas.h>) && defined(HYPERADAPT_TEST_WITH_CBLAS)
using cpu_backends = boost::mpl::list<hyperadapt::cpu, hyperadapt::cpu_blas>;
#else
using cpu_backends = boost::mpl::list<hyperadapt::cpu>;
#endif

/// A tensor of uniform values in [lo, hi), deterministic in seed.
template <class B, class T>
tensor<B, T> random_tensor(B& b, shape s, std::uint64_t seed, T lo = T(-1), T hi = T(1)) {
    tensor<B, T> t(b, s);
    b.fill_uniform(t.size(), seed, 0, lo, hi, t.data());
    return t;
}

inline double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
    double m = 0;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
    return m;
}

/// The shared data folder: HYPERADAPT_SHARED_DATA if set, else the build's default.
inline std::string shared_data_dir() {
    if (const char* env = std::getenv("HYPERADAPT_SHARED_DATA")) return env;
    return HYPERADAPT_SHARED_DATA_DEFAULT;
}

}  // namespace hyperadapt::test
