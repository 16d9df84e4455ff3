// Data-parallel training over MPI (include/hyperadapt/distributed/): run as `mpirun -np 2 test_data_parallel_mpi`
// (CTest does). The collectives, the start-up checks, and the point of it all: 2 ranks x b rows with their
// gradients averaged give the gradient of the single-process batch of 2b rows.
#define BOOST_TEST_MODULE data_parallel_mpi
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/distributed/data_parallel.hpp"
#include "hyperadapt/distributed/mpi_communicator.hpp"
#include "hyperadapt/models/multitask_bert.hpp"
#include "hyperadapt/nn/parameters.hpp"
#include "hyperadapt/train/multitask_data.hpp"
#include "hyperadapt/train/synthetic_tasks.hpp"

using namespace hyperadapt;

namespace {
struct mpi_fixture {
    mpi_fixture() : session(argc, argv) {}
    int argc = boost::unit_test::framework::master_test_suite().argc;
    char** argv = boost::unit_test::framework::master_test_suite().argv;
    mpi_session session;
};
BOOST_TEST_GLOBAL_FIXTURE(mpi_fixture);

const bert_config tiny{.vocab_size = 40, .hidden = 8, .layers = 2, .heads = 2, .intermediate = 12, .max_position = 8,
                       .hidden_dropout = 0, .attention_dropout = 0};

multitask_bert_options one_task() { return {.backbone = tiny, .tasks = {{"order", 2}}, .head_dropout = 0}; }

std::vector<std::vector<double>> gradients(multitask_bert<cpu, double>& m) {
    std::vector<std::vector<double>> g;
    m.visit_parameters([&](const std::string&, parameter<cpu, double>& p) {
        if (p.trainable()) g.push_back(p.grad.to_host());
    });
    return g;
}

double loss_and_gradients(multitask_bert<cpu, double>& m, cpu& b, const std::vector<encoded_task>& tasks,
                          const std::vector<sample_ref>& rows) {
    const auto batch = make_batch<cpu, double>(b, tasks, rows);
    multitask_bert<cpu, double>::context ctx;
    zero_grad(m);
    const double loss = m.forward_loss(batch, ctx, run_mode::inference());
    m.backward(ctx);
    return loss;
}
}  // namespace

BOOST_AUTO_TEST_CASE(collectives_on_two_ranks) {
    mpi_communicator comm;
    BOOST_TEST_REQUIRE(comm.size() == 2, "run with mpirun -np 2 (this run has " << comm.size() << " ranks)");
    const int r = comm.rank();
    std::vector<float> f{1.0f + static_cast<float>(r), 10.0f};
    comm.allreduce_sum(std::span<float>(f));
    BOOST_TEST(f[0] == 3.0f);
    BOOST_TEST(f[1] == 20.0f);
    std::vector<double> d{0.5 * r};
    comm.allreduce_sum(std::span<double>(d));
    BOOST_TEST(d[0] == 0.5);
    std::string word = r == 1 ? "from rank one" : "-------------";
    comm.broadcast(std::as_writable_bytes(std::span<char>(word)), 1);
    BOOST_TEST(word == "from rank one");
    const auto all = comm.allgather(r == 0 ? std::string() : std::string("rank 1 says more"));
    BOOST_TEST_REQUIRE(all.size() == 2u);
    BOOST_TEST(all[0].empty());
    BOOST_TEST(all[1] == "rank 1 says more");
    comm.barrier();
    BOOST_CHECK_THROW(comm.broadcast(std::as_writable_bytes(std::span<char>(word)), 2), communication_error);
}

BOOST_AUTO_TEST_CASE(two_ranks_of_b_rows_give_the_gradient_of_one_batch_of_2b) {
    mpi_communicator comm;
    BOOST_TEST_REQUIRE(comm.size() == 2);
    cpu b;
    multitask_bert<cpu, double> m(b, one_task());
    rng_stream init(1 + static_cast<std::uint64_t>(comm.rank()));  // different on purpose: the broadcast must fix it
    m.initialize(init);
    check_same_parameters(m, comm);
    broadcast_parameters(m, comm);

    const std::vector<encoded_task> tasks{synthetic_task(synthetic_kind::order, 16, 8, 5)};
    std::vector<sample_ref> all, mine;
    for (std::size_t i = 0; i < 12; ++i) all.push_back({0, i});
    for (std::size_t i = 0; i < 6; ++i) mine.push_back(all[static_cast<std::size_t>(comm.rank()) * 6 + i]);

    const double whole_loss = loss_and_gradients(m, b, tasks, all);  // the single-process batch of 2b rows
    const auto whole = gradients(m);
    double my_loss = loss_and_gradients(m, b, tasks, mine);
    allreduce_gradients(m, comm, /*bucket_elements=*/100);  // small buckets: many all-reduces, a split parameter
    std::vector<double> loss{my_loss};
    comm.allreduce_sum(std::span<double>(loss));
    BOOST_TEST(loss[0] / 2 == whole_loss, boost::test_tools::tolerance(1e-12));
    const auto averaged = gradients(m);
    BOOST_TEST_REQUIRE(averaged.size() == whole.size());
    double worst = 0;
    for (std::size_t k = 0; k < whole.size(); ++k)
        for (std::size_t i = 0; i < whole[k].size(); ++i)
            worst = std::max(worst, std::abs(averaged[k][i] - whole[k][i]) / (std::abs(whole[k][i]) + 1e-12));
    BOOST_TEST(worst < 1e-9, "largest relative difference " << worst);
}

BOOST_AUTO_TEST_CASE(ranks_with_different_models_are_refused_on_every_rank) {
    mpi_communicator comm;
    BOOST_TEST_REQUIRE(comm.size() == 2);
    cpu b;
    auto o = one_task();
    if (comm.rank() == 1) o.tasks.push_back({"majority", 2});  // rank 1 has one head more
    multitask_bert<cpu, double> m(b, o);
    try {
        check_same_parameters(m, comm);
        BOOST_ERROR("rank " << comm.rank() << ": a different model was accepted");
    } catch (const config_error& e) {
        const std::string what = e.what();
        BOOST_TEST(what.find("rank 1") != std::string::npos, what);
        BOOST_TEST(what.find("heads.") != std::string::npos, what);
    }
}

BOOST_AUTO_TEST_CASE(one_process_needs_no_mpi) {
    single_process solo;
    cpu b;
    multitask_bert<cpu, double> m(b, one_task());
    rng_stream init(3);
    m.initialize(init);
    check_same_parameters(m, solo);
    broadcast_parameters(m, solo);
    const std::vector<encoded_task> tasks{synthetic_task(synthetic_kind::order, 4, 8, 5)};
    loss_and_gradients(m, b, tasks, {{0, 0}, {0, 1}});
    const auto before = gradients(m);
    allreduce_gradients(m, solo);
    BOOST_TEST((gradients(m) == before));
}
