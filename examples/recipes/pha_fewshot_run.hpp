#pragma once
// The PHA recipe (03_pha_fewshot, `hyperadapt train pha`, `hyperadapt transfer`; recipes.hpp), written once over the
// backend policy B: pha_fewshot.cpp runs it on the examples' CPU policy, pha_fewshot_cuda.cu on the CUDA backend
// (--device cuda, in a build with CUDA). 03_pha_fewshot.cpp says what it runs and how to call it. Nothing here
// names a backend: the CPU policy is example_cpu_backend.hpp's, so nvcc never sees Eigen, OpenMP or oneDNN.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <optional>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "hyperadapt/data/registry.hpp"
#include "hyperadapt/io/hf_checkpoint.hpp"
#include "hyperadapt/models/camtl.hpp"
#include "hyperadapt/models/multitask_bert.hpp"
#include "hyperadapt/models/pha_bert.hpp"
#include "hyperadapt/models/pha_transfer.hpp"
#include "hyperadapt/train/multitask_data.hpp"
#include "hyperadapt/train/multitask_trainer.hpp"
#include "hyperadapt/train/samplers/mt_uncertainty.hpp"
#include "hyperadapt/train/samplers/round_robin.hpp"
#include "hyperadapt/train/samplers/size_proportional.hpp"
#include "hyperadapt/train/samplers/temperature.hpp"
#include "hyperadapt/train/synthetic_tasks.hpp"
#include "../example_support.hpp"
#include "recipe_options.hpp"

