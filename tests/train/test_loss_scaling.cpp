// Dynamic loss scaling (optim/loss_scaler.hpp, trainer_options::loss_scaling; issue 13, item 4's CPU-side logic):
// the scaler's schedule and state, and train_multitask with it. Its scales are powers of two, so in fp32 a run with
// loss scaling has the same bits as one without (losses and final weights of a small CA-MTL and a small PHA,
// whose contrastive losses take the scale on the host); gradients that overflow skip the update and lower the
// scale instead of stopping the run; a checkpoint keeps the scaler's state, and a resume continues the
// uninterrupted run's losses bit for bit.
#define BOOST_TEST_MODULE train_loss_scaling
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <unistd.h>

#include "distributed/small_training.hpp"
#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/optim/loss_scaler.hpp"

using namespace hyperadapt;

BOOST_AUTO_TEST_CASE(the_scale_grows_after_the_interval_and_backs_off_on_overflow) {
    dynamic_loss_scaler s({.init_scale = 1024, .growth_factor = 2, .backoff_factor = 0.5, .growth_interval = 3});
    BOOST_TEST(s.scale() == 1024.0);
    s.update(false);
    s.update(false);
    BOOST_TEST(s.scale() == 1024.0);
    BOOST_TEST(s.steps_without_overflow() == 2);
    s.update(false);  // the third good step in a row
    BOOST_TEST(s.scale() == 2048.0);
    BOOST_TEST(s.steps_without_overflow() == 0);
    s.update(false);
    s.update(true);  // an overflow halves it and starts the count again
    BOOST_TEST(s.scale() == 1024.0);
    BOOST_TEST(s.steps_without_overflow() == 0);
    // State round trip, through the checkpoint's JSON; bad state refused, naming it.
    dynamic_loss_scaler t({.init_scale = 1, .growth_interval = 3});
    s.update(false);
    t.restore(detail::loss_scaler_state_of(detail::loss_scaler_text(s.state()), "ckpt"));
    BOOST_TEST(t.scale() == 1024.0);
    BOOST_TEST(t.steps_without_overflow() == 1);
    for (const char* bad : {"{}", "[1]", "{\"scale\": 3, \"steps_without_overflow\": 0}",
                            "{\"scale\": 1024, \"steps_without_overflow\": 3}", "{\"scale\": 1e300, \"steps_without_overflow\": 0}",
                            "{\"scale\": 1024", "{\"scale\": 1024, \"steps_without_overflow\": 1.5}"})
        BOOST_CHECK_THROW(t.restore(detail::loss_scaler_state_of(bad, "ckpt")), io_error);
    // The bounds hold: an overflow never takes the scale below min_scale.
    dynamic_loss_scaler low({.init_scale = dynamic_loss_scaler::min_scale});
    low.update(true);
    BOOST_TEST(low.scale() == dynamic_loss_scaler::min_scale);
}

BOOST_AUTO_TEST_CASE(factors_that_are_not_powers_of_two_are_refused) {
    BOOST_CHECK_THROW(dynamic_loss_scaler({.init_scale = 1000}), config_error);
    BOOST_CHECK_THROW(dynamic_loss_scaler({.init_scale = 0}), config_error);
    BOOST_CHECK_THROW(dynamic_loss_scaler({.init_scale = std::nan("")}), config_error);
    BOOST_CHECK_THROW(dynamic_loss_scaler({.growth_factor = 1.5}), config_error);
    BOOST_CHECK_THROW(dynamic_loss_scaler({.growth_factor = 1}), config_error);
    BOOST_CHECK_THROW(dynamic_loss_scaler({.backoff_factor = 1}), config_error);
    BOOST_CHECK_THROW(dynamic_loss_scaler({.backoff_factor = 0.3}), config_error);
    BOOST_CHECK_THROW(dynamic_loss_scaler({.growth_interval = 0}), config_error);
    try {
        dynamic_loss_scaler bad({.growth_factor = 3});
        BOOST_FAIL("expected config_error");
    } catch (const config_error& e) {
        BOOST_TEST(std::string(e.what()).find("growth_factor") != std::string::npos, e.what());
    }
}

