// The model of 04_compose_custom_model (cpu, float), compiled here, in parallel with the example's main file
// (which declares it with HYPERADAPT_EXTERN_MULTITASK_MODEL).
#include "../04_compose_custom_model.hpp"
#include "hyperadapt/backend/cpu.hpp"

HYPERADAPT_INSTANTIATE_MULTITASK_MODEL(hybrid::recipe<hyperadapt::cpu, float>);
