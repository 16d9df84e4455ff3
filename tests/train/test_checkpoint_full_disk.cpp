#define BOOST_TEST_MODULE train_checkpoint_full_disk
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/layers/heads.hpp"
#include "hyperadapt/optim/adamw.hpp"
#include "hyperadapt/train/checkpoint.hpp"
#include "support/temp_dir.hpp"

// A disk that fills up during a checkpoint save. The save's temporary file is redirected to /dev/full (a
// symbolic link under the writer's own temporary name, which open() follows), so every write() of the real
// atomic writer fails with ENOSPC exactly as on a full file system, without root or a special mount.
// scripts/crash_safety.sh --full-disk runs the same scenario on a small tmpfs when it may mount one.

using namespace hyperadapt;
namespace fs = std::filesystem;

namespace {
struct model {
    using backend_type = cpu;
    using value_type = float;
    classification_head<cpu, float> head;

    model(cpu& b, std::uint64_t seed) : head(b, 64, 5, 0.0f) {
        rng_stream init(seed);
        head.initialize(init);
    }
    [[nodiscard]] std::string name() const { return ""; }
    template <class F>
    void visit_parameters(F&& f) {
        head.visit_parameters(f);
    }
};

/// Moves every parameter (and the optimizer's moments) so that consecutive checkpoints differ.
void take_step(model& m, adamw<cpu, float>& opt, training_state& state) {
    m.visit_parameters([&](const std::string&, parameter<cpu, float>& p) {
        std::vector<float> g(p.size());
        for (std::size_t i = 0; i < g.size(); ++i) g[i] = 0.01f * static_cast<float>((i * 7 + state.step) % 13) - 0.06f;
        p.grad.backend().copy_from_host(g.data(), p.grad.data(), g.size());
    });
    opt.step();
    ++state.step;
}

std::vector<float> all_values(model& m) {
    std::vector<float> v;
    m.visit_parameters([&](const std::string&, parameter<cpu, float>& p) {
        auto h = p.value.to_host();
        v.insert(v.end(), h.begin(), h.end());
    });
    return v;
}

bool dev_full_available() {
    std::error_code ec;
    return fs::is_character_file("/dev/full", ec) && ::access("/dev/full", W_OK) == 0;
}
}  // namespace

BOOST_AUTO_TEST_CASE(full_disk_during_a_save_keeps_the_previous_checkpoint_and_names_file_and_cause) {
    if (!dev_full_available()) {
        BOOST_TEST_MESSAGE("SKIPPED: /dev/full is not available on this system");
        return;
    }
    cpu b;
    test::temp_dir dir;
    checkpoint_directory ckpts(dir / "run", /*keep=*/2);
    model m(b, 1);
    adamw<cpu, float> opt(m, {.lr = 1e-2});
    training_state state;
    state.rng["data"] = rng_stream(5);

    take_step(m, opt, state);
    const fs::path first = ckpts.save(m, opt, state);  // step 1: complete
    const auto saved_values = all_values(m);
    const auto saved_bytes = test::read_bytes(first);

    take_step(m, opt, state);
    const fs::path second = ckpts.file_for(state.step);
    const fs::path temporary = io::temporary_path_for(second);
    fs::create_symlink("/dev/full", temporary);
    try {
        (void)ckpts.save(m, opt, state);
        BOOST_FAIL("a save onto a full disk reported success");
    } catch (const io_error& e) {
        const std::string msg = e.what();
        BOOST_TEST_MESSAGE("  " << msg);
        BOOST_TEST(msg.find(second.string()) != std::string::npos, "the error names the file: " << msg);
        BOOST_TEST(msg.find(std::strerror(ENOSPC)) != std::string::npos, "the error names the cause: " << msg);
    }

    // Nothing but the previous checkpoint, byte for byte: no partial step-2 file, no temporary file.
    std::error_code ec;
    BOOST_TEST(!fs::exists(fs::symlink_status(temporary, ec)), "temporary file left behind: " << temporary);
    BOOST_TEST(!fs::exists(second));
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir / "run")) names.push_back(e.path().filename().string());
    BOOST_TEST(names == std::vector<std::string>{first.filename().string()}, boost::test_tools::per_element());
    BOOST_TEST(test::read_bytes(first) == saved_bytes);

    // ... and it loads: a fresh run resumes at step 1 with the saved values and no file skipped.
    model fresh(b, 99);
    adamw<cpu, float> fresh_opt(fresh, {.lr = 1e-2});
    std::vector<std::string> skipped;
    const auto resumed = ckpts.resume(fresh, fresh_opt, &skipped);
    BOOST_TEST_REQUIRE(resumed.has_value());
    BOOST_TEST(resumed->step == 1);
    BOOST_TEST(skipped.empty());
    BOOST_TEST(all_values(fresh) == saved_values);

    // Once there is room again, the same run saves step 2 and the rotation keeps both.
    const fs::path retried = ckpts.save(m, opt, state);
    BOOST_TEST(retried == second);
    BOOST_TEST(ckpts.list().size() == 2u);
    model again(b, 7);
    adamw<cpu, float> again_opt(again, {.lr = 1e-2});
    BOOST_TEST(load_training_checkpoint(second, again, again_opt).step == 2);
    BOOST_TEST(all_values(again) == all_values(m));
}
