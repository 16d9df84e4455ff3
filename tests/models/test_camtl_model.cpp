#define BOOST_TEST_MODULE models_camtl
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/data/validation_split.hpp"
#include "hyperadapt/models/camtl.hpp"
#include "hyperadapt/models/multitask_bert.hpp"
#include "hyperadapt/testing/gradcheck.hpp"
#include "hyperadapt/train/multitask_trainer.hpp"
#include "hyperadapt/train/samplers/mt_uncertainty.hpp"
#include "hyperadapt/train/samplers/size_proportional.hpp"
#include "hyperadapt/train/synthetic_tasks.hpp"
#include "support/model_gradcheck.hpp"
#include "support/padding_invariance.hpp"
#include "support/parameter_coverage.hpp"
#include "support/temp_dir.hpp"

using namespace hyperadapt;
namespace tt = boost::test_tools;
namespace fs = std::filesystem;

namespace {
const bert_config tiny{.vocab_size = 40, .hidden = 8, .layers = 2, .heads = 2, .intermediate = 12, .max_position = 8};

camtl_options tiny_options() {
    camtl_options o;
    o.backbone = tiny;
    o.seq_len = 8;
    o.tasks = {{"order", 2}, {"majority", 2}, {"count", 1}};
    return o;
}

std::vector<encoded_task> tiny_tasks(std::size_t n, std::uint64_t seed) {
    return {synthetic_task(synthetic_kind::order, n, 8, seed), synthetic_task(synthetic_kind::majority, n, 8, seed + 1),
            synthetic_task(synthetic_kind::count, n, 8, seed + 2)};
}

template <class B, class T>
multitask_batch<B, T> mixed_batch(B& b, const std::vector<encoded_task>& tasks) {
    const std::vector<sample_ref> rows{{0, 0}, {1, 1}, {2, 2}, {0, 3}, {2, 4}, {1, 5}};
    return make_batch<B, T>(b, tasks, rows);
}

std::vector<std::string> names_of(camtl_model<cpu, double>& m, bool trainable_only) {
    std::vector<std::string> out;
    m.visit_parameters([&](const std::string& n, parameter<cpu, double>& p) {
        if (!trainable_only || p.trainable()) out.push_back(n);
    });
    return out;
}
/// BERT's initialisation, then values for the parts that start at zero (A, the FiLM biases) so that no path is
/// degenerate, then the freezing rule.
void initialize_without_zeros(camtl_model<cpu, double>& m, cpu& b, std::uint64_t seed) {
    rng_stream init(1);
    m.initialize(init);
    m.visit_parameters([&](const std::string& n, parameter<cpu, double>& p) {
        if (n.find("random_weight_matrix") != std::string::npos || n.find("gb_weights.bias") != std::string::npos)
            b.fill_uniform(p.size(), seed++, 0, -0.3, 0.3, p.value.data());
    });
    m.apply_freezing();
}
bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }
bool any_contains(const std::vector<std::string>& v, const std::string& s) {
    return std::any_of(v.begin(), v.end(), [&](const std::string& n) { return n.find(s) != std::string::npos; });
}
}  // namespace

BOOST_AUTO_TEST_CASE(whole_model_gradients_with_mixed_tasks) {
    for (const auto reads : {head_input::pooler, head_input::mean}) {
        cpu b;
        auto o = tiny_options();
        o.heads_read = reads;
        o.frozen_layers = 0;
        o.freeze_embeddings = false;
        camtl_model<cpu, double> m(b, o);
        initialize_without_zeros(m, b, 50);
        const auto tasks = tiny_tasks(8, 3);
        const auto batch = mixed_batch<cpu, double>(b, tasks);
        const auto r =
            testing::check_model_gradients(m, b, batch, {.max_checks_per_tensor = 6, .allow_zero_gradient = true});
        BOOST_TEST(r.ok, r.report);
        BOOST_TEST(r.checked > 300u);
    }
}

