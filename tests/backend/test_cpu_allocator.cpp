#define BOOST_TEST_MODULE backend_cpu_allocator
#include <boost/test/unit_test.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/backend/cpu_allocator.hpp"
#include "hyperadapt/layers/encoder_layer.hpp"

// The CPU backend's caching allocator: blocks reused across steps of one shape (no system allocation after the
// first steps), a best fit for nearby sizes, and a footprint that stays at the largest step's need when the
// shapes change from step to step (batches in length groups).

using namespace hyperadapt;
using detail::block_cache;

BOOST_AUTO_TEST_CASE(a_freed_block_serves_the_same_size_and_nearby_smaller_ones) {
    block_cache c;
    const auto a = c.acquire(1 << 20);
    BOOST_TEST(a.bytes >= (1u << 20));
    c.give_back(a.data, a.bytes);
    BOOST_TEST(c.cached_bytes() == a.bytes);
    const auto b = c.acquire(1 << 20);
    BOOST_TEST(b.data == a.data);
    c.give_back(b.data, b.bytes);
    const auto smaller = c.acquire(960 << 10);  // 0.94x: the 1 MiB block, one size class up, holds it
    BOOST_TEST(smaller.data == a.data);
    BOOST_TEST(smaller.bytes == a.bytes);
    BOOST_TEST(c.bytes_in_use() == a.bytes);
    c.give_back(smaller.data, smaller.bytes);
    const auto small = c.acquire(800 << 10);  // two size classes down: a block of its own
    BOOST_TEST(small.data != a.data);
    BOOST_TEST(c.system_allocations() == 2u);
    c.give_back(small.data, small.bytes);
    BOOST_TEST(c.bytes_in_use() == 0u);
    c.release();
    BOOST_TEST(c.cached_bytes() == 0u);
}

BOOST_AUTO_TEST_CASE(changing_sizes_keep_the_footprint_near_the_peak_in_use) {
    // Steps of three blocks each, every step of new sizes: a cache that only grew would hold every step's blocks.
    block_cache c;
    std::size_t worst_footprint = 0;
    for (std::size_t step = 0; step < 40; ++step) {
        std::vector<block_cache::block> held;
        for (std::size_t i = 0; i < 3; ++i) {
            held.push_back(c.acquire((64 + 37 * ((step * 3 + i) % 29)) << 12));
            worst_footprint = std::max(worst_footprint, c.bytes_in_use() + c.cached_bytes());
        }
        for (const auto& b : held) c.give_back(b.data, b.bytes);
    }
    BOOST_TEST(worst_footprint <= c.peak_bytes_in_use() * 5 / 4);
    // The largest step needs three blocks of at most (64 + 37 * 28) * 4 KiB, each rounded to its size class and
    // perhaps served one class up.
    BOOST_TEST(c.peak_bytes_in_use() <= 3u * ((64u + 37u * 28u) << 12) * 9u / 8u * 9u / 8u);
}

namespace {
/// One training step of a small BERT layer at sequence length `seq`.
void layer_step(cpu& b, encoder_layer<cpu, float>& layer, std::size_t seq) {
    tensor<cpu, float> x(b, {4, seq, 64});
    b.fill_uniform(x.size(), seq, 0, -1.0f, 1.0f, x.data());
    rng_stream rng(3);
    typename encoder_layer<cpu, float>::context ctx;
    const auto y = layer.forward(x, {}, ctx, run_mode::train(rng));
    layer_condition_gradients<cpu, float> none;
    (void)layer.backward(y, ctx, none);
}
}  // namespace

BOOST_AUTO_TEST_CASE(steps_of_one_shape_allocate_nothing_once_warm) {
    // The first step meets every size for the first time; the second may still replace a block the first one
    // freed to stay within its footprint; from then on every block comes from the cache.
    cpu b(cpu::options{.threads = 1});
    encoder_layer<cpu, float> layer(b, {.hidden = 64, .heads = 4, .intermediate = 256}, "encoder.layer.0");
    rng_stream init(1);
    layer.initialize(init);
    layer_step(b, layer, 48);
    layer_step(b, layer, 48);
    const std::size_t warm = b.memory().system_allocations;
    for (int i = 0; i < 4; ++i) layer_step(b, layer, 48);
    BOOST_TEST(b.memory().system_allocations == warm);
    BOOST_TEST(b.memory().in_use + b.memory().cached <= b.memory().peak_in_use * 5 / 4);
}

BOOST_AUTO_TEST_CASE(steps_of_changing_lengths_stay_near_the_longest_steps_footprint) {
    encoder_layer_config c{.hidden = 64, .heads = 4, .intermediate = 256};
    cpu longest_only(cpu::options{.threads = 1});
    {
        encoder_layer<cpu, float> layer(longest_only, c, "encoder.layer.0");
        layer_step(longest_only, layer, 128);
    }
    cpu b(cpu::options{.threads = 1});
    encoder_layer<cpu, float> layer(b, c, "encoder.layer.0");
    for (int round = 0; round < 3; ++round)
        for (std::size_t seq = 8; seq <= 128; seq += 8) layer_step(b, layer, seq);
    const auto m = b.memory();
    const auto one = longest_only.memory();
    BOOST_TEST_MESSAGE("peak in use: longest step alone " << one.peak_in_use << " B, 48 steps of 16 lengths "
                                                          << m.peak_in_use << " B; held " << m.in_use + m.cached);
    BOOST_TEST(m.in_use + m.cached <= m.peak_in_use * 5 / 4);
    BOOST_TEST(m.peak_in_use <= one.peak_in_use * 5 / 4);
}
