# The optional Redis component, cluster::redis: the headers of include/cluster/redis/ with
# hiredis (Debian: libhiredis-dev), found through pkg-config. Without hiredis it is absent,
# and so are its tests and benchmark; the rest of the library does not need it.
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
    pkg_check_modules(cluster_hiredis QUIET IMPORTED_TARGET GLOBAL hiredis)
endif()
if(NOT cluster_hiredis_FOUND)
    message(STATUS "cluster: hiredis not found, so cluster::redis is off (Debian: libhiredis-dev)")
    return()
endif()

add_library(cluster_redis INTERFACE)
add_library(cluster::redis ALIAS cluster_redis)
set_target_properties(cluster_redis PROPERTIES EXPORT_NAME redis)
target_link_libraries(cluster_redis INTERFACE cluster PkgConfig::cluster_hiredis)

if(CLUSTER_INSTALL)
    # Its own export set: clusterConfig.cmake loads it only where hiredis is found again.
    install(TARGETS cluster_redis EXPORT clusterRedisTargets)
    install(EXPORT clusterRedisTargets NAMESPACE cluster:: DESTINATION "${CLUSTER_CMAKE_DIR}")
endif()
