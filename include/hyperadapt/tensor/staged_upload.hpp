#pragma once
// Arrays of any element types gathered on the host and copied to the backend in one transfer, each array then a
// view of that one upload. On a GPU every host-to-device copy waits, so a batch (data/multitask_batch.hpp: ids,
// token types, masks, rows and labels per task, regression targets) or a loss over several tasks
// (layers/multitask_heads.hpp) costs one upload instead of one per array, or one per element type until
// session 26 (issue 13, "one upload per batch"); where the backend queues uploads (queued_uploads: pinned
// memory and an asynchronous copy on a GPU) that upload does not wait for the device either.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/shape.hpp"
#include "hyperadapt/tensor/tensor.hpp"

namespace hyperadapt {

/// Where add() put an array of E: view() takes it back with its element type, so an int32 array cannot be
/// viewed as floats by mistake.
template <class E>
struct staged_array {
    std::size_t byte_offset = 0;
};

template <memory_backend B>
class staged_upload {
public:
    /// Every array starts on a multiple of this many bytes: aligned for any element type and for the vector
    /// loads of the kernels that read it (a cache line; cudaMalloc's own granularity is a multiple).
    static constexpr std::size_t alignment = 64;

    /// Stages `values` and returns where its view will start.
    template <class E>
    staged_array<E> add(std::span<const E> values) {
        static_assert(std::is_trivially_copyable_v<E>, "hyperadapt::staged_upload stages trivially copyable elements");
        static_assert(alignment % alignof(E) == 0, "hyperadapt::staged_upload: an element type aligned beyond 64 bytes");
        const std::size_t at = (host_.size() + alignment - 1) / alignment * alignment;
        host_.resize(at + values.size_bytes());
        if (!values.empty()) std::memcpy(host_.data() + at, values.data(), values.size_bytes());
        return {at};
    }
    template <class E>
    staged_array<E> add(const std::vector<E>& values) {
        return add(std::span<const E>(values));
    }
    /// One copy of everything staged (nothing when nothing is), queued without waiting for the device where
    /// the backend can (queued_uploads).
    void upload(B& backend) {
        if (host_.empty()) return;
        whole_ = tensor<B, std::uint8_t>(backend, {host_.size()});
        if constexpr (queued_uploads<B>)
            backend.queue_copy_from_host(host_.data(), whole_.data(), host_.size());
        else
            backend.copy_from_host(host_.data(), whole_.data(), host_.size());
    }
    /// The `s`-shaped array staged at `at`, a view of the upload (sharing its storage).
    template <class E>
    [[nodiscard]] tensor<B, E> view(staged_array<E> at, shape s) const {
        return whole_.template viewed_as<E>(at.byte_offset, s);
    }

private:
    std::vector<std::uint8_t> host_;
    tensor<B, std::uint8_t> whole_;
};

}  // namespace hyperadapt
