#pragma once
// Where the shared data folder (../shared/data: task files, the authors' reference goldens) is.
#include <cstdlib>
#include <string>

namespace hyperadapt::test {

/// The shared data folder: HYPERADAPT_SHARED_DATA if set, else the build's default.
inline std::string shared_data_dir() {
    if (const char* env = std::getenv("HYPERADAPT_SHARED_DATA")) return env;
    return HYPERADAPT_SHARED_DATA_DEFAULT;
}

}  // namespace hyperadapt::test
