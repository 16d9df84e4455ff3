#pragma once
// Shared by the tests that compare modules with the authors' reference files (tests/data/reference/*): loading
// inputs and parameters by name, and comparing every output and gradient within a relative bound.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "hyperadapt/io/safetensors.hpp"
#include "hyperadapt/nn/parameter.hpp"
#include "hyperadapt/tensor/tensor.hpp"
#include "support/backends.hpp"
#include "support/golden_file.hpp"
#include "max_keeping_nan.hpp"

namespace hyperadapt::test::reference {

using io::safetensors_reader;

/// Agreement bound: every output and gradient within 1e-9 of its tensor's largest magnitude. Tensors whose
/// largest magnitude is below the floor (mathematically zero gradients stored as rounding noise) are
/// compared absolutely against 1e-9 * floor.
constexpr double tolerance = 1e-9;
constexpr double magnitude_floor = 1e-6;

template <class B>
tensor<B, double> load(B& b, const safetensors_reader& r, const std::string& name) {
    const auto& e = r.at(name);
    return tensor<B, double>::from_host(b, e.to_shape(), r.read<double>(e));
}

template <class B>
tensor<B, std::int32_t> load_ids(B& b, const safetensors_reader& r, const std::string& name) {
    const auto& e = r.at(name);
    return tensor<B, std::int32_t>::from_host(b, e.to_shape(), r.read<std::int32_t>(e));
}

/// The golden files of one module (checked_golden_files), logged with their folders.
inline std::vector<std::filesystem::path> module_files(const std::vector<std::string>& prefixes) {
    auto files = checked_golden_files(prefixes);
    BOOST_TEST_MESSAGE(files.size() << " golden file(s) " << prefixes.front() << "* ... under " << reference_dir()
                                    << (reference_dir_overridden() ? "" : " and " + shared_reference_dir().string()));
    return files;
}

/// Every file of the module in the shared reference folder is checked: byte-identical to a repository copy, or
/// among the files the reference cases run over. A copy that differs from its shared original is reported
/// (both are checked); a shared folder that is not there is a visible skip.
inline void check_repository_copies(const std::vector<std::string>& prefixes) {
    namespace fs = std::filesystem;
    const fs::path shared = shared_reference_dir();
    const auto copies = golden_files(prefixes, repository_reference_dir());
    BOOST_TEST_REQUIRE(!copies.empty(), "no repository copy under " << repository_reference_dir());
    if (!fs::is_directory(shared)) {
        BOOST_TEST_MESSAGE("SKIPPED comparing with the shared golden files: " << shared << " not found");
        return;
    }
    if (reference_dir_overridden()) {
        BOOST_TEST_MESSAGE("SKIPPED comparing with the shared golden files: HYPERADAPT_REFERENCE_DIR is set");
        return;
    }
    const auto checked = checked_golden_files(prefixes);
    for (const auto& copy : copies) {
        const auto original = shared / copy.filename();
        if (fs::exists(original) && file_bytes(copy) != file_bytes(original))
            BOOST_TEST_MESSAGE(copy << " differs from " << original << ": both are checked");
    }
    for (const auto& original : golden_files(prefixes, shared)) {
        const auto bytes = file_bytes(original);
        const bool is_checked = std::any_of(checked.begin(), checked.end(),
                                            [&](const fs::path& p) { return file_bytes(p) == bytes; });
        BOOST_TEST(is_checked, original << " is not among the files the reference cases check");
    }
}

/// "file [provider]": the reference tests run once per GEMM provider.
template <class B>
std::string label(const golden& g) {
    return g.name() + " [" + B::gemm_provider::name + "]";
}

/// Loads "param.<name>" into every parameter of the module and checks that the file has no parameter the
/// module lacks: the names must match one to one.
template <class B, class M>
void load_parameters(B& b, const safetensors_reader& r, M& m) {
    std::set<std::string> file_params;
    for (const auto& e : r.entries())
        if (e.name.rfind("param.", 0) == 0) file_params.insert(e.name.substr(6));
    std::set<std::string> module_params;
    m.visit_parameters([&](const std::string& n, parameter<B, double>& p) {
        module_params.insert(n);
        const auto* e = r.find("param." + n);
        BOOST_TEST_REQUIRE(e != nullptr, "module parameter '" << n << "' is not in " << r.path());
        BOOST_TEST_REQUIRE((e->to_shape() == p.value.shape()),
                           n << ": file shape " << e->shape_str() << ", module shape " << p.value.shape().str());
        const auto v = r.read<double>(*e);
        b.copy_from_host(v.data(), p.value.data(), v.size());
    });
    BOOST_TEST(module_params == file_params, boost::test_tools::per_element());
}

/// Compares one tensor with the file's and returns max |got - want| / max(max |want|, floor).
struct comparison {
    explicit comparison(std::string f) : file(std::move(f)) {}
    std::string file;
    double worst = 0;
    std::string worst_name;
    std::size_t tensors = 0;

    template <class B>
    void check(const safetensors_reader& r, const std::string& name, const tensor<B, double>& got) {
        const auto& e = r.at(name);
        BOOST_TEST_REQUIRE((got.shape() == e.to_shape()), name << ": shape " << got.shape().str() << ", file "
                                                                << e.shape_str());
        const auto want = r.read<double>(e);
        const auto have = got.to_host();
        double scale = 0, diff = 0;
        for (std::size_t i = 0; i < want.size(); ++i) {
            scale = std::max(scale, std::abs(want[i]));
            diff = max_keeping_nan(diff, std::abs(have[i] - want[i]));
        }
        const double rel = diff / std::max(scale, magnitude_floor);
        BOOST_TEST(rel <= tolerance, file << " " << name << ": max |diff| " << diff << " against max |value| " << scale);
        ++tensors;
        if (rel > worst || worst_name.empty()) {
            worst = rel;
            worst_name = name;
        }
    }

    /// A scalar output (shape []) against the file's.
    void check_scalar(const safetensors_reader& r, const std::string& name, double got) {
        const double want = r.read<double>(r.at(name)).at(0);
        const double rel = std::abs(got - want) / std::max(std::abs(want), magnitude_floor);
        BOOST_TEST(rel <= tolerance, file << " " << name << ": " << got << " against " << want);
        ++tensors;
        if (rel > worst || worst_name.empty()) {
            worst = rel;
            worst_name = name;
        }
    }

    /// Every grad.param.* of the file against the module's accumulated gradients.
    template <class B, class M>
    void check_parameter_gradients(const safetensors_reader& r, M& m) {
        m.visit_parameters([&](const std::string& n, parameter<B, double>& p) { check(r, "grad.param." + n, p.grad); });
    }

    ~comparison() {
        BOOST_TEST_MESSAGE(file << ": " << tensors << " tensors, max relative error " << worst << " (" << worst_name
                                << ")");
    }
};

}  // namespace hyperadapt::test::reference
