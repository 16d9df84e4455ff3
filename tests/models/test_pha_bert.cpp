#define BOOST_TEST_MODULE models_pha_bert
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/models/pha_bert.hpp"
#include "hyperadapt/models/pha_transfer.hpp"
#include "hyperadapt/testing/gradcheck.hpp"
#include "hyperadapt/train/multitask_trainer.hpp"
#include "hyperadapt/train/samplers/size_proportional.hpp"
#include "hyperadapt/train/synthetic_tasks.hpp"
#include "models/model_parity.hpp"
#include "support/backends.hpp"
#include "support/model_gradcheck.hpp"
#include "support/padding_invariance.hpp"
#include "support/parameter_coverage.hpp"

using namespace hyperadapt;
namespace fs = std::filesystem;

namespace {
const bert_config& tiny = parity::tiny_bert;

/// The tiny PHA of the GPU parity test (models/model_parity.hpp) with another adapter source or pass count.
pha_bert_options tiny_options(adapter_source source = adapter_source::prototype_hypernet,
                              pha_passes passes = pha_passes::single) {
    pha_bert_options o = parity::pha_options(parity::model_kind::pha_single_pass);
    o.source = source;
    o.passes = passes;
    return o;
}

std::vector<encoded_task> tiny_tasks(std::size_t n, std::uint64_t seed, std::size_t len = 8) {
    return {synthetic_task(synthetic_kind::order, n, len, seed), synthetic_task(synthetic_kind::majority, n, len, seed + 1),
            synthetic_task(synthetic_kind::count, n, len, seed + 2)};
}

const std::vector<sample_ref> mixed_rows{{0, 0}, {1, 1}, {2, 2}, {0, 3}, {2, 4}, {1, 5}};

template <class M>
std::vector<std::string> trainable_names(M& m) {
    std::vector<std::string> out;
    m.visit_parameters([&](const std::string& n, auto& p) {
        if (p.trainable()) out.push_back(n);
    });
    return out;
}

/// Gives every parameter a random value of a useful size, so no path is degenerate (the hypernetwork's
/// heads and the adapters start near zero by design).
template <class M>
void randomize(M& m, cpu& b, std::uint64_t seed) {
    m.visit_parameters([&](const std::string& n, parameter<cpu, double>& p) {
        const double s = n.find("LayerNorm.weight") != std::string::npos ? 0.0 : 0.4;
        b.fill_uniform(p.size(), seed++, 0, -s, s, p.value.data());
        if (s == 0.0) b.fill_uniform(p.size(), seed++, 0, 0.7, 1.3, p.value.data());
    });
}

/// Initialises `m` from seed `init_seed`, then randomizes its values from `values_seed`.
template <class M>
void initialize_randomized(M& m, cpu& b, std::uint64_t init_seed, std::uint64_t values_seed) {
    rng_stream init(init_seed);
    m.initialize(init);
    randomize(m, b, values_seed);
}

/// Whole-model gradient check on a mixed batch; `frozen`: after apply_freezing, where backward stops early
/// and the gradients it leaves must still be exact.
void check_model_gradients(pha_bert_options o, const char* what, bool frozen = false) {
    cpu b;
    pha_bert<cpu, double> m(b, o);
    initialize_randomized(m, b, 1, 77);
    if (frozen) m.apply_freezing();
    const auto tasks = tiny_tasks(8, 3);
    const auto batch = make_batch<cpu, double>(b, tasks, mixed_rows);
    const auto r = testing::check_model_gradients(m, b, batch, {.max_checks_per_tensor = 5, .allow_zero_gradient = true});
    BOOST_TEST(r.ok, what << ": " << r.report);
    BOOST_TEST(r.checked > (frozen ? 80u : 200u), what);
}
}  // namespace

BOOST_AUTO_TEST_CASE(single_pass_gradients_with_mixed_tasks_and_contrastive_losses) {
    check_model_gradients(tiny_options(), "PHA single pass");
}

BOOST_AUTO_TEST_CASE(two_pass_gradients) {
    check_model_gradients(tiny_options(adapter_source::prototype_hypernet, pha_passes::two), "PHA two passes");
}

