# hyperadapt_find_cblas(<found-var>): finds a CBLAS header and library (OpenBLAS preferred, then BLIS,
# then any libcblas/libblas that carries cblas_sgemm). Sets HYPERADAPT_CBLAS_LIBRARY and
# HYPERADAPT_CBLAS_INCLUDE_DIR in the caller's scope. HYPERADAPT_CBLAS_LIBRARY may be preset to choose.
function(hyperadapt_find_cblas found_var)
  find_path(HYPERADAPT_CBLAS_INCLUDE_DIR cblas.h
    PATH_SUFFIXES openblas x86_64-linux-gnu aarch64-linux-gnu x86_64-linux-gnu/openblas-pthread blis)
  if(NOT HYPERADAPT_CBLAS_LIBRARY)
    # Debian's OpenMP build of OpenBLAS shares libgomp's thread pool with hyperadapt's own loops; the
    # default pthread build would start a second pool and oversubscribe the cores.
    find_library(HYPERADAPT_CBLAS_LIBRARY NAMES libopenblas.so.0
      PATHS /usr/lib/x86_64-linux-gnu/openblas-openmp /usr/lib/aarch64-linux-gnu/openblas-openmp NO_DEFAULT_PATH)
  endif()
  if(NOT HYPERADAPT_CBLAS_LIBRARY)
    find_library(HYPERADAPT_CBLAS_LIBRARY NAMES openblas blis cblas blas)
  endif()
  if(HYPERADAPT_CBLAS_INCLUDE_DIR AND HYPERADAPT_CBLAS_LIBRARY)
    set(${found_var} TRUE PARENT_SCOPE)
  else()
    set(${found_var} FALSE PARENT_SCOPE)
  endif()
  set(HYPERADAPT_CBLAS_LIBRARY "${HYPERADAPT_CBLAS_LIBRARY}" PARENT_SCOPE)
  set(HYPERADAPT_CBLAS_INCLUDE_DIR "${HYPERADAPT_CBLAS_INCLUDE_DIR}" PARENT_SCOPE)
endfunction()
