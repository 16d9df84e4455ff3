#define BOOST_TEST_MODULE train_checkpoint
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/layers/heads.hpp"
#include "hyperadapt/loss/cross_entropy.hpp"
#include "hyperadapt/models/bert.hpp"
#include "hyperadapt/optim/adamw.hpp"
#include "hyperadapt/optim/clip.hpp"
#include "hyperadapt/optim/schedule.hpp"
#include "hyperadapt/train/checkpoint.hpp"
#include "support/encoder_classifier.hpp"

using namespace hyperadapt;
namespace fs = std::filesystem;

namespace {
using ids = tensor<cpu, std::int32_t>;

struct classifier : test::encoder_classifier<cpu> {
    classifier(cpu& b, std::uint64_t seed)
        : encoder_classifier(b, {.vocab_size = 30, .hidden = 16, .layers = 2, .heads = 2, .intermediate = 32,
                                 .max_position = 8},
                             seed, 3) {}
};

/// A run: model, optimizer, schedule and the state that a checkpoint must carry. Batches are drawn from a
/// fixed pool of 32 examples by the "data" stream, dropout by the "dropout" stream.
struct run {
    cpu& b;
    classifier model;
    adamw<cpu, float> opt;
    linear_warmup_schedule schedule{1e-3, 2, 12};
    training_state state;

    std::vector<parameter_group> groups;  // each follows the schedule's shape at its own peak rate

    run(cpu& backend, std::uint64_t init_seed, std::vector<parameter_group> parameter_groups = {})
        : b(backend), model(backend, init_seed), opt(model, {.lr = 1e-3, .weight_decay = 0.01}, parameter_groups),
          groups(std::move(parameter_groups)) {
        state.rng["data"] = rng_stream(77);
        state.rng["dropout"] = rng_stream(78);
    }

    double step() {
        std::vector<std::int32_t> tok(4 * 8), lab(4);
        std::vector<std::uint8_t> msk(4 * 8, 1);
        const std::uint64_t first = state.rng["data"].take(4);
        for (std::size_t i = 0; i < 4; ++i) {
            const std::uint64_t ex = detail::counter_hash(77, first + i) % 32;  // example index in the pool
            for (std::size_t j = 0; j < 8; ++j) tok[i * 8 + j] = static_cast<std::int32_t>(1 + (ex * 5 + j * 3) % 29);
            for (std::size_t j = 6 + ex % 3; j < 8; ++j) msk[i * 8 + j] = 0;
            lab[i] = static_cast<std::int32_t>(ex % 3);
        }
        auto tokens = ids::from_host(b, {4, 8}, tok);
        auto labels = ids::from_host(b, {4}, lab);
        auto mask = attention_mask<cpu>::from_host(b, {4, 8}, msk);
        bert_model<cpu, float>::context ectx;
        classification_head<cpu, float>::context hctx;
        cross_entropy_loss<cpu, float> ce(b);
        cross_entropy_loss<cpu, float>::context lctx;
        const run_mode mode = run_mode::train(state.rng["dropout"]);
        auto out = model.encoder.forward(tokens, ids{}, mask, ectx, mode);
        const double loss = ce.forward(model.head.forward(out.pooled, hctx, mode), labels, lctx);
        model.visit_parameters([](const std::string&, parameter<cpu, float>& p) { p.zero_grad(); });
        model.encoder.backward({}, model.head.backward(ce.backward(lctx), hctx), ectx);
        clip_grad_norm(model, 1.0);
        opt.set_lr(schedule.lr(state.step));
        for (std::size_t g = 0; g < groups.size(); ++g) opt.set_group_lr(g + 1, schedule.multiplier(state.step) * groups[g].lr);
        opt.step();
        ++state.step;
        return loss;
    }
};

struct temp_dir {
    fs::path path;
    temp_dir() : path(fs::temp_directory_path() / ("hyperadapt_ckpt_" + std::to_string(::getpid()))) {
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~temp_dir() { fs::remove_all(path); }
};

void flip_byte(const fs::path& p, std::uintmax_t from_end) {
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-static_cast<std::streamoff>(from_end), std::ios::end);
    char c;
    f.get(c);
    f.seekp(-static_cast<std::streamoff>(from_end), std::ios::end);
    f.put(static_cast<char>(c ^ 0x5a));
}

std::vector<float> all_values(classifier& m) {
    std::vector<float> v;
    m.visit_parameters([&](const std::string&, parameter<cpu, float>& p) {
        auto h = p.value.to_host();
        v.insert(v.end(), h.begin(), h.end());
    });
    return v;
}
}  // namespace

