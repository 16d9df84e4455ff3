// The gradient all-reduce paths of data-parallel training, in one process (the two-rank runs over MPI are in
// test_data_parallel_mpi.cpp):
//  - overlapped with backward (distributed/overlapped_allreduce.hpp) and the hook it rests on
//    (nn/gradient_listener.hpp): on every model (BERT full fine-tuning, CA-MTL, PHA) each gradient backward
//    reports final holds then the bits it holds at the end of the pass; buckets start during backward, nothing
//    writes into a started bucket before it is waited for, and every trainable gradient is summed exactly once;
//  - device memory (allreduce_gradients on a backend whose memory is not the host's): a communicator with device
//    collectives reduces it in place, also through a communicator_ref; a reference to one without them goes
//    through host memory;
//  - the overlapped reducer on device memory (the CPU backend posing as a device): buckets started beside the
//    computation (NCCL's second stream) and joined once before the wait, or enqueued in turn, or, with a
//    host-only communicator, one all-reduce through the host at the end; and the trainer on that path, over a
//    one-rank communicator, equals the plain run bit for bit (what test_nccl_training.cu checks on a GPU).
#define BOOST_TEST_MODULE distributed_gradient_allreduce
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "distributed/small_training.hpp"
#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/distributed/communicator_ref.hpp"
#include "hyperadapt/distributed/data_parallel.hpp"
#include "hyperadapt/distributed/overlapped_allreduce.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/models/multitask_bert.hpp"
#include "hyperadapt/nn/flat_parameters.hpp"

using namespace hyperadapt;

namespace {

using real = float;

/// A BERT fine-tuned whole (every layer trains) on the three small tasks.
multitask_bert_options small_bert() {
    return {.backbone = test::small_backbone(0.1), .tasks = test::small_heads, .head_dropout = 0.1};
}

template <class Model>
typename Model::options_type options_of() {
    if constexpr (std::is_same_v<typename Model::options_type, multitask_bert_options>) return small_bert();
    else return test::small_options<Model>(0.1);
}

/// Records what backward reports, with a copy of each gradient as it was when reported.
class recording_listener final : public gradient_listener {
public:
    struct report {
        const void* data;
        std::size_t bytes;
        std::vector<unsigned char> bits;
    };
    void gradient_ready(const void* data, std::size_t bytes) override {
        const auto* p = static_cast<const unsigned char*>(data);
        reports.push_back({data, bytes, std::vector<unsigned char>(p, p + bytes)});
    }
    void layer_finished() override { ++layers; }
    std::vector<report> reports;
    std::size_t layers = 0;
};

/// Two ranks holding the same gradients, seen from rank 0: the sum over ranks doubles every value. Each started
/// range is copied when it starts and must hold the same bits when waited for (nothing may write into a
/// started bucket); the doubling happens at the wait.
class two_identical_ranks {
public:
    [[nodiscard]] int rank() const noexcept { return 0; }
    [[nodiscard]] int size() const noexcept { return 2; }
    void allreduce_sum(std::span<real> v) {
        ++blocking;
        for (auto& x : v) x *= 2;
    }
    void allreduce_sum(std::span<double> v) {
        for (auto& x : v) x *= 2;
    }
    void start_allreduce_sum(std::span<real> v) {
        started.push_back({v, std::vector<real>(v.begin(), v.end())});
        ranges.push_back(v);
    }
    void start_allreduce_sum(std::span<double>) { throw std::logic_error("no double gradients here"); }
    void progress() noexcept { ++progressed; }
    void wait_started() {
        for (auto& [v, copy] : started) {
            if (std::memcmp(v.data(), copy.data(), v.size_bytes()) != 0) ++written_after_start;
            for (auto& x : v) x *= 2;
        }
        started.clear();
    }
    void broadcast(std::span<std::byte>, int) {}
    [[nodiscard]] std::vector<std::string> allgather(const std::string& s) const { return {s, s}; }
    [[nodiscard]] std::vector<std::vector<double>> allgather(std::span<const double> v) const {
        return {std::vector<double>(v.begin(), v.end()), std::vector<double>(v.begin(), v.end())};
    }
    void barrier() noexcept {}

