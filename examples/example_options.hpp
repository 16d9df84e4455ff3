#pragma once
// The command-line options the multi-task recipes share (CLI11: typed values, ranges, name sets, paths
// checked before any training starts). Only the recipes' option code includes it: CLI11 costs seconds of
// compile time in every translation unit that sees it (docs/benchmarks.md, "Compile time").
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "example_args.hpp"
#include "hyperadapt/data/task.hpp"

namespace hyperadapt::examples {

// ---- option values ---------------------------------------------------------------------------------------

/// A comma list of registered task names, at least one, no empty item, no repeat (CLI11 validator).
inline const CLI::Validator task_list(
    [](std::string& s) -> std::string {
        if (split_list(s).empty()) return "needs at least one task name, got '" + s + "'";
        std::stringstream ss(s);
        std::vector<std::string> seen;
        for (std::string item; std::getline(ss, item, ',');) {
            if (item.empty()) return "has an empty task name in '" + s + "'";
            try {
                const auto canonical = data::find_task(item).name;
                if (std::find(seen.begin(), seen.end(), canonical) != seen.end())
                    return "names task '" + item + "' twice";
                seen.push_back(canonical);
            } catch (const config_error& e) {
                return e.what();
            }
        }
        return {};
    },
    "TASK[,TASK...]", "task_list");

/// A finite number > 0 (CLI11's PositiveNumber lets NaN through).
inline const CLI::Validator finite_positive(
    [](std::string& s) -> std::string {
        double d = 0;
        if (!CLI::detail::lexical_cast(s, d) || !std::isfinite(d) || !(d > 0)) return "needs a finite number > 0, got '" + s + "'";
        return {};
    },
    "NUMBER > 0", "finite_positive");

/// A finite number >= 0.
inline const CLI::Validator finite_nonnegative(
    [](std::string& s) -> std::string {
        double d = 0;
        if (!CLI::detail::lexical_cast(s, d) || !std::isfinite(d) || !(d >= 0)) return "needs a finite number >= 0, got '" + s + "'";
        return {};
    },
    "NUMBER >= 0", "finite_nonnegative");

/// A whole number >= 0 written without a sign (CLI11 reads "-1" into an unsigned as its largest value).
inline const CLI::Validator unsigned_integer(
    [](std::string& s) -> std::string {
        if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos)
            return "needs a whole number >= 0, got '" + s + "'";
        return {};
    },
    "UINT", "unsigned_integer");

/// A file that exists and is a regular file (not a directory, FIFO or device).
inline const CLI::Validator regular_file(
    [](std::string& s) -> std::string {
        std::error_code ec;
        const auto st = std::filesystem::status(s, ec);
        if (ec || !std::filesystem::exists(st)) return "'" + s + "': no such file";
        if (!std::filesystem::is_regular_file(st)) return "'" + s + "' is not a regular file";
        if (::access(s.c_str(), R_OK) != 0) return "'" + s + "' is not readable";
        return {};
    },
    "FILE", "regular_file");

/// A folder that exists and can be read.
inline const CLI::Validator readable_directory(
    [](std::string& s) -> std::string {
        std::error_code ec;
        if (!std::filesystem::is_directory(s, ec)) return "'" + s + "': no such directory";
        if (::access(s.c_str(), R_OK | X_OK) != 0) return "'" + s + "' is not readable";
        return {};
    },
    "DIR", "readable_directory");

/// A file the run will append to (or create): a regular file if it exists, in a folder that exists and is
/// writable. Checked before training so a long run never ends on an unwritable result file.
inline const CLI::Validator appendable_file(
    [](std::string& s) -> std::string {
        namespace fs = std::filesystem;
        if (s.empty()) return "needs a file name";
        std::error_code ec;
        const auto st = fs::status(s, ec);
        if (fs::exists(st)) {
            if (!fs::is_regular_file(st)) return "'" + s + "' exists and is not a regular file";
            if (::access(s.c_str(), W_OK) != 0) return "'" + s + "' is not writable";
            return {};
        }
        const fs::path parent = fs::path(s).has_parent_path() ? fs::path(s).parent_path() : fs::path(".");
        if (!fs::is_directory(parent, ec)) return "'" + s + "': folder '" + parent.string() + "' does not exist";
        if (::access(parent.c_str(), W_OK | X_OK) != 0) return "'" + s + "': folder '" + parent.string() + "' is not writable";
        return {};
    },
    "FILE", "appendable_file");

