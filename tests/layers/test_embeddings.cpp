#define BOOST_TEST_MODULE layers_embeddings
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "hyperadapt/layers/bert_embeddings.hpp"
#include "hyperadapt/layers/embedding.hpp"
#include "hyperadapt/testing/gradcheck.hpp"
#include "support/backends.hpp"
#include "support/max_keeping_nan.hpp"

using namespace hyperadapt;
using hyperadapt::test::copy_parameters;
using hyperadapt::test::layer_backends;

namespace {
template <class B>
tensor<B, std::int32_t> ids(B& b, shape s, std::vector<std::int32_t> values) {
    return tensor<B, std::int32_t>::from_host(b, s, values);
}

/// Worst |f - d| / (|d| + 0.1): relative where values are O(1), absolute near zero.
double worst_relative(const std::vector<float>& f, const std::vector<double>& d) {
    BOOST_TEST_REQUIRE(f.size() == d.size());
    double worst = 0;
    for (std::size_t i = 0; i < f.size(); ++i)
        worst = hyperadapt::test::max_keeping_nan(worst, std::abs(static_cast<double>(f[i]) - d[i]) / (std::abs(d[i]) + 0.1));
    return worst;
}

std::vector<std::string> parameter_names(auto& layer) {
    std::vector<std::string> names;
    layer.visit_parameters([&](const std::string& n, auto&) { names.push_back(n); });
    return names;
}

bert_embeddings_config small_config() {
    bert_embeddings_config cfg;
    cfg.vocab_size = 11;
    cfg.hidden = 8;
    cfg.max_position = 6;
    cfg.type_vocab_size = 3;
    cfg.dropout = 0.1;
    cfg.pad_token_id = std::nullopt;  // a padding row's gradient is masked, which finite differences would flag
    return cfg;
}

template <class B>
void randomize_layer_norm(B& b, bert_embeddings<B, double>& e) {
    b.fill_uniform(8, 21, 0, 0.5, 1.5, e.norm().weight().value.data());
    b.fill_uniform(8, 22, 0, -0.5, 0.5, e.norm().bias().value.data());
}
}  // namespace

