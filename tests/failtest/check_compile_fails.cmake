# Compile-fail check, run as `cmake -DCXX=<compiler> -DSOURCE=<file.cpp> -DINCLUDES=<dir|dir|...> -P <this>`.
#
# SOURCE must compile as it is, and must fail to compile with -DHYPERADAPT_FAILTEST, printing the text of
# its "// expected-error: <text>" line. Compiling the control variant first shows that the failure comes
# from the construct under test, not from the flags or a broken header.
foreach(var CXX SOURCE INCLUDES)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_compile_fails.cmake: -D${var}=... is required")
  endif()
endforeach()

file(STRINGS "${SOURCE}" expect_line REGEX "^// expected-error: " LIMIT_COUNT 1)
if(NOT expect_line)
  message(FATAL_ERROR "${SOURCE}: no '// expected-error: <text>' line")
endif()
string(REGEX REPLACE "^// expected-error: " "" expected "${expect_line}")

string(REPLACE "|" ";" include_dirs "${INCLUDES}")
set(flags -std=c++20 -fsyntax-only -fdiagnostics-color=never)
foreach(dir IN LISTS include_dirs)
  if(dir)
    list(APPEND flags "-I${dir}")
  endif()
endforeach()

execute_process(COMMAND "${CXX}" ${flags} "${SOURCE}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "control variant of ${SOURCE} (without HYPERADAPT_FAILTEST) does not compile:\n${out}")
endif()

execute_process(COMMAND "${CXX}" ${flags} -DHYPERADAPT_FAILTEST "${SOURCE}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled with HYPERADAPT_FAILTEST but must not")
endif()
string(FIND "${out}" "${expected}" pos)
if(pos EQUAL -1)
  message(FATAL_ERROR "${SOURCE} failed to compile, but the output lacks the expected message\n"
                      "  expected: ${expected}\n  compiler output:\n${out}")
endif()
message(STATUS "${SOURCE}: fails to compile with the expected message")
