// A model directory saved on the CPU, loaded by predictor<cuda_backend>: the GPU's answers (probabilities,
// regression values) must equal the CPU predictor's up to float rounding, for a CA-MTL and a PHA model.
// Without a CUDA device every case is skipped and the test passes (as test_cuda_backend).
#define BOOST_TEST_MODULE cuda_predictor
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <memory>

#include "hyperadapt/backend/cuda.hpp"
#include "hyperadapt/serve/predictor.hpp"
#include "serve/predictor_cpu_reference.hpp"
#include "support/cuda_device.hpp"
#include "support/temp_dir.hpp"

using namespace hyperadapt;
namespace utf = boost::unit_test;

BOOST_AUTO_TEST_SUITE(cuda, *utf::precondition(&test::cuda_device_present))

BOOST_AUTO_TEST_CASE(a_cpu_saved_model_predicts_the_same_on_the_gpu) {
    test::temp_dir tmp;
    for (const auto& want : test::save_models_and_predict_on_cpu(tmp.path())) {
        BOOST_TEST_CONTEXT(want.kind) {
            const auto p = predictor<cuda_backend>::load(want.dir, std::make_unique<cuda_backend>());
            std::vector<text_input> x;
            for (const auto& s : test::reference_sentences()) x.push_back({s});
            std::size_t k = 0;
            for (const char* task : {"majority", "count"})
                for (const auto& y : p.predict(task, x)) {
                    const auto got = y.label >= 0 ? y.probabilities : std::vector<double>{y.value};
                    BOOST_TEST_REQUIRE(got.size() == want.answers.at(k).size());
                    for (std::size_t i = 0; i < got.size(); ++i)
                        BOOST_TEST(std::abs(got[i] - want.answers[k][i]) <= 1e-4 * std::max(1.0, std::abs(want.answers[k][i])),
                                   task << " answer " << k << "[" << i << "]: GPU " << got[i] << ", CPU " << want.answers[k][i]);
                    ++k;
                }
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
