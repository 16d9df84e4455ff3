// 03_pha_fewshot: PHA (prototype-based HyperAdapter) in low-data multi-task training and few-shot transfer.
//
// With no arguments it runs a built-in default that needs no download (about 15 s on one core):
//   1. a tiny encoder (hidden 64, 2 layers, vocab 40, L 16) is pretrained by full fine-tuning on the synthetic
//      majority task (train/synthetic_tasks.hpp). A random 0.02-init encoder gives [CLS] features that hardly
//      depend on the input, which no adapter on a frozen encoder can repair, so the demo first makes a
//      "pretrained checkpoint" of its own;
//   2. PHA (scaled down to the tiny encoder) is trained multi-task on the source tasks majority and count
//      (fresh data), backbone frozen;
//   3. a new task, repeat ("does word 7 occur twice or more?" on count's inputs: related to a source task,
//      trained on by no model before), gets k = 32 training examples: the nearest source prototype is
//      retrieved, PHA transfers from it, and its dev score is compared with a fresh per-task adapter and with
//      full fine-tuning, all three from the same pretrained encoder with the same step budget.
//
// With a checkpoint and the data it runs the real recipes:
//   low-data multi-task training (one model on all tasks, size-proportional sampling; CA-MTL with MT-Uncertainty):
//     03_pha_fewshot --mode multitask --checkpoint .deps/models/all-MiniLM-L6-v2 --data ../shared/data
//         --tasks rte,mrpc,stsb,cola,sst2,wnli --train-per-task 100 --model pha|adapters|hyperformerpp|camtl
//         [--save source.safetensors]
//   few-shot transfer to a new task (SuperGLUE CB), from the PHA model a multitask run saved with --save:
//     03_pha_fewshot --mode transfer --checkpoint .deps/models/all-MiniLM-L6-v2 --data ../shared/data
//         --tasks rte,mrpc,stsb,cola,sst2,wnli --source source.safetensors --target cb --k 16 --model pha|adapter|full
// --json FILE appends one JSON line per run; --steps S fixes the number of optimizer steps (otherwise
// --epochs over the training examples). The options shared with 02_camtl_glue (examples/example_options.hpp:
// --out, --checkpoint-every, --resume, --skip-nonfinite, ...) mean the same there; --help lists all, and every
// bad value is refused before anything is read or trained, naming the option.
//
// The recipe itself is in recipes/pha_fewshot.cpp, compiled once and shared with `hyperadapt train pha` and
// `hyperadapt transfer`, which run the same options from a --config file.
#include "recipes/recipes.hpp"

int main(int argc, char** argv) {
    hyperadapt::examples::restart_with_fitting_openblas_kernels(argv);
    return hyperadapt::examples::pha_fewshot_main(argc, argv, "03_pha_fewshot");
}
