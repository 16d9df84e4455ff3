#include "serve/predictor_cpu_reference.hpp"

#include <fstream>

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/models/camtl.hpp"
#include "hyperadapt/models/model_directory.hpp"
#include "hyperadapt/models/pha_bert.hpp"
#include "hyperadapt/serve/predictor.hpp"

namespace hyperadapt::test {

std::vector<std::string> reference_sentences() {
    return {"w5 w6 w7 w7", "w9", "w12 w13 w14 w15 w16 w17 w18 w19 w20", "w30 w31 w30 w8"};
}

namespace {
const bert_config tiny{.vocab_size = 40, .hidden = 16, .layers = 2, .heads = 2, .intermediate = 24, .max_position = 16};

template <class Model>
cpu_predictions save_and_predict(Model& m, cpu& b, const std::filesystem::path& dir, const std::filesystem::path& vocab,
                                 const std::string& kind) {
    rng_stream init(9);
    m.initialize(init);
    // Non-zero values where initialisation leaves zeros (biases, CBDA's A), so no path is trivially equal.
    std::uint64_t seed = 77;
    m.visit_parameters([&](const std::string&, parameter<cpu, float>& p) {
        b.fill_uniform(p.size(), seed++, 0, -0.2f, 0.2f, p.value.data());
    });
    m.apply_freezing();
    model_description d;
    d.vocab = vocab;
    d.tasks = {{"majority", {"few", "many"}, 1, 1.0}, {"count", {}, 1, 2.0}};
    d.tokenizer.max_length = 16;
    save_pretrained(m, dir, d);
    const auto p = predictor<cpu>::load(dir, cpu(cpu::options{.threads = 1}));
    cpu_predictions out{kind, dir, {}, {}};
    std::vector<text_input> x;
    for (const auto& s : reference_sentences()) x.push_back({s});
    for (const char* task : {"majority", "count"})
        for (const auto& y : p.predict(task, x)) {
            out.tasks.emplace_back(task);
            out.answers.push_back(y.label >= 0 ? y.probabilities : std::vector<double>{y.value});
        }
    return out;
}
}  // namespace

std::vector<cpu_predictions> save_models_and_predict_on_cpu(const std::filesystem::path& root) {
    std::filesystem::create_directories(root);
    const auto vocab = root / "vocab.txt";
    {
        std::ofstream f(vocab);
        f << "[PAD]\n[CLS]\n[SEP]\n[UNK]\n[MASK]\n";
        for (int i = 5; i < 40; ++i) f << 'w' << i << '\n';
    }
    cpu b(cpu::options{.threads = 1});
    const std::vector<task_head_spec> heads{{"majority", 2}, {"count", 1, 2.0}};
    std::vector<cpu_predictions> out;
    camtl_options c;
    c.backbone = tiny;
    c.tasks = heads;
    c.seq_len = 16;
    camtl_model<cpu, float> cm(b, c);
    out.push_back(save_and_predict(cm, b, root / "camtl", vocab, "camtl"));
    pha_bert_options p;
    p.backbone = tiny;
    p.tasks = heads;
    p.bottleneck = 4;
    p.prototype_dim = 8;
    p.retriever_hidden = 8;
    p.hypernet_hidden = 8;
    p.hypernet_projection = 8;
    p.layer_embedding = 8;
    pha_bert<cpu, float> pm(b, p);
    out.push_back(save_and_predict(pm, b, root / "pha", vocab, "pha"));
    return out;
}

}  // namespace hyperadapt::test