    std::vector<std::pair<std::span<real>, std::vector<real>>> started;
    std::vector<std::span<real>> ranges;  // every range ever started
    std::size_t progressed = 0, written_after_start = 0, blocking = 0;
};
static_assert(communicator<two_identical_ranks> && nonblocking_collectives<two_identical_ranks>);

/// The same two ranks without non-blocking all-reduces: the reducer blocks on each bucket when it is ready.
class two_identical_ranks_blocking {
public:
    [[nodiscard]] int rank() const noexcept { return 0; }
    [[nodiscard]] int size() const noexcept { return 2; }
    void allreduce_sum(std::span<real> v) {
        ++calls;
        for (auto& x : v) x *= 2;
    }
    void allreduce_sum(std::span<double> v) {
        for (auto& x : v) x *= 2;
    }
    void broadcast(std::span<std::byte>, int) {}
    [[nodiscard]] std::vector<std::string> allgather(const std::string& s) const { return {s, s}; }
    [[nodiscard]] std::vector<std::vector<double>> allgather(std::span<const double> v) const {
        return {std::vector<double>(v.begin(), v.end()), std::vector<double>(v.begin(), v.end())};
    }
    void barrier() noexcept {}
    std::size_t calls = 0;
};
static_assert(communicator<two_identical_ranks_blocking> && !nonblocking_collectives<two_identical_ranks_blocking>);

/// A model of `Model` with its freezing applied, and one training batch of the three tasks.
template <class Model>
struct fixture {
    using backend_type = typename Model::backend_type;
    backend_type b;
    Model m;
    std::vector<encoded_task> tasks = test::small_train_tasks();
    std::vector<sample_ref> rows{{0, 0}, {0, 1}, {1, 2}, {2, 3}, {1, 4}, {2, 5}, {0, 6}, {1, 7}, {2, 8}, {0, 9}};
    std::size_t groups = 0;  // length groups of the last step's batch

