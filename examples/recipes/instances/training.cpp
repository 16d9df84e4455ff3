// What the recipes do with their models (recipe_models.hpp): the training loop, evaluation, model
// directories, compiled here once, unoptimised (the arithmetic they call is in models.cpp), for the three models
// together -- one model costs about as much as three, since most of it (the loop, checkpoints, JSON) does
// not depend on the model.
#include "../recipe_models.hpp"

// Construction, backbone loading and freezing of the models (run once per model; the rest of them is in
// models.cpp, optimised).
HYPERADAPT_INSTANTIATE_MULTITASK_MODEL_SETUP(::hyperadapt::camtl_recipe<::hyperadapt::examples::policy, float>);
HYPERADAPT_INSTANTIATE_MULTITASK_MODEL_SETUP(::hyperadapt::multitask_bert_recipe<::hyperadapt::examples::policy, float>);
HYPERADAPT_INSTANTIATE_MULTITASK_MODEL_SETUP(::hyperadapt::pha_recipe<::hyperadapt::examples::policy, float>);

namespace hyperadapt {
HYPERADAPT_RECIPE_MODEL_FUNCTIONS(, examples::camtl_recipe_model);
HYPERADAPT_RECIPE_MODEL_FUNCTIONS(, examples::mtl_recipe_model);
HYPERADAPT_RECIPE_MODEL_FUNCTIONS(, examples::pha_recipe_model);
}  // namespace hyperadapt
