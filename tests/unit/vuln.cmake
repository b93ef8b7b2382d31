# SPDX-License-Identifier: Apache-2.0
# Unit tests of collector/vuln/ (included from tests/unit/CMakeLists.txt
# after vigil_test is defined), and vigil-vercmp, which the property test
# against dpkg --compare-versions runs (tests/integration/).
vigil_test(test_version vigil_vuln)

add_executable(vigil-vercmp vigil_vercmp.c)
target_link_libraries(vigil-vercmp PRIVATE vigil_vuln)
set_target_properties(vigil-vercmp PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})

add_custom_target(vuln-unit-tests DEPENDS test_version vigil-vercmp)
add_dependencies(unit-tests vuln-unit-tests)