/// Where a model directory may be written: a new name in a writable folder, an empty folder, or a model
/// directory (which save_pretrained replaces); never another folder or a file.
inline const CLI::Validator model_directory_target(
    [](std::string& s) -> std::string {
        namespace fs = std::filesystem;
        if (s.empty()) return "needs a directory name";
        std::error_code ec;
        const auto st = fs::status(s, ec);
        if (fs::exists(st)) {
            if (!fs::is_directory(st)) return "'" + s + "' exists and is not a directory";
            if (!fs::is_empty(s, ec) && !fs::exists(fs::path(s) / "hyperadapt.json", ec))
                return "'" + s + "' exists, is not empty and is not a model directory (no hyperadapt.json)";
        }
        const fs::path target = fs::path(s).lexically_normal();
        const fs::path parent = target.has_parent_path() && target.parent_path() != "" ? target.parent_path() : fs::path(".");
        if (!fs::is_directory(parent, ec)) return "'" + s + "': folder '" + parent.string() + "' does not exist";
        if (::access(parent.c_str(), W_OK | X_OK) != 0) return "'" + s + "': folder '" + parent.string() + "' is not writable";
        return {};
    },
    "DIR", "model_directory_target");


inline constexpr std::size_t max_seq_len = 1 << 16;
inline constexpr std::size_t max_rows = std::size_t{1} << 32;

/// Registers the shared options on `app` (their names, meanings and defaults are the examples' documented ones).
inline void add_common_options(CLI::App& app, common_args& a) {
    // A run's settings in a file (CLI11's TOML reader): `option = value`, one per line, each named as on the
    // command line without the dashes (`tasks = "rte,mrpc"`, `epochs = 3`, `scale-regression = true`); an
    // option also given on the command line takes the command line's value. An unknown name is an error.
    app.set_config("--config", "", "read options from a TOML file: one `name = value` per line, named as the "
                   "options without their dashes; the command line wins")
        ->check(regular_file);
    app.allow_config_extras(false);
    app.add_option("--checkpoint", a.checkpoint, "Hugging Face BERT checkpoint folder (config.json, vocab.txt, model.safetensors)")
        ->check(readable_directory);
    app.add_option("--data", a.data, "the shared data folder (glue/, superglue/)")->check(readable_directory);
    app.add_option_function<std::string>("--tasks", [&a](const std::string& v) { a.tasks = v, a.tasks_given = true; },
                                         "comma list of task names")
        ->check(task_list)
        ->default_str(a.tasks);
    app.add_option("--sampler", a.sampler, "task sampler")
        ->check(CLI::IsMember({"mtu", "mtu-paper", "mtu-floor", "proportional", "temperature", "round-robin"}));
    app.add_option("--head-input", a.head_input, "what the heads read")->check(CLI::IsMember({"pooler", "mean"}))->capture_default_str();
    app.add_option("--seq-len", a.seq_len, "tokens per example (L); 0: the example's default")->check(CLI::Range(std::size_t{0}, max_seq_len));
    app.add_option("--batch", a.batch, "examples per step")->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))->capture_default_str();
    app.add_option("--train-per-task", a.train_per_task, "training examples per task at most (0: all)")->check(CLI::Range(std::size_t{0}, max_rows));
    app.add_option("--dev-per-task", a.dev_per_task, "dev examples per task at most (0: all)")->check(CLI::Range(std::size_t{0}, max_rows));
    app.add_option("--epochs", a.epochs, "passes over the training examples")->check(finite_positive & CLI::Range(0.0, 1e6))->capture_default_str();
    app.add_option("--steps", a.steps, "optimizer steps (overrides --epochs; 0: from --epochs)")->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 40));
    app.add_option("--lr", a.lr, "peak learning rate (0: the example's default)")->check(finite_nonnegative);
    app.add_option("--seed", a.seed, "seed of initialisation, sampling and dropout")->check(unsigned_integer)->capture_default_str();
    app.add_option("--threads", a.threads, "CPU threads (0: all)")->check(CLI::Range(0, 4096));
    app.add_option("--precision", a.precision,
                   "matrix products in fp32, or in bf16 with fp32 accumulation (the CPU: oneDNN, needs AVX-512; a GPU: "
                   "tensor cores); on a GPU also tf32, or fp16 (with dynamic loss scaling); weights, activations, "
                   "LayerNorm, softmax, losses and the optimizer stay fp32")
        ->check(CLI::IsMember({"fp32", "bf16", "tf32", "fp16"}))
        ->capture_default_str();
    app.add_option("--device", a.device,
                   "where the model trains: cpu, or cuda (a build with -DHYPERADAPT_ENABLE_CUDA=ON and a GPU)")
        ->check(CLI::IsMember({"cpu", "cuda"}))
        ->capture_default_str();
    app.add_option("--gpu", a.gpu, "the CUDA device's index, with --device cuda (default: 0; under mpirun, each rank's "
                                   "index among the ranks on its machine)")->check(CLI::Range(0, 1023));
    app.add_option("--eval-every", a.eval_every, "dev evaluation every K steps (0: the example's default)")->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 40));
    app.add_option("--out", a.out, "folder for metrics.jsonl, dev_curves.png and checkpoints/ (created)");
    app.add_option("--json", a.json, "append one JSON line per run to FILE")->check(appendable_file);
    app.add_option("--save-model", a.save_model,
                   "write the trained model to the model directory DIR (hyperadapt info/predict/eval read it)")
        ->check(model_directory_target);
    app.add_option("--checkpoint-every", a.checkpoint_every, "write a training checkpoint into --out every K steps")
        ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 40));
    app.add_flag("--resume", a.resume, "continue from the newest valid checkpoint in --out (a fresh start when there is none)");
    app.add_option("--validation-per-task", a.validation_per_task,
                   "carve N training examples per task (stratified, drawn by --data-seed) as a validation split: the run "
                   "keeps the model of the evaluation with the best average validation score and reports the dev "
                   "set once, on that model (0: no validation split; dev is evaluated during training)")
        ->check(CLI::Range(std::size_t{0}, max_rows));
    app.add_option_function<std::string>("--data-seed", [&a](const std::string& v) {
            a.data_seed = std::stoull(v), a.data_seed_given = true;
        }, "seed of the training subsample and the validation carve (default: --seed)")
        ->check(unsigned_integer);
    app.add_option_function<std::vector<std::string>>("--lr-group", [&a](const std::vector<std::string>& specs) {
            for (const auto& spec : specs) {
                try {
                    a.lr_groups.push_back(parse_parameter_group(spec));
                } catch (const config_error& e) {
                    throw CLI::ValidationError("--lr-group", e.what());
                }
            }
        }, "REGEX=LR[,wd=DECAY][,warmup=PROPORTION]: the parameters whose name matches REGEX train with their own "
           "peak rate (and decay, warmup); repeatable, the first match wins, --lr is the rate of the rest")
        ->take_all()
        ->allow_extra_args(false);
    app.add_option("--warmup", a.warmup, "linear warmup, a proportion of the steps")->check(CLI::Range(0.0, 1.0))->capture_default_str();
    app.add_option("--weight-decay", a.weight_decay, "AdamW's decoupled weight decay")->check(finite_nonnegative)->capture_default_str();
    app.add_flag("--pad-to-seq-len", a.pad_to_seq_len, "pad every batch to --seq-len (default: rows grouped by length, each group padded to its longest example)");
    app.add_flag("--skip-nonfinite", a.skip_nonfinite, "skip a step whose loss or gradient is not finite instead of stopping");
    app.add_flag("--quiet", a.quiet, "no progress output");
}

