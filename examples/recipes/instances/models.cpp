// The recipes' models (recipe_models.hpp): initialisation, forward and backward of CA-MTL, multi-task BERT
// and PHA, and the step's arithmetic outside them (AdamW, gradient norm and clipping, zeroing; the trainer's
// flat gradient buffer), compiled here once, optimised, in parallel with training.cpp (which compiles their
// construction, loading and freezing).
#include "../recipe_models.hpp"

HYPERADAPT_INSTANTIATE_MULTITASK_MODEL_COMPUTE(::hyperadapt::camtl_recipe<::hyperadapt::examples::policy, float>);
HYPERADAPT_INSTANTIATE_MULTITASK_MODEL_COMPUTE(::hyperadapt::multitask_bert_recipe<::hyperadapt::examples::policy, float>);
HYPERADAPT_INSTANTIATE_MULTITASK_MODEL_COMPUTE(::hyperadapt::pha_recipe<::hyperadapt::examples::policy, float>);
template class ::hyperadapt::pha_bert<::hyperadapt::examples::policy, float>;
template class ::hyperadapt::adamw<::hyperadapt::examples::policy, float>;
template class ::hyperadapt::flat_parameters<::hyperadapt::examples::policy, float>;

namespace hyperadapt {
HYPERADAPT_RECIPE_STEP_FUNCTIONS(, examples::camtl_recipe_model);
HYPERADAPT_RECIPE_STEP_FUNCTIONS(, examples::mtl_recipe_model);
HYPERADAPT_RECIPE_STEP_FUNCTIONS(, examples::pha_recipe_model);
}  // namespace hyperadapt