namespace hyperadapt::examples::pha_fewshot_recipe {

using args = pha_fewshot_args;

/// An option-level fault found after parsing (the checkpoint's limits, the source's sidecar): rc 2, as CLI11's
/// (run_main prints it).
[[noreturn]] inline void usage(const std::string& why) { throw usage_error(why); }


// ---- models ----------------------------------------------------------------------------------------------

/// Where --model's adapters come from. The one place that maps model names to pha_bert variants.
inline adapter_source source_of(const std::string& model) {
    if (model == "pha") return adapter_source::prototype_hypernet;
    if (model == "adapters" || model == "adapter") return adapter_source::per_task;
    if (model == "hyperformerpp") return adapter_source::hyperformerpp;  // generated from a learned task embedding
    // A further pha_bert variant is one more line here (and its name in parse()'s --model check).
    usage("model '" + model + "' is not a pha_bert variant");
}

/// all-MiniLM-L6-v2 was trained through mean pooling; its [CLS] pooler output hardly varies between inputs
/// (a linear probe on SST-2 reaches 59 % from it, 71 % from the mean), so the real recipe's heads read the mean.
inline head_input reads(const args& a) { return a.head_input == "pooler" ? head_input::pooler : head_input::mean; }

inline pha_bert_options pha_options(const args& a, const bert_config& config, std::vector<task_head_spec> heads,
                             adapter_source source) {
    pha_bert_options o;
    o.backbone = config;
    o.tasks = std::move(heads);
    o.source = source;
    o.bottleneck = a.bottleneck;
    o.passes = source == adapter_source::per_task || a.passes == "single" ? pha_passes::single : pha_passes::two;
    // all-MiniLM-L6-v2 is a sentence-transformers model trained through mean pooling: its pooler was never
    // trained, and frozen it leaves the heads a random projection of [CLS]. The pooler trains with the heads
    // unless --frozen-pooler asks for the reference's rule to the letter.
    o.train_pooler = !a.frozen_pooler;
    o.heads_read = reads(a);
    o.instance_loss = o.prototype_loss = a.contrastive;
    o.contrastive_trains_encoder = a.contrastive_encoder;
    return o;
}

/// pha_bert loads its backbone by name without strictness (its adapters, retriever, hypernetwork and heads are
/// in no BERT checkpoint). The example refuses what would leave backbone weights at random: a tensor of another
/// shape, or a missing backbone parameter (pha_bert's rule: embeddings, pooler, encoder layers outside their
/// adapters), unless --allow-partial-backbone.
inline void require_whole_backbone(const args& a, const io::load_report& rep) {
    if (a.partial_backbone) return;
    std::string missing;
    for (const auto& n : rep.missing)
        if (n.rfind("embeddings.", 0) == 0 || n.rfind("pooler.", 0) == 0 ||
            (n.rfind("encoder.layer.", 0) == 0 && n.find(".adapter.") == std::string::npos))
            missing += (missing.empty() ? "" : ", ") + n;
    if (missing.empty() && rep.mismatched.empty()) return;
    io::load_report shown = rep;
    shown.missing = split_list(missing);
    throw io_error(a.checkpoint + ": the checkpoint does not fit the backbone (--allow-partial-backbone trains anyway): " +
                   shown.str());
}

inline task_head_spec head_of(const args& a, const encoded_task& t) { return head_for(t, a.scale_targets); }

inline std::vector<task_head_spec> heads_of(const args& a, const std::vector<encoded_task>& tasks) {
    std::vector<task_head_spec> h;
    for (const auto& t : tasks) h.push_back(head_of(a, t));
    return h;
}

/// Copies every parameter of `from` into `to` whose name and shape match, except task heads. Returns the count.
template <class From, class To>
std::size_t copy_matching(From& from, To& to) {
    using param = parameter<typename From::backend_type, float>;
    std::map<std::string, param*> src;
    from.visit_parameters([&](const std::string& n, param& p) { src[n] = &p; });
    std::size_t copied = 0;
    to.visit_parameters([&](const std::string& n, param& p) {
        if (n.rfind("heads.", 0) == 0) return;
        const auto it = src.find(n);
        if (it == src.end() || it->second->value.shape() != p.value.shape()) return;
        p.value.backend().copy(it->second->value.data(), p.value.data(), p.size());
        ++copied;
    });
    return copied;
}

// ---- training --------------------------------------------------------------------------------------------

template <class Model, class B>
training_result run_with_sampler(Model& model, B& b, const args& a, const std::vector<encoded_task>& train,
                                 const std::vector<encoded_task>& dev, const trainer_options& o, std::size_t batch) {
    return train_with_sampler(model, b, a.sampler, batch, a.seed, train, dev, o, a.processes);
}

/// --steps, or --epochs over the training examples.
inline std::int64_t step_budget(const args& a, const std::vector<encoded_task>& train, std::size_t batch) {
    if (a.steps > 0) return a.steps;
    std::size_t examples = 0;
    for (const auto& t : train) examples += t.size();
    return std::max<std::int64_t>(
        1, static_cast<std::int64_t>(a.epochs * std::ceil(static_cast<double>(examples) / static_cast<double>(batch))));
}

inline trainer_options trainer_for(const args& a, std::int64_t steps, const std::string& run_name) {
    trainer_options o = trainer_from(a);
    o.steps = steps;
    o.run_name = run_name;
    if (!a.out.empty()) o.out_dir = std::filesystem::path(a.out) / run_name;
    return o;
}

struct run_report {
    std::string label;
    training_result result;
    std::size_t backbone = 0;
    std::optional<pha_parameter_report> pha;
    /// With a validation split: the dev scores of the selected model, measured once after training.
    std::vector<data::task_result> test{};
    bool selected_on_validation = false;
};

inline void print_result(const run_report& r) {
    const auto& t = r.result;
    std::printf("%s: %lld steps in %.1f s, trainable %zu of %zu parameters (%.2f %% of the backbone's %zu)\n",
                r.label.c_str(), static_cast<long long>(t.steps), t.seconds, t.counts.trainable, t.counts.total,
                100.0 * static_cast<double>(t.counts.trainable) / static_cast<double>(r.backbone), r.backbone);
    if (r.pha)
        std::printf("  PHA-style count: %zu trainable (%zu in heads) over %zu tasks = %.3f %% of the backbone per task\n",
                    r.pha->trainable, r.pha->heads, r.pha->tasks, r.pha->percent_per_task());
    if (r.selected_on_validation) {
        std::printf("  selected the model of step %lld (best average validation score)\n", static_cast<long long>(t.selected.step));
        std::printf("  %-10s %12s %12s   dev metrics\n", "task", "validation", "dev");
        for (std::size_t i = 0; i < r.test.size(); ++i) {
            std::printf("  %-10s %12.4f %12.4f  ", r.test[i].task.c_str(), t.selected.tasks[i].score, r.test[i].score);
            for (const auto& v : r.test[i].values) std::printf(" %s %.4f", std::string(data::to_string(v.which)).c_str(), v.value);
            std::printf("\n");
        }
        if (r.test.size() > 1) std::printf("  %-10s %12.4f %12.4f\n", "average", t.selected.average, data::average_score(r.test));
        return;
    }
    std::printf("  %-10s %12s %12s   final metrics\n", "task", "best dev", "final dev");
    for (std::size_t i = 0; i < t.best.size(); ++i) {
        std::printf("  %-10s %12.4f %12.4f  ", t.best[i].task.c_str(), t.best[i].score, t.final[i].score);
        for (const auto& v : t.final[i].values)
            std::printf(" %s %.4f", std::string(data::to_string(v.which)).c_str(), v.value);
        std::printf("\n");
    }
    if (t.best.size() > 1) std::printf("  %-10s %12.4f %12.4f\n", "average", t.best_average, t.final_average);
}

inline nlohmann::json to_json(const args& a, const run_report& r) {
    const auto& t = r.result;
    nlohmann::json j{{"label", r.label}, {"mode", a.mode}, {"model", a.model}, {"sampler", a.sampler},
                     {"passes", a.passes}, {"seed", a.seed}, {"epochs", a.steps > 0 ? 0.0 : a.epochs},
                     {"batch", a.batch}, {"lr", a.lr}, {"seq_len", a.seq_len}, {"steps", t.steps},
                     {"seconds", t.seconds}, {"fraction_used", t.fraction_used}, {"real_tokens", t.real_tokens},
                     {"computed_tokens", t.computed_tokens}, {"pad_to_seq_len", a.pad_to_seq_len}, {"trainable", t.counts.trainable},
                     {"total", t.counts.total}, {"backbone", r.backbone}, {"best_average", t.best_average},
                     {"final_average", t.final_average}, {"train_pooler", !a.frozen_pooler}, {"head_input", a.head_input}, {"scale_regression", a.scale_targets},
                     {"contrastive", a.contrastive ? (a.contrastive_encoder ? "reference" : "retriever-only") : "off"},
                     {"bottleneck", a.bottleneck}};
    if (r.pha) j["percent_per_task"] = r.pha->percent_per_task();
    for (std::size_t i = 0; i < t.best.size(); ++i) {
        j["best"][t.best[i].task] = t.best[i].score;
        j["final"][t.final[i].task] = t.final[i].score;
        for (const auto& v : t.final[i].values)
            j["final_metrics"][t.final[i].task][std::string(data::to_string(v.which))] = v.value;
    }
    return j;
}

/// Appends `j` to --json (rank 0 only, among several processes).
inline void append_json(const common_args& a, const nlohmann::json& j) {
    const std::string& file = a.json;
    if (file.empty() || !a.leader()) return;
    std::ofstream out(file, std::ios::app);
    if (!out) throw io_error(file + ": cannot open for appending");
    out << j.dump() << '\n';
    if (!out) throw io_error(file + ": write failed");
}

/// The examples of a run. Without a validation split the trainer evaluates `dev` during training (best and
/// final reported, as before the results protocol); with one (docs/results.md) it selects the model on the
/// validation split and `dev` is measured once, on the selected model.
struct run_data {
    const std::vector<encoded_task>& train;
    const std::vector<encoded_task>& dev;
    const std::vector<encoded_task>* validation = nullptr;  ///< null or empty: no validation split
};

/// Trains `model` on d.train and measures it as run_data says.
template <class Model, class B>
run_report train_and_measure(Model& model, B& b, const args& a, const run_data& d, const trainer_options& o,
                             std::size_t batch, std::string label, std::size_t backbone) {
    static const std::vector<encoded_task> none;
    auto m = train_and_measure(model, b, a, batch, d.train, d.validation ? *d.validation : none, d.dev, o);
    return {std::move(label), std::move(m.trained), backbone, std::nullopt, std::move(m.test), m.selected_on_validation};
}

/// --save-model DIR: the trained model (multi-task, or the transfer's target) as a model directory.
template <class Model>
void save_model_directory(Model& m, const args& a, const std::vector<encoded_task>& tasks) {
    std::vector<const encoded_task*> used;
    for (const auto& t : tasks) used.push_back(&t);
    save_model_directory(m, a.save_model, a, used, a.program + " --mode " + a.mode + " --model " + a.model);
}

/// Builds, initialises and trains one pha_bert variant; `init_backbone(model)` fills its backbone (a checkpoint
/// load, or a copy from the demo's pretrained encoder) before freezing.
template <class B, class InitBackbone>
run_report train_pha(B& b, const args& a, const pha_bert_options& opts, const run_data& d,
                     const trainer_options& o, std::size_t batch, const std::string& label,
                     InitBackbone&& init_backbone, std::size_t backbone, const std::string& save = {},
                     const std::vector<encoded_task>* save_model_tasks = nullptr) {
    pha_bert<B, float> m(b, opts);
    rng_stream init(a.seed);
    m.initialize(init);
    init_backbone(m);
    m.apply_freezing();
    run_report r = train_and_measure(m, b, a, d, o, batch, label, backbone);
    r.pha = m.parameter_report();
    if (!save.empty() && a.leader()) io::save_safetensors(m, save);
    if (save_model_tasks && !a.save_model.empty()) save_model_directory(m, a, *save_model_tasks);
    return r;
}

// ---- few-shot sampling -----------------------------------------------------------------------------------

/// k example indices of `t`, drawn by `seed`; classification tasks are stratified (each class gets its share
/// of k by largest remainder, and at least one example where k allows).
inline std::vector<std::size_t> few_shot_indices(const encoded_task& t, std::size_t k, std::uint64_t seed) {
    std::vector<std::size_t> all(t.size());
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
    if (k >= t.size()) return all;
    std::uint64_t c = 0;
    auto shuffle = [&](std::vector<std::size_t>& v) {
        for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[detail::counter_hash(seed, c++) % i]);
    };
    std::vector<std::size_t> pick;
    if (t.is_regression()) {
        shuffle(all);
        pick.assign(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k));
    } else {
        std::map<int, std::vector<std::size_t>> by_class;
        for (std::size_t i = 0; i < t.size(); ++i) by_class[t.labels[i]].push_back(i);
        std::map<int, std::size_t> quota;
        std::vector<std::pair<double, int>> remainder;
        std::size_t given = 0;
        for (auto& [label, idx] : by_class) {
            shuffle(idx);
            const double share = static_cast<double>(k) * static_cast<double>(idx.size()) / static_cast<double>(t.size());
            quota[label] = static_cast<std::size_t>(share);
            given += quota[label];
            remainder.emplace_back(share - std::floor(share), label);
        }
        std::sort(remainder.begin(), remainder.end(), std::greater<>());
        for (std::size_t i = 0; given < k; i = (i + 1) % remainder.size())
            if (quota[remainder[i].second] < by_class[remainder[i].second].size()) ++quota[remainder[i].second], ++given;
        if (k >= by_class.size())  // every class at least once, taken from the largest quota
            for (auto& [label, q] : quota)
                if (q == 0) {
                    auto largest = std::max_element(quota.begin(), quota.end(),
                                                    [](const auto& x, const auto& y) { return x.second < y.second; });
                    --largest->second;
                    q = 1;
                }
        for (auto& [label, idx] : by_class) pick.insert(pick.end(), idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(quota[label]));
    }
    std::sort(pick.begin(), pick.end());
    return pick;
}