BOOST_AUTO_TEST_CASE(per_task_adapter_gradients) {
    check_model_gradients(tiny_options(adapter_source::per_task), "per-task adapters");
}

BOOST_AUTO_TEST_CASE(hyperformerpp_gradients) {
    auto o = tiny_options(adapter_source::hyperformerpp);
    o.hyperformer_reduction = 2;  // bottleneck 4 of hidden 8
    check_model_gradients(o, "HyperFormer++");
}

BOOST_AUTO_TEST_CASE(mean_pooled_heads_gradients) {
    for (const auto source : {adapter_source::prototype_hypernet, adapter_source::per_task}) {
        auto o = tiny_options(source);
        o.heads_read = head_input::mean;
        check_model_gradients(o, "heads on the masked mean");
    }
}

BOOST_AUTO_TEST_CASE(retriever_only_contrastive_losses_leave_the_encoder_adapters_alone) {
    // With contrastive_trains_encoder = false the shared adapters below the retriever get exactly the
    // gradient of the task loss alone, while the retriever still learns from the contrastive terms.
    cpu b;
    const auto tasks = tiny_tasks(8, 3);
    const auto batch = make_batch<cpu, double>(b, tasks, mixed_rows);
    auto grads = [&](bool contrastive, bool into_encoder) {
        auto o = tiny_options();
        o.instance_loss = o.prototype_loss = contrastive;
        o.contrastive_trains_encoder = into_encoder;
        pha_bert<cpu, double> m(b, o);
        initialize_randomized(m, b, 1, 77);
        m.apply_freezing();
        pha_bert<cpu, double>::context ctx;
        m.forward_loss(batch, ctx, run_mode::inference());
        m.backward(ctx);
        std::map<std::string, std::vector<double>> g;
        m.visit_parameters([&](const std::string& n, parameter<cpu, double>& p) {
            if (p.trainable()) g[n] = p.grad.to_host();
        });
        return g;
    };
    const auto task_only = grads(false, true), retriever_only = grads(true, false), reference = grads(true, true);
    const std::string shared = "encoder.layer.0.adapter.adapter_down_manual.weight";
    BOOST_TEST(retriever_only.at(shared) == task_only.at(shared), boost::test_tools::per_element());
    BOOST_TEST(reference.at(shared) != task_only.at(shared));
    const auto& r = retriever_only.at("retriever.mlp.0.weight");
    BOOST_TEST(std::any_of(r.begin(), r.end(), [](double v) { return v != 0.0; }));
}

BOOST_AUTO_TEST_CASE(mean_pooling_respects_the_mask) {
    cpu b;
    mean_pooling<cpu, double> pool(b, 3);
    auto h = test::random_tensor<cpu, double>(b, {2, 4, 3}, 5);
    const auto mask = attention_mask<cpu>::from_host(b, {2, 4}, std::vector<std::uint8_t>{1, 1, 0, 0, 1, 1, 1, 1});
    mean_pooling<cpu, double>::context ctx;
    const auto y = pool.forward(h, mask, ctx).to_host();
    const auto x = h.to_host();
    for (std::size_t c = 0; c < 3; ++c) {
        BOOST_TEST(std::abs(y[c] - (x[c] + x[3 + c]) / 2) < 1e-15);
        BOOST_TEST(std::abs(y[3 + c] - (x[12 + c] + x[15 + c] + x[18 + c] + x[21 + c]) / 4) < 1e-15);
    }
    auto r = testing::check_gradients<cpu>(
        b, {{"h", &h}}, [](auto&&) {},
        [&] { return pool.forward(h, mask, ctx); },
        [&](const tensor<cpu, double>& dy) { return std::vector<tensor<cpu, double>>{pool.backward(dy, ctx)}; }, {});
    BOOST_TEST(r.ok, r.report);
    // With the mask's host copy (a batch keeps it) the weights are read from it: the same bits, and a copy of
    // the wrong size is refused naming the layer.
    const std::vector<std::uint8_t> host{1, 1, 0, 0, 1, 1, 1, 1}, short_host{1, 1, 0};
    BOOST_TEST(pool.forward(h, mask, ctx, {}, host).to_host() == y, boost::test_tools::per_element());
    BOOST_CHECK_EXCEPTION((void)pool.forward(h, mask, ctx, {}, short_host), shape_error, [](const shape_error& e) {
        return std::string(e.what()).find("mean_pooling: 3 host values") != std::string::npos;
    });
}