BOOST_AUTO_TEST_CASE(freezing_follows_the_reference_whitelist) {
    cpu b;
    camtl_model<cpu, double> m(b, tiny_options());  // 2 layers: layer 0 and the embeddings frozen
    m.apply_freezing();
    const auto trainable = names_of(m, true);
    BOOST_TEST(!any_contains(trainable, "embeddings.word_embeddings"));
    BOOST_TEST(!has(trainable, "encoder.layer.0.attention.self.query.weight"));
    BOOST_TEST(has(trainable, "encoder.layer.0.attention.self.random_weight_matrix"));
    BOOST_TEST(has(trainable, "encoder.layer.0.attention.self.cond_block_diag_attn.gb_weights.weight"));
    BOOST_TEST(has(trainable, "encoder.layer.1.new_attention.self.query.weight"));
    BOOST_TEST(has(trainable, "encoder.task_transformation.weight"));
    BOOST_TEST(has(trainable, "task_embedding.weight"));
    BOOST_TEST(has(trainable, "heads.count.weight"));

    auto o = tiny_options();
    o.freeze_cbda_projection_in_frozen_layers = true;  // the reference's accidental behaviour
    camtl_model<cpu, double> ref(b, o);
    ref.apply_freezing();
    const auto ref_trainable = names_of(ref, true);
    BOOST_TEST(!has(ref_trainable, "encoder.layer.0.attention.self.cond_block_diag_attn.gb_weights.weight"));
    BOOST_TEST(has(ref_trainable, "encoder.layer.0.attention.self.random_weight_matrix"));
}

BOOST_AUTO_TEST_CASE(each_conditional_module_can_be_removed) {
    cpu b;
    const auto tasks = tiny_tasks(8, 3);
    const auto batch = mixed_batch<cpu, double>(b, tasks);
    struct variant {
        const char* name;
        void (*apply)(camtl_options&);
        const char* gone;  // a name fragment that must disappear (or stop training)
    };
    const variant variants[] = {
        {"alignment", [](camtl_options& o) { o.conditional_alignment = false; }, "conditional_alignment"},
        {"cbda", [](camtl_options& o) { o.block_diagonal_bias = false; }, "cond_block_diag_attn"},
        {"cln", [](camtl_options& o) { o.conditional_layer_norm = false; }, "layer.0.attention.output.LayerNorm.ln_weight"},
        {"adapter", [](camtl_options& o) { o.conditional_adapter = false; }, "adapter"},
    };
    for (const auto& v : variants) {
        auto o = tiny_options();
        v.apply(o);
        camtl_model<cpu, double> m(b, o);
        rng_stream init(1);
        m.initialize(init);
        m.apply_freezing();
        BOOST_TEST(!any_contains(names_of(m, true), v.gone), v.name);
        camtl_model<cpu, double>::context ctx;
        rng_stream rr(2);
        const double l = m.forward_loss(batch, ctx, run_mode::train(rr));
        BOOST_TEST(std::isfinite(l), v.name);
        m.backward(ctx);
    }
}

BOOST_AUTO_TEST_CASE(backbone_loads_from_a_hugging_face_checkpoint) {
    cpu b;
    test::temp_dir dir;
    bert_model<cpu, float> bert(b, tiny);
    rng_stream init(9);
    bert.initialize(init);
    io::save_pretrained(bert, dir.path());

    auto o = tiny_options();
    o.backbone = io::read_bert_config(dir.path());
    camtl_model<cpu, float> m(b, o);
    rng_stream init2(10);
    m.initialize(init2);
    const auto report = m.load_backbone(dir.path());
    BOOST_TEST(report.unexpected.size() > 0u);  // the top layer's pretrained weights: renamed, not loaded
    std::vector<float> q_bert, q_camtl;
    bert.visit_parameters([&](const std::string& n, parameter<cpu, float>& p) {
        if (n == "encoder.layer.0.attention.self.query.weight") q_bert = p.value.to_host();
    });
    m.visit_parameters([&](const std::string& n, parameter<cpu, float>& p) {
        if (n == "encoder.layer.0.attention.self.query.weight") q_camtl = p.value.to_host();
    });
    BOOST_TEST(q_bert == q_camtl);

    o.load_pretrained_top_layer = true;
    camtl_model<cpu, float> top(b, o);
    top.initialize(init2);
    const auto report2 = top.load_backbone(dir.path());
    BOOST_TEST(report2.unexpected.empty(), report2.str());
}

