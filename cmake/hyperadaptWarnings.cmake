# Warning flags for the project's own targets (tests, benchmarks, examples); never forced on consumers.
option(HYPERADAPT_WARNINGS_AS_ERRORS "Treat warnings as errors in the project's own targets" OFF)
add_library(hyperadapt_warnings INTERFACE)
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(hyperadapt_warnings INTERFACE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion>)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # GCC 12 reports a false maybe-uninitialized inside its own AVX-512 intrinsics when Eigen inlines them.
    target_compile_options(hyperadapt_warnings INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Wno-maybe-uninitialized>)
  endif()
  if(HYPERADAPT_WARNINGS_AS_ERRORS)
    target_compile_options(hyperadapt_warnings INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Werror>)
  endif()
endif()
option(HYPERADAPT_NATIVE "Compile the project's own targets for the build machine's CPU (-march=native)" ON)
if(HYPERADAPT_NATIVE AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(hyperadapt_warnings INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-march=native>)
endif()