BOOST_AUTO_TEST_CASE(frozen_backbone_gradients_reach_only_the_trainable_parts) {
    check_model_gradients(tiny_options(), "PHA frozen", /*frozen=*/true);
    check_model_gradients(tiny_options(adapter_source::prototype_hypernet, pha_passes::two), "PHA two passes frozen",
                          /*frozen=*/true);
}

BOOST_AUTO_TEST_CASE(adapter_layer_without_adapters_is_exactly_a_bert_layer) {
    // Same names, same values, same arithmetic: the backbone of every adapter model is BERT unchanged.
    cpu b;
    const encoder_layer_config c{.hidden = 8, .heads = 2, .intermediate = 12};
    encoder_layer<cpu, double> plain(b, c, "encoder.layer.0");
    adapter_encoder_layer<cpu, double> adapted(b, adapter_layer_config::from(c, 3, /*own=*/false, /*serial=*/4),
                                                "encoder.layer.0");
    rng_stream init(8);
    plain.initialize(init, 0.3);
    std::vector<std::string> pn, an;
    plain.visit_parameters([&](const std::string& n, auto&) { pn.push_back(n); });
    adapted.visit_parameters([&](const std::string& n, auto&) { an.push_back(n); });
    BOOST_TEST(pn == an, boost::test_tools::per_element());
    std::vector<std::vector<double>> values;
    plain.visit_parameters([&](const std::string&, parameter<cpu, double>& p) { values.push_back(p.value.to_host()); });
    std::size_t next = 0;
    adapted.visit_parameters([&](const std::string&, parameter<cpu, double>& p) {
        b.copy_from_host(values.at(next).data(), p.value.data(), values.at(next).size());
        ++next;
    });
    const auto x = test::random_tensor<cpu, double>(b, {2, 5, 8}, 21);
    const auto mask = attention_mask<cpu>::from_host(b, {2, 5}, std::vector<std::uint8_t>{1, 1, 1, 1, 1, 1, 1, 1, 0, 0});
    typename encoder_layer<cpu, double>::context pc;
    typename adapter_encoder_layer<cpu, double>::context ac;
    const auto yp = plain.forward(x, {.mask = &mask}, pc, run_mode::inference()).to_host();
    const auto ya = adapted.forward(x, {.mask = &mask}, ac, run_mode::inference()).to_host();
    for (std::size_t i = 0; i < yp.size(); ++i) BOOST_TEST(std::abs(yp[i] - ya[i]) < 1e-13);
    const auto dy = test::random_tensor<cpu, double>(b, {2, 5, 8}, 22);
    layer_condition_gradients<cpu, double> none;
    const auto dp = plain.backward(dy, pc, none).to_host();
    const auto da = adapted.backward(dy, ac, none).to_host();
    for (std::size_t i = 0; i < dp.size(); ++i) BOOST_TEST(std::abs(dp[i] - da[i]) < 1e-13);
}

