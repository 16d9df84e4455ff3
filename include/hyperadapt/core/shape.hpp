#pragma once
#include <array>
#include <cstddef>
#include <initializer_list>
#include <string>

#include "hyperadapt/core/errors.hpp"

namespace hyperadapt {

/// A dynamic tensor shape of rank 0..4, row-major (the last dimension is contiguous).
class shape {
public:
    static constexpr std::size_t max_rank = 4;

    shape() = default;
    shape(std::initializer_list<std::size_t> dims) {
        if (dims.size() > max_rank) throw shape_error("shape: rank " + std::to_string(dims.size()) + " > 4");
        for (auto d : dims) dims_[rank_++] = d;
    }

    [[nodiscard]] std::size_t rank() const noexcept { return rank_; }
    [[nodiscard]] std::size_t operator[](std::size_t i) const noexcept { return dims_[i]; }
    [[nodiscard]] std::size_t size() const noexcept {
        std::size_t n = 1;
        for (std::size_t i = 0; i < rank_; ++i) n *= dims_[i];
        return n;
    }
    /// Product of all dimensions but the last: the number of rows when viewed as a matrix.
    [[nodiscard]] std::size_t rows() const noexcept { return rank_ == 0 ? 1 : size() / dims_[rank_ - 1]; }
    /// The last dimension.
    [[nodiscard]] std::size_t cols() const noexcept { return rank_ == 0 ? 1 : dims_[rank_ - 1]; }

    friend bool operator==(const shape& a, const shape& b) noexcept {
        if (a.rank_ != b.rank_) return false;
        for (std::size_t i = 0; i < a.rank_; ++i)
            if (a.dims_[i] != b.dims_[i]) return false;
        return true;
    }

    [[nodiscard]] std::string str() const {
        std::string s = "(";
        for (std::size_t i = 0; i < rank_; ++i) s += (i ? ", " : "") + std::to_string(dims_[i]);
        return s + ")";
    }

private:
    std::array<std::size_t, max_rank> dims_{};
    std::size_t rank_ = 0;
};

/// Throws shape_error naming the layer, what was expected and what arrived.
inline void expect_shape(const char* layer, const char* what, const shape& expected, const shape& actual) {
    if (!(expected == actual))
        throw shape_error(std::string(layer) + ": " + what + " has shape " + actual.str() + ", expected " +
                          expected.str());
}

/// Throws shape_error unless `actual` has the given last dimension.
inline void expect_cols(const char* layer, const char* what, std::size_t expected_cols, const shape& actual) {
    if (actual.rank() == 0 || actual.cols() != expected_cols)
        throw shape_error(std::string(layer) + ": " + what + " has shape " + actual.str() +
                          ", expected last dimension " + std::to_string(expected_cols));
}

}  // namespace hyperadapt
