# Layering checks of include/hyperadapt (docs/design.md, "Folder order"), run by CTest:
#   headers_include_order     every include edge follows cmake/include_order.txt (bar the listed exceptions)
#   headers_self_contained    every public header compiles on its own (CUDA headers excepted: nvcc only)
#   headers_check_script      scripts/check_includes.py itself, on made-up header trees
#   headers_host_copies       the host round trips written in layers/, loss/ and models/ stay within
#                             cmake/host_copies_allowed.txt (issue 13; the list only shrinks)
#   headers_host_copies_script  scripts/check_host_copies.py itself, on a made-up header tree
# Included from the root CMakeLists.txt when the tests are built.
find_package(Python3 COMPONENTS Interpreter)
if(NOT Python3_Interpreter_FOUND)
  message(WARNING "python3 not found: the header layering checks (scripts/check_includes.py) are not run")
  return()
endif()

set(_check_includes ${PROJECT_SOURCE_DIR}/scripts/check_includes.py)
add_test(NAME headers_include_order COMMAND Python3::Interpreter ${_check_includes} order --root ${PROJECT_SOURCE_DIR})
# Host round trips written in the step's code may only shrink (issue 13; cmake/host_copies_allowed.txt).
add_test(NAME headers_host_copies COMMAND Python3::Interpreter ${PROJECT_SOURCE_DIR}/scripts/check_host_copies.py
         --root ${PROJECT_SOURCE_DIR})
add_test(NAME headers_host_copies_script
         COMMAND Python3::Interpreter ${PROJECT_SOURCE_DIR}/tests/scripts/test_check_host_copies.py)

# clang's precompiled headers make the compile check about half as costly as compiling every header from
# scratch (the script explains how it stays a check of each header alone); any compiler works.
find_program(HYPERADAPT_HEADER_CHECK_CXX NAMES clang++ DOC "Compiler for the headers_self_contained test")
if(NOT HYPERADAPT_HEADER_CHECK_CXX)
  set(HYPERADAPT_HEADER_CHECK_CXX ${CMAKE_CXX_COMPILER})
endif()
# The system include directories of the optional dependencies; a header that needs a missing one is left
# out (and listed) rather than failed.
set(_header_check_args)
if(TARGET hyperadapt::text)
  list(APPEND _header_check_args -I ${HYPERADAPT_UTF8PROC_INCLUDE_DIR})
else()
  list(APPEND _header_check_args --skip-header utf8proc.h)
endif()
if(TARGET hyperadapt::cblas)
  list(APPEND _header_check_args -I ${HYPERADAPT_CBLAS_INCLUDE_DIR})
else()
  list(APPEND _header_check_args --skip-header cblas.h)
endif()
find_path(HYPERADAPT_HTTPLIB_INCLUDE_DIR httplib.h)  # serve/http_server.hpp (libcpp-httplib-dev)
if(NOT HYPERADAPT_HTTPLIB_INCLUDE_DIR)
  list(APPEND _header_check_args --skip-header httplib.h)
endif()
if(NOT TARGET hyperadapt::onednn)
  list(APPEND _header_check_args --skip-header oneapi/dnnl/dnnl.hpp)
endif()
if(TARGET hyperadapt::mpi)
  foreach(_dir ${MPI_CXX_INCLUDE_DIRS})
    list(APPEND _header_check_args -I ${_dir})
  endforeach()
else()
  list(APPEND _header_check_args --skip-header mpi.h)
endif()
add_test(NAME headers_self_contained
  COMMAND Python3::Interpreter ${_check_includes} compile --root ${PROJECT_SOURCE_DIR}
          --cxx ${HYPERADAPT_HEADER_CHECK_CXX} --jobs 2
          "--include-path=$<JOIN:$<TARGET_PROPERTY:Eigen3::Eigen,INTERFACE_INCLUDE_DIRECTORIES>,|>|$<JOIN:$<TARGET_PROPERTY:nlohmann_json::nlohmann_json,INTERFACE_INCLUDE_DIRECTORIES>,|>"
          ${_header_check_args})
add_test(NAME headers_check_script
  COMMAND Python3::Interpreter ${PROJECT_SOURCE_DIR}/tests/scripts/test_check_includes.py ${HYPERADAPT_HEADER_CHECK_CXX})
set_tests_properties(headers_include_order headers_self_contained headers_check_script headers_host_copies
                     headers_host_copies_script PROPERTIES LABELS headers)
set_tests_properties(headers_self_contained PROPERTIES PROCESSORS 2 TIMEOUT 600)
