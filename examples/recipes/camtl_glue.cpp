// The CA-MTL recipe: the training program behind 02_camtl_glue and `hyperadapt train camtl` (recipes.hpp).
// 02_camtl_glue.cpp says what it runs and how to call it.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/data/registry.hpp"
#include "hyperadapt/models/camtl.hpp"
#include "hyperadapt/models/multitask_bert.hpp"
#include "hyperadapt/train/multitask_data.hpp"
#include "hyperadapt/train/multitask_trainer.hpp"
#include "hyperadapt/train/samplers/mt_uncertainty.hpp"
#include "hyperadapt/train/samplers/round_robin.hpp"
#include "hyperadapt/train/samplers/size_proportional.hpp"
#include "hyperadapt/train/samplers/temperature.hpp"
#include "hyperadapt/train/synthetic_tasks.hpp"
#include "camtl_glue_device.hpp"
#include "recipe_models.hpp"
#include "recipe_options.hpp"
#include "recipes.hpp"

using namespace hyperadapt;
using hyperadapt::examples::split_list;

namespace {

using args = examples::camtl_glue_args;
using setup = examples::camtl_glue_setup;
using outcome = examples::measured_run;

void print_result(const std::string& label, const outcome& out, std::size_t backbone, bool selecting) {
    const training_result& r = out.trained;
    std::printf("%s: %lld steps in %.1f s, trainable %zu of %zu parameters (%.1f %% of the backbone's %zu), "
                "%.1f %% of candidates used\n",
                label.c_str(), static_cast<long long>(r.steps), r.seconds, r.counts.trainable, r.counts.total,
                100.0 * static_cast<double>(r.counts.trainable) / static_cast<double>(backbone), backbone,
                100.0 * r.fraction_used);
    if (selecting) {
        std::printf("  selected the model of step %lld (best average validation score)\n", static_cast<long long>(r.selected.step));
        std::printf("  %-10s %12s %12s\n", "task", "validation", "dev");
        for (std::size_t t = 0; t < out.test.size(); ++t)
            std::printf("  %-10s %12.4f %12.4f\n", out.test[t].task.c_str(), r.selected.tasks[t].score, out.test[t].score);
        std::printf("  %-10s %12.4f %12.4f\n", "average", r.selected.average, data::average_score(out.test));
        return;
    }
    std::printf("  %-10s %12s %12s\n", "task", "best dev", "final dev");
    for (std::size_t t = 0; t < r.best.size(); ++t)
        std::printf("  %-10s %12.4f %12.4f\n", r.best[t].task.c_str(), r.best[t].score, r.final[t].score);
    std::printf("  %-10s %12.4f %12.4f\n", "average", r.best_average, r.final_average);
}

nlohmann::json to_json(const args& a, const std::string& label, const outcome& out, const setup& s,
                       const std::vector<std::size_t>& which, const examples::run_device& ran_on) {
    const training_result& r = out.trained;
    const std::size_t backbone = s.backbone_params;
    nlohmann::json j{{"label", label}, {"model", a.model}, {"sampler", a.sampler}, {"seed", a.seed},
                     {"epochs", a.steps > 0 ? 0.0 : a.epochs}, {"batch", a.batch}, {"lr", a.lr}, {"steps", r.steps},
                     {"seconds", r.seconds}, {"fraction_used", r.fraction_used}, {"real_tokens", r.real_tokens},
                     {"computed_tokens", r.computed_tokens}, {"pad_to_seq_len", a.pad_to_seq_len},
                     {"trainable", r.counts.trainable}, {"total", r.counts.total}, {"backbone", backbone},
                     {"best_average", r.best_average}, {"final_average", r.final_average},
                     {"head_input", a.head_input}, {"scale_regression", a.scale_targets}, {"modules", {{"alignment", a.alignment}, {"cbda", a.cbda}, {"cln", a.cln}, {"adapter", a.adapter}}}};
    for (std::size_t t = 0; t < r.best.size(); ++t) {
        j["best"][r.best[t].task] = r.best[t].score;
        j["final"][r.final[t].task] = r.final[t].score;
    }
    std::vector<encoded_task> train, validation, dev;
    std::vector<data::task_result> floor;
    for (auto t : which) {
        train.push_back(s.train[t]);
        dev.push_back(s.dev[t]);
        if (!s.validation.empty()) validation.push_back(s.validation[t]);
        floor.push_back(examples::constant_predictor(s.train[t], s.dev[t]));
    }
    examples::add_protocol_fields(j, a, r, out.test, train, validation, dev, floor, ran_on);
    j["seq_len"] = a.seq_len;
    return j;
}

int run(args& a) {
    const bool real = !a.checkpoint.empty();
    const auto device = a.device == "cuda" ? examples::make_camtl_glue_cuda(a) : examples::make_camtl_glue_cpu(a);
    setup s;
    if (real) {
        s.config = io::read_bert_config(a.checkpoint);
        examples::check_config_limits(s.config, (std::filesystem::path(a.checkpoint) / "config.json").string());
        if (a.seq_len == 0) a.seq_len = 64;
        if (a.seq_len > s.config.max_position)
            throw config_error("--seq-len " + std::to_string(a.seq_len) + " exceeds the checkpoint's " +
                               std::to_string(s.config.max_position) + " positions (max_position_embeddings)");
        if (a.model == "camtl" && a.cbda && s.config.hidden % a.seq_len != 0)
            throw config_error("--seq-len " + std::to_string(a.seq_len) + " does not divide the hidden size " +
                               std::to_string(s.config.hidden) + ": CA-MTL's block-diagonal attention bias needs it to "
                               "(choose a divisor, or --no-cbda)");
        if (a.lr == 0) a.lr = 5e-5;
        const auto tok = text::bert_tokenizer::from_file(std::filesystem::path(a.checkpoint) / "vocab.txt");
        examples::check_vocab_fits(tok.vocabulary().size(), s.config,
                                   (std::filesystem::path(a.checkpoint) / "vocab.txt").string());
        for (const auto& name : split_list(a.tasks)) {
            const auto tr = data::load_task(name, a.data, data::split::train);
            const auto dv = data::load_task(name, a.data, data::split::dev);
            s.train.push_back(encode_task(tr, tok, a.seq_len, examples::examples_to_draw(a), a.sample_seed() ^ 0x5eed));
            s.dev.push_back(encode_task(dv, tok, a.seq_len, a.dev_per_task, 0xde5));
        }
        examples::check_not_empty(s.train, s.dev, a.data);
        s.backbone_params = device->backbone_parameters(s.config);
    } else {
        s.config = {.vocab_size = 40, .hidden = 64, .layers = 2, .heads = 4, .intermediate = 128, .max_position = 16,
                    .type_vocab_size = 2};
        a.seq_len = 16;
        if (a.lr == 0) a.lr = 1e-3;
        if (a.eval_every == 0) a.eval_every = 100;
        for (int t = 0; t < 3; ++t) {
            s.train.push_back(synthetic_task(static_cast<synthetic_kind>(t), 2000, a.seq_len, 100 + static_cast<std::uint64_t>(t)));
            s.dev.push_back(synthetic_task(static_cast<synthetic_kind>(t), 400, a.seq_len, 200 + static_cast<std::uint64_t>(t)));
        }
        s.backbone_params = device->backbone_parameters(s.config);
        std::printf("%s: built-in default — 3 synthetic tasks (order, majority: classification; count: "
                    "regression), 2-layer encoder (hidden 64), %s sampler, %s\n",
                    a.program.c_str(), a.sampler.c_str(), device->label().c_str());
    }
    s.validation = examples::carve_validation_splits(s.train, a);
    trainer_options o = examples::trainer_from(a);

    struct labelled {
        std::string label;
        outcome out;
        std::vector<std::size_t> which;
    };
    std::vector<labelled> results;
    if (a.model == "single") {
        for (std::size_t t = 0; t < s.train.size(); ++t) {
            o.run_name = "single-" + s.train[t].info.name;
            if (!a.out.empty()) o.out_dir = std::filesystem::path(a.out) / s.train[t].info.name;
            results.push_back({"single-task " + s.train[t].info.name, device->train(a, s, {t}, o, real), {t}});
        }
    } else {
        std::vector<std::size_t> all(s.train.size());
        for (std::size_t t = 0; t < all.size(); ++t) all[t] = t;
        o.run_name = a.model + "-" + a.sampler;
        results.push_back({a.model + " (" + a.sampler + ")", device->train(a, s, all, o, real), all});
    }
    for (const auto& [label, out, which] : results) {
        const training_result& r = out.trained;
        print_result(label, out, s.backbone_params, !s.validation.empty());
        for (const auto& why : r.resume_skipped) std::printf("  resume passed over %s\n", why.c_str());
        if (r.resumed_from > 0) std::printf("  (resumed from the checkpoint of step %lld)\n", static_cast<long long>(r.resumed_from));
        if (r.skipped_steps > 0)
            std::printf("  %lld updates skipped for a non-finite loss or gradient (--skip-nonfinite)\n",
                        static_cast<long long>(r.skipped_steps));
    }
    if (a.model == "single" && results.size() > 1) {
        double best = 0, final = 0;
        for (const auto& res : results) {
            best += s.validation.empty() ? res.out.trained.best_average : res.out.trained.selected.average;
            final += s.validation.empty() ? res.out.trained.final_average : data::average_score(res.out.test);
        }
        if (!s.validation.empty()) std::printf("(selected models: validation, then dev)\n");
        std::printf("single-task average: best %.4f, final %.4f\n", best / static_cast<double>(results.size()),
                    final / static_cast<double>(results.size()));
    }
    if (!a.json.empty() && a.leader()) {
        std::ofstream out(a.json, std::ios::app);
        for (const auto& res : results) out << to_json(a, res.label, res.out, s, res.which, device->where()).dump() << '\n';
        out.flush();
        if (!out) throw io_error(a.json + ": cannot append the results (--json)");
    }
    return 0;
}

}  // namespace

