#pragma once
// The block sizes the backends' caching allocators (backend/cpu_allocator.hpp, backend/cuda.hpp) hand out.
// Freed blocks are cached and reused by size. With one size per tensor shape, tensors whose shapes change from
// step to step (batches padded to their longest example, rows in length groups: data/multitask_batch.hpp)
// would each leave one more block in the cache, and the cache would grow with every new shape. Size classes
// bound that: a request is rounded up to a multiple of the granularity up to 64 granules, and above that to
// the next of eight geometric steps per doubling, so a block is at most 12.5 % larger than asked and blocks of
// nearby sizes serve each other.
#include <bit>
#include <cstddef>

namespace hyperadapt::detail {

constexpr std::size_t size_class(std::size_t bytes, std::size_t granularity) noexcept {
    if (bytes == 0) bytes = 1;
    const std::size_t granules = (bytes + granularity - 1) / granularity;
    if (granules <= 64) return granules * granularity;
    const std::size_t step = std::size_t{1} << (std::bit_width(granules) - 4);  // 2^(floor(log2 g) - 3)
    return (granules + step - 1) / step * step * granularity;
}

static_assert(size_class(0, 64) == 64 && size_class(64, 64) == 64 && size_class(65, 64) == 128);
static_assert(size_class(64 * 64, 64) == 64 * 64 && size_class(64 * 64 + 1, 64) == 72 * 64);
static_assert(size_class(1000 * 64, 64) == 1024 * 64 && size_class(1025 * 64, 64) == 1152 * 64);

}  // namespace hyperadapt::detail
