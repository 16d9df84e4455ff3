// The recipes' models (recipe_models.hpp): construction, initialisation, forward and backward of CA-MTL,
// multi-task BERT and PHA, compiled here once, optimised, in parallel with training.cpp.
#include "../recipe_models.hpp"

HYPERADAPT_INSTANTIATE_MULTITASK_MODEL(::hyperadapt::camtl_recipe<::hyperadapt::examples::policy, float>);
HYPERADAPT_INSTANTIATE_MULTITASK_MODEL(::hyperadapt::multitask_bert_recipe<::hyperadapt::examples::policy, float>);
HYPERADAPT_INSTANTIATE_MULTITASK_MODEL(::hyperadapt::pha_recipe<::hyperadapt::examples::policy, float>);
template class ::hyperadapt::pha_bert<::hyperadapt::examples::policy, float>;
