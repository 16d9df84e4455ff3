// Data-parallel training over MPI (include/hyperadapt/distributed/): run as `mpirun -np 2 test_data_parallel_mpi`
// (CTest does). The collectives, the start-up checks, and the point of it all: 2 ranks x b rows with their
// gradients averaged give the gradient of the single-process batch of 2b rows.
#define BOOST_TEST_MODULE data_parallel_mpi
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <type_traits>
#include <vector>

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/distributed/communicator_ref.hpp"
#include "hyperadapt/distributed/data_parallel.hpp"
#include "hyperadapt/distributed/mpi_communicator.hpp"
#include "hyperadapt/distributed/overlapped_allreduce.hpp"
#include "hyperadapt/models/multitask_bert.hpp"
#include "hyperadapt/nn/parameters.hpp"
#include "hyperadapt/train/multitask_data.hpp"
#include "small_training.hpp"

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

using test::small_options;
using test::small_pha;

template <class Model>
std::vector<std::vector<double>> gradients_of(Model& m) {
    std::vector<std::vector<double>> g;
    m.visit_parameters([&](const std::string&, parameter<cpu, double>& p) {
        if (p.trainable()) g.push_back(p.grad.to_host());
    });
    return g;
}

/// The same initial weights on every rank (seed 7), the model's freezing applied.
template <class Model>
void initialize_small(Model& m) {
    rng_stream init(7);
    m.initialize(init);
    m.apply_freezing();
}

template <class Model>
double loss_and_gradients(Model& m, cpu& b, const std::vector<encoded_task>& tasks, const std::vector<sample_ref>& rows,
                          const std::vector<std::size_t>& loss_task_rows = {},
                          batch_padding padding = batch_padding::to_encoded_length, batch_exchange exchange = {}) {
    auto batch = make_batch<cpu, double>(b, tasks, rows, padding);
    batch.loss_task_rows = loss_task_rows;
    batch.exchange = std::move(exchange);
    typename Model::context ctx;
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
    const auto whole = gradients_of(m);
    double my_loss = loss_and_gradients(m, b, tasks, mine);
    allreduce_gradients(m, comm, gradient_reduction::mean, /*bucket_elements=*/100);  // many all-reduces
    std::vector<double> loss{my_loss};
    comm.allreduce_sum(std::span<double>(loss));
    BOOST_TEST(loss[0] / 2 == whole_loss, boost::test_tools::tolerance(1e-12));
    const auto averaged = gradients_of(m);
    BOOST_TEST_REQUIRE(averaged.size() == whole.size());
    double worst = 0;
    for (std::size_t k = 0; k < whole.size(); ++k)
        for (std::size_t i = 0; i < whole[k].size(); ++i)
            worst = std::max(worst, std::abs(averaged[k][i] - whole[k][i]) / (std::abs(whole[k][i]) + 1e-12));
    BOOST_TEST(worst < 1e-9, "largest relative difference " << worst);
}