BOOST_AUTO_TEST_CASE(resumed_run_reproduces_uninterrupted_losses_bit_for_bit) {
    cpu b;
    temp_dir dir;
    run straight(b, 1);
    std::vector<double> expected;
    for (int i = 0; i < 10; ++i) expected.push_back(straight.step());

    run first(b, 1);
    for (int i = 0; i < 4; ++i) BOOST_TEST(first.step() == expected[static_cast<std::size_t>(i)]);
    first.state.extra["note"] = "stopped after step 4";
    save_training_checkpoint(dir.path / "ckpt.safetensors", first.model, first.opt, first.state);

    run resumed(b, 999);  // different initialisation: everything must come from the checkpoint
    resumed.state = load_training_checkpoint(dir.path / "ckpt.safetensors", resumed.model, resumed.opt);
    BOOST_TEST((resumed.state == first.state));
    BOOST_TEST(resumed.opt.step_count() == 4);
    for (int i = 4; i < 10; ++i) BOOST_TEST(resumed.step() == expected[static_cast<std::size_t>(i)]);
    BOOST_TEST(all_values(resumed.model) == all_values(straight.model));
}

BOOST_AUTO_TEST_CASE(parameter_groups_are_kept_and_a_resume_with_other_groups_is_refused) {
    cpu b;
    temp_dir dir;
    const std::vector<parameter_group> groups{{.pattern = "classifier", .lr = 1e-2, .weight_decay = 0.0},
                                              {.pattern = "layer\\.1\\.", .lr = 3e-4}};
    run straight(b, 1, groups);
    std::vector<double> expected;
    for (int i = 0; i < 8; ++i) expected.push_back(straight.step());
    run plain(b, 1);  // the groups change the run: otherwise this test would prove nothing
    for (int i = 0; i < 8; ++i) plain.step();
    BOOST_TEST(all_values(plain.model) != all_values(straight.model));

    run first(b, 1, groups);
    for (int i = 0; i < 3; ++i) first.step();
    const double group_lr = first.opt.group(1).lr;
    save_training_checkpoint(dir.path / "ckpt.safetensors", first.model, first.opt, first.state);

    run resumed(b, 999, groups);
    resumed.state = load_training_checkpoint(dir.path / "ckpt.safetensors", resumed.model, resumed.opt);
    BOOST_TEST(resumed.opt.group(1).lr == group_lr);
    for (int i = 3; i < 8; ++i) BOOST_TEST(resumed.step() == expected[static_cast<std::size_t>(i)]);
    BOOST_TEST(all_values(resumed.model) == all_values(straight.model));

    for (const auto& other : {std::vector<parameter_group>{}, std::vector<parameter_group>{groups[1], groups[0]},
                              std::vector<parameter_group>{{.pattern = "classifier", .lr = 1e-2, .weight_decay = 0.1},
                                                           groups[1]}}) {
        run wrong(b, 999, other);
        const auto before = all_values(wrong.model);
        try {
            (void)load_training_checkpoint(dir.path / "ckpt.safetensors", wrong.model, wrong.opt);
            BOOST_ERROR("a checkpoint of other parameter groups was loaded (" << other.size() << " groups)");
        } catch (const io_error& e) {
            const std::string msg = e.what();
            BOOST_TEST(msg.find("ckpt.safetensors") != std::string::npos, msg);
            BOOST_TEST(msg.find("parameter groups 'classifier' (wd 0") != std::string::npos, msg);
        }
        BOOST_TEST(all_values(wrong.model) == before);
        BOOST_TEST(wrong.opt.state_size() == 0u);
    }
}

BOOST_AUTO_TEST_CASE(torn_and_corrupted_checkpoints_are_refused_and_change_nothing) {
    cpu b;
    temp_dir dir;
    run r(b, 1);
    r.step();
    const fs::path file = dir.path / "ckpt.safetensors";
    save_training_checkpoint(file, r.model, r.opt, r.state);
    const auto size = fs::file_size(file);

    run target(b, 5);
    const auto before = all_values(target.model);

    fs::copy_file(file, dir.path / "torn.safetensors");
    fs::resize_file(dir.path / "torn.safetensors", size / 2);
    try {
        (void)load_training_checkpoint(dir.path / "torn.safetensors", target.model, target.opt);
        BOOST_FAIL("a torn checkpoint was accepted");
    } catch (const io_error& e) {
        BOOST_TEST(std::string(e.what()).find("torn.safetensors") != std::string::npos, e.what());
    }

    fs::copy_file(file, dir.path / "flipped.safetensors");
    flip_byte(dir.path / "flipped.safetensors", 1000);  // inside the tensor data
    try {
        (void)load_training_checkpoint(dir.path / "flipped.safetensors", target.model, target.opt);
        BOOST_FAIL("a corrupted checkpoint was accepted");
    } catch (const io_error& e) {
        const std::string msg = e.what();
        BOOST_TEST(msg.find("flipped.safetensors") != std::string::npos, msg);
        BOOST_TEST(msg.find("checksum mismatch") != std::string::npos, msg);
    }
    BOOST_TEST(all_values(target.model) == before);
    BOOST_TEST(target.opt.state_size() == 0u);
}