BOOST_AUTO_TEST_CASE(freezing_follows_the_reference_rule_and_counts_like_the_papers) {
    cpu b;
    pha_bert<cpu, double> m(b, tiny_options());
    m.apply_freezing();
    const auto names = trainable_names(m);
    for (const auto& n : names) {
        const bool allowed = n.find("adapter") != std::string::npos || n.rfind("retriever.", 0) == 0 ||
                             n.rfind("hypernet.", 0) == 0 || n == "prototypes.weight" || n.rfind("heads.", 0) == 0;
        BOOST_TEST(allowed, n);
    }
    // Layer 0 (below the split) has a shared adapter; layer 1 gets generated weights and has none of its own.
    BOOST_TEST(std::count(names.begin(), names.end(), "encoder.layer.0.adapter.adapter_down_manual.weight") == 1);
    BOOST_TEST(std::none_of(names.begin(), names.end(),
                            [](const std::string& n) { return n.rfind("encoder.layer.1.adapter.", 0) == 0; }));
    const auto report = m.parameter_report();
    bert_model<cpu, double> plain(b, tiny);
    BOOST_TEST(report.backbone == count_parameters(plain).total);
    BOOST_TEST(report.trainable == count_parameters(m).trainable);
    BOOST_TEST(report.percent_per_task() ==
               100.0 * static_cast<double>(report.trainable) / 3.0 / static_cast<double>(report.backbone));

    auto hf = tiny_options(adapter_source::hyperformerpp);
    hf.hyperformer_reduction = 2;
    pha_bert<cpu, double> hyper(b, hf);
    hyper.apply_freezing();
    for (const auto& n : trainable_names(hyper)) {
        const bool allowed = n.find("adapter") != std::string::npos || n.rfind("hypernet.", 0) == 0 ||
                             n == "task_embeddings.weight" || n.rfind("heads.", 0) == 0;
        BOOST_TEST(allowed, n);
    }
    BOOST_TEST(hyper.parameter_report().backbone == report.backbone);

    auto o = tiny_options();
    o.train_pooler = true;
    pha_bert<cpu, double> with_pooler(b, o);
    with_pooler.apply_freezing();
    const auto wp = trainable_names(with_pooler);
    BOOST_TEST(std::count(wp.begin(), wp.end(), "pooler.dense.weight") == 1);
}

BOOST_AUTO_TEST_CASE(each_row_is_conditioned_on_its_own_task) {
    // A row's outputs must not depend on which tasks share its batch.
    cpu b;
    for (const auto source : {adapter_source::prototype_hypernet, adapter_source::per_task, adapter_source::hyperformerpp}) {
        auto options = tiny_options(source);
        options.hyperformer_reduction = 2;
        pha_bert<cpu, double> m(b, options);
        rng_stream init(2);
        m.initialize(init);
        randomize(m, b, 9);
        const auto tasks = tiny_tasks(8, 3);
        const auto mixed = m.outputs(make_batch<cpu, double>(b, tasks, mixed_rows), run_mode::inference());
        for (std::size_t r = 0; r < mixed_rows.size(); ++r) {
            const std::vector<sample_ref> one{mixed_rows[r]};
            const auto alone = m.outputs(make_batch<cpu, double>(b, tasks, one), run_mode::inference());
            for (std::size_t k = 0; k < alone[0].size(); ++k) BOOST_TEST(std::abs(alone[0][k] - mixed[r][k]) < 1e-12);
        }
        // And it does depend on the task: the same example under another task's adapters differs.
        auto relabelled = make_batch<cpu, double>(b, tasks, std::vector<sample_ref>{{0, 0}});
        const auto as_order = m.outputs(relabelled, run_mode::inference());
        relabelled.task_ids = tensor<cpu, std::int32_t>::from_host(b, {1}, std::vector<std::int32_t>{1});
        relabelled.rows[0].task = 1;  // head of task 1 (also 2 classes) with task 1's adapters
        const auto as_majority = m.outputs(relabelled, run_mode::inference());
        BOOST_TEST(std::abs(as_order[0][0] - as_majority[0][0]) > 1e-9);
    }
}

BOOST_AUTO_TEST_CASE(configuration_errors_say_what_to_change) {
    cpu b;
    auto o = tiny_options();
    o.split = 2;
    BOOST_CHECK_EXCEPTION(pha_bert<cpu>(b, o), config_error, [](const config_error& e) {
        return std::string(e.what()).find("split 2 of 2 layers") != std::string::npos;
    });
    auto p = tiny_options(adapter_source::per_task, pha_passes::two);
    BOOST_CHECK_EXCEPTION(pha_bert<cpu>(b, p), config_error, [](const config_error& e) {
        return std::string(e.what()).find("pha_passes::single") != std::string::npos;
    });
    auto h = tiny_options(adapter_source::hyperformerpp);
    h.hyperformer_reduction = 3;
    BOOST_CHECK_EXCEPTION(pha_bert<cpu>(b, h), config_error, [](const config_error& e) {
        return std::string(e.what()).find("must divide the hidden size 8") != std::string::npos;
    });
}

