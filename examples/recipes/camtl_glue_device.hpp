#pragma once
// The device half of the CA-MTL recipe (camtl_glue.cpp): building, training, measuring and saving its models on
// a backend policy B. The recipe's own code -- options, data, tokenizing, reports, records -- calls it through
// `camtl_glue_device` without naming the backend, so it compiles once; each backend's translation unit
// instantiates `camtl_glue_on<B>` and names its factory: camtl_glue.cpp the CPU policy, camtl_glue_cuda.cu the
// CUDA backend (--device cuda, in a build with CUDA). The library keeps the backend a type; only this edge
// chooses it at run time.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hyperadapt/models/bert.hpp"
#include "hyperadapt/models/camtl.hpp"
#include "hyperadapt/distributed/communicator_ref.hpp"
#include "hyperadapt/models/multitask_bert.hpp"
#include "../example_support.hpp"
#include "recipe_options.hpp"

namespace hyperadapt::examples {

/// What every configuration of a CA-MTL run shares: the backbone's config and the encoded tasks.
struct camtl_glue_setup {
    bert_config config;
    std::vector<encoded_task> train, validation, dev;  // validation: empty without --validation-per-task
    std::size_t backbone_params = 0;
};

/// The recipe's models on one device.
class camtl_glue_device {
public:
    virtual ~camtl_glue_device() = default;
    /// Where the products run, for the run's record.
    [[nodiscard]] virtual run_device where() const = 0;
    /// "2 threads", "GPU 0 (NVIDIA H100 ...)": for the built-in default's first line.
    [[nodiscard]] virtual std::string label() const = 0;
    /// The parameters of a plain BERT backbone of `config` (the "% of the backbone" of every report).
    [[nodiscard]] virtual std::size_t backbone_parameters(const bert_config& config) = 0;
    /// Builds the model --model names over the tasks `which` of `s`, loads the backbone when `pretrained`,
    /// trains and measures it, and writes it to --save-model when asked.
    virtual measured_run train(const camtl_glue_args& a, const camtl_glue_setup& s, const std::vector<std::size_t>& which,
                               trainer_options o, bool pretrained) = 0;
};

/// The CPU policy of the examples (camtl_glue.cpp), and the CUDA backend on GPU a.gpu (camtl_glue_cuda.cu; in a
/// build with CUDA only). Each throws a hyperadapt error naming the device when it cannot start.
std::unique_ptr<camtl_glue_device> make_camtl_glue_cpu(const camtl_glue_args& a);
std::unique_ptr<camtl_glue_device> make_camtl_glue_cuda(const camtl_glue_args& a);

namespace camtl_glue_detail {

/// all-MiniLM-L6-v2 (sentence-transformers) was trained through mean pooling and its pooler output hardly
/// varies between inputs; --head-input mean lets the heads read the masked mean instead.
inline head_input reads(const camtl_glue_args& a) { return a.head_input == "mean" ? head_input::mean : head_input::pooler; }

inline std::vector<task_head_spec> heads_for(const camtl_glue_args& a, const camtl_glue_setup& s,
                                             const std::vector<std::size_t>& which) {
    std::vector<task_head_spec> h;
    for (auto t : which) h.push_back(head_for(s.train[t], a.scale_targets));
    return h;
}

/// --save-model DIR: the trained model as a model directory (DIR/<task> for each model of --model single).
template <class Model>
void save_model(Model& m, const camtl_glue_args& a, const camtl_glue_setup& s, const std::vector<std::size_t>& which) {
    if (a.save_model.empty()) return;
    std::filesystem::path dir = a.save_model;
    if (a.model == "single") {
        std::error_code ec;
        std::filesystem::create_directories(dir, ec);
        dir /= s.train[which[0]].info.name;
    }
    std::vector<const encoded_task*> tasks;
    for (auto t : which) tasks.push_back(&s.train[t]);
    save_model_directory(m, dir, a, tasks, a.program + " --model " + a.model + " --sampler " + a.sampler);
}

}  // namespace camtl_glue_detail

/// camtl_glue_device on the backend policy B, which it owns.
template <class B>
class camtl_glue_on final : public camtl_glue_device {
public:
    /// `make` returns the backend (a prvalue: a backend that cannot move, like CUDA's, is built in place).
    template <class Make>
    camtl_glue_on(run_device where, Make&& make) : where_(std::move(where)), b_(std::forward<Make>(make)()) {}
    void set_label(std::string label) { label_ = std::move(label); }
    /// Trains and measures over `processes` instead of the arguments' (NCCL over the launcher's ranks on GPUs:
    /// cuda_device.hpp's gpu_ranks); `keep` owns what it refers to, for as long as this object lives.
    void use_processes(std::shared_ptr<const void> keep, communicator_ref processes) {
        keep_ = std::move(keep);
        processes_ = processes;
    }