/// CA-MTL for the trainer tests: a 2-layer encoder (width `hidden`, `heads` heads) on L = 16, every layer
/// trained, heads for the synthetic tasks "majority" (2 classes) and "count" (regression).
camtl_options trainer_test_options(std::size_t hidden, std::size_t heads) {
    camtl_options o;
    o.backbone = {.vocab_size = 40, .hidden = hidden, .layers = 2, .heads = heads, .intermediate = 2 * hidden, .max_position = 16};
    o.seq_len = 16;
    o.tasks = {{"majority", 2}, {"count", 1}};
    o.frozen_layers = 0;
    o.freeze_embeddings = false;
    return o;
}

BOOST_AUTO_TEST_CASE(trainer_learns_with_both_samplers) {
    cpu b(cpu::options{.threads = 1});
    const std::vector<encoded_task> train{synthetic_task(synthetic_kind::majority, 600, 16, 11),
                                          synthetic_task(synthetic_kind::count, 600, 16, 12)};
    const std::vector<encoded_task> dev{synthetic_task(synthetic_kind::majority, 200, 16, 21),
                                        synthetic_task(synthetic_kind::count, 200, 16, 22)};
    for (int use_mtu = 0; use_mtu < 2; ++use_mtu) {
        camtl_model<cpu, float> m(b, trainer_test_options(32, 4));
        rng_stream init(1);
        m.initialize(init);
        m.apply_freezing();
        trainer_options t;
        t.steps = 250;
        t.lr = 2e-3;
        t.show_progress = false;
        training_result r;
        if (use_mtu) {
            // The regression task borrows the classification task's scores, as CA-MTL's STS-B borrows MRPC's.
            mt_uncertainty_sampler s({{"majority", 600, 2, {}}, {"count", 600, 1, "majority"}}, 16, rng_stream(3));
            r = train_multitask(m, s, b, train, dev, t);
            BOOST_TEST(std::abs(r.fraction_used - 0.5) < 0.02);  // b of 2b candidates (epoch ends give short batches)
            // The per-task counts the result reports are the sampler's, and add up to its totals.
            BOOST_TEST(r.examples_used.size() == 2u);
            BOOST_TEST(r.candidates_drawn.size() == 2u);
            for (std::size_t k = 0; k < 2; ++k) {
                BOOST_TEST(r.examples_used.at(k) == s.examples_used(k));
                BOOST_TEST(r.candidates_drawn.at(k) == s.candidates_drawn(k));
            }
            BOOST_TEST(r.examples_used.at(0) + r.examples_used.at(1) == s.examples_used());
            BOOST_TEST(s.examples_used() == 250u * 16u);
        } else {
            size_proportional_sampler s({600, 600}, 16, rng_stream(3));
            r = train_multitask(m, s, b, train, dev, t);
            BOOST_TEST(r.fraction_used == 1.0);
            BOOST_TEST(r.examples_used.size() == 2u);
            BOOST_TEST(r.examples_used.at(0) + r.examples_used.at(1) == 250u * 16u);
            double first = 0, last = 0;
            for (std::size_t i = 0; i < 20; ++i) {
                first += r.losses[i];
                last += r.losses[r.losses.size() - 1 - i];
            }
            // (MT-Uncertainty trains on the examples the model is least sure of, so its batch loss need not fall.)
            BOOST_TEST(last < 0.7 * first, "first 20 steps " << first / 20 << ", last 20 " << last / 20);
        }
        BOOST_TEST(r.best[0].score > 0.7, "sampler " << use_mtu << ": majority accuracy " << r.best[0].score);
        BOOST_TEST(r.best[1].score > 0.5, "sampler " << use_mtu << ": count correlation " << r.best[1].score);
        BOOST_TEST(r.best_average >= r.final_average);
    }
}