namespace {
/// Each rank's loss and gradients on its share of a global batch of 12 rows with unequal task shares (rank 0: four
/// rows of task 0, two of task 1; rank 1: one of task 0, one of task 1, four of task 2), summed over the ranks,
/// against the single-process batch: equal up to the order of the sums.
template <class Model>
void check_shares_add_up(const char* what) {
    mpi_communicator comm;
    BOOST_TEST_REQUIRE(comm.size() == 2);
    cpu b;
    Model m(b, small_options<Model>());
    initialize_small(m);
    const std::vector<encoded_task> tasks{synthetic_task(synthetic_kind::order, 16, 16, 3),
                                          synthetic_task(synthetic_kind::majority, 16, 16, 4),
                                          synthetic_task(synthetic_kind::count, 16, 16, 5)};
    const std::vector<sample_ref> rows{{0, 0}, {0, 1}, {1, 2}, {0, 3}, {1, 4}, {0, 5},
                                       {2, 6}, {0, 7}, {2, 8}, {1, 9}, {2, 10}, {2, 11}};
    const auto counts = task_row_counts(rows, tasks.size());
    const batch_exchange exchange{.rank = comm.rank(), .allgather = [&comm](std::span<const double> v) { return comm.allgather(v); }};
    for (const auto padding : {batch_padding::to_encoded_length, batch_padding::length_groups}) {
        const double whole_loss = loss_and_gradients(m, b, tasks, rows, {}, padding);
        const auto whole = gradients_of(m);
        std::vector<double> loss{
            loss_and_gradients(m, b, tasks, rank_share(rows, comm.rank(), comm.size()), counts, padding, exchange)};
        allreduce_gradients(m, comm, gradient_reduction::sum, /*bucket_elements=*/1000, /*in_place_elements=*/64);
        comm.allreduce_sum(std::span<double>(loss));
        BOOST_TEST(loss[0] == whole_loss, boost::test_tools::tolerance(1e-12));
        const auto summed = gradients_of(m);
        BOOST_TEST_REQUIRE(summed.size() == whole.size());
        double worst = 0, largest = 0;
        for (std::size_t k = 0; k < whole.size(); ++k)
            for (std::size_t i = 0; i < whole[k].size(); ++i) {
                worst = std::max(worst, std::abs(summed[k][i] - whole[k][i]));
                largest = std::max(largest, std::abs(whole[k][i]));
            }
        BOOST_TEST(largest > 0);
        BOOST_TEST(worst <= 1e-12 * largest, what << ": largest difference " << worst << " (largest gradient " << largest << ")");
    }
}
}  // namespace

BOOST_AUTO_TEST_CASE(camtl_on_unequal_task_shares_adds_up_to_the_global_multitask_loss) {
    // The multi-task loss is the mean over tasks present of per-task means: with the global batch's task counts
    // (loss_task_rows) each rank's loss is its share, and the summed gradients are the global batch's, even
    // when the ranks hold different numbers of each task's rows and one rank lacks a task.
    check_shares_add_up<camtl_model<cpu, double>>("CA-MTL");
    mpi_communicator comm;
    BOOST_CHECK_THROW(rank_share(std::vector<sample_ref>(5), comm.rank(), comm.size()), config_error);
}

BOOST_AUTO_TEST_CASE(pha_contrastive_losses_over_the_gathered_global_batch) {
    // PHA adds L_ins, which pairs every row with every other row of the batch, and L_pro: each rank gathers the
    // global batch's instance embeddings (multitask_batch::exchange), keeps its own anchors' terms and
    // back-propagates its own rows, so that the ranks' losses and gradients add up to the global batch's (a
    // rank's rows alone would miss the pairs across ranks).
    check_shares_add_up<pha_bert<cpu, double>>("PHA");
    // The check has teeth: without the exchange, the losses do not add up.
    mpi_communicator comm;
    cpu b;
    pha_bert<cpu, double> m(b, small_pha());
    rng_stream init(7);
    m.initialize(init);
    const std::vector<encoded_task> tasks{synthetic_task(synthetic_kind::order, 16, 16, 3),
                                          synthetic_task(synthetic_kind::majority, 16, 16, 4),
                                          synthetic_task(synthetic_kind::count, 16, 16, 5)};
    std::vector<sample_ref> rows;
    for (std::size_t i = 0; i < 12; ++i) rows.push_back({i % 3, i});
    const double whole_loss = loss_and_gradients(m, b, tasks, rows);
    std::vector<double> loss{loss_and_gradients(m, b, tasks, rank_share(rows, comm.rank(), comm.size()),
                                                task_row_counts(rows, tasks.size()))};
    comm.allreduce_sum(std::span<double>(loss));
    BOOST_TEST(std::abs(loss[0] - whole_loss) > 1e-6 * std::abs(whole_loss));
}