BOOST_AUTO_TEST_CASE(directory_keeps_newest_and_falls_back_past_a_corrupted_one) {
    cpu b;
    temp_dir dir;
    checkpoint_directory ckpts(dir.path / "run", /*keep=*/2);
    run r(b, 1);
    std::vector<std::vector<float>> snapshots;
    for (int i = 0; i < 3; ++i) {
        r.step();
        ckpts.save(r.model, r.opt, r.state);
        snapshots.push_back(all_values(r.model));
    }
    const auto files = ckpts.list();
    BOOST_TEST_REQUIRE(files.size() == 2u);
    BOOST_TEST(files[0].first == 2);
    BOOST_TEST(files[1].first == 3);
    for (const auto& f : fs::directory_iterator(dir.path / "run"))
        BOOST_TEST(f.path().extension() == ".safetensors", "stray file " << f.path());

    flip_byte(files[1].second, 64);
    run target(b, 5);
    std::vector<std::string> skipped;
    auto state = ckpts.resume(target.model, target.opt, &skipped);
    BOOST_TEST_REQUIRE(state.has_value());
    BOOST_TEST(state->step == 2);
    BOOST_TEST_REQUIRE(skipped.size() == 1u);
    BOOST_TEST(skipped[0].find(files[1].second.filename().string()) != std::string::npos, skipped[0]);
    BOOST_TEST(all_values(target.model) == snapshots[1]);
}

BOOST_AUTO_TEST_CASE(checkpoint_of_another_model_names_the_missing_parameter) {
    cpu b;
    temp_dir dir;
    run r(b, 1);
    save_training_checkpoint(dir.path / "c.safetensors", r.model.encoder, r.opt, r.state);  // encoder only
    run target(b, 2);
    try {
        (void)load_training_checkpoint(dir.path / "c.safetensors", target.model, target.opt);
        BOOST_FAIL("expected io_error");
    } catch (const io_error& e) {
        BOOST_TEST(std::string(e.what()).find("classifier.weight") != std::string::npos, e.what());
    }
}

// ---- one run per folder, stale temporaries, unusual file names -------------------------------------------

// A new run in the folder of an earlier, longer run: its first save used to be deleted by keep-N at once
// (the old run's steps are higher) and resume() then returned the old run's step. The save is refused,
// nothing is written or deleted, and the message names the later file; discard_after() is the explicit way
// to overwrite.
BOOST_AUTO_TEST_CASE(a_new_run_does_not_save_below_an_earlier_runs_later_steps) {
    cpu b;
    temp_dir dir;
    checkpoint_directory old_run(dir.path / "run", /*keep=*/2);
    run r(b, 1);
    for (int i = 0; i < 3; ++i) {
        r.step();
        old_run.save(r.model, r.opt, r.state);
    }
    const auto before = old_run.list();
    BOOST_TEST_REQUIRE(before.size() == 2u);

    checkpoint_directory new_run(dir.path / "run", /*keep=*/2);
    run fresh(b, 2);
    fresh.step();
    try {
        new_run.save(fresh.model, fresh.opt, fresh.state);
        BOOST_FAIL("a save below the folder's later steps was accepted");
    } catch (const io_error& e) {
        const std::string msg = e.what();
        BOOST_TEST(msg.find("checkpoint-0000000003.safetensors of step 3, later than this run's step 1") !=
                       std::string::npos, msg);
        BOOST_TEST(msg.find("nothing written") != std::string::npos, msg);
    }
    BOOST_TEST((new_run.list() == before));
    BOOST_CHECK_THROW(new_run.check_fresh_start(), io_error);

    // Told to overwrite: the later steps go, the new run's checkpoint stays and is what resume finds.
    BOOST_TEST(new_run.discard_after(fresh.state.step - 1) == 2u);
    new_run.save(fresh.model, fresh.opt, fresh.state);
    BOOST_TEST_REQUIRE(new_run.list().size() == 1u);
    run target(b, 3);
    const auto resumed = new_run.resume(target.model, target.opt);
    BOOST_TEST_REQUIRE(resumed.has_value());
    BOOST_TEST(resumed->step == 1);
    BOOST_TEST(all_values(target.model) == all_values(fresh.model));
}

