#pragma once
// The two training recipes, each compiled once (the libraries hyperadapt_recipe_*) and run by the numbered
// examples (02_camtl_glue, 03_pha_fewshot) and by the tool (`hyperadapt train camtl|pha`, `hyperadapt transfer`).
// Each takes a command line (options, or `--config FILE` with the same options in TOML) and returns the
// process's exit code: 0 done, 1 a run-time error (one line naming the program and the culprit), 2 a bad option.
// `program` is the name the run gives itself in its messages, its --help and its records.
#include <string>

namespace hyperadapt::examples {

/// CA-MTL, multi-task full fine-tuning or single-task models on GLUE (recipes/camtl_glue.cpp); with no options
/// a built-in synthetic default.
int camtl_glue_main(int argc, char** argv, const std::string& program);

/// PHA, per-task adapters, HyperFormer++ or CA-MTL in low-data multi-task training (--mode multitask), few-shot
/// transfer to a new task (--mode transfer), or the built-in synthetic default (recipes/pha_fewshot.cpp).
int pha_fewshot_main(int argc, char** argv, const std::string& program);

}  // namespace hyperadapt::examples
