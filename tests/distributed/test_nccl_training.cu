// Data-parallel training over NCCL on one GPU (distributed/nccl_communicator.hpp; the GPU machines this project
// is lent have one GPU, so more ranks are not tested here: tests/distributed/test_data_parallel_mpi.cpp runs
// the same trainer path with two MPI ranks). One rank takes the data-parallel path all the way (shares,
// exchange of PHA's embeddings, gradients all-reduced in place on the device, summed scalars), so a 1-rank
// NCCL run must equal the plain run, dropout on, bit for bit. Without a CUDA device every case is skipped and
// the test passes (as test_cuda_backend).
#define BOOST_TEST_MODULE nccl_training
#include <boost/test/unit_test.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hyperadapt/backend/cuda.hpp"
#include "hyperadapt/distributed/nccl_communicator.hpp"
#include "hyperadapt/models/camtl.hpp"
#include "hyperadapt/models/pha_bert.hpp"
#include "hyperadapt/train/multitask_trainer.hpp"
#include "hyperadapt/train/samplers/mt_uncertainty.hpp"
#include "hyperadapt/train/samplers/size_proportional.hpp"
#include "hyperadapt/train/synthetic_tasks.hpp"
#include "support/cuda_device.hpp"

using namespace hyperadapt;
namespace utf = boost::unit_test;

namespace {

const bert_config small_backbone{.vocab_size = 40, .hidden = 16, .layers = 2, .heads = 2, .intermediate = 12,
                                 .max_position = 16, .hidden_dropout = 0.1, .attention_dropout = 0.1};
const std::vector<task_head_spec> small_heads{{"order", 2}, {"majority", 2}, {"count", 1}};

camtl_options small_camtl() {
    camtl_options o;
    o.backbone = small_backbone;
    o.seq_len = 16;
    o.tasks = small_heads;
    return o;
}

pha_bert_options small_pha() {
    pha_bert_options o;
    o.backbone = small_backbone;
    o.tasks = small_heads;
    o.bottleneck = 4;
    o.prototype_dim = 6;
    o.retriever_hidden = 8;
    o.hypernet_hidden = 8;
    o.hypernet_projection = 4;
    o.layer_embedding = 3;
    return o;
}

/// Six steps of a fresh float model on the GPU, with `comm` (nullptr: the plain single-process overload).
template <class Model, class Options>
std::pair<training_result, std::vector<std::vector<float>>> train_on_gpu(const Options& options, bool mtu,
                                                                         bool with_nccl) {
    cuda_backend gpu;
    Model m(gpu, options);
    rng_stream init(11);
    m.initialize(init);
    m.apply_freezing();
    const std::vector<encoded_task> train{synthetic_task(synthetic_kind::order, 60, 16, 3),
                                          synthetic_task(synthetic_kind::majority, 60, 16, 4),
                                          synthetic_task(synthetic_kind::count, 60, 16, 5)};
    const std::vector<encoded_task> dev{synthetic_task(synthetic_kind::order, 20, 16, 6),
                                        synthetic_task(synthetic_kind::majority, 20, 16, 7),
                                        synthetic_task(synthetic_kind::count, 20, 16, 8)};
    trainer_options o;
    o.steps = 6;
    o.lr = 3e-3;
    o.eval_every = 3;
    o.show_progress = false;
    o.seed = 5;
    single_process bootstrap;
    auto run = [&](auto& sampler) {
        if (!with_nccl) return train_multitask(m, sampler, gpu, train, dev, o);
        nccl_communicator comm(bootstrap, gpu.stream());
        return train_multitask(m, sampler, gpu, train, dev, o, comm);
    };
    training_result r;
    if (mtu) {
        std::vector<mt_uncertainty_task> tasks;
        for (const auto& t : train) tasks.push_back({t.info.name, t.size(), t.num_labels(), {}});
        tasks[2].borrow_scores_from = tasks[0].name;
        mt_uncertainty_sampler s(tasks, 12, rng_stream(9));
        r = run(s);
    } else {
        size_proportional_sampler s({60, 60, 60}, 12, rng_stream(9));
        r = run(s);
    }
    std::vector<std::vector<float>> values;
    m.visit_parameters([&](const std::string&, parameter<cuda_backend, float>& p) { values.push_back(p.value.to_host()); });
    return {r, values};
}

template <class Model, class Options>
void check_one_rank_equals_plain(const Options& options, const char* what) {
    for (const bool mtu : {true, false}) {
        BOOST_TEST_CONTEXT(what << (mtu ? ", MT-Uncertainty" : ", proportional")) {
            const auto [plain, plain_values] = train_on_gpu<Model>(options, mtu, false);
            const auto [nccl, nccl_values] = train_on_gpu<Model>(options, mtu, true);
            BOOST_TEST(nccl.losses == plain.losses, boost::test_tools::per_element());
            BOOST_TEST(nccl.real_tokens == plain.real_tokens);
            BOOST_TEST(nccl.final_average == plain.final_average);
            BOOST_TEST_REQUIRE(nccl_values.size() == plain_values.size());
            std::size_t differ = 0;
            for (std::size_t k = 0; k < plain_values.size(); ++k)
                for (std::size_t i = 0; i < plain_values[k].size(); ++i) differ += nccl_values[k][i] != plain_values[k][i];
            BOOST_TEST(differ == 0u, differ << " parameter values differ");
        }
    }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cuda, *utf::precondition(&test::cuda_device_present))

BOOST_AUTO_TEST_CASE(collectives_on_one_rank) {
    cuda_backend gpu;
    single_process bootstrap;
    nccl_communicator comm(bootstrap, gpu.stream());
    BOOST_TEST(comm.rank() == 0);
    BOOST_TEST(comm.size() == 1);
    const std::vector<float> values{1.5f, -2.0f, 3.25f};
    auto device = tensor<cuda_backend, float>::from_host(gpu, shape{3}, values);
    comm.allreduce_device(device.data(), device.size(), /*mean=*/false);
    comm.allreduce_device(device.data(), device.size(), /*mean=*/true);
    comm.finish();
    BOOST_TEST(device.to_host() == values, boost::test_tools::per_element());
    std::vector<double> d{0.25, 4.0};
    comm.allreduce_sum(std::span<double>(d));
    BOOST_TEST(d == (std::vector<double>{0.25, 4.0}), boost::test_tools::per_element());
    std::string word = "unchanged";
    comm.broadcast(std::as_writable_bytes(std::span<char>(word)), 0);
    BOOST_TEST(word == "unchanged");
    BOOST_TEST(comm.allgather(std::string("rank zero")) == std::vector<std::string>{"rank zero"});
    const std::vector<double> mine{1.0, 2.0, 3.0};
    BOOST_TEST(comm.allgather(std::span<const double>(mine)) == std::vector<std::vector<double>>{mine});
    comm.barrier();
    BOOST_CHECK_THROW(comm.broadcast(std::as_writable_bytes(std::span<char>(word)), 1), communication_error);
}

BOOST_AUTO_TEST_CASE(one_rank_over_nccl_equals_the_plain_run) {
    check_one_rank_equals_plain<camtl_model<cuda_backend, float>>(small_camtl(), "CA-MTL");
    check_one_rank_equals_plain<pha_bert<cuda_backend, float>>(small_pha(), "PHA");
}

BOOST_AUTO_TEST_SUITE_END()
