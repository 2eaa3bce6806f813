# `cmake --install BUILD [--prefix P]`: the library (libinfini.so and the SentencePiece shim it loads,
# side by side), the public headers, the `infini` command, and a CMake package, so that an outside
# project does find_package(infini) and links infini::infini (examples/cpp, docs/API.md).
include(CMakePackageConfigHelpers)

# The installed command finds libinfini.so in ../lib; the build tree keeps CMake's own RPATH.
set_target_properties(infini PROPERTIES INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
install(TARGETS infini_core EXPORT infiniTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS infini_spm LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS infini RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY include/infini DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/include/infini/version.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/infini)

set(INFINI_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/infini)
install(EXPORT infiniTargets NAMESPACE infini:: DESTINATION ${INFINI_CMAKE_DIR})
configure_package_config_file(cmake/infiniConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/infiniConfig.cmake
                              INSTALL_DESTINATION ${INFINI_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/infiniConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/infiniConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/infiniConfigVersion.cmake
        DESTINATION ${INFINI_CMAKE_DIR})