    [[nodiscard]] run_device where() const override { return where_; }
    [[nodiscard]] std::string label() const override { return label_; }
    [[nodiscard]] B& backend() noexcept { return b_; }

    std::size_t backbone_parameters(const bert_config& config) override {
        bert_model<B, float> plain(b_, config);
        return count_parameters(plain).total;
    }

    measured_run train(const camtl_glue_args& a, const camtl_glue_setup& s, const std::vector<std::size_t>& which,
                       trainer_options o, bool pretrained) override {
        using namespace camtl_glue_detail;
        std::size_t examples = 0;
        for (auto t : which) examples += s.train[t].size();
        o.steps = a.steps > 0 ? a.steps
                              : std::max<std::int64_t>(1, static_cast<std::int64_t>(
                                                              a.epochs * std::ceil(static_cast<double>(examples) /
                                                                                   static_cast<double>(a.batch))));
        rng_stream init(a.seed);
        if (a.model == "camtl") {
            camtl_options c;
            c.backbone = s.config;
            c.seq_len = s.train[which[0]].seq_len;
            c.tasks = heads_for(a, s, which);
            c.conditional_alignment = a.alignment;
            c.block_diagonal_bias = a.cbda;
            c.conditional_layer_norm = a.cln;
            c.conditional_adapter = a.adapter;
            c.freeze_cbda_projection_in_frozen_layers = a.freeze_cbda_projection;
            c.load_pretrained_top_layer = a.load_top_layer;
            c.heads_read = reads(a);
            if (!pretrained) c.frozen_layers = 0;  // nothing to keep fixed in a random model
            camtl_model<B, float> m(b_, c);
            m.initialize(init);
            if (pretrained) {
                const auto report = m.load_backbone(a.checkpoint, a.partial_backbone);
                if (!a.quiet || !report.complete())
                    std::cerr << "backbone: " << report.str()
                              << (report.unexpected.empty() ? "" : " (unused checkpoint tensors)") << '\n';
            }
            m.apply_freezing();
            auto out = run(m, a, s, which, o);
            save_model(m, a, s, which);
            return out;
        }
        multitask_bert<B, float> m(b_, {.backbone = s.config, .tasks = heads_for(a, s, which), .heads_read = reads(a)});
        m.initialize(init);
        if (pretrained) m.load_backbone(a.checkpoint);
        auto out = run(m, a, s, which, o);
        save_model(m, a, s, which);
        return out;
    }

private:
    template <class Model>
    measured_run run(Model& model, const camtl_glue_args& a, const camtl_glue_setup& s,
                     const std::vector<std::size_t>& which, const trainer_options& o) {
        std::vector<encoded_task> train, validation, dev;
        for (auto t : which) {
            train.push_back(s.train[t]);
            dev.push_back(s.dev[t]);
            if (!s.validation.empty()) validation.push_back(s.validation[t]);
        }
        if (!processes_) return train_and_measure(model, b_, a, a.batch, train, validation, dev, o);
        camtl_glue_args over = a;
        over.processes = *processes_;
        return train_and_measure(model, b_, over, a.batch, train, validation, dev, o);
    }

    run_device where_;
    std::string label_;
    B b_;
    std::optional<communicator_ref> processes_;
    std::shared_ptr<const void> keep_;  // after b_: what it holds (an NCCL communicator on b_'s stream) goes first
};

}  // namespace hyperadapt::examples