    explicit fixture(const typename Model::options_type& o = options_of<Model>()) : m(b, o) {
        rng_stream init(7);
        m.initialize(init);
        if constexpr (requires { m.apply_freezing(); }) m.apply_freezing();
    }
    /// Forward and backward in training mode (dropout on, the same stream every call), `mode_of` choosing the
    /// run_mode; gradients zeroed first.
    template <class ModeOf>
    void step(flat_parameters<backend_type, real>& flat, ModeOf mode_of) {
        auto batch = make_batch<backend_type, real>(b, tasks, rows, batch_padding::length_groups, /*group_cost=*/1);
        groups = batch.groups.size();
        typename Model::context ctx;
        flat.zero_grad();
        rng_stream dropout(3);
        (void)m.forward_loss(batch, ctx, mode_of(run_mode::train(dropout)));
        m.backward(ctx);
    }
};

template <class B>
std::vector<real> copy_of(tensor<B, real>& t) {
    return std::vector<real>(t.data(), t.data() + t.size());
}

template <class Model>
void check_reports_are_final(const char* what) {
    fixture<Model> f;
    flat_parameters<cpu, real> flat(f.m);
    recording_listener listener;
    f.step(flat, [&](run_mode mode) { return mode.reporting_gradients(listener); });
    BOOST_TEST_REQUIRE(!listener.reports.empty(), what << ": backward reported nothing");
    BOOST_TEST(listener.layers > 0u, what);
    std::vector<const void*> seen;
    for (const auto& r : listener.reports) {
        BOOST_TEST(std::memcmp(r.data, r.bits.data(), r.bytes) == 0,
                   what << ": a gradient changed after backward reported it final");
        std::size_t matches = 0;
        for (std::size_t i = 0; i < flat.size(); ++i) {
            const auto& p = flat.at(i);
            if (p.trainable() && p.grad.data() == r.data && p.size() * sizeof(real) == r.bytes) {
                ++matches;
                BOOST_TEST(flat.name(i).find(".layer.") != std::string::npos,
                           what << ": '" << flat.name(i) << "' is not a stack layer's parameter");
            }
        }
        BOOST_TEST(matches == 1u, what << ": a report is not exactly one trainable parameter's gradient");
        BOOST_TEST((std::find(seen.begin(), seen.end(), r.data) == seen.end()), what << ": a gradient reported twice");
        seen.push_back(r.data);
    }
    // A pass without a listener computes the same gradients (reporting only reads them).
    const auto reported_run = copy_of(flat.gradients());
    f.step(flat, [](run_mode mode) { return mode; });
    BOOST_TEST((copy_of(flat.gradients()) == reported_run), what);
}

template <class Model>
void check_overlapped_sum(const char* what, const typename Model::options_type& o = options_of<Model>()) {
    fixture<Model> f(o);
    flat_parameters<cpu, real> flat(f.m);
    f.step(flat, [](run_mode mode) { return mode; });
    const auto plain = copy_of(flat.gradients());
    // Several length groups: every group's backward adds to the same layers, so only the last may report them.
    BOOST_TEST_REQUIRE(f.groups > 1u, what << ": the batch should fall into several length groups");
    bool overlaps = true;
    if constexpr (std::is_same_v<typename Model::options_type, pha_bert_options>) overlaps = o.passes == pha_passes::single;

    // Small buckets (64 values): several of them fill before backward reaches the lowest trained layer.
    two_identical_ranks ranks;
    overlapped_allreduce<cpu, real, two_identical_ranks> reducer(flat, ranks, gradient_reduction::sum, 64);
    for (int pass = 0; pass < 2; ++pass) {  // the second pass reuses the plan
        ranks.ranges.clear();
        reducer.begin();
        f.step(flat, [&](run_mode mode) { return mode.reporting_gradients(reducer); });
        reducer.finish();
        const auto summed = copy_of(flat.gradients());
        BOOST_TEST_REQUIRE(summed.size() == plain.size());
        std::size_t wrong = 0;
        for (std::size_t i = 0; i < plain.size(); ++i) wrong += summed[i] != 2 * plain[i];
        BOOST_TEST(wrong == 0u, what << ": " << wrong << " of " << plain.size() << " gradients are not the sum over ranks");
        BOOST_TEST(ranks.written_after_start == 0u, what << ": backward wrote into a bucket after its all-reduce started");
        const auto stats = reducer.last_pass();
        BOOST_TEST(stats.buckets == reducer.bucket_ranges().size());
        if (overlaps) {
            BOOST_TEST(stats.started_during_backward > 0u, what << ": no bucket started before backward returned");
            BOOST_TEST(stats.started_during_backward < stats.buckets, what << ": the shared modules' buckets wait for the end");
            BOOST_TEST(ranks.progressed > 0u, what << ": started all-reduces were never given a chance to advance");
        } else {
            BOOST_TEST(stats.started_during_backward == 0u, what << ": a bucket started before its gradients were final");
        }
        // Every trainable gradient lies in exactly one started range; no range started twice.
        std::vector<int> covered(plain.size(), 0);
        for (const auto& r : ranks.ranges)
            for (std::size_t i = 0; i < r.size(); ++i) ++covered[static_cast<std::size_t>(r.data() + i - flat.gradients().data())];
        std::size_t uncovered = 0, twice = 0;
        for (std::size_t k = 0; k < flat.size(); ++k) {
            const auto& p = flat.at(k);
            if (!p.trainable()) continue;
            const auto at = static_cast<std::size_t>(p.grad.data() - flat.gradients().data());
            for (std::size_t i = 0; i < p.size(); ++i) uncovered += covered[at + i] == 0;
        }
        for (const int c : covered) twice += c > 1;
        BOOST_TEST(uncovered == 0u, what << ": " << uncovered << " trainable gradients never all-reduced");
        BOOST_TEST(twice == 0u, what << ": " << twice << " gradients all-reduced twice");
    }

    // The mean over the two identical ranks is the gradient itself; the same through a communicator_ref.
    communicator_ref ref(ranks);
    overlapped_allreduce<cpu, real, communicator_ref> through_ref(flat, ref, gradient_reduction::mean, 64);
    through_ref.begin();
    f.step(flat, [&](run_mode mode) { return mode.reporting_gradients(through_ref); });
    through_ref.finish();
    BOOST_TEST((copy_of(flat.gradients()) == plain), what << ": mean through a communicator_ref");
    BOOST_TEST((through_ref.last_pass().started_during_backward > 0u) == overlaps);

    // Without non-blocking all-reduces, each bucket is reduced (blocking) when ready: the same sum.
    two_identical_ranks_blocking blocking;
    overlapped_allreduce<cpu, real, two_identical_ranks_blocking> in_turn(flat, blocking, gradient_reduction::sum, 64);
    in_turn.begin();
    f.step(flat, [&](run_mode mode) { return mode.reporting_gradients(in_turn); });
    in_turn.finish();
    std::size_t wrong = 0;
    const auto summed = copy_of(flat.gradients());
    for (std::size_t i = 0; i < plain.size(); ++i) wrong += summed[i] != 2 * plain[i];
    BOOST_TEST(wrong == 0u, what << ": blocking buckets");
    BOOST_TEST(blocking.calls == in_turn.bucket_ranges().size());
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_gradient_backward_reports_final_is_final) {
    check_reports_are_final<multitask_bert<cpu, real>>("BERT");
    check_reports_are_final<camtl_model<cpu, real>>("CA-MTL");
    check_reports_are_final<pha_bert<cpu, real>>("PHA");
}

BOOST_AUTO_TEST_CASE(buckets_start_during_backward_and_every_gradient_is_summed_once) {
    check_overlapped_sum<multitask_bert<cpu, real>>("BERT");
    check_overlapped_sum<camtl_model<cpu, real>>("CA-MTL");
    check_overlapped_sum<pha_bert<cpu, real>>("PHA");
    // PHA with two passes runs its upper stack twice: its layers' gradients are final only at the end, so nothing
    // starts early (a report after the first of the two backward passes would be refused as reported twice).
    pha_bert_options two = test::small_pha(0.1);
    two.passes = pha_passes::two;
    check_overlapped_sum<pha_bert<cpu, real>>("PHA, two passes", two);
}

BOOST_AUTO_TEST_CASE(a_gradient_reported_twice_is_refused_and_a_new_layout_is_planned_again) {
    fixture<camtl_model<cpu, real>> f;
    flat_parameters<cpu, real> flat(f.m);
    single_process solo;
    overlapped_allreduce<cpu, real, single_process> reducer(flat, solo);
    reducer.begin();
    const parameter<cpu, real>* trained = nullptr;
    for (std::size_t i = 0; i < flat.size() && !trained; ++i)
        if (flat.at(i).trainable()) trained = &flat.at(i);
    BOOST_TEST_REQUIRE(trained != nullptr);
    reducer.gradient_ready(trained->grad.data(), trained->size() * sizeof(real));
    BOOST_CHECK_THROW(reducer.gradient_ready(trained->grad.data(), trained->size() * sizeof(real)), std::logic_error);
    reducer.gradient_ready(&reducer, 4);  // not a gradient of this model: left to finish()
    reducer.finish();

    // Unfreezing the frozen lower layers lays the gradients out again; begin() plans the buckets anew.
    const auto before = reducer.bucket_ranges();
    f.m.visit_parameters([](const std::string&, parameter<cpu, real>& p) {
        if (!p.trainable()) p.unfreeze();
    });
    reducer.begin();
    const auto after = reducer.bucket_ranges();
    BOOST_TEST(after.back().second > before.back().second);
    reducer.finish();
}

namespace {
/// The CPU backend claiming that its memory is a device's: the gradient paths take their device branches, and the
/// data stays readable here.
struct pretend_device : cpu_backend<eigen_gemm> {
    using cpu_backend<eigen_gemm>::cpu_backend;
    static constexpr bool host_memory = false;
};
static_assert(!host_memory_backend<pretend_device>);

/// Two identical ranks (rank 0 of 2) whose collectives also take device memory, as NCCL's do.
class device_reducing_ranks {
public:
    [[nodiscard]] int rank() const noexcept { return 0; }
    [[nodiscard]] int size() const noexcept { return 2; }
    void allreduce_sum(std::span<real> v) {
        ++host_calls;
        for (auto& x : v) x *= 2;
    }
    void allreduce_sum(std::span<double> v) {
        for (auto& x : v) x *= 2;
    }
    void allreduce_device(real* p, std::size_t n, bool mean) {
        ++device_calls;
        if (!mean)
            for (std::size_t i = 0; i < n; ++i) p[i] *= 2;
    }
    void allreduce_device(double* p, std::size_t n, bool mean) {
        ++device_calls;
        if (!mean)
            for (std::size_t i = 0; i < n; ++i) p[i] *= 2;
    }
    void finish() noexcept { ++finishes; }
    void broadcast(std::span<std::byte>, int) {}
    [[nodiscard]] std::vector<std::string> allgather(const std::string& s) const { return {s, s}; }
    [[nodiscard]] std::vector<std::vector<double>> allgather(std::span<const double> v) const {
        return {std::vector<double>(v.begin(), v.end()), std::vector<double>(v.begin(), v.end())};
    }
    void barrier() noexcept {}
    std::size_t host_calls = 0, device_calls = 0, finishes = 0;
};
static_assert(communicator<device_reducing_ranks> && device_collectives<device_reducing_ranks, real>);

/// A linear layer's gradients (weight, then bias, in one flat buffer with a zero gap between them) set to 1, 2, 3, ...
struct numbered_gradients {
    pretend_device b;
    linear<pretend_device, real> layer{b, 3, 4, "fc"};
    flat_parameters<pretend_device, real> flat{layer};
    numbered_gradients() { reset(); }
    template <class F>
    void each(F f) {
        std::size_t k = 0;
        layer.visit_parameters([&](const std::string&, parameter<pretend_device, real>& p) {
            for (std::size_t i = 0; i < p.size(); ++i) f(p.grad.data()[i], ++k);
        });
    }
    void reset() {
        each([](real& g, std::size_t k) { g = static_cast<real>(k); });
    }
    /// Every gradient twice its number, and the gaps still zero.
    [[nodiscard]] bool doubled() {
        bool ok = true;
        std::size_t sum = 0;
        each([&](real& g, std::size_t k) {
            ok = ok && g == static_cast<real>(2 * k);
            sum += 2 * k;
        });
        tensor<pretend_device, real>& all = flat.gradients();
        real total = 0;
        for (std::size_t i = 0; i < all.size(); ++i) total += all.data()[i];
        return ok && total == static_cast<real>(sum);
    }
};
}  // namespace

BOOST_AUTO_TEST_CASE(device_gradients_go_to_the_device_collectives_also_through_a_communicator_ref) {
    numbered_gradients g;
    device_reducing_ranks ranks;
    allreduce_gradients(g.flat, ranks, gradient_reduction::sum);
    BOOST_TEST(ranks.device_calls == 1u);  // the whole flat buffer in one call, then one wait
    BOOST_TEST(ranks.finishes == 1u);
    BOOST_TEST(ranks.host_calls == 0u);
    BOOST_TEST(g.doubled());

    communicator_ref ref(ranks);
    BOOST_TEST(ref.carries_device_collectives());
    g.reset();
    allreduce_gradients(g.flat, ref, gradient_reduction::sum);
    BOOST_TEST(ranks.device_calls == 2u);
    BOOST_TEST(ranks.finishes == 2u);
    BOOST_TEST(ranks.host_calls == 0u);
    BOOST_TEST(g.doubled());
    g.reset();
    allreduce_gradients(g.layer, ref, gradient_reduction::sum);  // per parameter: weight and bias
    BOOST_TEST(ranks.device_calls == 4u);
    BOOST_TEST(g.doubled());

    // A reference to a communicator without device collectives says so, and the gradients go through the host.
    two_identical_ranks_blocking host_only;
    communicator_ref host_ref(host_only);
    BOOST_TEST(!host_ref.carries_device_collectives());
    BOOST_TEST(!communicator_ref().carries_device_collectives());
    g.reset();
    allreduce_gradients(g.flat, host_ref, gradient_reduction::sum);
    BOOST_TEST(host_only.calls == 1u);
    BOOST_TEST(g.doubled());
    real x = 1;
    BOOST_CHECK_THROW(host_ref.allreduce_device(&x, 1, false), communication_error);
}

namespace {
/// `Ranks` identical ranks (seen from rank 0) whose device all-reduces can also start beside the computation, as
/// nccl_communicator's do on its second stream. Every call is logged (H host, D device in turn, S started, J join,
/// F finish); a started range must hold the same bits when joined (nothing may write into it meanwhile), and the
/// sum over ranks happens at the join (the second stream's work, which the computing stream waits for there).
template <int Ranks>
class device_stream_ranks {
public:
    [[nodiscard]] int rank() const noexcept { return 0; }
    [[nodiscard]] int size() const noexcept { return Ranks; }
    void allreduce_sum(std::span<real> v) {
        log += 'H';
        times_ranks(v.data(), v.size());
    }
    void allreduce_sum(std::span<double> v) {
        log += 'H';
        for (auto& x : v) x *= Ranks;
    }
    void allreduce_device(real* p, std::size_t n, bool mean) {
        log += 'D';
        if (!mean) times_ranks(p, n);
    }
    void allreduce_device(double*, std::size_t, bool) { throw std::logic_error("no double gradients here"); }
    void start_allreduce_device(real* p, std::size_t n) {
        log += 'S';
        started.push_back({std::span<real>(p, n), std::vector<real>(p, p + n)});
        ranges.emplace_back(p, n);
    }
    void start_allreduce_device(double*, std::size_t) { throw std::logic_error("no double gradients here"); }
    void join_started_device() {
        log += 'J';
        for (auto& [v, bits] : started) {
            if (std::memcmp(v.data(), bits.data(), v.size_bytes()) != 0) ++written_after_start;
            times_ranks(v.data(), v.size());
        }
        started.clear();
    }
    void finish() {
        log += 'F';
        if (!started.empty()) ++waited_unjoined;
    }
    void broadcast(std::span<std::byte>, int) {}
    [[nodiscard]] std::vector<std::string> allgather(const std::string& s) const {
        return std::vector<std::string>(Ranks, s);
    }
    [[nodiscard]] std::vector<std::vector<double>> allgather(std::span<const double> v) const {
        return std::vector<std::vector<double>>(Ranks, std::vector<double>(v.begin(), v.end()));
    }
    void barrier() noexcept {}

