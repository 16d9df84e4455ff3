#include "serve/predictor_cpu_reference.hpp"

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/models/camtl.hpp"
#include "hyperadapt/models/model_directory.hpp"
#include "hyperadapt/models/pha_bert.hpp"
#include "hyperadapt/serve/predictor.hpp"
#include "support/tiny_model_directory.hpp"

namespace hyperadapt::test {

std::vector<std::string> reference_sentences() {
    return {"w5 w6 w7 w7", "w9", "w12 w13 w14 w15 w16 w17 w18 w19 w20", "w30 w31 w30 w8"};
}

namespace {

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
    save_pretrained(m, dir, tiny_description(vocab));
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
    const auto vocab = write_tiny_vocab(root);
    cpu b(cpu::options{.threads = 1});
    std::vector<cpu_predictions> out;
    camtl_options c;
    c.backbone = tiny_backbone;
    c.tasks = tiny_heads();
    c.seq_len = tiny_length;
    camtl_model<cpu, float> cm(b, c);
    out.push_back(save_and_predict(cm, b, root / "camtl", vocab, "camtl"));
    pha_bert<cpu, float> pm(b, tiny_pha_options());
    out.push_back(save_and_predict(pm, b, root / "pha", vocab, "pha"));
    return out;
}

}  // namespace hyperadapt::test
