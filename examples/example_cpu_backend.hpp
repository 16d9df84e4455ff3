#pragma once
// The training examples' CPU backend: the policy type (the GEMM providers the build found), its construction
// from --threads and --precision, and what a run's record says about its products. The recipes' CPU
// translation units include it; the CUDA ones (recipes/*_cuda.cu, --device cuda) do not, as it names Eigen,
// OpenMP, OpenBLAS and oneDNN, which nvcc does not compile here.
#include <iostream>
#include <string>

#include "hyperadapt/backend/cpu.hpp"
#include "example_support.hpp"
#if defined(HYPERADAPT_EXAMPLE_WITH_CBLAS)
#include "hyperadapt/backend/cpu_cblas.hpp"
#endif
#if defined(HYPERADAPT_EXAMPLE_WITH_ONEDNN)
#include "hyperadapt/backend/cpu_onednn.hpp"
#endif

namespace hyperadapt::examples {

/// The backend policy the training examples run on: the CPU with OpenBLAS's GEMMs where the build found a
/// CBLAS library (examples/CMakeLists.txt; 1.3-1.4 times Eigen's on these models' training steps,
/// docs/benchmarks.md), with Eigen's otherwise; where it found oneDNN, wrapped in the provider that runs
/// the products in bf16 under `--precision bf16`. Their records name the provider ("gemm", "precision").
#if defined(HYPERADAPT_EXAMPLE_WITH_CBLAS)
using fp32_gemm = cblas_gemm;
#else
using fp32_gemm = eigen_gemm;
#endif
#if defined(HYPERADAPT_EXAMPLE_WITH_ONEDNN)
using policy = cpu_backend<onednn_gemm<fp32_gemm>>;
#else
using policy = cpu_backend<fp32_gemm>;
#endif

/// The examples' backend: `threads` (0: OpenMP's default) and the products' precision ("fp32" or "bf16",
/// validated by the option parser; bf16 needs a build with oneDNN and a CPU with AVX-512).
inline policy make_backend(int threads, const std::string& precision) {
#if defined(HYPERADAPT_EXAMPLE_WITH_CBLAS)
    if (const std::string advice = cblas_gemm::kernel_advice(); !advice.empty()) std::cerr << "warning: " << advice << "\n";
#endif
    const policy::options opts{.threads = threads > 0 ? threads : policy::options{}.threads};
#if defined(HYPERADAPT_EXAMPLE_WITH_ONEDNN)
    return policy(opts, onednn_gemm<fp32_gemm>(parse_compute_precision(precision).value_or(compute_precision::fp32)));
#else
    if (precision != "fp32")
        throw config_error("--precision " + precision + ": this build has no oneDNN (apt-get install libdnnl-dev, then "
                           "reconfigure), so its products run in fp32 only");
    return policy(opts);
#endif
}

/// What ran the products of a run at `precision`: "cblas", "eigen", or "onednn-bf16+cblas" (oneDNN's bf16
/// above onednn_gemm's size floor, the fp32 provider below it).
inline std::string gemm_description(const std::string& precision) {
    return precision == "bf16" ? std::string("onednn-bf16+") + fp32_gemm::name : std::string(fp32_gemm::name);
}

/// The kernels OpenBLAS runs the fp32 products on ("SkylakeX", "Haswell", "Prescott", ...; "" with Eigen's):
/// recorded with each run, as they set its speed.
inline std::string fp32_kernels() {
#if defined(HYPERADAPT_EXAMPLE_WITH_CBLAS)
    return cblas_gemm::kernels();
#else
    return {};
#endif
}

/// What ran a CPU run's products, for its record.
inline run_device cpu_run_device(const std::string& precision) {
    return {.device = "cpu", .gemm = gemm_description(precision), .kernels = fp32_kernels(), .label = {}};
}

}  // namespace hyperadapt::examples
