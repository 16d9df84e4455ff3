#pragma once
// The plain multi-task baseline: a BERT-family encoder shared by all tasks, fully fine-tuned, with one head per
// task (multitask_heads). With one task it is ordinary single-task fine-tuning. The same training loop
// (train/multitask_trainer.hpp) runs it and CA-MTL, so the two differ only in the model.
#include <filesystem>
#include <vector>

#include "hyperadapt/io/hf_checkpoint.hpp"
#include "hyperadapt/layers/mean_pooling.hpp"
#include "hyperadapt/layers/multitask_heads.hpp"
#include "hyperadapt/models/bert.hpp"
#include "hyperadapt/train/multitask_data.hpp"

namespace hyperadapt {

template <elementwise_backend B, class T = float>
class multitask_bert {
public:
    using backend_type = B;
    using value_type = T;
    struct context {
        typename bert_model<B, T>::context bert;
        typename mean_pooling<B, T>::context mean;
        typename multitask_heads<B, T>::context heads;
    };

    /// `reads`: what the heads read — BERT's pooler, or the masked mean of the last layer.
    multitask_bert(B& backend, const bert_config& c, std::vector<task_head_spec> tasks, T head_dropout = T(0.1),
                   head_input reads = head_input::pooler)
        : bert_(backend, c),
          mean_(backend, c.hidden, "mean_pooling"),
          heads_(backend, c.hidden, std::move(tasks), head_dropout, "heads"),
          reads_(reads) {}

    template <class Rng>
    void initialize(Rng& rng) {
        bert_.initialize(rng);
        heads_.initialize(rng, static_cast<T>(bert_.config().initializer_range));
    }
    /// Loads a Hugging Face BERT checkpoint into the encoder (non-strict: the heads stay as initialised).
    io::load_report load_backbone(const std::filesystem::path& checkpoint) {
        return io::load_pretrained(bert_, checkpoint, {.strict = true});
    }

    [[nodiscard]] std::string name() const { return ""; }
    bert_model<B, T>& bert() noexcept { return bert_; }
    multitask_heads<B, T>& heads() noexcept { return heads_; }

    double forward_loss(const multitask_batch<B, T>& b, context& ctx, run_mode mode) const {
        return heads_.forward_loss(sentence(b, ctx, mode), task_rows(b), b.labels, b.scores, ctx.heads, mode);
    }
    /// Gradients of loss_scale x the batch loss.
    void backward(context& ctx, T loss_scale = T(1)) {
        const auto d = heads_.backward(ctx.heads, loss_scale);
        if (reads_ == head_input::mean)
            bert_.backward(mean_.backward(d, ctx.mean), {}, ctx.bert);
        else
            bert_.backward({}, d, ctx.bert);
    }
    std::vector<std::vector<T>> outputs(const multitask_batch<B, T>& b, run_mode mode) const {
        context ctx;
        return heads_.outputs(sentence(b, ctx, mode), task_rows(b), mode);
    }

    template <class F>
    void visit_parameters(F&& f) {
        bert_.visit_parameters(f);
        heads_.visit_parameters(f);
    }

private:
    tensor<B, T> sentence(const multitask_batch<B, T>& b, context& ctx, run_mode mode) const {
        const auto out = bert_.forward(b.input_ids, b.token_type_ids, b.mask, ctx.bert, mode);
        return reads_ == head_input::mean ? mean_.forward(out.last_hidden, b.mask, ctx.mean, mode) : out.pooled;
    }
    static std::vector<std::int32_t> task_rows(const multitask_batch<B, T>& b) {
        std::vector<std::int32_t> t;
        for (const auto& r : b.rows) t.push_back(static_cast<std::int32_t>(r.task));
        return t;
    }

    bert_model<B, T> bert_;
    mean_pooling<B, T> mean_;
    multitask_heads<B, T> heads_;
    head_input reads_;
};

}  // namespace hyperadapt
