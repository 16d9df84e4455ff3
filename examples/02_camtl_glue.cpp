// 02_camtl_glue: CA-MTL trained on many tasks at once.
//
// With no arguments it runs a built-in default that needs no download: three synthetic tasks (two
// classifications and a regression) and a small randomly initialised 2-layer encoder, trained for a couple of
// minutes with MT-Uncertainty sampling; it prints each task's dev score (best over evaluations, as CA-MTL
// reports, and final) and the fraction of candidate examples used for updates.
//
// With a checkpoint and the GLUE data it runs the real recipe:
//   02_camtl_glue --checkpoint .deps/models/all-MiniLM-L6-v2 --data ../shared/data
//       --tasks rte,mrpc,stsb,cola,sst2,wnli --model camtl --sampler mtu --epochs 3 --seq-len 64
// --model mtl is multi-task full fine-tuning, --model single fine-tunes one model per task; --no-alignment,
// --no-cbda, --no-cln and --no-adapter remove one conditional module each; --json FILE appends the result.
// --out DIR keeps metrics.jsonl and dev_curves.png; --checkpoint-every K adds checkpoints there and --resume
// continues from the newest valid one. A non-finite loss or gradient stops the run naming the step, the tasks
// and the parameter (--skip-nonfinite skips such steps). The backbone load is strict: a tensor missing from
// the checkpoint or of another shape is an error (--allow-partial-backbone loads what fits). --help lists all.
//
// The recipe itself is in recipes/camtl_glue.cpp, compiled once and shared with `hyperadapt train camtl`,
// which runs the same options from a --config file (docs/model_directory.md, "Training with the tool").
#include "recipes/recipes.hpp"

int main(int argc, char** argv) {
    hyperadapt::examples::restart_with_fitting_openblas_kernels(argv);
    return hyperadapt::examples::camtl_glue_main(argc, argv, "02_camtl_glue");
}
