# hyperadapt::io: checkpoint reading and writing (include/hyperadapt/io/). A separate target so that the
# core library keeps Eigen as its only required dependency; the safetensors header parser needs
# nlohmann-json (Debian: nlohmann-json3-dev).
find_package(nlohmann_json 3 REQUIRED)
add_library(hyperadapt_io INTERFACE)
add_library(hyperadapt::io ALIAS hyperadapt_io)
set_target_properties(hyperadapt_io PROPERTIES EXPORT_NAME io)
target_link_libraries(hyperadapt_io INTERFACE hyperadapt nlohmann_json::nlohmann_json)
list(APPEND _hyperadapt_targets hyperadapt_io)
