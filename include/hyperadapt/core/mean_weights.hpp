#pragma once
// The weights of masked mean pooling (layers/mean_pooling.hpp): per row, 1 / (its tokens) at each token and 0 at
// padding; an all-padding row weighs nothing (pools to zero). Worked out on the host where the mask is known:
// by the batch builder once per batch (data/multitask_batch.hpp), so that the model's pooling and PHA's retriever
// read them from the batch's one upload instead of copying the mask back and uploading weights of their own.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace hyperadapt {

/// mask: (rows, len), nonzero = token. Returns (rows, len) weights.
template <class T>
[[nodiscard]] std::vector<T> mean_pooling_weights(std::span<const std::uint8_t> mask, std::size_t rows, std::size_t len) {
    std::vector<T> w(rows * len, T(0));
    for (std::size_t b = 0; b < rows; ++b) {
        std::size_t count = 0;
        for (std::size_t l = 0; l < len; ++l) count += mask[b * len + l] != 0;
        for (std::size_t l = 0; l < len && count > 0; ++l)
            if (mask[b * len + l] != 0) w[b * len + l] = T(1) / static_cast<T>(count);
    }
    return w;
}

}  // namespace hyperadapt
