// The CPU side of test_cuda_models: the same runs as the GPU side (model_parity.hpp) on the Eigen backend.
#include "hyperadapt/backend/cpu.hpp"
#include "models/model_parity.hpp"

namespace hyperadapt::parity {

named_values cpu_initial_values(model_kind k) {
    cpu b;
    return initial_values(b, k);
}

step_result cpu_double_step(model_kind k, const named_values& values) {
    cpu b;
    return double_step(b, k, values);
}

std::vector<double> cpu_float_training(model_kind k, const named_values& values, std::size_t steps) {
    cpu b;
    return float_training(b, k, values, steps);
}

}  // namespace hyperadapt::parity