/// Checks what add_common_options cannot check option by option; throws CLI::ValidationError naming the
/// option. Creates --out (and proves it writable) so that nothing fails on output after training.
inline void check_common_options(const common_args& a) {
    namespace fs = std::filesystem;
    if (!a.save_model.empty() && a.checkpoint.empty())
        throw CLI::ValidationError("--save-model", "needs --checkpoint (a model directory carries the checkpoint's vocabulary)");
    if (a.device != "cuda" && (a.precision == "tf32" || a.precision == "fp16"))
        throw CLI::ValidationError("--precision", a.precision + " is the GPU's (tensor cores, --device cuda); on the CPU "
                                   "use fp32 or bf16");
    if (a.device != "cuda" && a.gpu >= 0) throw CLI::ValidationError("--gpu", "needs --device cuda");
    if ((a.checkpoint_every > 0 || a.resume) && a.out.empty())
        throw CLI::ValidationError(a.resume ? "--resume" : "--checkpoint-every", "needs --out DIR (where the checkpoints are)");
    if (!a.out.empty()) {
        std::error_code ec;
        if (fs::exists(a.out, ec) && !fs::is_directory(a.out, ec))
            throw CLI::ValidationError("--out", "'" + a.out + "' exists and is not a folder");
        fs::create_directories(a.out, ec);
        if (ec) throw CLI::ValidationError("--out", "cannot create '" + a.out + "': " + ec.message());
        if (::access(a.out.c_str(), W_OK | X_OK) != 0) throw CLI::ValidationError("--out", "'" + a.out + "' is not writable");
    }
}

/// Parses argv into `app`; on a bad value prints "<program>: <message naming the option>" and the usage
/// hint and returns the exit code (2; 0 for --help). Returns -1 when parsing succeeded.
template <class Check>
int parse_command_line(CLI::App& app, int argc, char** argv, Check&& check) {
    try {
        app.parse(argc, argv);
        check();
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        // A value from --config FILE: say so, so that the culprit can be found in the file.
        const CLI::Option* config = app.get_config_ptr();
        const std::string file = config && config->count() > 0 ? config->as<std::string>() : std::string();
        std::cerr << app.get_name() << ": " << (file.empty() ? "" : "--config " + file + ": ") << e.what()
                  << (dynamic_cast<const CLI::ConfigError*>(&e) ? " (not an option of this program: the names are the "
                                                                 "options without their dashes)" : "")
                  << "\nRun with --help for the options.\n";
        return 2;
    }
    return -1;
}

}  // namespace hyperadapt::examples