inline encoded_task take_rows(const encoded_task& t, const std::vector<std::size_t>& rows) {
    encoded_task out;
    out.info = t.info;
    out.seq_len = t.seq_len;
    const auto L = static_cast<std::ptrdiff_t>(t.seq_len);
    for (const std::size_t i : rows) {
        const auto first = static_cast<std::ptrdiff_t>(i) * L;
        out.input_ids.insert(out.input_ids.end(), t.input_ids.begin() + first, t.input_ids.begin() + first + L);
        out.token_type_ids.insert(out.token_type_ids.end(), t.token_type_ids.begin() + first, t.token_type_ids.begin() + first + L);
        out.attention_mask.insert(out.attention_mask.end(), t.attention_mask.begin() + first, t.attention_mask.begin() + first + L);
        out.labels.push_back(t.labels[i]);
        out.scores.push_back(t.scores[i]);
    }
    return out;
}

inline std::string class_counts(const encoded_task& t) {
    if (t.is_regression()) return "regression";
    std::map<int, std::size_t> n;
    for (const int l : t.labels) ++n[l];
    std::string s;
    for (const auto& [label, c] : n) {
        const auto& names = t.info.label_names;
        s += (s.empty() ? "" : ", ") +
             (label >= 0 && static_cast<std::size_t>(label) < names.size() ? names[static_cast<std::size_t>(label)]
                                                                          : std::to_string(label)) +
             " " + std::to_string(c);
    }
    return s;
}