namespace {

/// Trains a fresh small CA-MTL or PHA (seeded 11 on every rank but `init_rank_offset` added on rank 1, which the
/// broadcast must undo) for `steps` steps of `batch` rows with MT-Uncertainty or size-proportional sampling.
template <class Model = camtl_model<cpu, double>, communicator C>
std::pair<training_result, std::vector<std::vector<double>>> train_small(C& comm, bool mtu, std::size_t batch,
                                                                         std::uint64_t init_rank_offset,
                                                                         const std::filesystem::path& out = {},
                                                                         bool resume = false, bool dropout = false) {
    cpu b;
    Model m(b, small_options<Model>(dropout ? 0.1 : 0.0));
    rng_stream init(11 + (comm.rank() == 1 ? init_rank_offset : 0));
    m.initialize(init);
    m.apply_freezing();
    const auto train = test::small_train_tasks();
    const auto dev = test::small_dev_tasks();
    trainer_options o = test::six_steps();
    o.out_dir = out;
    o.checkpoint_every = out.empty() ? 0 : 3;
    o.resume = resume;
    const training_result r =
        test::with_sampler(mtu, train, batch, [&](auto& s) { return train_multitask(m, s, b, train, dev, o, comm); });
    std::vector<std::vector<double>> values;
    m.visit_parameters([&](const std::string&, parameter<cpu, double>& p) { values.push_back(p.value.to_host()); });
    return {r, values};
}
}  // namespace

namespace {
template <class Model>
void check_two_ranks_equal_one_process(const char* what) {
    mpi_communicator comm;
    BOOST_TEST_REQUIRE(comm.size() == 2);
    for (const bool mtu : {true, false}) {
        single_process solo;
        const auto [alone, alone_values] = train_small<Model>(solo, mtu, 12, 0);
        const auto [shared, shared_values] = train_small<Model>(comm, mtu, 12, 1000);
        BOOST_TEST_REQUIRE(shared.losses.size() == alone.losses.size());
        for (std::size_t k = 0; k < alone.losses.size(); ++k)
            BOOST_TEST(shared.losses[k] == alone.losses[k], boost::test_tools::tolerance(1e-9));
        BOOST_TEST(shared.real_tokens == alone.real_tokens);
        BOOST_TEST(shared.fraction_used == alone.fraction_used);
        BOOST_TEST(shared.final_average == alone.final_average, boost::test_tools::tolerance(1e-9));
        double worst = 0;
        for (std::size_t k = 0; k < alone_values.size(); ++k)
            for (std::size_t i = 0; i < alone_values[k].size(); ++i)
                worst = std::max(worst, std::abs(shared_values[k][i] - alone_values[k][i]) /
                                            (std::abs(alone_values[k][i]) + 1e-6));
        BOOST_TEST(worst < 1e-8, what << ", " << (mtu ? "MT-Uncertainty" : "proportional")
                                      << ": largest relative parameter difference " << worst);
    }
}
}  // namespace

BOOST_AUTO_TEST_CASE(trainer_two_ranks_of_b_equal_one_process_of_2b) {
    // CA-MTL and PHA, each with MT-Uncertainty (each rank scores its share of the candidates and the scores are
    // gathered, so the global top-b is the single process's) and with size-proportional sampling (evaluation
    // sharded, its predictions gathered): after 6 steps of a global batch of 12, the losses,
    // the evaluations and every parameter of the 2-rank run equal the single-process run's (dropout off: the
    // ranks' dropout streams are their own).
    check_two_ranks_equal_one_process<camtl_model<cpu, double>>("CA-MTL");
    check_two_ranks_equal_one_process<pha_bert<cpu, double>>("PHA");
    // A global batch the world size does not divide is refused at the first step, on every rank.
    mpi_communicator comm;
    BOOST_CHECK_THROW(train_small(comm, false, 7, 0), config_error);
}

