# SPDX-License-Identifier: Apache-2.0
# Unit tests of collector/enroll/ (included from tests/unit/CMakeLists.txt
# after vigil_test is defined): join tokens, identities, the issuing CA.
vigil_test(test_enroll_token vigil_enroll)
vigil_test(test_enroll_identity vigil_enroll)
vigil_test(test_enroll_issuer vigil_enroll)
add_custom_target(enroll-unit-tests DEPENDS test_enroll_token test_enroll_identity
  test_enroll_issuer)
add_dependencies(unit-tests enroll-unit-tests)
