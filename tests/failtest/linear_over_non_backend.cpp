// expected-error: linear_backend
// Compiles as is; with HYPERADAPT_FAILTEST a Linear layer is instantiated over a type that has memory but
// no GEMM, which the linear_backend concept must reject by name.
#include <cstddef>

#include "hyperadapt/backend/cpu.hpp"
#include "hyperadapt/layers/linear.hpp"

#ifdef HYPERADAPT_FAILTEST
/// Memory only: satisfies memory_backend, lacks everything linear_backend adds.
struct memory_only {
    template <class T>
    using buffer = hyperadapt::cpu::buffer<T>;
    template <class T>
    buffer<T> allocate(std::size_t n) { return inner.allocate<T>(n); }
    template <class T>
    void copy(const T*, T*, std::size_t) {}
    template <class T>
    void copy_to_host(const T*, T*, std::size_t) {}
    template <class T>
    void copy_from_host(const T*, T*, std::size_t) {}
    template <class T>
    void fill(T*, std::size_t, T) {}
    void synchronize() {}
    const char* name() const { return "memory_only"; }
    hyperadapt::cpu inner;
};
static_assert(hyperadapt::memory_backend<memory_only>);
using backend_under_test = memory_only;
#else
using backend_under_test = hyperadapt::cpu;
#endif

int main() {
    backend_under_test b;
    hyperadapt::linear<backend_under_test, float> layer(b, 4, 2);
    (void)layer;
}
