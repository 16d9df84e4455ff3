#define BOOST_TEST_MODULE models_custom
// The model of examples/04_compose_custom_model (CA-MTL's conditional attention and layer norms with PHA's
// generated adapters, assembled from the layer templates): whole-model gradients in double, and the parameters
// its composition visits.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "../../examples/04_compose_custom_model.hpp"
#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/testing/gradcheck.hpp"
#include "hyperadapt/train/synthetic_tasks.hpp"
#include "support/model_gradcheck.hpp"
#include "support/parameter_coverage.hpp"

using namespace hyperadapt;

namespace {
hybrid::options tiny_options() {
    hybrid::options o;
    o.backbone = {.vocab_size = 40, .hidden = 8, .layers = 2, .heads = 2, .intermediate = 12, .max_position = 8};
    o.seq_len = 8;
    o.tasks = {{"order", 2}, {"majority", 2}, {"count", 1}};
    return o;
}
std::vector<encoded_task> tiny_tasks() {
    return {synthetic_task(synthetic_kind::order, 8, 8, 3), synthetic_task(synthetic_kind::majority, 8, 8, 4),
            synthetic_task(synthetic_kind::count, 8, 8, 5)};
}
}  // namespace

BOOST_AUTO_TEST_CASE(whole_model_gradients_with_mixed_tasks) {
    cpu b;
    hybrid::model<cpu, double> m(b, tiny_options());
    rng_stream init(1);
    m.initialize(init);
    // CBDA's A and the FiLM biases start at zero: give them values so that no path is degenerate.
    std::uint64_t seed = 50;
    m.visit_parameters([&](const std::string& n, parameter<cpu, double>& p) {
        if (n.find("random_weight_matrix") != std::string::npos || n.find("gb_weights.bias") != std::string::npos)
            b.fill_uniform(p.size(), seed++, 0, -0.3, 0.3, p.value.data());
    });
    m.apply_freezing();
    const auto tasks = tiny_tasks();
    const std::vector<sample_ref> rows{{0, 0}, {1, 1}, {2, 2}, {0, 3}, {2, 4}, {1, 5}};
    const auto batch = make_batch<cpu, double>(b, tasks, rows);
    const auto r = testing::check_model_gradients(m, b, batch, {.max_checks_per_tensor = 6, .allow_zero_gradient = true});
    BOOST_TEST(r.ok, r.report);
    BOOST_TEST(r.checked > 200u);
}

BOOST_AUTO_TEST_CASE(the_composition_visits_every_part_and_freezes_the_lower_half) {
    cpu b;
    hybrid::model<cpu, float> m(b, tiny_options());
    m.apply_freezing();
    std::vector<std::string> names, trainable;
    m.visit_parameters([&](const std::string& n, parameter<cpu, float>& p) {
        names.push_back(n);
        if (p.trainable()) trainable.push_back(n);
    });
    auto has = [](const std::vector<std::string>& v, const std::string& s) {
        return std::find(v.begin(), v.end(), s) != v.end();
    };
    // Each part of the composition, in its order: embeddings, task embedding, prototypes, hypernetwork, the plain
    // lower layer, the hybrid upper layer with its CBDA, CLN and nothing of an own adapter, pooler, heads.
    for (const char* n : {"embeddings.word_embeddings.weight", "task_embedding.weight", "prototypes.weight",
                          "hypernet.decoder.weight_up.weight", "encoder.layer.0.attention.self.query.weight",
                          "encoder.layer.1.attention.self.random_weight_matrix",
                          "encoder.layer.1.attention.self.cond_block_diag_attn.gb_weights.weight",
                          "encoder.layer.1.output.LayerNorm.ln_weight_modulation.gb_weights.weight",
                          "pooler.dense.weight", "heads.count.weight"})
        BOOST_TEST(has(names, n), n);
    BOOST_TEST(std::none_of(names.begin(), names.end(),
                            [](const std::string& n) { return n.find("adapter_down_manual") != std::string::npos; }));
    BOOST_TEST(!has(trainable, "encoder.layer.0.attention.self.query.weight"));
    BOOST_TEST(!has(trainable, "embeddings.word_embeddings.weight"));
    BOOST_TEST(has(trainable, "encoder.layer.1.attention.self.query.weight"));
    BOOST_TEST(has(trainable, "hypernet.decoder.weight_up.weight"));
}

BOOST_AUTO_TEST_CASE(every_parameter_the_loss_reads_is_visited) {
    cpu b;
    hybrid::model<cpu, double> first(b, tiny_options()), second(b, tiny_options());
    rng_stream s1(1), s2(2);
    first.initialize(s1);
    second.initialize(s2);
    const auto tasks = tiny_tasks();
    const auto batch = make_batch<cpu, double>(b, tasks, std::vector<sample_ref>{{0, 0}, {1, 1}, {2, 2}, {0, 3}});
    const std::string report = testing::unvisited_parameter_report(first, second, batch);
    BOOST_TEST(report.empty(), report);
}

namespace {
/// The model with one parameter left out of its visit, as a hand-written visit_parameters that forgot a member
/// would be: the check above must catch it.
template <class M>
struct forgetful_visit {
    using context = typename M::context;
    M& m;
    std::string forgotten;
    template <class Batch>
    double forward_loss(const Batch& b, context& ctx, run_mode mode) const {
        return m.forward_loss(b, ctx, mode);
    }
    void backward(context& ctx) { m.backward(ctx); }
    template <class F>
    void visit_parameters(F&& f) {
        m.visit_parameters([&](const std::string& n, auto& p) {
            if (n != forgotten) f(n, p);
        });
    }
};
}  // namespace

BOOST_AUTO_TEST_CASE(a_parameter_left_out_of_the_visit_is_caught) {
    for (const char* forgotten : {"encoder.layer.1.attention.self.query.weight", "task_embedding.weight",
                                  "prototypes.weight", "hypernet.decoder.weight_up.weight", "pooler.dense.weight",
                                  "embeddings.word_embeddings.weight"}) {
        cpu b;
        hybrid::model<cpu, double> first(b, tiny_options()), second(b, tiny_options());
        rng_stream s1(1), s2(2);
        first.initialize(s1);
        second.initialize(s2);
        bool exists = false;
        first.visit_parameters([&](const std::string& n, auto&) { exists = exists || n == forgotten; });
        BOOST_TEST_REQUIRE(exists, forgotten << " is not a parameter of the model (renamed?)");
        forgetful_visit<hybrid::model<cpu, double>> broken_first{first, forgotten}, broken_second{second, forgotten};
        const auto tasks = tiny_tasks();
        const auto batch = make_batch<cpu, double>(b, tasks, std::vector<sample_ref>{{0, 0}, {1, 1}, {2, 2}, {0, 3}});
        BOOST_TEST(!testing::unvisited_parameter_report(broken_first, broken_second, batch).empty(),
                   "forgetting " << forgotten);
    }
}
