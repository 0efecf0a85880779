# cf_layer(<name> [USES <layer>...] [EXTERNAL <target>...])
#
# One layer of the library (ARCHITECTURE.md "Layers"): the sources in
# src/<name>/, compiled once into an object library and packed into the
# static library cf_<name>, which carries its allowed layers and external
# libraries as link dependencies. USES lists every layer the code may call,
# directly; nothing else reaches the link line.
#
# The static library alone would not stop a forbidden call: a program links
# every layer, so the symbol would be found anyway. Hence the check: the same
# objects are also linked into a shared library, cf_<name>_layercheck, with
# -Wl,--no-undefined against the allowed layers' check libraries and the
# allowed external libraries only. A call into a layer (or an external
# library) that is not declared is an undefined reference there, and the
# build stops. The check libraries are built by default and installed nowhere.
function(cf_layer name)
  cmake_parse_arguments(L "" "" "USES;EXTERNAL" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${name}/*.c)
  add_library(cf_${name}_obj OBJECT ${srcs})
  # Position-independent for the check library; without semantic
  # interposition the code is optimised as in an executable (calls between
  # functions of one file stay inlinable).
  set_target_properties(cf_${name}_obj PROPERTIES POSITION_INDEPENDENT_CODE ON)
  target_compile_options(cf_${name}_obj PRIVATE -fno-semantic-interposition)
  target_include_directories(cf_${name}_obj
    PUBLIC ${PROJECT_SOURCE_DIR}/include ${PROJECT_BINARY_DIR}/include
    PRIVATE ${PROJECT_SOURCE_DIR}/src/${name})
  # Usage requirements (include directories) of the external libraries only.
  target_link_libraries(cf_${name}_obj PUBLIC ${L_EXTERNAL})

  add_library(cf_${name} STATIC $<TARGET_OBJECTS:cf_${name}_obj>)
  target_include_directories(cf_${name} PUBLIC ${PROJECT_SOURCE_DIR}/include ${PROJECT_BINARY_DIR}/include)
  set(deps)
  set(checkdeps)
  foreach(u ${L_USES})
    # A layer may also use the private headers of the layers below it.
    target_include_directories(cf_${name}_obj PRIVATE ${PROJECT_SOURCE_DIR}/src/${u})
    list(APPEND deps cf_${u})
    list(APPEND checkdeps cf_${u}_layercheck)
  endforeach()
  target_link_libraries(cf_${name} PUBLIC ${deps} ${L_EXTERNAL})

  add_library(cf_${name}_layercheck SHARED $<TARGET_OBJECTS:cf_${name}_obj>)
  target_link_libraries(cf_${name}_layercheck PRIVATE ${checkdeps} ${L_EXTERNAL})
  # Clang links no sanitizer runtime into shared libraries, so under
  # CF_SANITIZE its instrumentation would be undefined there: no check then
  # (GCC's sanitizer builds keep it).
  if(NOT (CF_SANITIZE AND CMAKE_C_COMPILER_ID MATCHES "Clang"))
    target_link_options(cf_${name}_layercheck PRIVATE -Wl,--no-undefined)
  endif()
  set_target_properties(cf_${name}_layercheck PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/layercheck)
endfunction()
