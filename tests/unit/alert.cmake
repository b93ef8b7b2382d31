# SPDX-License-Identifier: Apache-2.0
# Unit tests of alert forwarding's payloads and parsers (included from
# tests/unit/CMakeLists.txt after vigil_test is defined).
vigil_test(test_alert_payload vigil_alert)
add_custom_target(alert-unit-tests DEPENDS test_alert_payload)
add_dependencies(unit-tests alert-unit-tests)
