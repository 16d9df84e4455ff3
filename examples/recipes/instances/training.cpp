// What the recipes do with their models (recipe_models.hpp): the training loop, evaluation, model
// directories, compiled here once, unoptimised (the arithmetic they call is in models.cpp), for the three models
// together -- one model costs about as much as three, since most of it (the loop, checkpoints, JSON) does
// not depend on the model.
#include "../recipe_models.hpp"

namespace hyperadapt {
HYPERADAPT_RECIPE_MODEL_FUNCTIONS(, examples::camtl_recipe_model);
HYPERADAPT_RECIPE_MODEL_FUNCTIONS(, examples::mtl_recipe_model);
HYPERADAPT_RECIPE_MODEL_FUNCTIONS(, examples::pha_recipe_model);
}  // namespace hyperadapt