namespace {
/// Each rank backward on its own rows (other lengths, other length groups), the gradients summed once after
/// backward (allreduce_gradients) and then bucket by bucket during backward (overlapped_allreduce over
/// MPI_Iallreduce, 64-value buckets): the same bits (two ranks: each element is a + b either way), with buckets
/// started before backward returned.
template <class Model>
void check_overlapped_equals_one_allreduce(const char* what) {
    mpi_communicator comm;
    BOOST_TEST_REQUIRE(comm.size() == 2);
    cpu b;
    Model m(b, small_options<Model>());
    initialize_small(m);
    const auto tasks = test::small_train_tasks();
    const std::vector<sample_ref> rows = comm.rank() == 0 ? std::vector<sample_ref>{{0, 0}, {1, 1}, {2, 2}}
                                                          : std::vector<sample_ref>{{0, 3}, {1, 4}, {2, 5}, {2, 6}};
    flat_parameters<cpu, double> flat(m);
    auto pass = [&](run_mode mode) {
        // Length groups of their own on each rank (group cost 1): only each rank's last group reports.
        auto batch = make_batch<cpu, double>(b, tasks, rows, batch_padding::length_groups, /*group_cost=*/1);
        typename Model::context ctx;
        flat.zero_grad();
        (void)m.forward_loss(batch, ctx, mode);
        m.backward(ctx);
    };
    pass(run_mode::inference());
    allreduce_gradients(flat, comm, gradient_reduction::sum);
    const std::vector<double> once = flat.gradients().to_host();
    overlapped_allreduce<cpu, double, mpi_communicator> reducer(flat, comm, gradient_reduction::sum, 64);
    for (int k = 0; k < 2; ++k) {
        reducer.begin();
        pass(run_mode::inference().reporting_gradients(reducer));
        reducer.finish();
        BOOST_TEST((flat.gradients().to_host() == once), what << ", pass " << k);
        BOOST_TEST(reducer.last_pass().started_during_backward > 0u, what);
    }
}
}  // namespace

BOOST_AUTO_TEST_CASE(overlapped_allreduce_over_mpi_equals_one_allreduce_after_backward) {
    check_overlapped_equals_one_allreduce<camtl_model<cpu, double>>("CA-MTL");
    check_overlapped_equals_one_allreduce<pha_bert<cpu, double>>("PHA");
}

BOOST_AUTO_TEST_CASE(one_rank_takes_the_data_parallel_path_and_equals_the_plain_run) {
    // A communicator of one rank (MPI_COMM_SELF here; one GPU under NCCL, tests/distributed/test_nccl_training.cu)
    // runs the data-parallel path (shares, exchange, all-reduces) and keeps the single-process dropout stream:
    // with dropout on, its losses and parameters are the plain run's, bit for bit.
    mpi_communicator self(MPI_COMM_SELF);
    BOOST_TEST_REQUIRE(self.size() == 1);
    single_process solo;
    for (const bool mtu : {true, false}) {
        const auto [plain, plain_values] = train_small<pha_bert<cpu, double>>(solo, mtu, 12, 0, {}, false, /*dropout=*/true);
        const auto [one, one_values] = train_small<pha_bert<cpu, double>>(self, mtu, 12, 0, {}, false, /*dropout=*/true);
        BOOST_TEST(one.losses == plain.losses, boost::test_tools::per_element());
        BOOST_TEST(one_values == plain_values);
    }
}