// The results protocol's selection rule: the run ends with the model of the evaluation whose average score on
// the validation split (carved from the training data) was highest, and the scores it reports for that
// evaluation are those of the model it returns.
BOOST_AUTO_TEST_CASE(selection_ends_with_the_model_of_the_best_average_validation_score) {
    cpu b(cpu::options{.threads = 1});
    std::vector<encoded_task> train{synthetic_task(synthetic_kind::majority, 500, 16, 31),
                                    synthetic_task(synthetic_kind::count, 500, 16, 32)};
    std::vector<encoded_task> validation;
    for (auto& t : train) {
        auto split = carve_validation(t, 100, 5);
        t = std::move(split.train);
        validation.push_back(std::move(split.validation));
    }
    auto run = [&](model_selection rule, std::vector<parameter_group> groups, std::vector<float>* heads_before,
                   std::vector<float>* heads_after, std::vector<float>* rest_before, std::vector<float>* rest_after,
                   const std::filesystem::path& out_dir = {}) {
        auto m = std::make_unique<camtl_model<cpu, float>>(b, trainer_test_options(16, 2));
        rng_stream init(4);
        m->initialize(init);
        m->apply_freezing();
        auto values = [&](bool heads) {
            std::vector<float> v;
            m->visit_parameters([&](const std::string& name, parameter<cpu, float>& p) {
                if ((name.rfind("heads.", 0) == 0) != heads) return;
                const auto h = p.value.to_host();
                v.insert(v.end(), h.begin(), h.end());
            });
            return v;
        };
        if (heads_before) *heads_before = values(true);
        if (rest_before) *rest_before = values(false);
        trainer_options t;
        t.steps = 90;
        t.lr = 1e-2;  // fast enough that the validation scores go down as well as up
        t.eval_every = 10;
        t.selection = rule;
        t.groups = std::move(groups);
        t.out_dir = out_dir;
        if (!out_dir.empty()) t.eval_split = "validation";
        t.show_progress = false;
        size_proportional_sampler s({train[0].size(), train[1].size()}, 16, rng_stream(3));
        auto r = train_multitask(*m, s, b, train, validation, t);
        if (heads_after) *heads_after = values(true);
        if (rest_after) *rest_after = values(false);
        return std::pair{std::move(m), std::move(r)};
    };

    auto [best_model, best] = run(model_selection::best_average, {}, nullptr, nullptr, nullptr, nullptr);
    BOOST_TEST_REQUIRE(best.evaluations.size() == 9u);
    auto top = best.evaluations.begin();
    for (auto e = best.evaluations.begin(); e != best.evaluations.end(); ++e)
        if (e->average > top->average) top = e;
    BOOST_TEST(best.selected.step == top->step);
    BOOST_TEST(best.selected.average == top->average);
    // Without this the test could not tell the rules apart: the dynamics are deterministic on one thread.
    BOOST_TEST_REQUIRE(best.selected.step < 90, "the last evaluation was the best; raise the rate");
    const auto again = evaluate_tasks<camtl_model<cpu, float>, cpu, float>(*best_model, b, validation, 64);
    for (std::size_t t = 0; t < again.size(); ++t) BOOST_TEST(again[t].score == best.selected.tasks[t].score);

    auto [last_model, last] = run(model_selection::last_step, {}, nullptr, nullptr, nullptr, nullptr);
    BOOST_TEST(last.selected.step == 90);
    BOOST_TEST(last.evaluations.back().average == best.evaluations.back().average);  // the same run until the end
    const auto final_scores = evaluate_tasks<camtl_model<cpu, float>, cpu, float>(*last_model, b, validation, 64);
    for (std::size_t t = 0; t < final_scores.size(); ++t) BOOST_TEST(final_scores[t].score == last.final[t].score);

    // Parameter groups through the trainer: heads at rate 0 stay where they were, the rest trains.
    std::vector<float> heads_before, heads_after, rest_before, rest_after;
    (void)run(model_selection::last_step, {{.pattern = "^heads\\.", .lr = 0.0}}, &heads_before, &heads_after,
              &rest_before, &rest_after);
    BOOST_TEST(heads_after == heads_before, tt::per_element());
    BOOST_TEST(rest_after != rest_before);

    // A group's own warmup: 45 of the 90 steps for the heads, the default 10 % (9 steps) for the rest. The
    // rate logged with step s is the one its update used: base x multiplier(s - 1).
    test::temp_dir dir;
    (void)run(model_selection::last_step, {{.pattern = "^heads\\.", .lr = 4e-3, .warmup_proportion = 0.5}}, nullptr,
              nullptr, nullptr, nullptr, dir.path());
    std::ifstream log(dir / "metrics.jsonl");
    std::size_t checked = 0;
    for (std::string line; std::getline(log, line);) {
        const auto j = nlohmann::json::parse(line);
        if (j.at("split") != "train") continue;
        const double k = j.at("step").get<double>() - 1;
        const double heads = k < 45 ? 4e-3 * k / 45 : 4e-3 * (90 - k) / 45;
        const double rest = k < 9 ? 1e-2 * k / 9 : 1e-2 * (90 - k) / 81;
        BOOST_TEST(j.at("group_lr").at(0).get<double>() == heads, tt::tolerance(1e-12));
        BOOST_TEST(j.at("lr").get<double>() == rest, tt::tolerance(1e-12));
        ++checked;
    }
    BOOST_TEST(checked == 90u);
    // The curves plotted are the validation split's, as logged (where gnuplot is installed).
    if (std::system("gnuplot --version > /dev/null 2>&1") == 0)
        BOOST_TEST(std::filesystem::is_regular_file(dir / "dev_curves.png"), "no curves plotted from the validation records");
}

