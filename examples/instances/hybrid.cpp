// What 04_compose_custom_model runs every step (cpu, float), compiled here, optimised, in parallel with the
// example's main file (which declares these extern and compiles the rest at -O1): the model's
// initialisation, forward and backward, AdamW, and the gradients' zeroing and clipping.
#include "../04_compose_custom_model.hpp"
#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/nn/parameters.hpp"
#include "hyperadapt/optim/adamw.hpp"
#include "hyperadapt/optim/clip.hpp"

HYPERADAPT_INSTANTIATE_MULTITASK_MODEL_COMPUTE(hybrid::recipe<hyperadapt::cpu, float>);
template class hyperadapt::adamw<hyperadapt::cpu, float>;
template void hyperadapt::zero_grad(hybrid::model<hyperadapt::cpu>&);
template double hyperadapt::clip_grad_norm(hybrid::model<hyperadapt::cpu>&, double, bool);