BOOST_AUTO_TEST_CASE(checkpoints_resume_at_another_world_size) {
    // A 6-step run writes checkpoints at steps 3 and 6 (rank 0 only); the one of step 6 is removed and the run
    // resumes from step 3 at the other world size: 2 ranks -> 1 process, and 1 process -> 2 ranks. Either way
    // the resumed steps and the final parameters are the uninterrupted single-process run's.
    namespace fs = std::filesystem;
    mpi_communicator comm;
    BOOST_TEST_REQUIRE(comm.size() == 2);
    single_process solo;
    const auto [alone, alone_values] = train_small(solo, true, 12, 0);
    std::string base;
    if (comm.rank() == 0) {
        std::string tmpl = (fs::temp_directory_path() / "hyperadapt_dp_resume_XXXXXX").string();
        BOOST_TEST_REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        base = tmpl;
    }
    base = comm.allgather(base)[0];
    auto drop_last_checkpoint = [&](const fs::path& out) {
        comm.barrier();
        if (comm.rank() == 0) {
            const auto all = checkpoint_directory(out / "checkpoints").list();
            BOOST_TEST_REQUIRE(all.size() == 2u);
            fs::remove(all.back().second);
        }
        comm.barrier();
    };
    auto check_resumed = [&](const training_result& r, const std::vector<std::vector<double>>& values, const char* what) {
        BOOST_TEST(r.resumed_from == 3, what);
        BOOST_TEST_REQUIRE(r.losses.size() == 3u);
        for (std::size_t k = 0; k < 3; ++k) BOOST_TEST(r.losses[k] == alone.losses[3 + k], boost::test_tools::tolerance(1e-9));
        double worst = 0;
        for (std::size_t k = 0; k < alone_values.size(); ++k)
            for (std::size_t i = 0; i < alone_values[k].size(); ++i)
                worst = std::max(worst, std::abs(values[k][i] - alone_values[k][i]) / (std::abs(alone_values[k][i]) + 1e-6));
        BOOST_TEST(worst < 1e-8, what << ": largest relative parameter difference " << worst);
    };
    {  // 2 ranks write, 1 process resumes (each rank on its own, from rank 0's files)
        const fs::path out = fs::path(base) / "two_then_one";
        train_small(comm, true, 12, 1000, out);
        drop_last_checkpoint(out);
        const fs::path mine = out.string() + "_rank" + std::to_string(comm.rank());
        if (comm.rank() == 0) fs::copy(out, mine, fs::copy_options::recursive);
        comm.barrier();
        if (comm.rank() == 1) fs::copy(out, mine, fs::copy_options::recursive);
        const auto [r, values] = train_small(solo, true, 12, 0, mine, /*resume=*/true);
        check_resumed(r, values, "2 ranks -> 1 process");
    }
    {  // 1 process writes (rank 0), 2 ranks resume
        const fs::path out = fs::path(base) / "one_then_two";
        if (comm.rank() == 0) train_small(solo, true, 12, 0, out);
        drop_last_checkpoint(out);
        const auto [r, values] = train_small(comm, true, 12, 1000, out, /*resume=*/true);
        check_resumed(r, values, "1 process -> 2 ranks");
    }
    comm.barrier();
    if (comm.rank() == 0) fs::remove_all(base);
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

BOOST_AUTO_TEST_CASE(balanced_shares_split_the_rows_and_their_tokens_evenly) {
    // 12 rows of lengths 1..12 (one task, L = 12): each of 2 (and 3, 4) ranks gets n / W rows, the shares are
    // disjoint and cover the batch, each keeps batch order, and their token counts are within the longest row.
    encoded_task t;
    t.seq_len = 12;
    for (std::size_t i = 0; i < 12; ++i) {
        for (std::size_t j = 0; j < 12; ++j) {
            t.input_ids.push_back(1);
            t.token_type_ids.push_back(0);
            t.attention_mask.push_back(j < (i * 5) % 12 + 1 ? 1 : 0);
        }
        t.labels.push_back(0);
        t.scores.push_back(0);
    }
    const std::vector<encoded_task> tasks{t};
    std::vector<sample_ref> rows;
    for (std::size_t i = 0; i < 12; ++i) rows.push_back({0, i});
    for (const int world : {2, 3, 4}) {
        std::vector<int> owner(12, -1);
        std::vector<std::size_t> tokens;
        for (int r = 0; r < world; ++r) {
            const auto mine = balanced_share(rows, tasks, r, world);
            BOOST_TEST(mine.size() == 12u / static_cast<std::size_t>(world));
            std::size_t sum = 0;
            for (std::size_t k = 0; k < mine.size(); ++k) {
                if (k > 0) BOOST_TEST(mine[k - 1].index < mine[k].index);
                BOOST_TEST(owner[mine[k].index] == -1);
                owner[mine[k].index] = r;
                sum += (mine[k].index * 5) % 12 + 1;
            }
            tokens.push_back(sum);
        }
        BOOST_TEST(std::count(owner.begin(), owner.end(), -1) == 0);
        BOOST_TEST(*std::max_element(tokens.begin(), tokens.end()) - *std::min_element(tokens.begin(), tokens.end()) <= 12u,
                   world << " ranks: token counts differ by more than one row");
    }
    BOOST_CHECK_THROW(balanced_share(rows, tasks, 0, 5), config_error);
    // What scoring and evaluation share out need not divide: 7 rows over 2 ranks are 3 and 4, 1 item over 2 ranks
    // is none and one; every position once.
    const std::vector<sample_ref> seven(rows.begin(), rows.begin() + 7);
    auto p0 = balanced_positions(seven, tasks, 0, 2), p1 = balanced_positions(seven, tasks, 1, 2);
    BOOST_TEST(std::max(p0.size(), p1.size()) == 4u);
    BOOST_TEST(std::min(p0.size(), p1.size()) == 3u);
    p0.insert(p0.end(), p1.begin(), p1.end());
    std::sort(p0.begin(), p0.end());
    BOOST_TEST(p0 == (std::vector<std::size_t>{0, 1, 2, 3, 4, 5, 6}), boost::test_tools::per_element());
    BOOST_TEST((shard_range(1, 0, 2) == std::pair<std::size_t, std::size_t>{0, 0}));
    BOOST_TEST((shard_range(1, 1, 2) == std::pair<std::size_t, std::size_t>{0, 1}));
    BOOST_TEST((shard_range(7, 1, 2) == std::pair<std::size_t, std::size_t>{3, 7}));
}

BOOST_AUTO_TEST_CASE(sharded_evaluation_gathers_every_prediction) {
    // Dev sets of 7, 1 and 9 examples (the 1-example set leaves rank 0 nothing), batches of 3: each rank predicts
    // its share, and the metrics over the gathered predictions are the single process's -- MCC, F1 and the
    // correlations included, which an average of the ranks' metrics would not give.
    mpi_communicator comm;
    BOOST_TEST_REQUIRE(comm.size() == 2);
    cpu b;
    camtl_model<cpu, double> m(b, small_options<camtl_model<cpu, double>>());
    rng_stream init(11);
    m.initialize(init);
    const std::vector<encoded_task> dev{synthetic_task(synthetic_kind::order, 7, 16, 6),
                                        synthetic_task(synthetic_kind::majority, 1, 16, 7),
                                        synthetic_task(synthetic_kind::count, 9, 16, 8)};
    using model = camtl_model<cpu, double>;
    const auto alone = evaluate_tasks<model, cpu, double>(m, b, dev, 3);
    communicator_ref ref(comm);
    for (const auto& shared : {evaluate_tasks<model, cpu, double>(m, b, dev, 3, batch_padding::length_groups, comm),
                               evaluate_tasks<model, cpu, double>(m, b, dev, 3, batch_padding::length_groups, ref)}) {
        BOOST_TEST_REQUIRE(shared.size() == alone.size());
        for (std::size_t t = 0; t < alone.size(); ++t) {
            BOOST_TEST(shared[t].task == alone[t].task);
            BOOST_TEST_REQUIRE(shared[t].values.size() == alone[t].values.size());
            for (std::size_t k = 0; k < alone[t].values.size(); ++k)
                BOOST_TEST(shared[t].values[k].value == alone[t].values[k].value, boost::test_tools::tolerance(1e-12));
        }
    }
}

BOOST_AUTO_TEST_CASE(a_communicator_ref_trains_as_what_it_refers_to) {
    // One trainer for every communicator (what the examples compile): through a reference, the 2-rank run is the
    // 2-rank run bit for bit, and a default reference is the single process's plain run bit for bit.
    mpi_communicator comm;
    communicator_ref ref(comm);
    BOOST_TEST(!ref.is_single_process());
    BOOST_TEST(ref.size() == 2);
    const auto [direct, direct_values] = train_small(comm, true, 12, 0);
    const auto [referred, referred_values] = train_small(ref, true, 12, 0);
    BOOST_TEST(referred.losses == direct.losses, boost::test_tools::per_element());
    BOOST_TEST(referred_values == direct_values);
    single_process solo;
    communicator_ref alone;
    BOOST_TEST(alone.is_single_process());
    BOOST_TEST(communicator_ref(solo).is_single_process());
    const auto [plain, plain_values] = train_small(solo, true, 12, 0, {}, false, /*dropout=*/true);
    const auto [by_ref, by_ref_values] = train_small(alone, true, 12, 0, {}, false, /*dropout=*/true);
    BOOST_TEST(by_ref.losses == plain.losses, boost::test_tools::per_element());
    BOOST_TEST(by_ref_values == plain_values);
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
    const auto before = gradients_of(m);
    allreduce_gradients(m, solo, gradient_reduction::sum);
    BOOST_TEST((gradients_of(m) == before));
}
