#pragma once
// The CPU half of test_cuda_predictor (compiled by the host compiler: the CPU backend needs Eigen and OpenMP,
// which nvcc does not compile here): saves tiny CA-MTL and PHA model directories and returns the CPU
// predictor's answers for the inputs the GPU side asks about.
#include <filesystem>
#include <string>
#include <vector>

namespace hyperadapt::test {

struct cpu_predictions {
    std::string kind;                         ///< "camtl" or "pha"
    std::filesystem::path dir;                ///< the saved model directory
    std::vector<std::string> tasks;           ///< per answer: the task
    std::vector<std::vector<double>> answers;  ///< per answer: probabilities, or {value} for regression
};

/// The inputs both sides predict, one sentence each.
std::vector<std::string> reference_sentences();

/// Saves one model of each kind under `root` and predicts reference_sentences() for every task on the CPU.
std::vector<cpu_predictions> save_models_and_predict_on_cpu(const std::filesystem::path& root);

}  // namespace hyperadapt::test
