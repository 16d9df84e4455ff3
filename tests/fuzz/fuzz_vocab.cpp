// libFuzzer target: vocab.txt content through text::vocab::from_text (line splitting with every newline
// convention, UTF-8 validation, duplicate tokens, special tokens, the hash table), then every token looked
// up again by its text.
#include <cstddef>
#include <cstdint>

#include "fuzz_support.hpp"
#include "hyperadapt/text/vocab.hpp"

using namespace hyperadapt;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::expect_valid_or_typed_error([&] {
        const auto v = text::vocab::from_text(fuzz::as_text(data, size));
        for (std::size_t id = 0; id < v.size(); ++id) {
            const auto token = v.token(static_cast<std::int32_t>(id));
            // A token maps back to its own id (duplicates are refused at load).
            if (v.find(token) != static_cast<std::int32_t>(id)) __builtin_trap();
        }
    });
    return 0;
}
