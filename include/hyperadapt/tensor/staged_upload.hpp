#pragma once
// Arrays of one element type gathered on the host and copied to the backend in one transfer, each array then a
// view of that one upload. On a GPU every host-to-device copy waits, so a batch (data/multitask_batch.hpp) or a
// loss over several tasks (layers/multitask_heads.hpp) costs one upload per element type instead of one per array
// (issue 13, "one upload per batch").
#include <cstddef>
#include <span>
#include <vector>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/tensor/tensor.hpp"

namespace hyperadapt {

template <memory_backend B, class E>
class staged_upload {
public:
    /// Stages `values` and returns where its view will start.
    std::size_t add(std::span<const E> values) {
        const std::size_t at = host_.size();
        host_.insert(host_.end(), values.begin(), values.end());
        return at;
    }
    /// One copy of everything staged (nothing when nothing is).
    void upload(B& backend) {
        if (!host_.empty()) whole_ = tensor<B, E>::from_host(backend, {host_.size()}, host_);
    }
    /// The `s`-shaped array staged at `at`, a view of the upload (sharing its storage).
    [[nodiscard]] tensor<B, E> view(std::size_t at, shape s) const {
        return whole_.reshaped({whole_.size(), 1}).row_range(at, s.size()).reshaped(s);
    }

private:
    std::vector<E> host_;
    tensor<B, E> whole_;
};

}  // namespace hyperadapt
