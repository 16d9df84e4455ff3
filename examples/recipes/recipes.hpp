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

/// Called first in main(argv) of a program that takes OpenBLAS's GEMMs: where OpenBLAS chose generic kernels on
/// a CPU with AVX-512 or AVX2 (OpenBLAS 0.3.21 does not recognise AMD Zen 5 or CPUs that hide their model, and
/// its SSE3 fallback runs 2-5x slower: `hyperadapt predict` over 200 SST-2 sentences took 8.6 s instead of 1.9 s) and
/// OPENBLAS_CORETYPE is unset, the program starts itself again, same arguments and process, with the variable
/// naming the fitting kernels. OpenBLAS reads it only when it is loaded, before main. A variable the user set is
/// left alone (make_backend warns when it names generic kernels); returns without a word where there is
/// nothing to do or the restart fails (recipes/openblas_kernels.cpp).
void restart_with_fitting_openblas_kernels(char** argv) noexcept;

}  // namespace hyperadapt::examples