// ---- transfer --------------------------------------------------------------------------------------------

/// Retrieves the source prototype nearest to the k examples and prints every similarity.
template <class B>
prototype_match retrieve(pha_bert<B, float>& source, B& b, const std::vector<encoded_task>& target_train,
                         const std::vector<std::string>& source_names) {
    std::vector<sample_ref> rows;
    for (std::size_t i = 0; i < target_train[0].size(); ++i) rows.push_back({0, i});
    const auto m = nearest_prototype(source, b, std::span<const encoded_task>(target_train), std::span<const sample_ref>(rows));
    std::printf("retrieval over %zu '%s' examples, mean cosine similarity to each source prototype:\n", m.examples,
                target_train[0].info.name.c_str());
    for (std::size_t t = 0; t < m.similarity.size(); ++t)
        std::printf("  %-10s %+.4f%s\n", t < source_names.size() ? source_names[t].c_str() : "?", m.similarity[t],
                    t == m.task ? "   <- retrieved" : "");
    return m;
}

/// PHA transfer: a 1-task target pha_bert that starts from `source` and the retrieved prototype.
template <class B>
run_report transfer_pha(B& b, const args& a, pha_bert<B, float>& source, const prototype_match& match,
                        const run_data& d, const trainer_options& o, std::size_t batch, std::size_t backbone) {
    auto opts = source.options();
    opts.tasks = heads_of(a, d.train);
    pha_bert<B, float> target(b, opts);
    rng_stream init(a.seed);
    target.initialize(init);
    const std::size_t copied = start_transfer(source, target, match.task);
    target.apply_freezing();
    if (a.tune == "prototype-head") tune_only_prototype_and_head(target);
    if (!a.quiet) std::fprintf(stderr, "start_transfer: %zu tensors copied from the source model\n", copied);
    run_report r = train_and_measure(target, b, a, d, o, batch, "pha transfer", backbone);
    r.pha = target.parameter_report();
    if (!a.save_model.empty()) save_model_directory(target, a, d.train);
    return r;
}

template <class B, class InitBackbone>
run_report transfer_full(B& b, const args& a, const bert_config& config, const run_data& d,
                         const trainer_options& o, std::size_t batch, InitBackbone&& init_backbone, std::size_t backbone) {
    multitask_bert<B, float> m(b, {.backbone = config, .tasks = heads_of(a, d.train), .heads_read = reads(a)});
    rng_stream init(a.seed);
    m.initialize(init);
    init_backbone(m);
    run_report r = train_and_measure(m, b, a, d, o, batch, "full fine-tuning", backbone);
    if (!a.save_model.empty()) save_model_directory(m, a, d.train);
    return r;
}

// ---- --mode multitask ------------------------------------------------------------------------------------

struct real_data {
    bert_config config;
    std::optional<text::bert_tokenizer> tok;
    std::size_t backbone = 0;
};

