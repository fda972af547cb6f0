# Install rules: headers, the exported cluster::cluster (header-only) and cluster::core (the
# compiled core) targets, a CMake package config (find_package(cluster CONFIG)) and pkg-config
# files. Each rule belongs to an install component, one per Debian package (cmake/package.cmake):
# dev (the library, and cluster::asio, whose Boost is the library's own), http, websocket and
# redis (the optional components, each with its headers).
include(CMakePackageConfigHelpers)

set(CLUSTER_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/cluster")

install(TARGETS cluster cluster_core EXPORT clusterTargets COMPONENT dev)
install(DIRECTORY include/cluster TYPE INCLUDE COMPONENT dev
        REGEX "/cluster/(http|websocket|redis|asio)(\\.hpp|/.*)?$" EXCLUDE)
install(EXPORT clusterTargets NAMESPACE cluster:: DESTINATION "${CLUSTER_CMAKE_DIR}" COMPONENT dev)
# The optional components, each in an export of its own: find_package(cluster COMPONENTS
# http websocket redis asio) finds those this install has (see clusterConfig.cmake.in).
foreach(component redis http websocket asio)
    string(TOUPPER ${component} upper)
    if(NOT CLUSTER_HAS_${upper})
        continue()
    endif()
    string(SUBSTRING ${upper} 0 1 first)
    string(SUBSTRING ${component} 1 -1 tail)
    # cluster::asio needs nothing libcluster-dev does not: it is in that package.
    set(package ${component})
    if(component STREQUAL "asio")
        set(package dev)
    endif()
    install(TARGETS cluster_${component} EXPORT cluster${first}${tail}Targets COMPONENT ${package})
    install(EXPORT cluster${first}${tail}Targets NAMESPACE cluster:: DESTINATION "${CLUSTER_CMAKE_DIR}" COMPONENT ${package})
    install(FILES include/cluster/${component}.hpp DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/cluster" COMPONENT ${package})
    install(DIRECTORY include/cluster/${component} DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/cluster" COMPONENT ${package})
endforeach()
if(CLUSTER_HTTP_FROM STREQUAL "sources")
    install(TARGETS cluster_llhttp EXPORT clusterHttpTargets COMPONENT http)
endif()

configure_package_config_file(cmake/clusterConfig.cmake.in
    "${PROJECT_BINARY_DIR}/clusterConfig.cmake" INSTALL_DESTINATION "${CLUSTER_CMAKE_DIR}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/clusterConfigVersion.cmake"
    COMPATIBILITY SameMinorVersion)
install(FILES
    "${PROJECT_BINARY_DIR}/clusterConfig.cmake"
    "${PROJECT_BINARY_DIR}/clusterConfigVersion.cmake"
    cmake/Findliburing.cmake
    DESTINATION "${CLUSTER_CMAKE_DIR}" COMPONENT dev)

# cluster.pc is the header-only library, the same for every architecture and build type;
# cluster-core.pc adds the compiled core, as cluster::core does (CLUSTER_SEPARATE_COMPILATION and
# libcluster_core.a), beside the library. Each names its prefix relative to where it is, so the
# install can move (cmake --install --prefix ...).
set(CLUSTER_CORE_PC_DIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
file(RELATIVE_PATH CLUSTER_CORE_PC_PREFIX "/prefix/${CLUSTER_CORE_PC_DIR}" "/prefix")
string(REGEX REPLACE "/$" "" CLUSTER_CORE_PC_PREFIX "${CLUSTER_CORE_PC_PREFIX}")
configure_file(cmake/cluster.pc.in "${PROJECT_BINARY_DIR}/cluster.pc" @ONLY)
configure_file(cmake/cluster-core.pc.in "${PROJECT_BINARY_DIR}/cluster-core.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/cluster.pc" DESTINATION "${CMAKE_INSTALL_DATADIR}/pkgconfig" COMPONENT dev)
install(FILES "${PROJECT_BINARY_DIR}/cluster-core.pc" DESTINATION "${CLUSTER_CORE_PC_DIR}" COMPONENT dev)
