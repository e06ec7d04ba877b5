# Install layout (FHS) and the Debian package. `cmake --install build --prefix /usr` lays out:
#   /usr/bin/lienthong, /usr/share/lienthong/{schemas,mappings,examples}, /usr/share/doc/lienthong,
#   /usr/share/man/man1/lienthong*.1 (generated from the --help texts), the systemd unit in
#   /usr/lib/systemd/system, and /etc/lienthong/lienthong.yaml (a conffile in the package).
# `cpack --config build/CPackConfig.cmake` builds lienthong_VERSION_ARCH.deb with its library
# dependencies found by dpkg-shlibdeps.
include(GNUInstallDirs)

install(TARGETS lienthong RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY schemas/ DESTINATION ${CMAKE_INSTALL_DATADIR}/lienthong/schemas)
install(DIRECTORY mappings/ DESTINATION ${CMAKE_INSTALL_DATADIR}/lienthong/mappings
        FILES_MATCHING PATTERN "*.yaml" PATTERN "*.xsl" PATTERN "*.json"
        PATTERN "shape" EXCLUDE PATTERN "steps" EXCLUDE PATTERN "cli" EXCLUDE PATTERN "bench" EXCLUDE)
install(DIRECTORY examples/ DESTINATION ${CMAKE_INSTALL_DATADIR}/lienthong/examples)
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})

# Manual pages from the binary's own help texts, so they cannot drift from it.
set(lt_man_dir "${CMAKE_BINARY_DIR}/man")
add_custom_command(OUTPUT "${lt_man_dir}/lienthong.1"
                   COMMAND ${CMAKE_COMMAND} -E make_directory "${lt_man_dir}"
                   COMMAND lienthong doc man "${lt_man_dir}"
                   DEPENDS lienthong COMMENT "manual pages from lienthong's --help texts")
add_custom_target(lt_man ALL DEPENDS "${lt_man_dir}/lienthong.1")
install(DIRECTORY "${lt_man_dir}/" DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 FILES_MATCHING PATTERN "*.1")

# The service: the unit under the prefix's lib/, the configuration under /etc whatever the prefix.
install(FILES packaging/lienthong.service DESTINATION lib/systemd/system)
install(FILES packaging/lienthong.yaml DESTINATION /etc/lienthong)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME lienthong)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "lienthong maintainers <lienthong@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "message-integration hub for Vietnamese e-government exchange")
set(CPACK_PACKAGE_DESCRIPTION
    "Connectors bring each system's traffic onto topics; routes validate, map, sign and verify XML and JSON\n"
    "between topics, exactly once, over Apache Kafka or an embedded SQLite transport.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# What the binary runs rather than links (dpkg-shlibdeps cannot see it): `lienthong demo` makes
# its throw-away PKI with the openssl command. The library dependencies are appended.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "openssl")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA "${CMAKE_CURRENT_SOURCE_DIR}/packaging/conffiles")
include(CPack)
