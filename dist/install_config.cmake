# Included at install time by dist/CMakeLists.txt: installs the default configs
# and the systemd units for the prefix of this install (CMAKE_INSTALL_PREFIX as
# cmake --install --prefix or CPack set it), not the configure-time prefix.
# Inputs: ZTSEG_DIST_DIR, ZTSEG_{SYSCONFDIR,SBINDIR,DOCDIR}_REL (GNUInstallDirs'
# relative dirs), ZTSEG_SYSTEMD_UNIT_DIR (the unit directory for /usr),
# ZTSEG_UNIT_BUILD_DIR (where the configured units are written first).

set(prefix "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/+$" "" prefix "${prefix}")

# GNUInstallDirs' special case, at install time: /usr (and /) keep their
# configuration in /etc, /opt/<x> in /etc/opt/<x>.
if(IS_ABSOLUTE "${ZTSEG_SYSCONFDIR_REL}")
  set(CMAKE_INSTALL_FULL_SYSCONFDIR "${ZTSEG_SYSCONFDIR_REL}")
elseif(prefix STREQUAL "/usr" OR prefix STREQUAL "")
  set(CMAKE_INSTALL_FULL_SYSCONFDIR "/${ZTSEG_SYSCONFDIR_REL}")
elseif(prefix MATCHES "^/opt/")
  set(CMAKE_INSTALL_FULL_SYSCONFDIR "/${ZTSEG_SYSCONFDIR_REL}${prefix}")
else()
  set(CMAKE_INSTALL_FULL_SYSCONFDIR "${prefix}/${ZTSEG_SYSCONFDIR_REL}")
endif()
foreach(dir SBINDIR DOCDIR)
  if(IS_ABSOLUTE "${ZTSEG_${dir}_REL}")
    set(CMAKE_INSTALL_FULL_${dir} "${ZTSEG_${dir}_REL}")
  else()
    set(CMAKE_INSTALL_FULL_${dir} "${prefix}/${ZTSEG_${dir}_REL}")
  endif()
endforeach()
if(prefix STREQUAL "/usr")
  set(unit_dir "${ZTSEG_SYSTEMD_UNIT_DIR}")
else()
  set(unit_dir "${prefix}/lib/systemd/system")
endif()

# Configs: the commented defaults, 0644 (they hold no secrets; keys and
# certificates they name are separate files). Debian conffiles in the package.
file(INSTALL "${ZTSEG_DIST_DIR}/ztsegd.yaml" "${ZTSEG_DIST_DIR}/ztseg-controller.yaml"
  DESTINATION "${CMAKE_INSTALL_FULL_SYSCONFDIR}/ztseg"
  FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

# Units: the templates with this install's paths. (file(INSTALL) adds DESTDIR itself.)
foreach(unit ztsegd.service ztseg-controller.service)
  set(out "${ZTSEG_UNIT_BUILD_DIR}/${unit}")
  configure_file("${ZTSEG_DIST_DIR}/${unit}.in" "${out}" @ONLY)
  file(INSTALL "${out}" DESTINATION "${unit_dir}"
    FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endforeach()
