# hyperadapt::text: the WordPiece tokenizer (include/hyperadapt/text), which needs utf8proc for Unicode
# categories, lower-casing and normalization (Debian/Ubuntu: libutf8proc-dev). Included from the root
# CMakeLists.txt after the hyperadapt target; without utf8proc the target is simply not defined.
find_path(HYPERADAPT_UTF8PROC_INCLUDE_DIR utf8proc.h)
find_library(HYPERADAPT_UTF8PROC_LIBRARY NAMES utf8proc)
if(HYPERADAPT_UTF8PROC_INCLUDE_DIR AND HYPERADAPT_UTF8PROC_LIBRARY)
  add_library(hyperadapt_text INTERFACE)
  add_library(hyperadapt::text ALIAS hyperadapt_text)
  set_target_properties(hyperadapt_text PROPERTIES EXPORT_NAME text)
  # The installed target names the library rather than this machine's path to it, so the consumer's linker
  # finds the consumer's own utf8proc.
  target_link_libraries(hyperadapt_text INTERFACE hyperadapt
    $<BUILD_INTERFACE:${HYPERADAPT_UTF8PROC_LIBRARY}> $<INSTALL_INTERFACE:utf8proc>)
  target_include_directories(hyperadapt_text INTERFACE $<BUILD_INTERFACE:${HYPERADAPT_UTF8PROC_INCLUDE_DIR}>)
  list(APPEND _hyperadapt_targets hyperadapt_text)
else()
  message(STATUS "hyperadapt: utf8proc not found, hyperadapt::text (the WordPiece tokenizer) is not available")
endif()
