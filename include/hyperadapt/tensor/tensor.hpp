#pragma once
// tensor<B, T>: a dense row-major array in backend B's memory with a dynamic shape.
//
// A tensor is a *shared handle*, as in PyTorch: copying it shares the storage (cheap; layers keep their
// inputs for backward this way), clone() makes a deep copy. Layers never write into a tensor they were
// given; they return new ones. Storage comes from the backend's caching allocator.
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "hyperadapt/backend/concepts.hpp"
#include "hyperadapt/core/errors.hpp"
#include "hyperadapt/core/shape.hpp"

namespace hyperadapt {

template <memory_backend B, class T>
class tensor {
public:
    using backend_type = B;
    using value_type = T;

    tensor() = default;
    tensor(B& backend, hyperadapt::shape s) : backend_(&backend), shape_(s) {
        auto buffer = std::make_shared<typename B::template buffer<T>>(backend.template allocate<T>(s.size()));
        data_ = buffer->data();
        storage_ = std::move(buffer);
    }

    /// A tensor of the given shape filled with `value`.
    static tensor filled(B& backend, hyperadapt::shape s, T value) {
        tensor t(backend, s);
        backend.fill(t.data(), t.size(), value);
        return t;
    }
    static tensor zeros(B& backend, hyperadapt::shape s) { return filled(backend, s, T(0)); }

    /// Copies host values into a new tensor; `values.size()` must equal the shape's size.
    static tensor from_host(B& backend, hyperadapt::shape s, std::span<const T> values) {
        if (values.size() != s.size())
            throw shape_error("tensor::from_host: " + std::to_string(values.size()) + " values for shape " +
                              s.str() + " (" + std::to_string(s.size()) + " elements)");
        tensor t(backend, s);
        backend.copy_from_host(values.data(), t.data(), values.size());
        return t;
    }

    [[nodiscard]] bool empty() const noexcept { return data_ == nullptr; }
    [[nodiscard]] T* data() noexcept { return data_; }
    [[nodiscard]] const T* data() const noexcept { return data_; }
    [[nodiscard]] const hyperadapt::shape& shape() const noexcept { return shape_; }
    [[nodiscard]] std::size_t size() const noexcept { return shape_.size(); }
    [[nodiscard]] std::size_t rows() const noexcept { return shape_.rows(); }
    [[nodiscard]] std::size_t cols() const noexcept { return shape_.cols(); }
    [[nodiscard]] B& backend() const {
        HYPERADAPT_ASSERT(backend_ != nullptr);
        return *backend_;
    }

    /// The same storage seen with another shape of equal size.
    [[nodiscard]] tensor reshaped(hyperadapt::shape s) const {
        if (s.size() != size())
            throw shape_error("tensor::reshaped: cannot view " + shape_.str() + " as " + s.str());
        tensor t = *this;
        t.shape_ = s;
        return t;
    }

    /// Rows [first, first + count) of the tensor viewed as a (rows, cols) matrix, sharing storage.
    [[nodiscard]] tensor row_range(std::size_t first, std::size_t count) const {
        if (first + count > rows())
            throw shape_error("tensor::row_range: rows [" + std::to_string(first) + ", " +
                              std::to_string(first + count) + ") of " + shape_.str());
        tensor t = *this;
        t.data_ = data_ + first * cols();
        t.shape_ = hyperadapt::shape{count, cols()};
        return t;
    }

    /// The `s`-shaped array that starts `offset` elements into this tensor, sharing its storage: a layer's
    /// parameter held in a model's one flat buffer (nn/flat_parameters.hpp). The array must fit.
    [[nodiscard]] tensor slice(std::size_t offset, hyperadapt::shape s) const {
        if (offset > size() || s.size() > size() - offset)
            throw shape_error("tensor::slice: " + std::to_string(s.size()) + " elements at " + std::to_string(offset) +
                              " of a tensor of " + std::to_string(size()) + " (shape " + shape_.str() + ")");
        tensor t = *this;
        t.data_ = data_ + offset;
        t.shape_ = s;
        return t;
    }

    [[nodiscard]] tensor clone() const {
        if (empty()) return {};
        tensor t(backend(), shape_);
        backend().copy(data_, t.data_, size());
        return t;
    }

    [[nodiscard]] std::vector<T> to_host() const {
        std::vector<T> out(size());
        if (!empty()) backend().copy_to_host(data_, out.data(), size());
        return out;
    }

    /// The values on the host, copied only where the caller does not have them already: `known` when given
    /// (it must hold size() values; `owner` names the layer in the error), else a copy into `storage`. A layer
    /// that reads ids the batch kept on the host saves the copy back (on a GPU, a wait).
    [[nodiscard]] std::span<const T> host_values(std::span<const T> known, std::vector<T>& storage,
                                                 std::string_view owner) const {
        if (known.empty()) {
            storage = to_host();
            return storage;
        }
        if (known.size() != size())
            throw shape_error(std::string(owner) + ": " + std::to_string(known.size()) + " host values for a tensor of " +
                              std::to_string(size()) + " (shape " + shape_.str() + ")");
        return known;
    }

    void fill(T value) { backend().fill(data_, size(), value); }
    void zero() { fill(T(0)); }

    /// The `s`-shaped array of U that starts `byte_offset` bytes into this tensor's memory, sharing its storage
    /// (keeping it alive): one upload of a byte stage seen as the arrays of several element types
    /// (tensor/staged_upload.hpp). The offset must be a multiple of U's alignment and the array must fit.
    template <class U>
    [[nodiscard]] tensor<B, U> viewed_as(std::size_t byte_offset, hyperadapt::shape s) const {
        static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_copyable_v<U>,
                      "tensor::viewed_as: only arrays of trivially copyable elements can share bytes");
        if (byte_offset % alignof(U) != 0 || byte_offset + s.size() * sizeof(U) > size() * sizeof(T))
            throw shape_error("tensor::viewed_as: " + std::to_string(s.size()) + " elements of " +
                              std::to_string(sizeof(U)) + " bytes at byte " + std::to_string(byte_offset) + " of " +
                              std::to_string(size() * sizeof(T)) + " bytes (alignment " + std::to_string(alignof(U)) + ")");
        tensor<B, U> t;
        t.backend_ = backend_;
        t.storage_ = storage_;
        // The bytes were written as U's (a byte stage copies each array in whole); backend memory is only read
        // through U from here on.
        t.data_ = reinterpret_cast<U*>(reinterpret_cast<unsigned char*>(const_cast<T*>(data_)) + byte_offset);
        t.shape_ = s;
        return t;
    }

    /// True when both handles share storage.
    [[nodiscard]] bool shares_storage_with(const tensor& o) const noexcept { return storage_ == o.storage_; }
    /// What identifies the storage (equal for every handle that shares it; null for an empty tensor).
    [[nodiscard]] const void* storage_id() const noexcept { return storage_.get(); }

private:
    template <memory_backend, class>
    friend class tensor;

    B* backend_ = nullptr;
    /// What keeps the memory alive: the backend buffer this tensor or the tensor it views was allocated as (of
    /// this element type or, for viewed_as, of another).
    std::shared_ptr<const void> storage_;
    T* data_ = nullptr;
    hyperadapt::shape shape_;
};

}  // namespace hyperadapt
