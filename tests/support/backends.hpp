#pragma once
// The backends every CPU test runs on, and small helpers shared by the tests.
#include <boost/mpl/list.hpp>
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "hyperadapt/backend/cpu.hpp"
#if __has_include(<cblas.h>) && defined(HYPERADAPT_TEST_WITH_CBLAS)
#include "hyperadapt/backend/cpu_cblas.hpp"
#endif
#include "hyperadapt/tensor/tensor.hpp"
#include "max_keeping_nan.hpp"
#include "shared_data.hpp"

namespace hyperadapt::test {

/// Every CPU GEMM provider: for end-to-end model tests (a whole BERT forward and backward on each provider).
#if __has_include(<cblas.h>) && defined(HYPERADAPT_TEST_WITH_CBLAS)
using cpu_backends = boost::mpl::list<hyperadapt::cpu, hyperadapt::cpu_blas>;
#else
using cpu_backends = boost::mpl::list<hyperadapt::cpu>;
#endif

/// The backend the layer, loss and io tests run on: the library's default CPU backend. Layers reach a GEMM
/// provider only through the backend's gemm / gemm_strided_batched / gemm_batched_grid, which
/// backend/test_gemm_providers.cpp checks on every provider against a long-double reference (every transpose,
/// padded leading dimensions, beta 0 over NaN, split products on two threads); running every layer test once
/// per provider as well doubled those tests' compile time (two backend types, every layer instantiated twice)
/// for no new coverage.
using layer_backends = boost::mpl::list<hyperadapt::cpu>;

/// A tensor of uniform values in [lo, hi), deterministic in seed.
template <class B, class T>
tensor<B, T> random_tensor(B& b, shape s, std::uint64_t seed, T lo = T(-1), T hi = T(1)) {
    tensor<B, T> t(b, s);
    b.fill_uniform(t.size(), seed, 0, lo, hi, t.data());
    return t;
}

/// NaN when any difference is NaN (std::max would drop it, and a NaN output would pass a tolerance check).
inline double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
    double m = 0;
    for (std::size_t i = 0; i < a.size(); ++i) m = max_keeping_nan(m, std::abs(a[i] - b[i]));
    return m;
}

/// The same values in double; float -> double is exact, so both precisions see identical inputs.
template <class B>
tensor<B, double> to_double(const tensor<B, float>& x) {
    const auto h = x.to_host();
    std::vector<double> d(h.size());
    for (std::size_t i = 0; i < h.size(); ++i) d[i] = static_cast<double>(h[i]);
    return tensor<B, double>::from_host(x.backend(), x.shape(), d);
}

/// Copies the double layer's parameters into the float layer, in visiting order.
template <class From, class To>
void copy_parameters(From& from, To& to) {
    std::vector<std::vector<double>> values;
    from.visit_parameters([&](const std::string&, auto& p) { values.push_back(p.value.to_host()); });
    std::size_t next = 0;
    to.visit_parameters([&](const std::string&, auto& p) {
        const auto& v = values.at(next++);
        std::vector<float> f(v.size());
        for (std::size_t i = 0; i < v.size(); ++i) f[i] = static_cast<float>(v[i]);
        p.value.backend().copy_from_host(f.data(), p.value.data(), f.size());
    });
    BOOST_TEST(next == values.size());
}

}  // namespace hyperadapt::test
