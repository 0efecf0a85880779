# FindLibtar
# ----------
# Locates libtar, which ships neither a pkg-config file nor a CMake package on Debian.
#
# Result variables:  Libtar_FOUND, Libtar_INCLUDE_DIRS, Libtar_LIBRARIES
# Imported target:   Libtar::Libtar

find_path(Libtar_INCLUDE_DIR NAMES libtar.h)
find_library(Libtar_LIBRARY NAMES tar libtar)

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Libtar
  REQUIRED_VARS Libtar_LIBRARY Libtar_INCLUDE_DIR)

if(Libtar_FOUND)
  set(Libtar_INCLUDE_DIRS ${Libtar_INCLUDE_DIR})
  set(Libtar_LIBRARIES ${Libtar_LIBRARY})
  if(NOT TARGET Libtar::Libtar)
    add_library(Libtar::Libtar UNKNOWN IMPORTED)
    set_target_properties(Libtar::Libtar PROPERTIES
      IMPORTED_LOCATION "${Libtar_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${Libtar_INCLUDE_DIR}")
  endif()
endif()
mark_as_advanced(Libtar_INCLUDE_DIR Libtar_LIBRARY)
