# SPDX-License-Identifier: Apache-2.0
# Debian packages of the two daemons (CPack, DEB generator), included at the
# end of the top-level CMakeLists.txt:
#
#   cmake -S . -B build-pkg -DVIGIL_PACKAGE=ON
#   cmake --build build-pkg --target vigil-collector vigil-agent
#   (cd build-pkg && cpack -G DEB)      # vigil-collector_*.deb, vigil-agent_*.deb
#
# VIGIL_PACKAGE builds for installation: the collector's web_root defaults
# to /usr/share/vigil/web (collector/CMakeLists.txt), every target gets
# Debian's hardening flags (dpkg-buildflags), and `make install` / cpack
# install only what was built (build the two daemons first).
# scripts/test-packages.sh builds, lints, installs, upgrades and purges them.
# Maintainer scripts, man pages and the copyright file: deploy/debian/.

option(VIGIL_PACKAGE "Build for Debian packages (cpack -G DEB)" OFF)
set(VIGIL_DEB_RELEASE "1" CACHE STRING "Debian revision of the packages (the -N in 0.1.0-N)")
set(VIGIL_DEB_MAINTAINER "Vigil developers <vigil@example.org>" CACHE STRING
    "Maintainer field of the packages")

if(NOT VIGIL_PACKAGE)
  return()
endif()

include(GNUInstallDirs)
set(pkg_src ${CMAKE_SOURCE_DIR}/deploy/debian)
set(pkg_gen ${CMAKE_BINARY_DIR}/debian)
file(MAKE_DIRECTORY ${pkg_gen})
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)
set(CMAKE_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS
    OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)

# --- hardening: Debian's build flags on every target of the tree -------------
# Targets exist by now, so the flags go on each one (CMAKE_C_FLAGS set here
# would miss the subdirectories, which are already configured).
function(vigil_pkg_targets out dir)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(sub IN LISTS subdirs)
    vigil_pkg_targets(sub_targets ${sub})
    list(APPEND targets ${sub_targets})
  endforeach()
  set(${out} ${targets} PARENT_SCOPE)
endfunction()

find_program(DPKG_BUILDFLAGS dpkg-buildflags REQUIRED)
foreach(kind CFLAGS CPPFLAGS LDFLAGS)
  execute_process(
    COMMAND ${CMAKE_COMMAND} -E env DEB_BUILD_MAINT_OPTIONS=hardening=+all
            ${DPKG_BUILDFLAGS} --get ${kind}
    OUTPUT_VARIABLE flags OUTPUT_STRIP_TRAILING_WHITESPACE COMMAND_ERROR_IS_FATAL ANY)
  separate_arguments(flags UNIX_COMMAND "${flags}")
  # -g and -O come from the build type; -Wdate-time is harmless but noisy.
  list(FILTER flags EXCLUDE REGEX "^-(g|O[0-9s]?|Wdate-time)$")
  set(pkg_${kind} ${flags})
endforeach()
vigil_pkg_targets(all_targets ${CMAKE_SOURCE_DIR})
foreach(t IN LISTS all_targets)
  get_target_property(type ${t} TYPE)
  if(type MATCHES "^(STATIC_LIBRARY|OBJECT_LIBRARY|EXECUTABLE)$")
    target_compile_options(${t} PRIVATE ${pkg_CFLAGS} ${pkg_CPPFLAGS})
  endif()
  if(type STREQUAL "EXECUTABLE")
    target_link_options(${t} PRIVATE ${pkg_LDFLAGS})
  endif()
endforeach()

# --- generated files: changelog, man pages (gzip -9n, as Debian wants) --------
# (string(TIMESTAMP) honours SOURCE_DATE_EPOCH, for reproducible packages)
string(TIMESTAMP pkg_date "%a, %d %b %Y %H:%M:%S +0000" UTC)
set(pkg_version "${PROJECT_VERSION}-${VIGIL_DEB_RELEASE}")

function(vigil_pkg_gzip in out)
  execute_process(COMMAND gzip -9n -c ${in} OUTPUT_FILE ${out} COMMAND_ERROR_IS_FATAL ANY)
endfunction()

