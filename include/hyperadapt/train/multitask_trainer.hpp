#pragma once
// The multi-task training loop, written once for every model and sampler:
//
//   each step:  rows = sampler's batch (MT-Uncertainty: one no-grad forward over the T·b candidates in train
//               mode, dropout active, as the authors do; then the top b) -> mixed-task batch -> loss (mean over
//               the tasks present) -> backward -> global-norm clipping -> AdamW with linear warmup/decay
//   every eval_every steps and at the end: each task's dev metric(s); both the best score per task over all
//               evaluations (what CA-MTL reports) and the final checkpoint's scores are kept, labelled as such
//   output:     progress (bar on a terminal, lines otherwise), metrics as JSONL, a PNG of the dev curves
//               (gnuplot), optional checkpoints (train/checkpoint.hpp) for bit-exact resume
//
// A model for this loop provides (see models/camtl.hpp):
//   double forward_loss(const multitask_batch<B,T>&, context&, run_mode);  void backward(context&);
//   std::vector<std::vector<T>> outputs(const multitask_batch<B,T>&, run_mode);  visit_parameters(f).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyperadapt/data/metrics.hpp"
#include "hyperadapt/nn/parameters.hpp"
#include "hyperadapt/optim/adamw.hpp"
#include "hyperadapt/optim/clip.hpp"
#include "hyperadapt/optim/schedule.hpp"
#include "hyperadapt/train/checkpoint.hpp"
#include "hyperadapt/train/metrics_log.hpp"
#include "hyperadapt/train/multitask_data.hpp"
#include "hyperadapt/train/progress.hpp"
#include "hyperadapt/train/sampler.hpp"

