#pragma once
// The models the recipes train, and what trains, measures and saves them, declared `extern` here and
// compiled once, optimised, in recipes/instances/ (models.cpp and training.cpp, built in parallel). The
// recipes' own code -- options, data, reports, which runs once per run -- then compiles without instantiating
// a model, a training loop or an evaluation (docs/benchmarks.md, "Compile time of the examples").
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "hyperadapt/models/camtl.hpp"
#include "hyperadapt/models/multitask_bert.hpp"
#include "hyperadapt/models/pha_bert.hpp"
#include "hyperadapt/nn/flat_parameters.hpp"
#include "hyperadapt/nn/parameters.hpp"
#include "hyperadapt/optim/adamw.hpp"
#include "hyperadapt/optim/clip.hpp"
#include "../example_cpu_backend.hpp"

namespace hyperadapt::examples {
using camtl_recipe_model = camtl_model<policy, float>;
using mtl_recipe_model = multitask_bert<policy, float>;
using pha_recipe_model = pha_bert<policy, float>;
}  // namespace hyperadapt::examples

/// What a recipe does with a model of type `Model` (PREFIX: `extern` to declare, empty to compile; used inside
/// namespace hyperadapt): training with a named sampler, training and measuring on a validation split or dev,
/// writing a model directory, and building one from a model directory.
#define HYPERADAPT_RECIPE_MODEL_FUNCTIONS(PREFIX, Model)                                                           \
    PREFIX template training_result examples::train_with_sampler<Model, examples::policy>(                       \
        Model&, examples::policy&, const std::string&, std::size_t, std::uint64_t,                               \
        const std::vector<encoded_task>&, const std::vector<encoded_task>&, const trainer_options&,              \
        communicator_ref);                                                                                       \
    PREFIX template examples::measured_run examples::train_and_measure<Model, examples::policy>(                 \
        Model&, examples::policy&, const examples::common_args&, std::size_t, const std::vector<encoded_task>&, \
        const std::vector<encoded_task>&, const std::vector<encoded_task>&, const trainer_options&);             \
    PREFIX template void examples::save_model_directory<Model>(Model&, const std::filesystem::path&,             \
                                                                const examples::common_args&,                    \
                                                                const std::vector<const encoded_task*>&,         \
                                                                const std::string&);                             \
    PREFIX template Model load_pretrained<Model>(examples::policy&, const std::filesystem::path&, model_card*,  \
                                                 const model_load_options&)

/// The arithmetic of a training step outside the model (PREFIX as above): zeroing the gradients, their norm
/// and its clipping. With AdamW's class these are compiled optimised with the models (models.cpp), so that
/// training.cpp -- the loop around them, which runs once per step, and evaluation, checkpoints and model
/// directories -- compiles unoptimised (its weak copies of the inline functions it shares with models.cpp lose
/// to models.cpp's, which the programs link first; docs/benchmarks.md, "Compile time of the examples").
#define HYPERADAPT_RECIPE_STEP_FUNCTIONS(PREFIX, Model)                            \
    PREFIX template void zero_grad<Model>(Model&);                                 \
    PREFIX template double gradient_norm<Model>(Model&);                           \
    PREFIX template double clip_grad_norm<Model>(Model&, double, bool)

HYPERADAPT_EXTERN_MULTITASK_MODEL(::hyperadapt::camtl_recipe<::hyperadapt::examples::policy, float>);
HYPERADAPT_EXTERN_MULTITASK_MODEL(::hyperadapt::multitask_bert_recipe<::hyperadapt::examples::policy, float>);
HYPERADAPT_EXTERN_MULTITASK_MODEL(::hyperadapt::pha_recipe<::hyperadapt::examples::policy, float>);
extern template class ::hyperadapt::pha_bert<::hyperadapt::examples::policy, float>;
extern template class ::hyperadapt::adamw<::hyperadapt::examples::policy, float>;
// The trainer's flat gradient buffer: zeroing, the gradient norm and its clipping run on it every step. Without
// this, training.cpp (-O0) compiled them, and the norm over the 8.8 M gradients of a MiniLM CA-MTL model took
// about a third of a training step (docs/benchmarks.md, session 31).
extern template class ::hyperadapt::flat_parameters<::hyperadapt::examples::policy, float>;

namespace hyperadapt {
HYPERADAPT_RECIPE_MODEL_FUNCTIONS(extern, examples::camtl_recipe_model);
HYPERADAPT_RECIPE_MODEL_FUNCTIONS(extern, examples::mtl_recipe_model);
HYPERADAPT_RECIPE_MODEL_FUNCTIONS(extern, examples::pha_recipe_model);
HYPERADAPT_RECIPE_STEP_FUNCTIONS(extern, examples::camtl_recipe_model);
HYPERADAPT_RECIPE_STEP_FUNCTIONS(extern, examples::mtl_recipe_model);
HYPERADAPT_RECIPE_STEP_FUNCTIONS(extern, examples::pha_recipe_model);
}  // namespace hyperadapt
