// libFuzzer target: a safetensors file (header length, JSON header, data section) through
// io::safetensors_reader, then every tensor converted the way loaders read it (data validation: dtype,
// shape, offsets, value conversion and range checks).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_support.hpp"
#include "hyperadapt/io/safetensors.hpp"

using namespace hyperadapt;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const fuzz::scratch_file file("input.safetensors");
    const auto& path = file.write(fuzz::as_text(data, size));
    fuzz::expect_valid_or_typed_error([&] {
        const io::safetensors_reader r(path);
        for (const auto& e : r.entries()) {
            fuzz::expect_valid_or_typed_error([&] { (void)e.to_shape(); });
            if (io::is_floating(e.type)) {
                (void)r.read<float>(e);
                (void)r.read<double>(e);
            } else {
                fuzz::expect_valid_or_typed_error([&] { (void)r.read<std::int32_t>(e); });
                fuzz::expect_valid_or_typed_error([&] { (void)r.read<std::int64_t>(e); });
            }
        }
        (void)r.find("x");
    });
    return 0;
}