template <class B>
real_data open_checkpoint(B& b, args& a) {
    real_data r;
    r.config = io::read_bert_config(a.checkpoint);
    check_config_limits(r.config, (std::filesystem::path(a.checkpoint) / "config.json").string());
    const auto vocab = std::filesystem::path(a.checkpoint) / "vocab.txt";
    if (!std::filesystem::is_regular_file(vocab)) usage(a.checkpoint + " has no vocab.txt");
    r.tok = text::bert_tokenizer::from_file(vocab);
    check_vocab_fits(r.tok->vocabulary().size(), r.config, vocab.string());
    if (a.seq_len == 0) a.seq_len = 64;
    if (a.seq_len > r.config.max_position) usage("--seq-len " + std::to_string(a.seq_len) + " exceeds the model's " + std::to_string(r.config.max_position) + " positions");
    bert_model<B, float> plain(b, r.config);
    r.backbone = count_parameters(plain).total;
    return r;
}

template <class B>
int run_multitask(B& b, args& a, const run_device& where) {
    real_data rd = open_checkpoint(b, a);
    if (a.lr == 0) a.lr = a.model == "camtl" ? 1e-4 : 3e-4;
    std::vector<encoded_task> train, dev;
    for (const auto& name : split_list(a.tasks)) {
        train.push_back(encode_task(data::load_task(name, a.data, data::split::train), *rd.tok, a.seq_len,
                                    examples_to_draw(a), a.sample_seed() ^ 0x5eed));
        dev.push_back(encode_task(data::load_task(name, a.data, data::split::dev), *rd.tok, a.seq_len, a.dev_per_task, 0xde5));
    }
    check_not_empty(train, dev, a.data);
    // With --validation-per-task the trainer sees the validation split only; dev is measured once at the end.
    const std::vector<encoded_task> validation = carve_validation_splits(train, a);
    const run_data sets{train, dev, &validation};
    if (a.model == "camtl" && rd.config.hidden % a.seq_len != 0)
        usage("--seq-len " + std::to_string(a.seq_len) + " does not divide the hidden size " + std::to_string(rd.config.hidden) +
              ": CA-MTL's block-diagonal attention bias needs it to");
    const auto o = trainer_for(a, step_budget(a, train, a.batch), a.model + "-" + a.sampler);
    std::printf("%s multitask: %s on %zu tasks (%zu train examples per task at most, dev %s), %s sampler, "
                "%lld steps of %zu, lr %g, L %zu, %s\n",
                a.program.c_str(), a.model.c_str(), train.size(), a.train_per_task,
                a.dev_per_task ? std::to_string(a.dev_per_task).c_str() : "full", a.sampler.c_str(),
                static_cast<long long>(o.steps), a.batch, a.lr, a.seq_len, where.label.c_str());
    run_report r;
    if (a.model == "camtl") {
        camtl_options c;
        c.backbone = rd.config;
        c.seq_len = a.seq_len;
        c.tasks = heads_of(a, train);
        c.heads_read = reads(a);
        camtl_model<B, float> m(b, c);
        rng_stream init(a.seed);
        m.initialize(init);
        const auto rep = m.load_backbone(a.checkpoint, a.partial_backbone);
        if (!a.quiet) std::cerr << "backbone: " << rep.str() << '\n';
        m.apply_freezing();
        r = train_and_measure(m, b, a, sets, o, a.batch, "camtl (" + a.sampler + ")", rd.backbone);
        if (!a.save_model.empty()) save_model_directory(m, a, train);
    } else {  // pha, adapters, hyperformerpp: one pha_bert, differing in adapter_source only
        const auto opts = pha_options(a, rd.config, heads_of(a, train), source_of(a.model));
        r = train_pha(b, a, opts, sets, o, a.batch, a.model + " (" + a.sampler + ")",
                      [&](pha_bert<B, float>& m) {
                          const auto rep = m.load_backbone(a.checkpoint);
                          require_whole_backbone(a, rep);
                          if (!a.quiet) std::cerr << "backbone: " << rep.loaded.size() << " tensors loaded, " << rep.missing.size() << " new\n";
                      },
                      rd.backbone, a.save, &train);
        if (!a.save.empty() && a.leader()) {
            // What --mode transfer needs to rebuild the model: the task order fixes the prototype rows.
            nlohmann::json side{{"model", a.model}, {"tasks", split_list(a.tasks)}, {"passes", a.passes},
                                {"checkpoint", a.checkpoint}, {"seq_len", a.seq_len}, {"seed", a.seed}};
            std::ofstream sidecar(a.save + ".json");
            sidecar << side.dump(2) << '\n';
            sidecar.flush();
            if (!sidecar) throw io_error(a.save + ".json: cannot write the --save sidecar");
            std::printf("saved %s (+ %s.json)\n", a.save.c_str(), a.save.c_str());
        }
    }
    print_result(r);
    auto j = to_json(a, r);
    j["n_train"] = a.train_per_task;
    j["dev_per_task"] = a.dev_per_task;
    j["tasks"] = split_list(a.tasks);
    std::vector<data::task_result> floor;
    for (std::size_t t = 0; t < train.size(); ++t) floor.push_back(constant_predictor(train[t], dev[t]));
    add_protocol_fields(j, a, r.result, r.test, train, validation, dev, floor, where);
    append_json(a, j);
    return 0;
}