BOOST_AUTO_TEST_CASE(training_lowers_the_held_out_task_loss_with_frozen_backbone) {
    // Random frozen backbone; only adapters, hypernetwork, prototypes, retriever and heads train. The task
    // loss (heads only, without the contrastive terms) on held-out data must fall well below its start.
    cpu b;
    for (const auto source : {adapter_source::prototype_hypernet, adapter_source::per_task, adapter_source::hyperformerpp}) {
        auto o = tiny_options(source);
        o.hyperformer_reduction = 4;
        // BERT's 0.02 init makes a random [CLS] nearly input-independent, which a frozen backbone cannot
        // undo; a wider init gives the frozen features something to separate (a pretrained model does).
        o.backbone = {.vocab_size = 40, .hidden = 32, .layers = 2, .heads = 4, .intermediate = 64, .max_position = 16,
                      .initializer_range = 0.5};
        o.bottleneck = 16;
        o.prototype_dim = 16;
        o.retriever_hidden = 32;
        o.hypernet_hidden = 32;
        o.hypernet_projection = 16;
        o.layer_embedding = 8;
        o.train_pooler = true;
        pha_bert<cpu, float> m(b, o);
        rng_stream init(3);
        m.initialize(init);
        m.apply_freezing();
        const auto train = tiny_tasks(600, 10, 16), dev = tiny_tasks(96, 20, 16);
        std::vector<sample_ref> rows;
        for (std::size_t t = 0; t < 3; ++t)
            for (std::size_t i = 0; i < 96; ++i) rows.push_back({t, i});
        const auto dev_batch = make_batch<cpu, float>(b, dev, rows);
        auto dev_task_loss = [&] {
            pha_bert<cpu, float>::context ctx;
            m.forward_loss(dev_batch, ctx, run_mode::inference());
            return ctx.task_loss;
        };
        const double before = dev_task_loss();
        size_proportional_sampler smp(std::vector<std::size_t>{600, 600, 600}, 32, rng_stream(5));
        trainer_options t;
        t.steps = 400;
        t.lr = 1e-2;
        t.show_progress = false;
        const auto r = train_multitask(m, smp, b, train, dev, t);
        const double after = dev_task_loss();
        BOOST_TEST_MESSAGE((source == adapter_source::per_task ? "per-task" : source == adapter_source::hyperformerpp ? "HyperFormer++" : "PHA")
                           << ": held-out task loss " << before << " -> " << after << ", dev average "
                           << r.final_average);
        BOOST_TEST(after < 0.5 * before);

        // And a fixed batch is fitted from a fresh start: the trainable parts alone can learn it.
        pha_bert<cpu, float> fresh(b, o);
        rng_stream init2(13);
        fresh.initialize(init2);
        fresh.apply_freezing();
        std::vector<sample_ref> fixed;
        for (std::size_t i = 0; i < 24; ++i) fixed.push_back({i % 3, i});
        const auto batch = make_batch<cpu, float>(b, train, fixed);
        adamw<cpu, float> opt(fresh, {.lr = 1e-2, .weight_decay = 0});
        pha_bert<cpu, float>::context ctx;
        double first = 0, last = 0;
        for (int step = 0; step < 300; ++step) {
            zero_grad(fresh);
            fresh.forward_loss(batch, ctx, run_mode::inference());
            if (step == 0) first = ctx.task_loss;
            last = ctx.task_loss;
            fresh.backward(ctx);
            opt.step();
        }
        BOOST_TEST_MESSAGE("  fixed batch task loss " << first << " -> " << last);
        BOOST_TEST(last < 0.1 * first);
    }
}

