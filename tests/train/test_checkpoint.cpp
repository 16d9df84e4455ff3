#define BOOST_TEST_MODULE train_checkpoint
#include <boost/test/unit_test.hpp>

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

using namespace hyperadapt;
namespace fs = std::filesystem;

namespace {
using ids = tensor<cpu, std::int32_t>;

struct classifier {
    using backend_type = cpu;
    using value_type = float;
    bert_model<cpu, float> encoder;
    classification_head<cpu, float> head;

    classifier(cpu& b, std::uint64_t seed)
        : encoder(b, {.vocab_size = 30, .hidden = 16, .layers = 2, .heads = 2, .intermediate = 32, .max_position = 8}),
          head(b, 16, 3, 0.1f) {
        rng_stream init(seed);
        encoder.initialize(init);
        head.initialize(init);
    }
    [[nodiscard]] std::string name() const { return ""; }
    template <class F>
    void visit_parameters(F&& f) {
        encoder.visit_parameters(f);
        head.visit_parameters(f);
    }
};

/// A run: model, optimizer, schedule and the state that a checkpoint must carry. Batches are drawn from a
/// fixed pool of 32 examples by the "data" stream, dropout by the "dropout" stream.
struct run {
    cpu& b;
    classifier model;
    adamw<cpu, float> opt;
    linear_warmup_schedule schedule{1e-3, 2, 12};
    training_state state;

    run(cpu& backend, std::uint64_t init_seed)
        : b(backend), model(backend, init_seed), opt(model, {.lr = 1e-3, .weight_decay = 0.01}) {
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
