# Builds and runs the consumer project in this folder against hyperadapt, the way a user would get it.
#
#   cmake -DMODE=find_package|add_subdirectory -DHYPERADAPT_SOURCE_DIR=<src> -DHYPERADAPT_BUILD_DIR=<build>
#         -DWORK_DIR=<scratch> -DGENERATOR=<generator> -DCXX=<compiler> [-DCONFIG=<build type>] -P run_consumer.cmake
#
# find_package: `cmake --install` of the build tree into a staging prefix, which is then moved elsewhere
# before use, so that any absolute path into the install location shows up as a failure.
# add_subdirectory: the consumer adds the source tree directly.
foreach(var MODE HYPERADAPT_SOURCE_DIR HYPERADAPT_BUILD_DIR WORK_DIR GENERATOR CXX)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT DEFINED CONFIG OR CONFIG STREQUAL "")
  set(CONFIG Release)
endif()

function(run step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${step} failed (exit ${rc}):\n  ${ARGN}\n${out}")
  endif()
  message(STATUS "${step}: ok")
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(consumer_args -DHYPERADAPT_CONSUME=${MODE} -DCMAKE_BUILD_TYPE=${CONFIG})

if(MODE STREQUAL "find_package")
  run("install" "${CMAKE_COMMAND}" --install "${HYPERADAPT_BUILD_DIR}" --prefix "${WORK_DIR}/staging" --config ${CONFIG})
  file(RENAME "${WORK_DIR}/staging" "${WORK_DIR}/prefix")
  # An exported target must not carry a library file path of the installing machine.
  file(GLOB_RECURSE target_files "${WORK_DIR}/prefix/*Targets*.cmake")
  foreach(f IN LISTS target_files)
    file(STRINGS "${f}" baked REGEX "INTERFACE_LINK_LIBRARIES .*/[^;\"]*\\.(so|a|dylib|lib)[;\"]")
    if(baked)
      message(FATAL_ERROR "${f} exports an absolute library path:\n${baked}")
    endif()
  endforeach()
  # Only the moved prefix may satisfy find_package: no package registry, no system-wide hyperadapt.
  list(APPEND consumer_args "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix" -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON
       -DCMAKE_FIND_USE_INSTALL_PREFIX=OFF)
elseif(MODE STREQUAL "add_subdirectory")
  list(APPEND consumer_args "-DHYPERADAPT_SOURCE_DIR=${HYPERADAPT_SOURCE_DIR}")
else()
  message(FATAL_ERROR "run_consumer.cmake: MODE must be find_package or add_subdirectory, got '${MODE}'")
endif()

run("configure consumer" "${CMAKE_COMMAND}" -S "${CMAKE_CURRENT_LIST_DIR}" -B "${WORK_DIR}/build" -G "${GENERATOR}"
    "-DCMAKE_CXX_COMPILER=${CXX}" ${consumer_args})
if(MODE STREQUAL "find_package")
  string(FIND "${last_output}" "from ${WORK_DIR}/prefix/" pos)
  if(pos EQUAL -1)
    message(FATAL_ERROR "the consumer did not find hyperadapt in the moved install prefix:\n${last_output}")
  endif()
endif()
run("build consumer" "${CMAKE_COMMAND}" --build "${WORK_DIR}/build" --config ${CONFIG})

set(executables)
foreach(name consumer consumer_cblas)
  foreach(candidate "${WORK_DIR}/build/${name}" "${WORK_DIR}/build/${CONFIG}/${name}.exe" "${WORK_DIR}/build/${name}.exe")
    if(EXISTS "${candidate}")
      list(APPEND executables "${candidate}")
      break()
    endif()
  endforeach()
endforeach()
if(NOT executables)
  message(FATAL_ERROR "no consumer executable was built in ${WORK_DIR}/build")
endif()
foreach(exe IN LISTS executables)
  run("run ${exe}" "${exe}")
  message(STATUS "${last_output}")
endforeach()
