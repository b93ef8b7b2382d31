# Unit tests of the collector's query API parsers (included from
# tests/unit/CMakeLists.txt after vigil_test is defined).
vigil_test(test_api_util vigil_http)
add_custom_target(api-unit-tests DEPENDS test_api_util)
add_dependencies(unit-tests api-unit-tests)
