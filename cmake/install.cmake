# Install rules: headers, the exported cluster::cluster (header-only) and cluster::core (the
# compiled core) targets, a CMake package config (find_package(cluster CONFIG)) and a
# pkg-config file.
include(CMakePackageConfigHelpers)

set(CLUSTER_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/cluster")

install(TARGETS cluster cluster_core EXPORT clusterTargets)
install(DIRECTORY include/cluster TYPE INCLUDE)
install(EXPORT clusterTargets NAMESPACE cluster:: DESTINATION "${CLUSTER_CMAKE_DIR}")

configure_package_config_file(cmake/clusterConfig.cmake.in
    "${PROJECT_BINARY_DIR}/clusterConfig.cmake" INSTALL_DESTINATION "${CLUSTER_CMAKE_DIR}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/clusterConfigVersion.cmake"
    COMPATIBILITY SameMinorVersion)
install(FILES
    "${PROJECT_BINARY_DIR}/clusterConfig.cmake"
    "${PROJECT_BINARY_DIR}/clusterConfigVersion.cmake"
    cmake/Findliburing.cmake
    DESTINATION "${CLUSTER_CMAKE_DIR}")

configure_file(cmake/cluster.pc.in "${PROJECT_BINARY_DIR}/cluster.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/cluster.pc" DESTINATION "${CMAKE_INSTALL_DATADIR}/pkgconfig")