    std::string log;
    std::vector<std::pair<std::span<real>, std::vector<real>>> started;
    std::vector<std::span<real>> ranges;  // every range ever started
    std::size_t written_after_start = 0, waited_unjoined = 0;

private:
    static void times_ranks(real* p, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) p[i] *= Ranks;
    }
};
static_assert(communicator<device_stream_ranks<2>> && nonblocking_device_collectives<device_stream_ranks<2>, real>);
static_assert(!nonblocking_device_collectives<device_reducing_ranks, real>);

using device_camtl = camtl_model<pretend_device, real>;

/// How many of the gradients are not `factor` times `plain`.
std::size_t not_times(const std::vector<real>& now, const std::vector<real>& plain, real factor) {
    std::size_t wrong = now.size() == plain.size() ? 0 : now.size() + plain.size();
    for (std::size_t i = 0; i < std::min(now.size(), plain.size()); ++i) wrong += now[i] != factor * plain[i];
    return wrong;
}
}  // namespace

BOOST_AUTO_TEST_CASE(device_buckets_start_beside_the_computation_and_are_joined_once_before_the_wait) {
    fixture<device_camtl> f;
    flat_parameters<pretend_device, real> flat(f.m);
    f.step(flat, [](run_mode mode) { return mode; });
    const auto plain = copy_of(flat.gradients());

    device_stream_ranks<2> ranks;
    overlapped_allreduce<pretend_device, real, device_stream_ranks<2>> reducer(flat, ranks, gradient_reduction::sum, 64);
    for (int pass = 0; pass < 2; ++pass) {
        ranks.log.clear();
        ranks.ranges.clear();
        reducer.begin();
        f.step(flat, [&](run_mode mode) { return mode.reporting_gradients(reducer); });
        reducer.finish();
        BOOST_TEST(not_times(copy_of(flat.gradients()), plain, 2) == 0u);
        BOOST_TEST(ranks.written_after_start == 0u, "backward wrote into a bucket after its all-reduce started");
        const auto stats = reducer.last_pass();
        BOOST_TEST(stats.started_during_backward > 0u);
        BOOST_TEST(stats.started_during_backward < stats.buckets);
        // Every bucket started beside the computation, then one join, then the host's wait; nothing else.
        BOOST_TEST(ranks.log == std::string(stats.buckets, 'S') + "JF");
        BOOST_TEST(ranks.waited_unjoined == 0u);
        std::vector<int> covered(plain.size(), 0);
        for (const auto& r : ranks.ranges)
            for (std::size_t i = 0; i < r.size(); ++i) ++covered[static_cast<std::size_t>(r.data() + i - flat.gradients().data())];
        std::size_t uncovered = 0;
        for (std::size_t k = 0; k < flat.size(); ++k) {
            const auto& p = flat.at(k);
            if (!p.trainable()) continue;
            const auto at = static_cast<std::size_t>(p.grad.data() - flat.gradients().data());
            for (std::size_t i = 0; i < p.size(); ++i) uncovered += covered[at + i] != 1;
        }
        BOOST_TEST(uncovered == 0u, uncovered << " trainable gradients not all-reduced exactly once");
    }

    // Through a communicator_ref, the mean over two identical ranks: the gradient itself.
    communicator_ref ref(ranks);
    overlapped_allreduce<pretend_device, real, communicator_ref> through_ref(flat, ref, gradient_reduction::mean, 64);
    ranks.log.clear();
    through_ref.begin();
    f.step(flat, [&](run_mode mode) { return mode.reporting_gradients(through_ref); });
    through_ref.finish();
    BOOST_TEST(not_times(copy_of(flat.gradients()), plain, 1) == 0u);
    BOOST_TEST(ranks.log == std::string(through_ref.last_pass().buckets, 'S') + "JF");
    BOOST_TEST(through_ref.last_pass().started_during_backward > 0u);
}