BOOST_AUTO_TEST_CASE(every_parameter_the_loss_reads_is_visited) {
    // CA-MTL with every conditional module and without each; multi-task BERT (support/parameter_coverage.hpp).
    const auto tasks = tiny_tasks(8, 3);
    for (int without = -1; without < 4; ++without) {
        auto o = tiny_options();
        if (without == 0) o.conditional_alignment = false;
        if (without == 1) o.block_diagonal_bias = false;
        if (without == 2) o.conditional_layer_norm = false;
        if (without == 3) o.conditional_adapter = false;
        cpu b;
        camtl_model<cpu, double> first(b, o), second(b, o);
        rng_stream s1(1), s2(2);
        first.initialize(s1);
        second.initialize(s2);
        const std::string report = testing::unvisited_parameter_report(first, second, mixed_batch<cpu, double>(b, tasks));
        BOOST_TEST(report.empty(), "CA-MTL without module " << without << ": " << report);
    }
    cpu b;
    const multitask_bert_options o{.backbone = tiny, .tasks = {{"order", 2}, {"majority", 2}, {"count", 1}}};
    multitask_bert<cpu, double> first(b, o), second(b, o);
    rng_stream s1(1), s2(2);
    first.initialize(s1);
    second.initialize(s2);
    const std::string report = testing::unvisited_parameter_report(first, second, mixed_batch<cpu, double>(b, tasks));
    BOOST_TEST(report.empty(), "multi-task BERT: " << report);
}

BOOST_AUTO_TEST_CASE(batches_as_long_as_their_longest_example_change_nothing_at_real_positions) {
    // L = 24 and d = 48: CBDA has N = 2 blocks of 12 rows, and the shorter batch (16 positions) cuts the
    // second block, so the bias really is cropped. Without dropout, the loss, every gradient and the outputs
    // must be those of the batch padded to 24; with heads on the pooler and on the masked mean.
    const bert_config config{.vocab_size = 40, .hidden = 48, .layers = 2, .heads = 2, .intermediate = 24,
                             .max_position = 24, .hidden_dropout = 0, .attention_dropout = 0};
    const auto tasks = testing::with_varied_lengths(
        {synthetic_task(synthetic_kind::order, 8, 24, 3), synthetic_task(synthetic_kind::majority, 8, 24, 4),
         synthetic_task(synthetic_kind::count, 8, 24, 5)},
        13);
    const std::vector<sample_ref> rows{{0, 0}, {1, 1}, {2, 2}, {0, 3}, {2, 4}, {1, 5}};
    for (const auto reads : {head_input::pooler, head_input::mean}) {
        cpu b;
        auto o = tiny_options();
        o.backbone = config;
        o.seq_len = 24;
        o.head_dropout = 0;
        o.heads_read = reads;
        o.frozen_layers = 0;
        o.freeze_embeddings = false;
        camtl_model<cpu, double> m(b, o);
        initialize_without_zeros(m, b, 70);
        const std::string report = testing::padding_invariance_report(m, b, tasks, rows, 16);
        BOOST_TEST(report.empty(), report);

        // And the gradients of the cropped batch are right (not merely equal to the padded ones).
        const auto cut = make_batch<cpu, double>(b, tasks, rows, batch_padding::to_longest);
        const auto r =
            testing::check_model_gradients(m, b, cut, {.max_checks_per_tensor = 4, .allow_zero_gradient = true});
        BOOST_TEST(r.ok, r.report);
    }
}