// ---- embedding -------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE_TEMPLATE(embedding_gradients_match_finite_differences, B, layer_backends) {
    B b;
    embedding<B, double> emb(b, 7, 4, "embeddings.word_embeddings");
    rng_stream rng(3);
    emb.initialize(rng, 0.5);
    const auto x = ids(b, {2, 3}, {1, 6, 1, 0, 3, 6});  // repeated ids must accumulate
    typename embedding<B, double>::context ctx;
    auto r = testing::check_gradients<B>(
        b, {}, [&](auto&& f) { emb.visit_parameters(f); },
        [&] {
            ctx = {};
            return emb.forward(x, ctx);
        },
        [&](const tensor<B, double>& dy) {
            emb.backward(dy, ctx);
            return std::vector<tensor<B, double>>{};
        });
    BOOST_TEST(r.ok, r.report);
    BOOST_TEST(r.checked == 28u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(embedding_gathers_rows_and_scatters_gradients, B, layer_backends) {
    B b;
    embedding<B, double> emb(b, 3, 2, "emb");
    const std::vector<double> table{0, 1, 10, 11, 20, 21};
    b.copy_from_host(table.data(), emb.weight().value.data(), 6);
    typename embedding<B, double>::context ctx;
    const auto y = emb.forward(ids(b, {3}, {2, 0, 2}), ctx);
    BOOST_TEST((y.shape() == shape{3, 2}));
    const std::vector<double> want{20, 21, 0, 1, 20, 21};
    BOOST_TEST(y.to_host() == want, boost::test_tools::per_element());
    emb.backward(tensor<B, double>::from_host(b, {3, 2}, std::vector<double>{1, 2, 3, 4, 5, 6}), ctx);
    const std::vector<double> grad{3, 4, 0, 0, 6, 8};
    BOOST_TEST(emb.weight().grad.to_host() == grad, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(embedding_padding_row_is_looked_up_but_gets_no_gradient) {
    cpu b;
    embedding<cpu, double> emb(b, 4, 3, "embeddings.word_embeddings", 0);
    rng_stream rng(5);
    emb.initialize(rng, 1.0);
    const auto w = emb.weight().value.to_host();
    BOOST_TEST(w[0] == 0.0);  // initialised to zero, as PyTorch
    BOOST_TEST(w[2] == 0.0);
    const std::vector<double> row0{7, 8, 9};
    b.copy_from_host(row0.data(), emb.weight().value.data(), 3);  // e.g. pretrained weights
    embedding<cpu, double>::context ctx;
    const auto y = emb.forward(ids(b, {2}, {0, 2}), ctx).to_host();
    BOOST_TEST(y[0] == 7.0);
    emb.backward(tensor<cpu, double>::filled(b, {2, 3}, 1.0), ctx);
    const auto g = emb.weight().grad.to_host();
    const std::vector<double> want{0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0};
    BOOST_TEST(g == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(embedding_out_of_range_id_names_layer_id_and_table_size) {
    cpu b;
    embedding<cpu, float> emb(b, 30522, 4, "bert.embeddings.word_embeddings");
    embedding<cpu, float>::context ctx;
    for (const std::int32_t bad : {30522, -1}) {
        try {
            (void)emb.forward(ids(b, {1, 3}, {101, bad, 102}), ctx);
            BOOST_FAIL("expected error for id " << bad);
        } catch (const error& e) {
            const std::string msg = e.what();
            BOOST_TEST(msg.find("bert.embeddings.word_embeddings") != std::string::npos, msg);
            BOOST_TEST(msg.find("id " + std::to_string(bad)) != std::string::npos, msg);
            BOOST_TEST(msg.find("30522 rows") != std::string::npos, msg);
        }
    }
    BOOST_CHECK_THROW(embedding<cpu>(b, 0, 4), config_error);
    BOOST_CHECK_THROW(embedding<cpu>(b, 4, 4, "e", 4), config_error);
}

// The ids' host copy, where the batch kept one, is what the range check reads (no copy back): a copy that
// says otherwise than the ids is believed, and one of the wrong length is refused naming the layer.
BOOST_AUTO_TEST_CASE(embedding_range_check_reads_the_host_ids_it_is_given) {
    cpu b;
    embedding<cpu, float> emb(b, 8, 2, "task_embedding");
    embedding<cpu, float>::context ctx;
    const auto good = ids(b, {3}, {1, 2, 3});
    const std::vector<std::int32_t> claims_bad{1, 9, 3}, too_few{1, 2};
    try {
        (void)emb.forward(good, ctx, {}, claims_bad);
        BOOST_FAIL("expected the host ids' 9 to be refused");
    } catch (const error& e) {
        const std::string msg = e.what();
        BOOST_TEST(msg.find("task_embedding: id 9 at position 1") != std::string::npos, msg);
    }
    try {
        (void)emb.forward(good, ctx, {}, too_few);
        BOOST_FAIL("expected two host ids for three ids to be refused");
    } catch (const shape_error& e) {
        const std::string msg = e.what();
        BOOST_TEST(msg.find("task_embedding: 2 host values for a tensor of 3") != std::string::npos, msg);
    }
    const std::vector<std::int32_t> same{1, 2, 3};
    BOOST_TEST(emb.forward(good, ctx, {}, same).to_host() == emb.apply(good).to_host(),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(frozen_embedding_gets_no_gradient) {
    cpu b;
    embedding<cpu, float> emb(b, 5, 2, "emb");
    emb.weight().freeze();
    embedding<cpu, float>::context ctx;
    const auto y = emb.forward(ids(b, {2}, {1, 4}), ctx);
    emb.backward(y, ctx);
    BOOST_TEST(emb.weight().grad.empty());
}

// ---- bert_embeddings -------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE_TEMPLATE(bert_embeddings_gradients_match_finite_differences, B, layer_backends) {
    B b;
    bert_embeddings<B, double> emb(b, small_config());
    rng_stream init(4);
    emb.initialize(init, 0.5);
    randomize_layer_norm(b, emb);
    const auto input_ids = ids(b, {2, 4}, {3, 10, 3, 0, 5, 5, 1, 9});
    const auto token_types = ids(b, {2, 4}, {0, 0, 1, 1, 0, 2, 2, 2});
    for (const bool with_types : {true, false}) {
        typename bert_embeddings<B, double>::context ctx;
        auto r = testing::check_gradients<B>(
            b, {}, [&](auto&& f) { emb.visit_parameters(f); },
            [&] {
                rng_stream rng(77);  // the same dropout mask on every evaluation
                return with_types ? emb.forward(input_ids, token_types, ctx, run_mode::train(rng))
                                  : emb.forward(input_ids, ctx, run_mode::train(rng));
            },
            [&](const tensor<B, double>& dy) {
                emb.backward(dy, ctx);
                return std::vector<tensor<B, double>>{};
            });
        BOOST_TEST(r.ok, (with_types ? "with token types: " : "default token types: ") << r.report);
        BOOST_TEST(r.checked == 88u + 48u + 24u + 8u + 8u);
    }
}

BOOST_AUTO_TEST_CASE(bert_embeddings_match_hand_computation) {
    cpu b;
    auto cfg = small_config();
    cfg.layer_norm_eps = 1e-12;
    bert_embeddings<cpu, double> emb(b, cfg);
    rng_stream init(8);
    emb.initialize(init, 1.0);
    randomize_layer_norm(b, emb);
    const std::vector<std::int32_t> wid{4, 7, 2, 2, 0, 10}, tid{1, 0, 2, 0, 0, 1};
    bert_embeddings<cpu, double>::context ctx;
    const auto y = emb.forward(ids(b, {2, 3}, wid), ids(b, {2, 3}, tid), ctx).to_host();  // inference
    const auto W = emb.word_embeddings().weight().value.to_host(), P = emb.position_embeddings().weight().value.to_host(),
               Tt = emb.token_type_embeddings().weight().value.to_host(), g = emb.norm().weight().value.to_host(),
               be = emb.norm().bias().value.to_host();
    const std::size_t h = 8;
    for (std::size_t bi = 0; bi < 2; ++bi)
        for (std::size_t s = 0; s < 3; ++s) {
            const std::size_t row = bi * 3 + s;
            std::vector<double> x(h);
            double mean = 0, var = 0;
            for (std::size_t k = 0; k < h; ++k) {
                x[k] = W[static_cast<std::size_t>(wid[row]) * h + k] + Tt[static_cast<std::size_t>(tid[row]) * h + k] +
                       P[s * h + k];
                mean += x[k] / h;
            }
            for (std::size_t k = 0; k < h; ++k) var += (x[k] - mean) * (x[k] - mean) / h;
            for (std::size_t k = 0; k < h; ++k)
                BOOST_TEST(y[row * h + k] == (x[k] - mean) / std::sqrt(var + 1e-12) * g[k] + be[k],
                           boost::test_tools::tolerance(1e-12));
        }
    // Missing token types mean all zeros.
    const auto y0 = emb.forward(ids(b, {2, 3}, wid), ctx).to_host();
    const auto yz = emb.forward(ids(b, {2, 3}, wid), ids(b, {2, 3}, {0, 0, 0, 0, 0, 0}), ctx).to_host();
    BOOST_TEST(y0 == yz, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(bert_embeddings_have_hugging_face_parameter_names) {
    cpu b;
    bert_embeddings<cpu, float> emb(b, small_config());
    const std::vector<std::string> want{"embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                                        "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight",
                                        "embeddings.LayerNorm.bias"};
    BOOST_TEST(parameter_names(emb) == want, boost::test_tools::per_element());
    bert_embeddings<cpu, float> prefixed(b, small_config(), "bert.embeddings");
    BOOST_TEST(parameter_names(prefixed).front() == "bert.embeddings.word_embeddings.weight");
    // No weight decay on LayerNorm, as Hugging Face's fine-tuning recipe.
    std::vector<bool> decay;
    emb.visit_parameters([&](const std::string&, auto& p) { decay.push_back(p.decay); });
    BOOST_TEST((decay == std::vector<bool>{true, true, true, false, false}));
}

BOOST_AUTO_TEST_CASE(bert_embeddings_padding_row_gets_no_gradient) {
    cpu b;
    auto cfg = small_config();
    cfg.pad_token_id = 0;
    bert_embeddings<cpu, double> emb(b, cfg);
    rng_stream init(9);
    emb.initialize(init);
    bert_embeddings<cpu, double>::context ctx;
    const auto y = emb.forward(ids(b, {1, 4}, {5, 6, 0, 0}), ctx);
    emb.backward(tensor<cpu, double>::filled(b, y.shape(), 1.0), ctx);
    const auto g = emb.word_embeddings().weight().grad.to_host();
    for (std::size_t k = 0; k < 8; ++k) BOOST_TEST(g[k] == 0.0);
}

BOOST_AUTO_TEST_CASE(bert_embeddings_reject_long_sequences_and_bad_shapes) {
    cpu b;
    bert_embeddings<cpu, float> emb(b, small_config(), "bert.embeddings");
    bert_embeddings<cpu, float>::context ctx;
    try {
        (void)emb.forward(ids(b, {1, 7}, {1, 2, 3, 4, 5, 6, 7}), ctx);
        BOOST_FAIL("expected shape_error");
    } catch (const shape_error& e) {
        const std::string msg = e.what();
        BOOST_TEST(msg.find("bert.embeddings") != std::string::npos, msg);
        BOOST_TEST(msg.find("7") != std::string::npos, msg);
        BOOST_TEST(msg.find("6") != std::string::npos, msg);
    }
    try {
        (void)emb.forward(ids(b, {2, 2}, {1, 2, 3, 4}), ids(b, {4}, {0, 0, 0, 0}), ctx);
        BOOST_FAIL("expected shape_error");
    } catch (const shape_error& e) {
        const std::string msg = e.what();
        BOOST_TEST(msg.find("token_type_ids") != std::string::npos, msg);
        BOOST_TEST(msg.find("(4)") != std::string::npos, msg);
        BOOST_TEST(msg.find("(2, 2)") != std::string::npos, msg);
    }
    BOOST_CHECK_THROW((void)emb.forward(ids(b, {4}, {1, 2, 3, 4}), ctx), shape_error);
    try {  // a bad token type names the token-type table
        (void)emb.forward(ids(b, {1, 2}, {1, 2}), ids(b, {1, 2}, {0, 3}), ctx);
        BOOST_FAIL("expected error");
    } catch (const error& e) {
        BOOST_TEST(std::string(e.what()).find("bert.embeddings.token_type_embeddings: id 3") != std::string::npos,
                   e.what());
    }
    BOOST_CHECK_THROW(emb.backward(tensor<cpu, float>::zeros(b, {1, 2, 8}), ctx), error);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(float_and_double_forwards_agree, B, layer_backends) {
    B b;
    bert_embeddings<B, double> ed(b, small_config());
    bert_embeddings<B, float> ef(b, small_config());
    rng_stream init(10);
    ed.initialize(init, 0.5);
    randomize_layer_norm(b, ed);
    copy_parameters(ed, ef);
    const auto wid = ids(b, {3, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 1, 2, 3, 4});
    const auto tid = ids(b, {3, 5}, {0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2});
    typename bert_embeddings<B, double>::context cd;
    typename bert_embeddings<B, float>::context cf;
    rng_stream rd(12), rf(12);
    const auto yd = ed.forward(wid, tid, cd, run_mode::train(rd)).to_host();
    const auto yf = ef.forward(wid, tid, cf, run_mode::train(rf)).to_host();
    BOOST_TEST(worst_relative(yf, yd) < 1e-5);

    embedding<B, double> pd(b, 11, 8);
    embedding<B, float> pf(b, 11, 8);
    pd.initialize(init, 1.0);
    copy_parameters(pd, pf);
    BOOST_TEST(worst_relative(pf.apply(wid).to_host(), pd.apply(wid).to_host()) < 1e-6);
}
