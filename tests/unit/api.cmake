# SPDX-License-Identifier: Apache-2.0
# Unit tests of the collector's query API parsers (included from
# tests/unit/CMakeLists.txt after vigil_test is defined).
vigil_test(test_api_util vigil_http)
vigil_test(test_ratelimit vigil_common)
add_custom_target(api-unit-tests DEPENDS test_api_util test_ratelimit)
add_dependencies(unit-tests api-unit-tests)