foreach(pkg vigil-collector vigil-agent)
  file(WRITE ${pkg_gen}/${pkg}.changelog
       "${pkg} (${pkg_version}) stable; urgency=medium\n\n"
       "  * Package ${PROJECT_VERSION} of Vigil (Debian revision ${VIGIL_DEB_RELEASE}).\n\n"
       " -- ${VIGIL_DEB_MAINTAINER}  ${pkg_date}\n")
  vigil_pkg_gzip(${pkg_gen}/${pkg}.changelog ${pkg_gen}/${pkg}.changelog.Debian.gz)
  vigil_pkg_gzip(${pkg_src}/${pkg}.8 ${pkg_gen}/${pkg}.8.gz)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${pkg_src}/${pkg}.8)
  # conffiles cannot carry a comment, so it is written here
  string(REPLACE "vigil-" "" daemon ${pkg})
  file(WRITE ${pkg_gen}/${pkg}/conffiles "/etc/vigil/${daemon}.conf\n")
  foreach(script postinst prerm postrm)
    configure_file(${pkg_src}/${pkg}.${script} ${pkg_gen}/${pkg}/${script} COPYONLY
                   FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
                   GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
  endforeach()
endforeach()

# --- what each package installs -------------------------------------------------
foreach(daemon collector agent)
  set(pkg vigil-${daemon})
  install(TARGETS ${pkg} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT ${daemon})
  install(FILES ${CMAKE_SOURCE_DIR}/deploy/${daemon}.conf DESTINATION /etc/vigil
          COMPONENT ${daemon})
  install(FILES ${CMAKE_SOURCE_DIR}/deploy/${pkg}.service DESTINATION /lib/systemd/system
          COMPONENT ${daemon})
  install(PROGRAMS ${pkg_src}/check-config DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/${pkg}
          COMPONENT ${daemon})
  install(FILES ${pkg_gen}/${pkg}.8.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man8
          COMPONENT ${daemon})
  install(FILES ${pkg_src}/copyright DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${pkg}
          COMPONENT ${daemon})
  install(FILES ${pkg_gen}/${pkg}.changelog.Debian.gz DESTINATION
          ${CMAKE_INSTALL_DATAROOTDIR}/doc/${pkg} RENAME changelog.Debian.gz COMPONENT ${daemon})
  install(FILES ${pkg_src}/${pkg}.lintian-overrides DESTINATION
          ${CMAKE_INSTALL_DATAROOTDIR}/lintian/overrides RENAME ${pkg} COMPONENT ${daemon})
endforeach()
# The status page, as in the source tree (uPlot's LICENSE stays beside it).
install(DIRECTORY ${CMAKE_SOURCE_DIR}/web/ DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/vigil/web
        COMPONENT collector)
install(FILES ${CMAKE_SOURCE_DIR}/deploy/rules.yaml
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/vigil-collector/examples COMPONENT collector)

# --- CPack ------------------------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME vigil)
set(CPACK_PACKAGE_VENDOR Vigil)
set(CPACK_PACKAGE_CONTACT "${VIGIL_DEB_MAINTAINER}")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL collector agent)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE ${VIGIL_DEB_RELEASE})
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_COLLECTOR_PACKAGE_NAME vigil-collector)
# adduser: postinst makes the vigil user; the rest comes from dpkg-shlibdeps.
set(CPACK_DEBIAN_COLLECTOR_PACKAGE_DEPENDS adduser)
set(CPACK_DEBIAN_COLLECTOR_PACKAGE_SUGGESTS postgresql)
set(CPACK_DEBIAN_COLLECTOR_DESCRIPTION "Vigil collector: container security events into PostgreSQL
vigil-collector accepts Vigil agents over mutual TLS, stores their container
inventories and runtime events in PostgreSQL exactly once, judges them with
its rules, and serves the HTTPS query API and status page.")
set(CPACK_DEBIAN_COLLECTOR_PACKAGE_CONTROL_EXTRA
    ${pkg_gen}/vigil-collector/conffiles ${pkg_gen}/vigil-collector/postinst
    ${pkg_gen}/vigil-collector/prerm ${pkg_gen}/vigil-collector/postrm)

set(CPACK_DEBIAN_AGENT_PACKAGE_NAME vigil-agent)
set(CPACK_DEBIAN_AGENT_DESCRIPTION "Vigil agent: container inventory and runtime events of a node
vigil-agent runs on every node and ships its containers' inventory, security
settings, process executions and image package lists to Vigil collectors over
mutual TLS, through a disk spool that survives restarts and outages.")
set(CPACK_DEBIAN_AGENT_PACKAGE_CONTROL_EXTRA
    ${pkg_gen}/vigil-agent/conffiles ${pkg_gen}/vigil-agent/postinst
    ${pkg_gen}/vigil-agent/prerm ${pkg_gen}/vigil-agent/postrm)

include(CPack)
