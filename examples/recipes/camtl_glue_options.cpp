// The CA-MTL recipe's options (recipe_options.hpp): CLI11, compiled apart from the recipe.
#include <string>
#include <variant>

#include "../example_options.hpp"
#include "recipe_options.hpp"

namespace hyperadapt::examples {

std::variant<camtl_glue_args, int> parse_camtl_glue_options(int argc, char** argv, const std::string& program) {
    camtl_glue_args a;
    a.program = program;
    a.sampler = "mtu";
    CLI::App app("CA-MTL trained on many tasks at once; with no arguments, a built-in synthetic default", program);
    add_common_options(app, a);
    app.add_option("--model", a.model, "camtl, mtl (multi-task full fine-tuning) or single (one model per task)")
        ->check(CLI::IsMember({"camtl", "mtl", "single"}))
        ->capture_default_str();
    app.add_flag("!--no-alignment", a.alignment, "CA-MTL without conditional alignment");
    app.add_flag("!--no-cbda", a.cbda, "CA-MTL without the conditional block-diagonal attention bias");
    app.add_flag("!--no-cln", a.cln, "CA-MTL without conditional layer norms");
    app.add_flag("!--no-adapter", a.adapter, "CA-MTL without the conditional adapter");
    app.add_flag("--freeze-cbda-projection", a.freeze_cbda_projection, "the reference's frozen CBDA projection in frozen layers");
    app.add_flag("--load-top-layer", a.load_top_layer, "load the checkpoint's top layer too (the reference trains it from scratch)");
    app.add_flag("--allow-partial-backbone", a.partial_backbone,
                 "load the backbone tensors that fit and keep the rest as initialised (default: a backbone tensor "
                 "missing or of another shape is an error)");
    app.add_flag("--scale-regression", a.scale_targets, "regression heads learn target / max |target|");
    const int rc = parse_command_line(app, argc, argv, [&] {
        if (a.checkpoint.empty() != a.data.empty())
            throw CLI::ValidationError(a.data.empty() ? "--data" : "--checkpoint", "--checkpoint and --data go together");
        if (a.checkpoint.empty() && (a.tasks_given || a.train_per_task || a.dev_per_task || a.seq_len))
            throw CLI::ValidationError("--tasks/--seq-len/--train-per-task/--dev-per-task",
                                       "belong to a run with --checkpoint and --data (the built-in default has its own)");
        if (a.partial_backbone && a.checkpoint.empty())
            throw CLI::ValidationError("--allow-partial-backbone", "needs --checkpoint");
        check_common_options(a);
    });
    if (rc >= 0) return rc;
    return a;
}

}  // namespace hyperadapt::examples