namespace hyperadapt {

template <class M, class B, class T>
concept multitask_model = parameterized<M> && requires(M& m, const M& cm, const multitask_batch<B, T>& b,
                                                       typename M::context& ctx, run_mode mode) {
    { cm.forward_loss(b, ctx, mode) } -> std::convertible_to<double>;
    m.backward(ctx);
    { cm.outputs(b, mode) } -> std::same_as<std::vector<std::vector<T>>>;
};

struct trainer_options {
    std::int64_t steps = 100;
    double lr = 2e-5;
    double warmup_proportion = 0.1;
    double weight_decay = 0.01;
    double max_grad_norm = 1.0;
    std::int64_t eval_every = 0;      ///< 0: evaluate only at the end
    std::size_t eval_batch = 64;
    std::uint64_t seed = 12;          ///< dropout stream
    std::filesystem::path out_dir{};  ///< metrics.jsonl, dev_curves.png, checkpoints/ (empty: none written)
    std::int64_t checkpoint_every = 0;
    bool show_progress = true;
    std::string run_name = "run";
};

struct training_result {
    std::vector<data::task_result> best;   ///< per task, the best score over all evaluations
    std::vector<data::task_result> final;  ///< per task, the last evaluation
    double best_average = 0, final_average = 0;
    double fraction_used = 1;  ///< examples used for updates / candidates drawn
    std::int64_t steps = 0;
    double seconds = 0;
    parameter_count counts;
    std::vector<double> losses;  ///< training loss per step
};

/// Every task's dev results for the model as it is now.
template <class Model, class B, class T>
std::vector<data::task_result> evaluate_tasks(Model& model, B& backend, std::span<const encoded_task> dev,
                                              std::size_t eval_batch) {
    std::vector<data::task_result> out;
    for (std::size_t t = 0; t < dev.size(); ++t) {
        const encoded_task& d = dev[t];
        std::vector<double> predicted;
        std::vector<double> gold;
        for (std::size_t first = 0; first < d.size(); first += eval_batch) {
            std::vector<sample_ref> rows;
            for (std::size_t i = first; i < std::min(d.size(), first + eval_batch); ++i) rows.push_back({t, i});
            const auto batch = make_batch<B, T>(backend, dev, rows);
            const auto y = model.outputs(batch, run_mode::inference());
            for (std::size_t r = 0; r < rows.size(); ++r) {
                const auto& o = y[r];
                predicted.push_back(d.is_regression()
                                        ? static_cast<double>(o[0])
                                        : static_cast<double>(std::max_element(o.begin(), o.end()) - o.begin()));
                gold.push_back(d.is_regression() ? static_cast<double>(d.scores[rows[r].index])
                                                 : static_cast<double>(d.labels[rows[r].index]));
            }
        }
        if (d.is_regression()) {
            out.push_back(data::evaluate(d.info, predicted, gold));
        } else {
            std::vector<int> p(predicted.begin(), predicted.end()), g(gold.begin(), gold.end());
            out.push_back(data::evaluate(d.info, p, g));
        }
    }
    return out;
}

template <class Model, sampler S, class B = typename Model::backend_type, class T = typename Model::value_type>
    requires multitask_model<Model, B, T>
training_result train_multitask(Model& model, S& sampler, B& backend, std::span<const encoded_task> train,
                                std::span<const encoded_task> dev, const trainer_options& o) {
    const auto start = std::chrono::steady_clock::now();
    training_result result;
    result.counts = count_parameters(model);
    adamw<B, T> opt(model, {.lr = o.lr, .weight_decay = o.weight_decay});
    const auto warmup = static_cast<std::int64_t>(std::llround(o.warmup_proportion * static_cast<double>(o.steps)));
    linear_warmup_schedule schedule(o.lr, warmup, o.steps);
    rng_stream dropout_rng(o.seed);

    std::optional<metrics_log> log;
    if (!o.out_dir.empty()) log.emplace(o.out_dir / "metrics.jsonl");
    progress_bar bar(o.steps, stderr, std::max<std::int64_t>(1, o.steps / 20));

    auto score_candidates = [&](const std::vector<example_ref>& cand) {
        // One no-grad forward over the candidates in train mode (dropout on), as the authors' sampler does.
        const auto batch = make_batch<B, T>(backend, train, cand);
        const auto y = model.outputs(batch, run_mode::train(dropout_rng));
        std::vector<std::vector<float>> per_task(train.size());
        for (std::size_t r = 0; r < cand.size(); ++r)
            for (const T v : y[r]) per_task[cand[r].task].push_back(static_cast<float>(v));
        return per_task;
    };

    auto evaluate_now = [&](std::int64_t step) {
        auto res = evaluate_tasks<Model, B, T>(model, backend, dev, o.eval_batch);
        if (result.best.empty()) result.best = res;
        for (std::size_t t = 0; t < res.size(); ++t) {
            if (res[t].score > result.best[t].score || std::isnan(result.best[t].score)) result.best[t] = res[t];
            if (log) {
                nlohmann::json rec{{"run", o.run_name}, {"split", "dev"}, {"step", step}, {"task", res[t].task},
                                   {"score", res[t].score}};
                for (const auto& v : res[t].values) rec[std::string(data::to_string(v.which))] = v.value;
                log->write(rec);
            }
        }
        result.final = res;
        std::string line = "dev @" + std::to_string(step) + ":";
        for (const auto& r : res) line += " " + r.task + " " + std::to_string(r.score).substr(0, 6);
        if (o.show_progress) bar.message(line);
    };

    for (std::int64_t step = 0; step < o.steps; ++step) {
        std::vector<example_ref> rows;
        if constexpr (S::needs_scores)
            rows = next_batch(sampler, score_candidates);
        else
            rows = next_batch(sampler);
        const auto batch = make_batch<B, T>(backend, train, rows);
        typename Model::context ctx;
        zero_grad(model);
        const double loss = model.forward_loss(batch, ctx, run_mode::train(dropout_rng));
        model.backward(ctx);
        const double norm = clip_grad_norm(model, o.max_grad_norm);
        opt.set_lr(schedule.lr(step));
        opt.step();
        result.losses.push_back(loss);
        if (log)
            log->write({{"run", o.run_name}, {"split", "train"}, {"step", step + 1}, {"loss", loss},
                        {"grad_norm", norm}, {"lr", schedule.lr(step)}});
        if (o.show_progress) bar.update(step + 1, "loss " + std::to_string(loss).substr(0, 6));
        if (o.eval_every > 0 && (step + 1) % o.eval_every == 0 && step + 1 < o.steps) evaluate_now(step + 1);
        if (o.checkpoint_every > 0 && !o.out_dir.empty() && (step + 1) % o.checkpoint_every == 0) {
            training_state st;
            st.step = step + 1;
            st.rng["dropout"] = dropout_rng;
            save_sampler(sampler, st);
            checkpoint_directory(o.out_dir / "checkpoints").save(model, opt, st);
        }
    }
    evaluate_now(o.steps);
    result.steps = o.steps;
    result.fraction_used = sampler.fraction_used();
    result.best_average = data::average_score(result.best);
    result.final_average = data::average_score(result.final);
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (log) {
        std::string why;
        if (!plot_dev_curves(log->path(), o.out_dir / "dev_curves.png", "score", &why) && o.show_progress)
            bar.message("no plot: " + why);
    }
    return result;
}

}  // namespace hyperadapt
