# Warning flags for the project's own targets (tests, benchmarks, examples); never forced on consumers.
option(HYPERADAPT_WARNINGS_AS_ERRORS "Treat warnings as errors in the project's own targets" OFF)
add_library(hyperadapt_warnings INTERFACE)
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(hyperadapt_warnings INTERFACE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion>)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # GCC 12 reports a false maybe-uninitialized inside its own AVX-512 intrinsics when Eigen inlines them.
    target_compile_options(hyperadapt_warnings INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Wno-maybe-uninitialized>)
    if(CMAKE_CXX_COMPILER_VERSION VERSION_LESS 12.3)
      # GCC before 12.3 (PR 105593; Debian 12 ships 12.2) also says "used uninitialized" for the
      # _mm512_undefined_ps() operands of its own AVX-512 intrinsics (at -Og and -O1, the tests' levels, with
      # -march=native on an AVX-512 CPU): hundreds of false reports per build. Clang builds (the fuzzers)
      # and the sanitizer runs still check for uninitialized reads.
      target_compile_options(hyperadapt_warnings INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Wno-uninitialized>)
    endif()
  endif()
  if(HYPERADAPT_WARNINGS_AS_ERRORS)
    target_compile_options(hyperadapt_warnings INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Werror>)
  endif()
endif()
option(HYPERADAPT_NATIVE "Compile the project's own targets for the build machine's CPU (-march=native)" ON)
if(HYPERADAPT_NATIVE AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(hyperadapt_warnings INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-march=native>)
endif()
