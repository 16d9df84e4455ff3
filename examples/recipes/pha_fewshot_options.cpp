// The PHA recipe's options (recipe_options.hpp): CLI11, compiled apart from the recipe.
#include <string>
#include <variant>

#include "../example_options.hpp"
#include "recipe_options.hpp"

namespace hyperadapt::examples {

std::variant<pha_fewshot_args, int> parse_pha_fewshot_options(int argc, char** argv, const std::string& program) {
    pha_fewshot_args a;
    a.program = program;
    a.head_input = "mean";  // what the heads read: mean (masked mean of the last layer) or pooler
    CLI::App app("PHA in low-data multi-task training (--mode multitask) and few-shot transfer (--mode transfer); "
                 "with no arguments, a built-in synthetic default",
                 program);
    add_common_options(app, a);
    app.add_option("--mode", a.mode, "multitask or transfer (none: the built-in default)")->check(CLI::IsMember({"multitask", "transfer"}));
    app.add_option("--model", a.model, "multitask: pha, adapters, hyperformerpp or camtl; transfer: pha, adapter or full")
        ->check(CLI::IsMember({"pha", "adapters", "adapter", "hyperformerpp", "camtl", "full"}));
    app.add_option("--passes", a.passes, "PHA's forward passes")->check(CLI::IsMember({"single", "two"}))->capture_default_str();
    app.add_option("--target", a.target, "transfer: the new task")->check(task_list)->capture_default_str();
    app.add_option("--source", a.source, "transfer --model pha: the model a multitask --save wrote")->check(regular_file);
    app.add_option("--source-model", a.source_model,
                   "transfer: the PHA model directory a multitask run wrote (--save-model DIR): the source model, its "
                   "tasks, and the backbone and vocabulary every arm starts from (no --checkpoint needed)")
        ->check(readable_directory);
    app.add_option("--tune", a.tune, "transfer --model pha: all (every transferred part the freezing rule leaves "
                                     "trainable) or prototype-head (only the new task's prototype and head)")
        ->check(CLI::IsMember({"all", "prototype-head"}))
        ->capture_default_str();
    app.add_option("--save", a.save, "multitask (pha_bert models): save the trained model to FILE (+ FILE.json)")
        ->check(appendable_file);
    app.add_option("--k", a.k, "transfer: training examples of the target")->check(CLI::Range(std::size_t{1}, max_rows))->capture_default_str();
    app.add_option("--bottleneck", a.bottleneck, "adapter bottleneck r (pha, adapters); with --model adapters, the "
                                                 "width that matches another model's trainable parameters")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 16))
        ->capture_default_str();
    app.add_flag("--frozen-pooler", a.frozen_pooler, "keep the pooler frozen (the reference's rule)");
    app.add_flag("--allow-partial-backbone", a.partial_backbone,
                 "pha_bert models: train even when backbone tensors are missing from the checkpoint or of another "
                 "shape (default: an error naming them)");
    app.add_flag("!--no-contrastive", a.contrastive, "no instance or prototype contrastive loss");
    app.add_flag("!--contrastive-retriever-only", a.contrastive_encoder, "the contrastive losses train the retriever only");
    app.add_flag("!--raw-regression-targets", a.scale_targets, "regression heads learn the raw targets");
    const int rc = parse_command_line(app, argc, argv, [&] {
        using CLI::ValidationError;
        if (a.mode.empty()) {
            if (!a.checkpoint.empty() || !a.data.empty()) throw ValidationError("--mode", "--checkpoint/--data need --mode multitask|transfer");
            if (!a.source.empty() || !a.save.empty() || !a.source_model.empty())
                throw ValidationError(!a.source_model.empty() ? "--source-model" : a.source.empty() ? "--save" : "--source",
                                      "the built-in default takes no --source, --source-model or --save");
            a.mode = "demo";
        } else {
            if (!a.source_model.empty() && a.mode != "transfer") throw ValidationError("--source-model", "belongs to --mode transfer");
            if (!a.source_model.empty() && !a.source.empty())
                throw ValidationError("--source", "give the source as --source FILE or as --source-model DIR, not both");
            // A model directory holds its backbone and vocabulary: the arms start from those.
            if (!a.source_model.empty() && a.checkpoint.empty()) a.checkpoint = a.source_model;
            if (a.checkpoint.empty() || a.data.empty())
                throw ValidationError(a.checkpoint.empty() ? "--checkpoint" : "--data",
                                      "--mode " + a.mode + " needs --checkpoint DIR and --data DIR");
        }
        if (a.tune != "all" && a.mode != "transfer") throw ValidationError("--tune", "belongs to --mode transfer --model pha");
        if (!a.save_model.empty() && a.mode == "demo")
            throw ValidationError("--save-model", "belongs to --mode multitask|transfer (the built-in default saves nothing)");
        if (a.mode == "demo") {
            if (a.model.size() || a.tasks_given || a.seq_len || a.train_per_task || a.dev_per_task || a.resume || a.checkpoint_every)
                throw ValidationError("--model/--tasks/--seq-len/--train-per-task/--dev-per-task/--resume/--checkpoint-every",
                                      "belong to --mode multitask|transfer (the built-in default has its own)");
        } else if (a.mode == "multitask") {
            if (a.model.empty()) a.model = "pha";
            if (a.model != "pha" && a.model != "adapters" && a.model != "hyperformerpp" && a.model != "camtl")
                throw ValidationError("--model", "--mode multitask takes pha, adapters, hyperformerpp or camtl, got '" + a.model + "'");
            if (a.sampler.empty()) a.sampler = a.model == "camtl" ? "mtu" : "proportional";
            if (!a.source.empty()) throw ValidationError("--source", "belongs to --mode transfer");
            if (!a.save.empty() && a.model == "camtl")
                throw ValidationError("--save", "is for the pha_bert models (pha, adapters, hyperformerpp)");
            if (!a.save.empty()) {
                std::string json = a.save + ".json";
                if (const auto why = appendable_file(json); !why.empty()) throw ValidationError("--save", why);
            }
        } else {
            if (a.model.empty()) a.model = "pha";
            if (a.model == "adapters") a.model = "adapter";
            if (a.model != "pha" && a.model != "adapter" && a.model != "full")
                throw ValidationError("--model", "--mode transfer takes pha, adapter or full, got '" + a.model + "'");
            if (a.tune != "all" && a.model != "pha") throw ValidationError("--tune", "belongs to --mode transfer --model pha");
            if (a.model == "pha" && a.source.empty() && a.source_model.empty())
                throw ValidationError("--source-model", "--mode transfer --model pha needs the source: --source-model DIR (from "
                                      "--mode multitask --model pha --save-model DIR) or --source FILE (from --save FILE)");
            if (!a.save.empty()) throw ValidationError("--save", "belongs to --mode multitask");
            if (a.sampler.empty()) a.sampler = "proportional";
            if (split_list(a.target).size() != 1) throw ValidationError("--target", "takes one task, got '" + a.target + "'");
        }
        if (a.mode == "demo" && a.validation_per_task > 0)
            throw ValidationError("--validation-per-task", "belongs to --mode multitask|transfer (the built-in default "
                                                           "evaluates on its dev set during training)");
        check_common_options(a);
    });
    if (rc >= 0) return rc;
    return a;
}

}  // namespace hyperadapt::examples