namespace {

struct run_outcome {
    training_result result;
    std::vector<std::vector<float>> weights;
};

/// Six steps of a small `Model` (dropout on) with size-proportional sampling, with or without loss scaling.
/// `regression_gain`: the regression head's initial weights multiplied by it (large predictions, large gradients).
template <class Model>
run_outcome six_steps(std::optional<loss_scaler_options> scaling, trainer_options o = test::six_steps(),
                      float regression_gain = 1) {
    cpu b(cpu::options{.threads = 1});
    Model m(b, test::small_options<Model>(0.1));
    rng_stream init(3);
    m.initialize(init);
    m.apply_freezing();
    bool scaled_head = regression_gain == 1;
    m.visit_parameters([&](const std::string& name, parameter<cpu, float>& p) {
        if (name == "heads.count.weight") b.scale(p.size(), regression_gain, p.value.data()), scaled_head = true;
    });
    BOOST_TEST_REQUIRE(scaled_head, "no parameter heads.count.weight");
    o.loss_scaling = scaling;
    const auto train = test::small_train_tasks(), dev = test::small_dev_tasks();
    run_outcome out;
    out.result = test::with_sampler(false, train, 8, [&](auto& s) { return train_multitask(m, s, b, train, dev, o); });
    m.visit_parameters([&](const std::string&, parameter<cpu, float>& p) { out.weights.push_back(p.value.to_host()); });
    return out;
}

template <class Model>
void check_same_bits_with_and_without_scaling() {
    const auto plain = six_steps<Model>(std::nullopt);
    // 2^10, doubled every second step: four scales over the six steps.
    const auto scaled = six_steps<Model>(loss_scaler_options{.init_scale = 1024, .growth_interval = 2});
    BOOST_TEST(scaled.result.overflow_steps == 0);
    BOOST_TEST(scaled.result.final_loss_scale == 8192.0);
    BOOST_TEST(plain.result.final_loss_scale == 1.0);
    BOOST_TEST(plain.result.losses == scaled.result.losses, boost::test_tools::per_element());
    BOOST_TEST_REQUIRE(plain.weights.size() == scaled.weights.size());
    for (std::size_t i = 0; i < plain.weights.size(); ++i)
        BOOST_TEST(plain.weights[i] == scaled.weights[i], boost::test_tools::per_element());
}

}  // namespace

BOOST_AUTO_TEST_CASE(camtl_with_loss_scaling_has_the_same_bits) {
    check_same_bits_with_and_without_scaling<camtl_model<cpu, float>>();
}

BOOST_AUTO_TEST_CASE(pha_with_loss_scaling_has_the_same_bits) {
    check_same_bits_with_and_without_scaling<pha_bert<cpu, float>>();
}

// With a regression head that predicts far off (its weights times 1000: MSE gradients around 10), a scale of 2^127
// overflows fp32's backward: those updates are skipped and the scale backs off (2^-16 a time) until the gradients
// are finite; the run goes on to its last step with on_nonfinite = stop, every loss finite. (At gain 1 the
// gradients of this model stay below 2, and 2^127 does not overflow.)
BOOST_AUTO_TEST_CASE(overflowing_gradients_skip_the_update_and_lower_the_scale) {
    const auto r = six_steps<camtl_model<cpu, float>>(
        loss_scaler_options{.init_scale = 0x1p127, .backoff_factor = 0x1p-16, .growth_interval = 100}, test::six_steps(),
        1000.0f);
    BOOST_TEST(r.result.overflow_steps >= 1);
    BOOST_TEST(r.result.overflow_steps < 6);
    BOOST_TEST(r.result.final_loss_scale < 0x1p127);
    BOOST_TEST(r.result.skipped_steps == 0);
    BOOST_TEST(r.result.losses.size() == 6u);
    for (const double l : r.result.losses) BOOST_TEST(std::isfinite(l));
    for (const auto& w : r.weights)
        for (const float v : w) BOOST_TEST_REQUIRE(std::isfinite(v));
}

// The scaler's state goes into the checkpoints: resumed from step 3, a run continues the uninterrupted run's
// losses bit for bit; a checkpoint of a scaled run is refused by a run without scaling, and the other way round.
BOOST_AUTO_TEST_CASE(a_resumed_scaled_run_continues_the_uninterrupted_one) {
    const auto dir = std::filesystem::temp_directory_path() / ("hyperadapt_loss_scaling_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    const loss_scaler_options scaling{.init_scale = 1024, .growth_interval = 2};
    trainer_options o = test::six_steps();
    const auto whole = six_steps<camtl_model<cpu, float>>(scaling, o);
    o.out_dir = dir / "run";
    o.checkpoint_every = 3;
    (void)six_steps<camtl_model<cpu, float>>(scaling, o);  // writes the checkpoints of steps 3 and 6
    std::filesystem::remove(dir / "run" / "checkpoints" / "checkpoint-0000000006.safetensors");
    o.resume = true;
    const auto resumed = six_steps<camtl_model<cpu, float>>(scaling, o);
    BOOST_TEST(resumed.result.resumed_from == 3);
    BOOST_TEST_REQUIRE(resumed.result.losses.size() == 3u);
    for (std::size_t i = 0; i < 3; ++i) BOOST_TEST(resumed.result.losses[i] == whole.result.losses[3 + i]);
    BOOST_TEST(resumed.result.final_loss_scale == whole.result.final_loss_scale);
    using model = camtl_model<cpu, float>;
    BOOST_CHECK_THROW((void)six_steps<model>(std::nullopt, o), config_error);
    std::filesystem::remove_all(dir);
}