// ---- --mode transfer -------------------------------------------------------------------------------------

template <class B>
int run_transfer(B& b, args& a, const run_device& where) {
    // A source model directory names its tasks (in prototype-row order) and its longest input itself.
    std::optional<model_card> source_card;
    if (!a.source_model.empty()) {
        source_card = read_model_card(a.source_model);
        if (source_card->kind != "pha")
            usage("--source-model " + a.source_model + " holds a " + source_card->kind + " model, not a PHA one (--model pha)");
        if (a.seq_len == 0) a.seq_len = source_card->tokenizer.max_length;
    }
    real_data rd = open_checkpoint(b, a);
    if (a.lr == 0) a.lr = a.model == "full" ? 5e-5 : 3e-4;
    // The source model's tasks (its prototype rows) come from the model directory, the sidecar --save wrote,
    // or --tasks.
    std::vector<std::string> source_names = split_list(a.tasks);
    if (source_card) {
        std::vector<std::string> saved;
        for (const auto& t : source_card->tasks) saved.push_back(t.name);
        if (a.tasks_given && saved != source_names)
            usage("--tasks " + a.tasks + " differs from the tasks the model in " + a.source_model + " was trained on");
        source_names = saved;
    } else if (!a.source.empty() && std::filesystem::is_regular_file(a.source + ".json")) {
        std::ifstream in(a.source + ".json");
        nlohmann::json side;
        try {
            side = nlohmann::json::parse(in);
        } catch (const nlohmann::json::exception& e) {
            usage("--source " + a.source + ": its sidecar " + a.source + ".json is not JSON (" + e.what() + ")");
        }
        if (!side.is_object() || !side.contains("tasks") || !side["tasks"].is_array())
            usage("--source " + a.source + ": its sidecar " + a.source + ".json has no 'tasks' list");
        const auto saved = side.at("tasks").get<std::vector<std::string>>();
        if (a.tasks_given && saved != source_names)
            usage("--tasks " + a.tasks + " differs from the tasks " + a.source + " was trained on (see " + a.source + ".json)");
        if (side.value("model", std::string("pha")) != "pha") usage(a.source + " is not a --model pha run");
        if (side.value("passes", a.passes) != a.passes) usage(a.source + " was trained with --passes " + side.value("passes", a.passes));
        source_names = saved;
    }
    const data::task_info target_info = data::find_task(a.target);
    for (const auto& s : source_names)
        if (data::find_task(s).name == target_info.name) usage("the target '" + a.target + "' is one of the source tasks");

    const auto full_train = encode_task(data::load_task(a.target, a.data, data::split::train), *rd.tok, a.seq_len);
    const auto shots = few_shot_indices(full_train, a.k, a.sample_seed() ^ 0xf3e);
    const std::vector<encoded_task> train{take_rows(full_train, shots)};
    const std::vector<encoded_task> dev{encode_task(data::load_task(a.target, a.data, data::split::dev), *rd.tok, a.seq_len, a.dev_per_task, 0xde5)};
    // --validation-per-task: drawn (stratified, by the data seed) from the target's training examples that are
    // not among the k shots.
    std::vector<encoded_task> validation;
    if (a.validation_per_task > 0) {
        const std::set<std::size_t> taken(shots.begin(), shots.end());
        std::vector<std::size_t> rest;
        for (std::size_t i = 0; i < full_train.size(); ++i)
            if (!taken.contains(i)) rest.push_back(i);
        validation.push_back(carve_validation(take_rows(full_train, rest), a.validation_per_task, a.sample_seed() ^ 0x7a11da7e).validation);
    }
    const run_data sets{train, dev, &validation};
    const std::size_t batch = std::min(a.batch, train[0].size());
    const auto o = trainer_for(a, step_budget(a, train, batch), "transfer-" + a.model + "-" + a.target);
    std::printf("%s transfer: %s to %s with k = %zu training examples (%s; of %zu), dev %zu examples, "
                "%lld steps of %zu, lr %g, L %zu\n",
                a.program.c_str(), a.model.c_str(), target_info.name.c_str(), train[0].size(), class_counts(train[0]).c_str(),
                full_train.size(), dev[0].size(), static_cast<long long>(o.steps), batch, a.lr, a.seq_len);

    auto load_backbone = [&](auto& m) { require_whole_backbone(a, m.load_backbone(a.checkpoint)); };
    run_report r;
    std::optional<prototype_match> match;
    if (a.model == "pha") {
        auto load_source = [&]() -> pha_bert<B, float> {
            if (source_card) {  // the whole model, options and weights, checked against its checksums
                pha_bert<B, float> m = load_pretrained<pha_bert<B, float>>(b, a.source_model);
                if (m.options().source != adapter_source::prototype_hypernet)
                    usage("--source-model " + a.source_model + " holds a pha_bert with " +
                          (m.options().source == adapter_source::per_task ? "per-task adapters" : "HyperFormer++ adapters") +
                          ", not prototypes: transfer retrieves a prototype (a --model pha run's directory)");
                if (!a.quiet) std::cerr << "source " << a.source_model << ": loaded the model directory\n";
                return m;
            }
            std::vector<task_head_spec> heads;
            for (const auto& s : source_names) {
                const auto info = data::find_task(s);
                heads.push_back({info.name, info.kind == data::task_kind::regression ? 1 : static_cast<std::size_t>(info.num_labels())});
            }
            pha_bert<B, float> m(b, pha_options(a, rd.config, heads, adapter_source::prototype_hypernet));
            rng_stream init(a.seed);
            m.initialize(init);
            const auto rep = io::load_pretrained(m, a.source, {.strict = true});
            if (!a.quiet) std::cerr << "source " << a.source << ": " << rep.str() << '\n';
            return m;
        };
        pha_bert<B, float> source = load_source();
        match = retrieve(source, b, train, source_names);
        r = transfer_pha(b, a, source, *match, sets, o, batch, rd.backbone);
    } else if (a.model == "adapter") {
        r = train_pha(b, a, pha_options(a, rd.config, heads_of(a, train), adapter_source::per_task), sets, o, batch,
                      "fresh per-task adapter", load_backbone, rd.backbone, {}, &train);
    } else {
        r = transfer_full(b, a, rd.config, sets, o, batch, load_backbone, rd.backbone);
    }
    print_result(r);
    auto j = to_json(a, r);
    j["target"] = target_info.name;
    j["k"] = a.k;
    j["n_train"] = train[0].size();
    j["batch"] = batch;
    j["dev_size"] = dev[0].size();
    j["source_tasks"] = source_names;
    if (a.model == "pha") j["tune"] = a.tune;
    add_protocol_fields(j, a, r.result, r.test, train, validation,
                                  dev, {constant_predictor(train[0], dev[0])}, where);
    if (match) {
        j["source"] = source_card ? a.source_model : a.source;
        j["retrieved"] = match->task < source_names.size() ? source_names[match->task] : std::to_string(match->task);
        for (std::size_t t = 0; t < match->similarity.size() && t < source_names.size(); ++t)
            j["similarity"][source_names[t]] = match->similarity[t];
    }
    append_json(a, j);
    return 0;
}

