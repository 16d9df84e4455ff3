#pragma once
// The plain multi-task baseline: a BERT-family encoder shared by all tasks, fully fine-tuned, with one head per
// task (multitask_heads). With one task it is ordinary single-task fine-tuning. The same training loop
// (train/multitask_trainer.hpp) runs it and CA-MTL, so the two differ only in the model: here the composition of
// models/multitask_model.hpp with no task conditioning and Hugging Face's BertEncoder.
#include <string>
#include <vector>

#include "hyperadapt/layers/encoder_layer.hpp"
#include "hyperadapt/models/multitask_model.hpp"

namespace hyperadapt {

struct multitask_bert_options {
    bert_config backbone;
    std::vector<task_head_spec> tasks;           ///< one head per task, in task-id order
    double head_dropout = 0.1;
    head_input heads_read = head_input::pooler;  ///< BERT's pooler, or the masked mean of the last layer
};

template <elementwise_backend B, class T = float>
struct multitask_bert_recipe {
    using backend_type = B;
    using value_type = T;
    using options_type = multitask_bert_options;
    using conditioning_type = no_conditioning<B, T>;
    using encoder_type = encoder<B, T>;

    static conditioning_type make_conditioning(B&, const options_type&) { return {}; }
    static encoder_type make_encoder(B& b, const options_type& o) {
        return encoder_type(b, o.backbone.layer(), o.backbone.layers, "encoder");
    }
    static bool frozen(const options_type&, const std::string&) { return false; }  // full fine-tuning
    static std::string checkpoint_name(const options_type&, const std::string& name) { return name; }
};

template <elementwise_backend B, class T = float>
using multitask_bert = multitask_model<multitask_bert_recipe<B, T>>;

}  // namespace hyperadapt
