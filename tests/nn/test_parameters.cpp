#define BOOST_TEST_MODULE nn_parameters
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/nn/parameters.hpp"

using namespace hyperadapt;
namespace tt = boost::test_tools;

namespace {

/// A stand-in for a BERT encoder built from Linear layers, named as Hugging Face names the real ones.
/// Twelve layers, so that the range checks can tell layer 1 from layers 10 and 11.
struct tiny_bert {
    using backend_type = cpu;
    using value_type = float;
    static constexpr std::size_t layers = 12;

    linear<cpu, float> embeddings;
    std::vector<linear<cpu, float>> attention, output;
    linear<cpu, float> pooler, classifier;

    explicit tiny_bert(cpu& b, std::string prefix = "")
        : embeddings(b, 4, 3, prefix + "embeddings.word_embeddings", /*with_bias=*/false),
          pooler(b, 3, 3, prefix + "pooler.dense"),
          classifier(b, 3, 2, "classifier") {
        for (std::size_t i = 0; i < layers; ++i) {
            const std::string l = prefix + "encoder.layer." + std::to_string(i);
            attention.emplace_back(b, 3, 3, l + ".attention.self.query");
            output.emplace_back(b, 3, 3, l + ".output.dense");
        }
    }
    [[nodiscard]] std::string name() const { return "tiny_bert"; }
    template <class F>
    void visit_parameters(F&& f) {
        embeddings.visit_parameters(f);
        for (std::size_t i = 0; i < layers; ++i) {
            attention[i].visit_parameters(f);
            output[i].visit_parameters(f);
        }
        pooler.visit_parameters(f);
        classifier.visit_parameters(f);
    }
};

constexpr std::size_t embedding_size = 12, block_size = 2 * (9 + 3), pooler_size = 12, classifier_size = 8;
constexpr std::size_t total_size = embedding_size + tiny_bert::layers * block_size + pooler_size + classifier_size;

}  // namespace

BOOST_AUTO_TEST_CASE(counts_and_names_every_parameter) {
    cpu b;
    tiny_bert m(b);
    const auto c = count_parameters(m);
    BOOST_TEST(c.total == total_size);
    BOOST_TEST(c.trainable == total_size);
    BOOST_TEST(c.tensors == 1u + 12u * 4u + 2u + 2u);
    const auto names = parameter_names(m);
    BOOST_TEST(names.front() == "embeddings.word_embeddings.weight");
    BOOST_TEST(names[1] == "encoder.layer.0.attention.self.query.weight");
    BOOST_TEST(names.back() == "classifier.bias");
}

BOOST_AUTO_TEST_CASE(zero_grad_clears_trainable_gradients) {
    cpu b;
    tiny_bert m(b);
    m.pooler.weight().grad.fill(3.0f);
    m.pooler.weight().freeze();
    m.classifier.bias().grad.fill(2.0f);
    zero_grad(m);
    BOOST_TEST(m.classifier.bias().grad.to_host() == std::vector<float>(2, 0.0f), tt::per_element());
    BOOST_TEST(m.pooler.weight().grad.empty());
}

BOOST_AUTO_TEST_CASE(freeze_by_pattern_is_a_regex_search) {
    cpu b;
    tiny_bert m(b);
    BOOST_TEST(freeze(m, "^embeddings\\.") == 1u);
    BOOST_TEST(m.embeddings.weight().grad.empty());
    BOOST_TEST(freeze(m, "\\.bias$") == 12u * 2u + 2u);
    BOOST_TEST(!m.pooler.bias().trainable());
    BOOST_TEST(m.pooler.weight().trainable());
    const auto c = count_parameters(m);
    BOOST_TEST(c.trainable == total_size - embedding_size - 12u * 6u - 3u - 2u);

    BOOST_TEST(unfreeze(m, "classifier") == 2u);
    BOOST_TEST(m.classifier.bias().trainable());
    BOOST_TEST(m.classifier.bias().grad.to_host() == std::vector<float>(2, 0.0f), tt::per_element());

    unfreeze_all(m);
    BOOST_TEST(count_parameters(m).trainable == total_size);
    freeze_all(m);
    BOOST_TEST(count_parameters(m).trainable == 0u);
    BOOST_TEST(trainable_parameter_names(m).empty());
}

BOOST_AUTO_TEST_CASE(freeze_rejects_patterns_that_select_nothing_or_do_not_parse) {
    cpu b;
    tiny_bert m(b);
    BOOST_CHECK_THROW(freeze(m, "encoder\\.layers\\."), config_error);
    try {
        (void)freeze(m, "encoder.layer.(");
        BOOST_FAIL("expected config_error");
    } catch (const config_error& e) {
        BOOST_TEST(std::string(e.what()).find("encoder.layer.(") != std::string::npos, e.what());
    }
    BOOST_TEST(count_parameters(m).trainable == total_size);
}

BOOST_AUTO_TEST_CASE(freeze_encoder_layers_takes_a_half_open_range) {
    cpu b;
    tiny_bert m(b);
    // Layers 0 and 1 only: the trailing dot keeps "encoder.layer.1." from matching layers 10 and 11.
    BOOST_TEST(freeze_encoder_layers(m, 0, 2) == 2u * 4u);
    for (std::size_t i = 0; i < tiny_bert::layers; ++i) {
        BOOST_TEST(m.attention[i].weight().trainable() == (i >= 2), "layer " << i);
        BOOST_TEST(m.output[i].bias().trainable() == (i >= 2), "layer " << i);
    }
    BOOST_TEST(m.embeddings.weight().trainable());
    BOOST_TEST(count_parameters(m).trainable == total_size - 2 * block_size);

    BOOST_TEST(unfreeze_encoder_layers(m, 1, 2) == 4u);
    BOOST_TEST(m.attention[1].weight().trainable());
    BOOST_TEST(!m.attention[0].weight().trainable());
}

BOOST_AUTO_TEST_CASE(freeze_encoder_layers_keeps_whitelisted_names_and_finds_nested_prefixes) {
    cpu b;
    tiny_bert m(b, "bert.");
    // CA-MTL "--freeze_encoder_layers 0-4" plus embeddings, keeping the attention queries trainable.
    BOOST_TEST(freeze(m, "^bert\\.embeddings\\.") == 1u);
    BOOST_TEST(freeze_encoder_layers(m, 0, 5, "attention\\.self") == 5u * 2u);
    for (std::size_t i = 0; i < tiny_bert::layers; ++i) {
        BOOST_TEST(m.attention[i].weight().trainable(), "layer " << i);
        BOOST_TEST(m.output[i].weight().trainable() == (i >= 5), "layer " << i);
    }
}

BOOST_AUTO_TEST_CASE(freeze_encoder_layers_rejects_out_of_range_layers) {
    cpu b;
    tiny_bert m(b);
    BOOST_CHECK_THROW(freeze_encoder_layers(m, 3, 2), config_error);
    try {
        (void)freeze_encoder_layers(m, 10, 13);
        BOOST_FAIL("expected config_error");
    } catch (const config_error& e) {
        BOOST_TEST(std::string(e.what()).find("encoder.layer.12.") != std::string::npos, e.what());
    }
    // Nothing was frozen by the failed call.
    BOOST_TEST(count_parameters(m).trainable == total_size);
    BOOST_TEST(freeze_encoder_layers(m, 4, 4) == 0u);
}