// ---- the built-in default --------------------------------------------------------------------------------

/// The demo's new task, "repeat": does word 7 occur at least twice? A classification built on the count task's
/// inputs: related to the source task count, but not one of the tasks any model trains on before transfer.
inline encoded_task repeat_task(std::size_t n, std::size_t seq, std::uint64_t seed) {
    encoded_task t = synthetic_task(synthetic_kind::count, n, seq, seed);
    t.info = {"repeat", data::benchmark::glue, "", data::task_kind::classification, {"once or less", "twice or more"},
              {"text"}, "label", {data::metric::accuracy}};
    for (std::size_t i = 0; i < t.size(); ++i) {
        t.labels[i] = std::lround(t.scores[i] * 5.0f) >= 2 ? 1 : 0;
        t.scores[i] = 0;
    }
    return t;
}

template <class B>
int run_demo(B& b, args& a, const run_device& where) {
    const auto t0 = std::chrono::steady_clock::now();
    const bert_config config{.vocab_size = 40, .hidden = 64, .layers = 2, .heads = 4, .intermediate = 128,
                             .max_position = 16, .type_vocab_size = 2};
    a.seq_len = 16;
    if (a.lr == 0) a.lr = 1e-3;
    if (a.eval_every == 0) a.eval_every = 10;
    a.quiet = true;  // several short trainings: the summary lines say enough
    a.sampler = "proportional";
    a.head_input = "pooler";  // the demo's encoder is pretrained through its pooler (step 1)
    const std::size_t seq = a.seq_len;
    std::size_t backbone = 0;
    {
        bert_model<B, float> plain(b, config);
        backbone = count_parameters(plain).total;
    }
    auto task = [&](synthetic_kind k, std::size_t n, std::uint64_t seed) { return synthetic_task(k, n, seq, seed); };
    auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    std::printf("%s: built-in default (synthetic tasks, no download), %s\n", a.program.c_str(), where.label.c_str());
    const std::int64_t pre_steps = a.steps > 0 ? a.steps : 300, source_steps = a.steps > 0 ? a.steps : 2000,
                       transfer_steps = a.steps > 0 ? a.steps : 60;

    // 1. "Pretraining": full fine-tuning of a random tiny encoder on majority.
    multitask_bert<B, float> pretrained(b, {.backbone = config, .tasks = {{"majority", 2}}});
    {
        const std::vector<encoded_task> train{task(synthetic_kind::majority, 2000, 300)};
        const std::vector<encoded_task> dev{task(synthetic_kind::majority, 300, 400)};
        rng_stream init(a.seed);
        pretrained.initialize(init);
        auto o = trainer_for(a, pre_steps, "pretrain");
        o.eval_every = 0;
        const auto r = run_with_sampler(pretrained, b, a, train, dev, o, 32);
        std::printf("[1] pretraining a random encoder (hidden 64, 2 layers) by full fine-tuning on majority, %lld steps "
                    "of 32: dev majority %.3f  (%.0f s)\n",
                    static_cast<long long>(pre_steps), r.final[0].score, seconds());
    }
    auto from_pretrained = [&](auto& m) { copy_matching(pretrained, m); };

    // 2. PHA multi-task on the source tasks majority + count (fresh data), backbone frozen. The paper's sizes
    //    (r = 64, hypernetwork 128) would be several times this 64-wide encoder; the demo scales them down.
    auto small = [](pha_bert_options o) {
        o.bottleneck = 16;
        o.prototype_dim = 32;
        o.retriever_hidden = 64;
        o.hypernet_hidden = 64;
        o.hypernet_projection = 32;
        o.layer_embedding = 16;
        return o;
    };
    const std::vector<std::string> source_names{"majority", "count"};
    const std::vector<encoded_task> src_train{task(synthetic_kind::majority, 2000, 100), task(synthetic_kind::count, 2000, 102)};
    const std::vector<encoded_task> src_dev{task(synthetic_kind::majority, 300, 200), task(synthetic_kind::count, 300, 202)};
    pha_bert<B, float> source(b, small(pha_options(a, config, heads_of(a, src_train), adapter_source::prototype_hypernet)));
    {
        rng_stream init(a.seed);
        source.initialize(init);
        const std::size_t copied = copy_matching(pretrained, source);
        source.apply_freezing();
        auto o = trainer_for(a, source_steps, "pha-source");
        o.eval_every = 0;
        const auto r = run_with_sampler(source, b, a, src_train, src_dev, o, 32);
        std::printf("[2] PHA on the source tasks majority + count (fresh data; %zu backbone tensors copied and frozen, "
                    "%.1f %% of the backbone trained per task), %lld steps of 32: dev majority %.3f, count %.3f  (%.0f s)\n",
                    copied, source.parameter_report().percent_per_task(), static_cast<long long>(source_steps),
                    r.final[0].score, r.final[1].score, seconds());
    }

    // 3. Few-shot transfer to a new task related to one source: repeat (word 7 at least twice?, on count's inputs).
    a.k = 32;
    const auto pool = repeat_task(2000, seq, 110);
    const std::vector<encoded_task> train{take_rows(pool, few_shot_indices(pool, a.k, a.seed ^ 0xf3e))};
    const std::vector<encoded_task> dev{repeat_task(400, seq, 210)};
    const std::size_t batch = 16;
    std::printf("[3] few-shot transfer to the new task 'repeat' (does word 7 occur twice or more? count's inputs; no "
                "model has seen it): k = %zu (%s), each arm %lld steps of %zu from the pretrained encoder, lr %g, dev %zu (%s)\n",
                train[0].size(), class_counts(train[0]).c_str(), static_cast<long long>(transfer_steps), batch, a.lr,
                dev[0].size(), class_counts(dev[0]).c_str());
    const auto match = retrieve(source, b, train, source_names);
    std::vector<run_report> rows;
    const run_data sets{train, dev};
    rows.push_back(transfer_pha(b, a, source, match, sets, trainer_for(a, transfer_steps, "transfer-pha"), batch, backbone));
    rows.push_back(train_pha(b, a, small(pha_options(a, config, heads_of(a, train), adapter_source::per_task)), sets,
                             trainer_for(a, transfer_steps, "transfer-adapter"), batch, "fresh per-task adapter",
                             from_pretrained, backbone));
    rows.push_back(transfer_full(b, a, config, sets, trainer_for(a, transfer_steps, "transfer-full"), batch,
                                 from_pretrained, backbone));
    std::printf("  %-24s %10s %10s %10s\n", "repeat, k = 32", "best dev", "final dev", "trainable");
    for (const auto& r : rows)
        std::printf("  %-24s %10.4f %10.4f %10zu\n", r.label.c_str(), r.result.best[0].score, r.result.final[0].score,
                    r.result.counts.trainable);
    std::size_t most = 0;
    for (const int l : dev[0].labels) most += l == 1;
    most = std::max(most, dev[0].size() - most);
    std::printf("best dev = best of the evaluations every %lld steps, final = after the last step; always answering the "
                "dev set's most frequent class scores %.4f. Total %.0f s\n",
                static_cast<long long>(a.eval_every), static_cast<double>(most) / static_cast<double>(dev[0].size()),
                seconds());
    if (!a.json.empty())
        for (const auto& r : rows) {
            auto j = to_json(a, r);
            j["target"] = "repeat";
            j["k"] = a.k;
            j["retrieved"] = source_names[match.task];
            append_json(a, j);
        }
    return 0;
}

/// Runs the recipe's --mode on backend `b`; `where` names the device in the output and the records.
template <class B>
int run_on(B& b, args& a, const run_device& where) {
    if (a.mode == "multitask") return run_multitask(b, a, where);
    if (a.mode == "transfer") return run_transfer(b, a, where);
    return run_demo(b, a, where);
}

/// The recipe on GPU a.gpu (pha_fewshot_cuda.cu, in a build with CUDA; pha_fewshot.cpp's refuses otherwise).
int run_on_cuda(args& a);

}  // namespace hyperadapt::examples::pha_fewshot_recipe
