# SPDX-License-Identifier: Apache-2.0
# libFuzzer target of the collector's query API parsers (included from
# tests/fuzz/CMakeLists.txt after vigil_fuzz is defined).
vigil_fuzz(fuzz_api_query
  SOURCES ${CMAKE_SOURCE_DIR}/collector/http/api_util.c ${CMAKE_SOURCE_DIR}/collector/http/auth.c
          ${CMAKE_SOURCE_DIR}/common/utf8.c ${CMAKE_SOURCE_DIR}/common/vtime.c
  LIBS OpenSSL::Crypto)
add_dependencies(fuzz-targets fuzz_api_query)

# The request-head scanner alone, fed in pieces the input chooses.
vigil_fuzz(fuzz_http_head
  SOURCES ${CMAKE_SOURCE_DIR}/collector/http/api_util.c ${CMAKE_SOURCE_DIR}/common/utf8.c
          ${CMAKE_SOURCE_DIR}/common/vtime.c)
add_dependencies(fuzz-targets fuzz_http_head)
