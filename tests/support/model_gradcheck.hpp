#pragma once
// The whole-model gradient check that the model tests share. It checks the training loss of one batch against
// every visited trainable parameter, in double (testing::check_gradients). Every forward draws the same
// dropout masks, and each starts from a fresh context.
#include <cstdint>
#include <vector>

#include "hyperadapt/backend/counter_rng.hpp"
#include "hyperadapt/data/multitask_batch.hpp"
#include "hyperadapt/nn/mode.hpp"
#include "hyperadapt/testing/gradcheck.hpp"

namespace hyperadapt::testing {

template <class Model, class B>
gradcheck_result check_model_gradients(Model& m, B& b, const multitask_batch<B, double>& batch,
                                       const gradcheck_options& opts, std::uint64_t dropout_seed = 4) {
    typename Model::context ctx;
    return check_gradients<B>(
        b, {}, [&](auto&& f) { m.visit_parameters(f); },
        [&] {
            rng_stream dropout(dropout_seed);
            ctx = {};
            const double l = m.forward_loss(batch, ctx, run_mode::train(dropout));
            return tensor<B, double>::from_host(b, {1}, std::vector<double>{l});
        },
        [&](const tensor<B, double>& dy) {
            m.backward(ctx, dy.to_host()[0]);
            return std::vector<tensor<B, double>>{};
        },
        opts);
}

}  // namespace hyperadapt::testing
