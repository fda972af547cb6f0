# Install rules: headers, the exported cluster::cluster (header-only) and cluster::core (the
# compiled core) targets, a CMake package config (find_package(cluster CONFIG)) and a
# pkg-config file.
include(CMakePackageConfigHelpers)

set(CLUSTER_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/cluster")

install(TARGETS cluster cluster_core EXPORT clusterTargets)
install(DIRECTORY include/cluster TYPE INCLUDE)
install(EXPORT clusterTargets NAMESPACE cluster:: DESTINATION "${CLUSTER_CMAKE_DIR}")
# The optional components, each in an export of its own: find_package(cluster COMPONENTS
# http websocket redis) finds those this install has (see clusterConfig.cmake.in).
if(CLUSTER_HAS_REDIS)
    install(TARGETS cluster_redis EXPORT clusterRedisTargets)
    install(EXPORT clusterRedisTargets NAMESPACE cluster:: DESTINATION "${CLUSTER_CMAKE_DIR}")
endif()
if(CLUSTER_HAS_HTTP)
    install(TARGETS cluster_llhttp cluster_http EXPORT clusterHttpTargets)
    install(EXPORT clusterHttpTargets NAMESPACE cluster:: DESTINATION "${CLUSTER_CMAKE_DIR}")
endif()
if(CLUSTER_HAS_WEBSOCKET)
    install(TARGETS cluster_websocket EXPORT clusterWebsocketTargets)
    install(EXPORT clusterWebsocketTargets NAMESPACE cluster:: DESTINATION "${CLUSTER_CMAKE_DIR}")
endif()

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
