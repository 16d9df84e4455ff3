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
#include "small_training.hpp"
#include "support/cuda_device.hpp"

using namespace hyperadapt;
namespace utf = boost::unit_test;

namespace {

/// Six steps of a fresh float model on the GPU, dropout on: the plain single-process overload, or over a
/// 1-rank NCCL communicator.
template <class Model>
std::pair<training_result, std::vector<std::vector<float>>> train_on_gpu(bool mtu, bool with_nccl) {
    cuda_backend gpu;
    single_process bootstrap;
    return test::train_six_steps<Model>(gpu, mtu, [&](auto& m, auto& sampler, const auto& train, const auto& dev, const auto& o) {
        if (!with_nccl) return train_multitask(m, sampler, gpu, train, dev, o);
        nccl_communicator comm(bootstrap, gpu.stream());
        return train_multitask(m, sampler, gpu, train, dev, o, comm);
    });
}

template <class Model>
void check_one_rank_equals_plain(const char* what) {
    for (const bool mtu : {true, false}) {
        BOOST_TEST_CONTEXT(what << (mtu ? ", MT-Uncertainty" : ", proportional")) {
            const auto [plain, plain_values] = train_on_gpu<Model>(mtu, false);
            const auto [nccl, nccl_values] = train_on_gpu<Model>(mtu, true);
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
    check_one_rank_equals_plain<camtl_model<cuda_backend, float>>("CA-MTL");
    check_one_rank_equals_plain<pha_bert<cuda_backend, float>>("PHA");
}

BOOST_AUTO_TEST_SUITE_END()
