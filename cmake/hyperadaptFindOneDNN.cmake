# hyperadapt_find_onednn(<found-var>): finds oneDNN's C++ header and library (Debian: libdnnl-dev). Sets
# HYPERADAPT_ONEDNN_LIBRARY and HYPERADAPT_ONEDNN_INCLUDE_DIR in the caller's scope; either may be preset.
# Not find_package(dnnl): Debian's dnnl-config.cmake requires OpenCL for its GPU runtime, which
# hyperadapt's CPU products never touch.
function(hyperadapt_find_onednn found_var)
  find_path(HYPERADAPT_ONEDNN_INCLUDE_DIR oneapi/dnnl/dnnl.hpp)
  find_library(HYPERADAPT_ONEDNN_LIBRARY NAMES dnnl)
  if(HYPERADAPT_ONEDNN_INCLUDE_DIR AND HYPERADAPT_ONEDNN_LIBRARY)
    set(${found_var} TRUE PARENT_SCOPE)
  else()
    set(${found_var} FALSE PARENT_SCOPE)
  endif()
  set(HYPERADAPT_ONEDNN_LIBRARY "${HYPERADAPT_ONEDNN_LIBRARY}" PARENT_SCOPE)
  set(HYPERADAPT_ONEDNN_INCLUDE_DIR "${HYPERADAPT_ONEDNN_INCLUDE_DIR}" PARENT_SCOPE)
endfunction()
