// libFuzzer target: the training-checkpoint reader. The first byte picks what the rest is:
//   0: a whole checkpoint file, through load_training_checkpoint (safetensors layer, metadata, checksum);
//   1: the "state" metadata text alone, through detail::parse_checkpoint_state;
//   2: the state text inside an otherwise valid checkpoint with a matching checksum, so that the fuzzer
//      reaches the state's fields and the parameter and moment checks behind the checksum.
// The model is one linear layer; a load that succeeds must leave it with finite-sized, consistent state.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.hpp"
#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/layers/linear.hpp"
#include "hyperadapt/optim/adamw.hpp"
#include "hyperadapt/train/checkpoint.hpp"

using namespace hyperadapt;

namespace {
struct fixture {
    cpu backend;
    linear<cpu, float> model{backend, 3, 2, "dense"};
    adamw<cpu, float> optimizer{model, {.lr = 1e-3}};
    fuzz::scratch_file file{"checkpoint.safetensors"};
    fuzz::scratch_file reference_file{"reference.safetensors"};

    fixture() {
        rng_stream init(7);
        model.initialize(init);
        optimizer.step();  // creates the moments, so the checkpoint carries optim/m and optim/v tensors
        training_state st;
        st.step = 1;
        st.rng["data"] = rng_stream(5);
        save_training_checkpoint(reference_file.path(), model, optimizer, st);
    }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    static fixture f;
    static const io::safetensors_reader reference(f.reference_file.path());
    const std::string_view rest = fuzz::as_text(data + 1, size - 1);
    switch (data[0] % 3) {
        case 0:
            f.file.write(rest);
            break;
        case 1:
            fuzz::expect_valid_or_typed_error([&] { (void)detail::parse_checkpoint_state(rest, "state: "); });
            return 0;
        default: {
            io::safetensors_writer w;
            for (const auto& e : reference.entries()) w.add_raw(e.name, e.type, e.shape, reference.raw(e));
            w.set_metadata("format", detail::checkpoint_format);
            w.set_metadata("version", detail::checkpoint_version);
            w.set_metadata("state", std::string(rest));
            w.set_metadata("checksum", detail::hex64(detail::checkpoint_digest(reference, std::string(rest))));
            try {
                w.write(f.file.path());
            } catch (const hyperadapt::error&) {  // a state text that is not UTF-8 cannot be stored
                return 0;
            }
        }
    }
    fuzz::expect_valid_or_typed_error([&] {
        const training_state st = load_training_checkpoint(f.file.path(), f.model, f.optimizer);
        if (f.optimizer.state_size() > 2) __builtin_trap();
        (void)st;
    });
    return 0;
}