BOOST_AUTO_TEST_CASE(transfer_retrieves_the_closest_prototype_and_copies_the_shared_parts) {
    cpu b;
    pha_bert<cpu, double> source(b, tiny_options());
    initialize_randomized(source, b, 4, 11);
    const auto tasks = tiny_tasks(8, 3);
    // Put prototype 1 exactly on the mean direction of task 2's examples: it must be retrieved.
    std::vector<sample_ref> rows;
    for (std::size_t i = 0; i < 8; ++i) rows.push_back({2, i});
    const auto e = source.instance_embeddings(make_batch<cpu, double>(b, tasks, rows)).to_host();
    const std::size_t dim = source.prototypes().dim();
    std::vector<double> mean(dim, 0.0);
    for (std::size_t r = 0; r < rows.size(); ++r) {
        double n = 0;
        for (std::size_t c = 0; c < dim; ++c) n += e[r * dim + c] * e[r * dim + c];
        for (std::size_t c = 0; c < dim; ++c) mean[c] += e[r * dim + c] / std::sqrt(n);
    }
    b.copy_from_host(mean.data(), source.prototypes().weight().value.data() + dim, dim);
    const auto match = nearest_prototype(source, b, std::span<const encoded_task>(tasks), rows);
    BOOST_TEST(match.task == 1u);
    BOOST_TEST(match.examples == 8u);
    BOOST_TEST(match.similarity[1] > match.similarity[0]);

    auto o = tiny_options();
    o.tasks = {{"new", 2}};
    pha_bert<cpu, double> target(b, o);
    rng_stream init2(99);
    target.initialize(init2);
    const std::size_t copied = start_transfer(source, target, match.task);
    BOOST_TEST(copied > 20u);
    const auto p = target.prototypes().weight().value.to_host();
    for (std::size_t c = 0; c < dim; ++c) BOOST_TEST(p[c] == mean[c]);
    // Retriever and backbone now agree: the same examples embed identically in both models.
    const auto e2 = target.instance_embeddings(make_batch<cpu, double>(b, tasks, rows)).to_host();
    for (std::size_t i = 0; i < e.size(); ++i) BOOST_TEST(e2[i] == e[i]);
}

BOOST_AUTO_TEST_CASE(transfer_tuning_only_the_prototype_and_head_gets_exact_gradients_there_alone) {
    cpu b;
    pha_bert<cpu, double> source(b, tiny_options());
    initialize_randomized(source, b, 6, 31);
    auto o = tiny_options();
    o.tasks = {{"new", 2}};
    pha_bert<cpu, double> target(b, o);
    initialize_randomized(target, b, 7, 53);
    start_transfer(source, target, 2);
    target.apply_freezing();
    const std::size_t trainable = tune_only_prototype_and_head(target);
    std::size_t expected = 0;
    for (const auto& n : trainable_names(target)) {
        const bool allowed = n == "prototypes.weight" || n.rfind("heads.", 0) == 0;
        BOOST_TEST(allowed, n);
    }
    bool prototype_trains = false;
    target.visit_parameters([&](const std::string& n, parameter<cpu, double>& p) {
        if (n == "prototypes.weight" || n.rfind("heads.", 0) == 0) expected += p.size();
        prototype_trains = prototype_trains || (n == "prototypes.weight" && p.trainable());
    });
    BOOST_TEST(prototype_trains);
    BOOST_TEST(trainable == expected);
    // The prototype's gradient crosses the hypernetwork and every adapter of the frozen encoder: it must be
    // exact there even though no encoder parameter asks for a gradient.
    const auto tasks = std::vector<encoded_task>{synthetic_task(synthetic_kind::order, 8, 8, 17)};
    const std::vector<sample_ref> rows{{0, 0}, {0, 1}, {0, 2}, {0, 3}};
    const auto batch = make_batch<cpu, double>(b, tasks, rows);
    const auto r = testing::check_model_gradients(target, b, batch, {.max_checks_per_tensor = 8});
    BOOST_TEST(r.ok, r.report);
    BOOST_TEST(r.checked >= 8u);
    zero_grad(target);
    pha_bert<cpu, double>::context ctx;
    target.forward_loss(batch, ctx, run_mode::inference());
    target.backward(ctx);
    double norm = 0;
    for (const double g : target.prototypes().weight().grad.to_host()) norm += g * g;
    BOOST_TEST(norm > 0.0);
    // Other models have no prototype to tune.
    auto adapters = tiny_options(adapter_source::per_task);
    pha_bert<cpu, double> per_task(b, adapters);
    BOOST_CHECK_THROW(tune_only_prototype_and_head(per_task), config_error);
}

