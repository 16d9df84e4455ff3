#pragma once
// Device detection for the CUDA test modules (nvcc only): a module includes this once, names
// `*utf::precondition(&hyperadapt::test::cuda_device_present)` on its suite, and without a usable device
// prints "SKIPPED: no CUDA device (...)" and Boost.Test reports every case skipped, so the test passes.
#include <boost/test/unit_test.hpp>

#include <cuda_runtime.h>

#include <iostream>
#include <string>

namespace hyperadapt::test {

struct cuda_device_probe {
    bool available = false;
    std::string description;  ///< the device's name, or why there is none
};

inline const cuda_device_probe& cuda_device() {
    static const cuda_device_probe p = [] {
        cuda_device_probe r;
        int count = 0;
        const cudaError_t status = cudaGetDeviceCount(&count);
        if (status != cudaSuccess) {
            r.description = std::string("cudaGetDeviceCount failed: ") + cudaGetErrorName(status) + ": " +
                            cudaGetErrorString(status);
            (void)cudaGetLastError();
        } else if (count == 0) {
            r.description = "cudaGetDeviceCount returned 0";
        } else {
            cudaDeviceProp prop{};
            if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
                r.description = std::string(prop.name) + ", compute capability " + std::to_string(prop.major) +
                                "." + std::to_string(prop.minor);
            r.available = true;
        }
        return r;
    }();
    return p;
}

struct announce_cuda_device {
    announce_cuda_device() {
        if (cuda_device().available)
            std::cout << "CUDA device 0: " << cuda_device().description << std::endl;
        else  // printed at every log level; Boost.Test then reports the suite (every case) as skipped
            std::cout << "SKIPPED: no CUDA device (" << cuda_device().description << ")" << std::endl;
    }
};
BOOST_TEST_GLOBAL_FIXTURE(announce_cuda_device);

/// The suites' precondition: a free function (an empty functor makes g++ warn inside boost::function).
inline boost::test_tools::assertion_result cuda_device_present(boost::unit_test::test_unit_id) {
    boost::test_tools::assertion_result r(cuda_device().available);
    if (!cuda_device().available) r.message() << "no CUDA device (" << cuda_device().description << ")";
    return r;
}

}  // namespace hyperadapt::test