BOOST_AUTO_TEST_CASE(device_buckets_go_in_turn_without_a_second_stream_and_through_the_host_without_device_collectives) {
    fixture<device_camtl> f;
    flat_parameters<pretend_device, real> flat(f.m);
    f.step(flat, [](run_mode mode) { return mode; });
    const auto plain = copy_of(flat.gradients());

    // Device collectives that cannot start beside the computation: each bucket enqueued when ready, one wait.
    device_reducing_ranks in_turn_ranks;
    overlapped_allreduce<pretend_device, real, device_reducing_ranks> in_turn(flat, in_turn_ranks, gradient_reduction::sum, 64);
    in_turn.begin();
    f.step(flat, [&](run_mode mode) { return mode.reporting_gradients(in_turn); });
    in_turn.finish();
    BOOST_TEST(not_times(copy_of(flat.gradients()), plain, 2) == 0u);
    BOOST_TEST(in_turn_ranks.device_calls == in_turn.bucket_ranges().size());
    BOOST_TEST(in_turn_ranks.finishes == 1u);
    BOOST_TEST(in_turn_ranks.host_calls == 0u);
    BOOST_TEST(in_turn.last_pass().started_during_backward > 0u);

    // A communicator of host memory only (MPI on a GPU): no bucket; one all-reduce through the host at the end.
    two_identical_ranks_blocking host_only;
    overlapped_allreduce<pretend_device, real, two_identical_ranks_blocking> via_host(flat, host_only, gradient_reduction::sum, 64);
    BOOST_TEST(via_host.bucket_ranges().empty());
    via_host.begin();
    f.step(flat, [&](run_mode mode) { return mode.reporting_gradients(via_host); });
    via_host.finish();
    BOOST_TEST(not_times(copy_of(flat.gradients()), plain, 2) == 0u);
    BOOST_TEST(host_only.calls == 1u);
    BOOST_TEST(via_host.last_pass().buckets == 0u);

    // The same decided at run time, through a communicator_ref that carries no device collectives.
    communicator_ref host_ref(host_only);
    overlapped_allreduce<pretend_device, real, communicator_ref> via_ref(flat, host_ref, gradient_reduction::sum, 64);
    BOOST_TEST(via_ref.bucket_ranges().empty());
    via_ref.begin();
    f.step(flat, [&](run_mode mode) { return mode.reporting_gradients(via_ref); });
    via_ref.finish();
    BOOST_TEST(not_times(copy_of(flat.gradients()), plain, 2) == 0u);
    BOOST_TEST(host_only.calls == 2u);
}