BOOST_AUTO_TEST_CASE(backbone_loads_from_the_minilm_checkpoint) {
    const char* env = std::getenv("HYPERADAPT_MODEL_DIR");
    const fs::path model = env ? fs::path(env) : fs::path(HYPERADAPT_MODEL_DIR_DEFAULT);
    if (!fs::exists(model / "model.safetensors")) {
        BOOST_TEST_MESSAGE("SKIPPED: " << model << " not found (scripts/fetch_model.sh)");
        return;
    }
    cpu b;
    pha_bert_options o;
    o.backbone = io::read_bert_config(model);
    o.tasks = {{"rte", 2}, {"stsb", 1}};
    pha_bert<cpu, float> m(b, o);
    rng_stream init(1);
    m.initialize(init);
    const auto report = m.load_backbone(model);
    BOOST_TEST(report.unexpected.empty());
    for (const auto& n : report.missing) {
        const bool ours = n.find("adapter") != std::string::npos || n.rfind("retriever.", 0) == 0 ||
                          n.rfind("hypernet.", 0) == 0 || n == "prototypes.weight" || n.rfind("heads.", 0) == 0;
        BOOST_TEST(ours, n);
    }
    m.apply_freezing();
    const auto r = m.parameter_report();
    BOOST_TEST_MESSAGE("MiniLM PHA: backbone " << r.backbone << ", trainable " << r.trainable << " ("
                                               << r.percent_per_task() << " % per task)");
    bert_model<cpu, float> plain(b, o.backbone);
    BOOST_TEST(r.backbone == count_parameters(plain).total);
}

BOOST_AUTO_TEST_CASE(every_parameter_the_loss_reads_is_visited) {
    // Each adapter source, one and two passes, with the contrastive losses (support/parameter_coverage.hpp).
    const auto tasks = tiny_tasks(8, 3);
    for (const auto source : {adapter_source::prototype_hypernet, adapter_source::per_task, adapter_source::hyperformerpp})
        for (const auto passes : {pha_passes::single, pha_passes::two}) {
            if (passes == pha_passes::two && source != adapter_source::prototype_hypernet) continue;
            auto o = tiny_options(source, passes);
            if (source == adapter_source::hyperformerpp) o.hyperformer_reduction = 2;  // bottleneck 4 of hidden 8
            cpu b;
            pha_bert<cpu, double> first(b, o), second(b, o);
            rng_stream s1(1), s2(2);
            first.initialize(s1);
            second.initialize(s2);
            const auto batch = make_batch<cpu, double>(b, tasks, mixed_rows);
            const std::string report = testing::unvisited_parameter_report(first, second, batch);
            BOOST_TEST(report.empty(), static_cast<int>(source) << "/" << static_cast<int>(passes) << ": " << report);
        }
}

BOOST_AUTO_TEST_CASE(batches_as_long_as_their_longest_example_change_nothing_at_real_positions) {
    // Without dropout, a batch padded to its longest example (16 of 24 positions) gives the loss (with the
    // contrastive terms), every gradient and the outputs of the batch padded to 24; for every adapter source,
    // one and two passes, heads on the pooler and on the masked mean.
    const auto tasks = testing::with_varied_lengths(
        {synthetic_task(synthetic_kind::order, 8, 24, 3), synthetic_task(synthetic_kind::majority, 8, 24, 4),
         synthetic_task(synthetic_kind::count, 8, 24, 5)},
        13);
    struct variant {
        const char* name;
        adapter_source source;
        pha_passes passes;
        head_input reads;
    };
    const variant variants[] = {
        {"PHA single pass", adapter_source::prototype_hypernet, pha_passes::single, head_input::pooler},
        {"PHA two passes, mean heads", adapter_source::prototype_hypernet, pha_passes::two, head_input::mean},
        {"per-task adapters", adapter_source::per_task, pha_passes::single, head_input::pooler},
        {"HyperFormer++", adapter_source::hyperformerpp, pha_passes::single, head_input::mean},
    };
    for (const auto& v : variants) {
        cpu b;
        auto o = tiny_options(v.source, v.passes);
        o.backbone.max_position = 24;
        o.backbone.hidden_dropout = 0;
        o.backbone.attention_dropout = 0;
        o.head_dropout = 0;
        o.heads_read = v.reads;
        if (v.source == adapter_source::hyperformerpp) o.hyperformer_reduction = 2;
        pha_bert<cpu, double> m(b, o);
        initialize_randomized(m, b, 1, 77);
        const std::string report = testing::padding_invariance_report(m, b, tasks, mixed_rows, 16);
        BOOST_TEST(report.empty(), v.name << ": " << report);
    }
}
