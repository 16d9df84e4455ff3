# HYPERADAPT_SANITIZE: compile and link the project's own targets (tests, tools, examples, benchmarks: all that
# link hyperadapt_warnings) with sanitizers, e.g. -DHYPERADAPT_SANITIZE=address,undefined. Consumers of the
# installed library never see these flags. scripts/sanitize.sh configures, builds and runs such a tree.
set(HYPERADAPT_SANITIZE "" CACHE STRING
    "Sanitizers for the project's own targets, a -fsanitize= list such as address,undefined (empty: none)")
if(HYPERADAPT_SANITIZE)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    message(FATAL_ERROR "HYPERADAPT_SANITIZE needs GCC or Clang (compiler: ${CMAKE_CXX_COMPILER_ID})")
  endif()
  if(HYPERADAPT_ENABLE_CUDA)
    # nvcc links the CUDA tests; a half-instrumented executable would not link.
    message(FATAL_ERROR "HYPERADAPT_SANITIZE and HYPERADAPT_ENABLE_CUDA cannot be combined")
  endif()
  # Frame pointers give whole stacks in reports; any undefined behaviour ends the test (exit status non-zero)
  # instead of printing a line that a passing test would hide.
  set(_hyperadapt_sanitize_flags -fsanitize=${HYPERADAPT_SANITIZE} -fno-omit-frame-pointer)
  if(HYPERADAPT_SANITIZE MATCHES "undefined")
    list(APPEND _hyperadapt_sanitize_flags -fno-sanitize-recover=undefined)
  endif()
  target_compile_options(hyperadapt_warnings INTERFACE $<$<COMPILE_LANGUAGE:CXX>:${_hyperadapt_sanitize_flags}>)
  target_link_options(hyperadapt_warnings INTERFACE ${_hyperadapt_sanitize_flags})
  list(JOIN _hyperadapt_sanitize_flags " " _hyperadapt_sanitize_text)
  message(STATUS "hyperadapt: own targets built with ${_hyperadapt_sanitize_text}")
endif()