namespace {
/// Six steps of the small CA-MTL on the device-posing backend: the plain run, or the data-parallel path over
/// `one_rank` (through a communicator_ref, as the recipes pass it).
std::pair<training_result, std::vector<std::vector<real>>> train_on_pretend_device(bool mtu, device_stream_ranks<1>* one_rank) {
    pretend_device b;
    return test::train_six_steps<device_camtl>(b, mtu, [&](auto& m, auto& sampler, const auto& train, const auto& dev, const auto& o) {
        if (one_rank == nullptr) return train_multitask(m, sampler, b, train, dev, o);
        communicator_ref ref(*one_rank);
        return train_multitask(m, sampler, b, train, dev, o, ref);
    });
}
}  // namespace

BOOST_AUTO_TEST_CASE(the_trainer_on_device_memory_starts_buckets_beside_backward_and_one_rank_equals_the_plain_run) {
    for (const bool mtu : {true, false}) {
        BOOST_TEST_CONTEXT((mtu ? "MT-Uncertainty" : "proportional")) {
            const auto [plain, plain_values] = train_on_pretend_device(mtu, nullptr);
            device_stream_ranks<1> one_rank;
            const auto [ranked, ranked_values] = train_on_pretend_device(mtu, &one_rank);
            BOOST_TEST(ranked.losses == plain.losses, boost::test_tools::per_element());
            BOOST_TEST(ranked.final_average == plain.final_average);
            BOOST_TEST((ranked_values == plain_values));
            BOOST_TEST(std::count(one_rank.log.begin(), one_rank.log.end(), 'J') == 6);  // one join per step
            BOOST_TEST(std::count(one_rank.log.begin(), one_rank.log.end(), 'S') >= 6);  // every bucket, every step
            BOOST_TEST(std::count(one_rank.log.begin(), one_rank.log.end(), 'D') == 0);
            BOOST_TEST(one_rank.written_after_start == 0u);
            BOOST_TEST(one_rank.waited_unjoined == 0u);
        }
    }
}

