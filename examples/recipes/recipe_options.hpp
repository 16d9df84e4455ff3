#pragma once
// The two recipes' command lines: what each run takes (its args) and the parser that fills them. The parsers
// (CLI11 and the examples' validators, example_options.hpp) compile in their own translation units,
// recipes/*_options.cpp: CLI11 costs a fifth of a recipe's compile time, and on its own it compiles beside
// the rest instead of after it (docs/benchmarks.md, "Compile time of the examples").
#include <cstddef>
#include <string>
#include <variant>

#include "../example_args.hpp"

namespace hyperadapt::examples {

/// 02_camtl_glue and `hyperadapt train camtl` (recipes/camtl_glue.cpp).
struct camtl_glue_args : common_args {
    std::string model = "camtl";
    bool alignment = true, cbda = true, cln = true, adapter = true, freeze_cbda_projection = false,
         load_top_layer = false, partial_backbone = false;
    bool scale_targets = false;  // regression heads learn target / max |target| (--scale-regression)
};

/// 03_pha_fewshot, `hyperadapt train pha` and `hyperadapt transfer` (recipes/pha_fewshot.cpp).
struct pha_fewshot_args : common_args {
    std::string mode, model, passes = "single";
    std::string target = "cb", source, source_model, save, tune = "all";
    std::size_t k = 16;
    bool frozen_pooler = false, contrastive = true, contrastive_encoder = true, partial_backbone = false;
    std::size_t bottleneck = 64;  // r of every adapter (PHA's 64); a parameter-matched baseline changes it
    bool scale_targets = true;  // regression heads learn target / max |target| (off: --raw-regression-targets)
};

/// Parse a recipe's command line; each returns the exit code instead when the run should end here (0 after
/// --help, 2 after a bad option, its message printed naming the option).
std::variant<camtl_glue_args, int> parse_camtl_glue_options(int argc, char** argv, const std::string& program);
std::variant<pha_fewshot_args, int> parse_pha_fewshot_options(int argc, char** argv, const std::string& program);

}  // namespace hyperadapt::examples
