# SPDX-License-Identifier: Apache-2.0
# libFuzzer targets of vigil-agent (included from tests/fuzz/CMakeLists.txt
# after vigil_fuzz is defined). Each compiles the agent code it exercises.
set(AGENT_DIR ${CMAKE_SOURCE_DIR}/agent)
set(AGENT_FUZZ_COMMON ${AGENT_DIR}/text.c ${AGENT_DIR}/ctr.c ${CMAKE_SOURCE_DIR}/common/utf8.c
  ${CMAKE_SOURCE_DIR}/common/vtime.c
  ${CMAKE_SOURCE_DIR}/common/log.c ${FUZZ_PROTO_SRCS})

vigil_fuzz(fuzz_agent_cgroup
  SOURCES ${AGENT_FUZZ_COMMON} ${AGENT_DIR}/cgroup.c ${AGENT_DIR}/procfs.c
          ${AGENT_DIR}/proc_connector.c
  LIBS PkgConfig::PROTOBUFC PkgConfig::LIBEVENT)
vigil_fuzz(fuzz_agent_json
  SOURCES ${AGENT_FUZZ_COMMON} ${AGENT_DIR}/cgroup.c ${AGENT_DIR}/oci.c
          ${AGENT_DIR}/docker_api.c ${AGENT_DIR}/docker_json.c
          ${AGENT_DIR}/httpc.c
  LIBS PkgConfig::PROTOBUFC PkgConfig::JANSSON PkgConfig::LIBEVENT)
vigil_fuzz(fuzz_agent_facts
  SOURCES ${AGENT_FUZZ_COMMON} ${AGENT_DIR}/cgroup.c ${AGENT_DIR}/procfs.c
          ${AGENT_DIR}/kfacts.c
  LIBS PkgConfig::PROTOBUFC PkgConfig::LIBEVENT)
vigil_fuzz(fuzz_agent_httpc
  SOURCES ${AGENT_DIR}/httpc.c
  LIBS)
vigil_fuzz(fuzz_agent_pkgdb
  SOURCES ${AGENT_DIR}/pkgdb.c ${AGENT_DIR}/pkgdb_rpm.c ${AGENT_DIR}/text.c
          ${CMAKE_SOURCE_DIR}/common/utf8.c
  LIBS)
foreach(t fuzz_agent_cgroup fuzz_agent_json fuzz_agent_httpc fuzz_agent_facts fuzz_agent_pkgdb)
  target_include_directories(${t} PRIVATE ${AGENT_DIR})
endforeach()
add_custom_target(agent-fuzz-targets DEPENDS fuzz_agent_cgroup fuzz_agent_json fuzz_agent_httpc
  fuzz_agent_facts fuzz_agent_pkgdb)