BOOST_AUTO_TEST_CASE(the_order_digest_tells_bucket_orders_apart_and_a_real_backward_repeats_it) {
    fixture<camtl_model<cpu, real>> f;
    flat_parameters<cpu, real> flat(f.m);
    single_process solo;
    overlapped_allreduce<cpu, real, single_process> reducer(flat, solo, gradient_reduction::sum, 64);
    std::vector<const parameter<cpu, real>*> trained;
    for (std::size_t i = 0; i < flat.size(); ++i)
        if (flat.at(i).trainable()) trained.push_back(&flat.at(i));
    BOOST_TEST_REQUIRE(reducer.bucket_ranges().size() > 2u);
    auto digest_reporting = [&](bool reversed) {
        reducer.begin();
        for (std::size_t k = 0; k < trained.size(); ++k) {
            const auto* p = trained[reversed ? trained.size() - 1 - k : k];
            reducer.gradient_ready(p->grad.data(), p->size() * sizeof(real));
        }
        reducer.finish();
        return reducer.last_pass().order_digest;
    };
    const auto in_order = digest_reporting(false);
    BOOST_TEST(digest_reporting(false) == in_order);
    BOOST_TEST(digest_reporting(true) != in_order);  // the trainer refuses a step where the ranks' digests differ
    BOOST_TEST(in_order < 4096u);
    // The trainer's verdict from the all-reduced sums of d and d².
    const auto d = static_cast<double>(in_order), e = static_cast<double>(digest_reporting(true));
    BOOST_TEST(order_digests_agree(3, 3 * d, 3 * d * d));
    BOOST_TEST(!order_digests_agree(3, 2 * d + e, 2 * d * d + e * e));
    BOOST_TEST(order_digests_agree(23000, 23000 * 4095.0, 23000 * 4095.0 * 4095.0));
    BOOST_TEST(!order_digests_agree(23000, 22999 * 4095.0 + 4094, 22999 * 4095.0 * 4095.0 + 4094.0 * 4094.0));

    // Backward reports in the model's order, whatever the batch: two passes, one digest.
    reducer.begin();
    f.step(flat, [&](run_mode mode) { return mode.reporting_gradients(reducer); });
    reducer.finish();
    const auto first = reducer.last_pass().order_digest;
    f.rows = {{2, 1}, {1, 3}, {0, 5}, {2, 7}};  // another batch: other tasks, other lengths
    reducer.begin();
    f.step(flat, [&](run_mode mode) { return mode.reporting_gradients(reducer); });
    reducer.finish();
    BOOST_TEST(reducer.last_pass().order_digest == first);
    BOOST_TEST(reducer.last_pass().started_during_backward > 0u);
}