// A kill during a save leaves "<name>.tmp.<pid>"; the next save or resume removes it once the writer is
// gone, and leaves a live writer's file alone.
BOOST_AUTO_TEST_CASE(temporaries_of_dead_writers_are_removed) {
    cpu b;
    temp_dir dir;
    checkpoint_directory ckpts(dir.path / "run", /*keep=*/2);
    fs::create_directories(ckpts.path());
    const ::pid_t dead = ::fork();
    if (dead == 0) ::_exit(0);
    BOOST_TEST_REQUIRE(dead > 0);
    ::waitpid(dead, nullptr, 0);
    auto temporary = [&](std::int64_t step, ::pid_t pid) {
        fs::path p = ckpts.file_for(step);
        p += ".tmp." + std::to_string(pid);
        std::ofstream(p) << "partial";
        return p;
    };
    const auto stale = temporary(4, dead);
    const auto live = temporary(4, ::getppid());
    const auto other = dir.path / "run" / ("notes.txt.tmp." + std::to_string(dead));  // not a checkpoint's
    std::ofstream(other) << "x";

    run r(b, 1);
    r.step();
    ckpts.save(r.model, r.opt, r.state);
    BOOST_TEST(!fs::exists(stale));
    BOOST_TEST(fs::exists(live));
    BOOST_TEST(fs::exists(other));

    const auto stale_again = temporary(8, dead);
    run target(b, 2);
    BOOST_TEST(ckpts.resume(target.model, target.opt).has_value());
    BOOST_TEST(!fs::exists(stale_again));
}

// A step number beyond 64 bits in a file name once made list(), save() and resume() throw
// std::out_of_range. Such a file is not one of the folder's checkpoints: list() leaves it out and resume()
// reports it.
BOOST_AUTO_TEST_CASE(step_numbers_beyond_64_bits_are_ignored_and_reported) {
    cpu b;
    temp_dir dir;
    checkpoint_directory ckpts(dir.path / "run", /*keep=*/2);
    fs::create_directories(ckpts.path());
    const auto huge = ckpts.path() / "checkpoint-99999999999999999999.safetensors";
    std::ofstream(huge) << "x";
    std::ofstream(ckpts.path() / "checkpoint-12a.safetensors") << "x";
    BOOST_TEST(ckpts.list().empty());
    run r(b, 1);
    r.step();
    BOOST_CHECK_NO_THROW(ckpts.save(r.model, r.opt, r.state));
    BOOST_TEST_REQUIRE(ckpts.list().size() == 1u);
    run target(b, 2);
    std::vector<std::string> skipped;
    const auto resumed = ckpts.resume(target.model, target.opt, &skipped);
    BOOST_TEST_REQUIRE(resumed.has_value());
    BOOST_TEST(resumed->step == 1);
    BOOST_TEST_REQUIRE(skipped.size() == 1u);
    BOOST_TEST(skipped[0] == huge.string() + ": step number does not fit a 64-bit integer; ignored");
    BOOST_TEST(fs::exists(huge));
}

// The state metadata is checked field by field with io_errors; nlohmann's exceptions (out_of_range,
// type_error) used to escape load_training_checkpoint and resume().
BOOST_AUTO_TEST_CASE(state_metadata_faults_are_io_errors_naming_the_field) {
    const std::string ok = R"({"step":3,"epoch":0,"optimizer":{"steps":3,"lr":0.001,"parameter_steps":{"w":3}},)"
                           R"("rng":{"data":[77,12]},"extra":{"note":"x"}})";
    const auto rec = detail::parse_checkpoint_state(ok, "f: ");
    BOOST_TEST(rec.state.step == 3);
    BOOST_TEST(rec.state.rng.at("data").offset() == 12u);
    BOOST_TEST(rec.parameter_steps.size() == 1u);
    auto fault = [](const std::string& text) {
        try {
            (void)detail::parse_checkpoint_state(text, "f: ");
        } catch (const io_error& e) {
            return std::string(e.what());
        }
        return std::string("<no io_error>");
    };
    BOOST_TEST(fault(R"({"epoch":0})") == "f: state metadata: 'step' is missing");
    BOOST_TEST(fault(R"({"step":"3"})") == "f: state metadata: 'step' is \"3\", not an integer");
    BOOST_TEST(fault(R"({"step":18446744073709551615})") ==
               "f: state metadata: 'step' is 18446744073709551615, beyond a 64-bit signed integer");
    BOOST_TEST(fault(R"({"step":1,"epoch":0,"optimizer":[]})") ==
               "f: state metadata: 'optimizer' is an array of 0 elements, not an object");
    BOOST_TEST(fault(R"({"step":1,"epoch":0,"optimizer":{"steps":1,"lr":-1}})") ==
               "f: state metadata: 'optimizer.lr' is -1, not a finite number >= 0");
    BOOST_TEST(fault(R"({"step":1,"epoch":0,"optimizer":{"steps":1,"lr":0,"parameter_steps":{}},"rng":{"d":[1]}})") ==
               "f: state metadata: 'rng.d' is an array of 1 elements, not [seed, offset]");
    BOOST_TEST(fault("[") .find("f: state metadata: not valid JSON") == 0u);
    BOOST_TEST(fault(std::string(100, '[') + std::string(100, ']')) ==
               "f: state metadata: JSON nested deeper than 64 levels");
}
