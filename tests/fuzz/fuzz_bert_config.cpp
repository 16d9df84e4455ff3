// libFuzzer target: a config.json through io::read_bert_config (JSON parse with the nesting limit, field
// types and ranges, the model types and options the library refuses).
#include <cstddef>
#include <cstdint>

#include "fuzz_support.hpp"
#include "hyperadapt/io/hf_checkpoint.hpp"

using namespace hyperadapt;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const fuzz::scratch_file file("config.json");
    const auto& path = file.write(fuzz::as_text(data, size));
    fuzz::expect_valid_or_typed_error([&] {
        const bert_config c = io::read_bert_config(path);
        // What a valid config promises the model: a head size that divides the hidden size.
        if (c.heads == 0 || c.hidden % c.heads != 0) __builtin_trap();
    });
    return 0;
}
