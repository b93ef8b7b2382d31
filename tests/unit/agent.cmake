# SPDX-License-Identifier: Apache-2.0
# Unit tests of vigil-agent (included from tests/unit/CMakeLists.txt after
# vigil_test is defined). The agent's modules are in vigil_agent_core.
if(TARGET vigil_agent_core)
  vigil_test(test_agent_cgroup vigil_agent_core)
  vigil_test(test_agent_spool vigil_agent_core)
  vigil_test(test_agent_parsers vigil_agent_core)
  vigil_test(test_agent_scan vigil_agent_core)
  vigil_test(test_agent_facts vigil_agent_core)
  vigil_test(test_agent_pkgdb vigil_agent_core)
  vigil_test(test_agent_rootfs vigil_agent_core)
  vigil_test(test_agent_enroll vigil_agent_core)
  add_custom_target(agent-unit-tests DEPENDS test_agent_cgroup test_agent_spool
    test_agent_parsers test_agent_scan test_agent_facts test_agent_pkgdb test_agent_rootfs
    test_agent_enroll)
endif()
