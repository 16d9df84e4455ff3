#pragma once
// Three error tiers (docs/design.md):
//   composition mistakes  -> static_assert / concept failure at compile time;
//   user preconditions    -> always checked, throw a typed exception naming the layer and the shapes;
//   internal invariants   -> HYPERADAPT_ASSERT, overridable, compiled out under NDEBUG.
#include <stdexcept>
#include <string>

namespace hyperadapt {

/// Base of every exception hyperadapt throws, so callers can catch the library's errors in one place.
class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A tensor reached a layer with a shape the layer cannot take.
class shape_error : public error {
public:
    using error::error;
};

/// A configuration value is out of its valid range (e.g. hidden size not divisible by heads).
class config_error : public error {
public:
    using error::error;
};

/// A file could not be read or written, or its content is malformed.
class io_error : public error {
public:
    using error::error;
};

/// A backend (BLAS, CUDA, cuBLAS) reported a failure.
class backend_error : public error {
public:
    using error::error;
};

namespace detail {
[[noreturn]] inline void assertion_failed(const char* expr, const char* file, int line) {
    throw error(std::string("hyperadapt internal invariant violated: ") + expr + " at " + file + ":" +
                std::to_string(line));
}
}  // namespace detail

}  // namespace hyperadapt

#ifndef HYPERADAPT_ASSERT
#ifdef NDEBUG
#define HYPERADAPT_ASSERT(expr) ((void)0)
#else
#define HYPERADAPT_ASSERT(expr) \
    ((expr) ? (void)0 : ::hyperadapt::detail::assertion_failed(#expr, __FILE__, __LINE__))
#endif
#endif