std::unique_ptr<examples::camtl_glue_device> examples::make_camtl_glue_cpu(const camtl_glue_args& a) {
    auto d = std::make_unique<camtl_glue_on<policy>>(cpu_run_device(a.precision),
                                                     [&] { return make_backend(a.threads, a.precision); });
    d->set_label(std::to_string(static_cast<std::size_t>(d->backend().threads())) + " threads");
    return d;
}

#if !defined(HYPERADAPT_EXAMPLE_WITH_CUDA)
std::unique_ptr<examples::camtl_glue_device> examples::make_camtl_glue_cuda(const camtl_glue_args&) {
    throw config_error("--device cuda: this build has no CUDA (configure with -DHYPERADAPT_ENABLE_CUDA=ON on a machine "
                       "with the CUDA toolkit, then rebuild)");
}
#endif

int hyperadapt::examples::camtl_glue_main(int argc, char** argv, const std::string& program) {
    auto parsed = examples::parse_camtl_glue_options(argc, argv, program);
    if (const int* rc = std::get_if<int>(&parsed)) return *rc;
    args& a = std::get<args>(parsed);
    std::optional<examples::run_processes> processes;  // the ranks of an MPI launcher, or this process alone
    return examples::run_main(program, [&] {
        processes.emplace(program);
        a.processes = processes->communicator();
        if (a.gpu < 0) a.gpu = processes->local_rank();  // one GPU per rank on a machine with several
        return run(a);
    }, &processes);
}
