// Whole models on the GPU against the CPU: for each multi-task model (PHA single and two passes, per-task
// adapters, HyperFormer++, mean-pooled heads, CA-MTL), one double-precision training step must give the CPU's
// loss and every gradient up to summation order, and a float training run must follow the CPU's loss curve.
// Without a CUDA device every case is skipped and the test passes (as test_cuda_backend).
#define BOOST_TEST_MODULE cuda_models
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <sstream>
#include <string>

#include "hyperadapt/backend/cuda.hpp"
#include "models/model_parity.hpp"
#include "support/cuda_device.hpp"
#include "support/max_keeping_nan.hpp"

using namespace hyperadapt;
using namespace hyperadapt::parity;
namespace utf = boost::unit_test;

namespace {

double largest_magnitude(const std::vector<double>& v) {
    double m = 0;
    for (const double x : v) m = std::max(m, std::abs(x));
    return m;
}

/// Largest |gpu - cpu| over the tensor, relative to the tensor's largest magnitude, or to `floor` when that
/// is larger: some gradients are zero in exact arithmetic (a key bias under softmax) and both sides hold
/// only rounding noise there.
double relative_difference(const std::vector<double>& gpu, const std::vector<double>& cpu, double floor) {
    double diff = 0;
    for (std::size_t i = 0; i < cpu.size(); ++i) diff = hyperadapt::test::max_keeping_nan(diff, std::abs(gpu[i] - cpu[i]));
    const double scale = std::max(largest_magnitude(cpu), floor);
    return scale > 0 ? diff / scale : diff;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cuda, *utf::precondition(&test::cuda_device_present))

BOOST_AUTO_TEST_CASE(double_step_matches_cpu_for_every_model) {
    for (const auto k : all_models) {
        BOOST_TEST_CONTEXT(name_of(k)) {
            const auto values = cpu_initial_values(k);
            const auto want = cpu_double_step(k, values);
            cuda_backend b;
            const auto got = double_step(b, k, values);
            BOOST_TEST(std::abs(got.loss - want.loss) <= 1e-12 * std::max(1.0, std::abs(want.loss)),
                       "loss: GPU " << got.loss << ", CPU " << want.loss);
            BOOST_TEST_REQUIRE(got.gradients.size() == want.gradients.size());
            double largest = 0;
            for (const auto& g : want.gradients) largest = std::max(largest, largest_magnitude(g.second));
            double worst = 0;
            std::string worst_name;
            std::size_t nonzero = 0;
            for (std::size_t i = 0; i < want.gradients.size(); ++i) {
                BOOST_TEST_REQUIRE(got.gradients[i].first == want.gradients[i].first);
                const double d =
                    relative_difference(got.gradients[i].second, want.gradients[i].second, 1e-4 * largest);
                if (d > worst) worst = d, worst_name = want.gradients[i].first;
                nonzero += largest_magnitude(want.gradients[i].second) > 1e-8 * largest;
            }
            std::cout << name_of(k) << ": loss " << want.loss << ", " << want.gradients.size() << " gradients ("
                      << nonzero << " non-zero), worst relative difference " << worst << " (" << worst_name << ")"
                      << std::endl;
            BOOST_TEST(worst <= 1e-10, "worst gradient " << worst_name << ": relative difference " << worst);
            BOOST_TEST(nonzero * 10 >= want.gradients.size() * 8, "most gradients are non-zero");
        }
    }
}

BOOST_AUTO_TEST_CASE(float_training_follows_the_cpu_loss_curve) {
    constexpr std::size_t steps = 40;
    for (const auto k : all_models) {
        BOOST_TEST_CONTEXT(name_of(k)) {
            const auto values = cpu_initial_values(k);
            const auto want = cpu_float_training(k, values, steps);
            cuda_backend b;
            const auto got = float_training(b, k, values, steps);
            BOOST_TEST_REQUIRE(got.size() == steps);
            double worst = 0;
            std::ostringstream curve;
            for (std::size_t s = 0; s < steps; ++s) {
                worst = hyperadapt::test::max_keeping_nan(worst, std::abs(got[s] - want[s]) / std::max(1.0, std::abs(want[s])));
                if (s % 8 == 0 || s + 1 == steps) curve << " " << s << ":" << got[s] << "/" << want[s];
            }
            std::cout << name_of(k) << ": GPU/CPU loss" << curve.str() << "; worst relative difference " << worst
                      << std::endl;
            BOOST_TEST(worst <= 1e-3, "loss curves part by " << worst);
            // The curve is a learning curve, not noise: the last 8 steps average below the first 8.
            double first = 0, last = 0;
            for (std::size_t s = 0; s < 8; ++s) first += got[s], last += got[steps - 1 - s];
            BOOST_TEST(last < 0.8 * first, "GPU loss: first 8 steps " << first / 8 << ", last 8 " << last / 8);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
