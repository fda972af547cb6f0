# vcpkg's port of cluster, as an overlay port (vcpkg install cluster --overlay-ports=<checkout>/ports):
# it builds the checkout it is in, two folders up, with the features as CLUSTER_WITH_<COMPONENT>
# (cmake/components.cmake). tests/package/check_vcpkg_port.cmake runs it with stand-ins for vcpkg.

# cluster::core is a static library whatever the triplet asks for.
vcpkg_check_linkage(ONLY_STATIC_LIBRARY)

set(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../..")

vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
    FEATURES
        asio CLUSTER_WITH_ASIO
        http CLUSTER_WITH_HTTP
        websocket CLUSTER_WITH_WEBSOCKET
        redis CLUSTER_WITH_REDIS
        tools CLUSTER_BUILD_TOOLS
)
# cluster::redis finds hiredis through pkg-config.
set(pkgconfig_option)
if("redis" IN_LIST FEATURES)
    vcpkg_find_acquire_program(PKGCONFIG)
    set(pkgconfig_option "-DPKG_CONFIG_EXECUTABLE=${PKGCONFIG}")
endif()

vcpkg_cmake_configure(
    SOURCE_PATH "${SOURCE_PATH}"
    OPTIONS
        ${FEATURE_OPTIONS}
        ${pkgconfig_option}
        -DCLUSTER_INSTALL=ON
        -DCLUSTER_BUILD_TESTS=OFF
        -DCLUSTER_BUILD_EXAMPLES=OFF
        -DCLUSTER_BUILD_BENCHMARKS=OFF
    # clusterctl is a release program only.
    OPTIONS_DEBUG
        -DCLUSTER_BUILD_TOOLS=OFF
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(CONFIG_PATH lib/cmake/cluster)
vcpkg_fixup_pkgconfig()
if("tools" IN_LIST FEATURES)
    vcpkg_copy_tools(TOOL_NAMES clusterctl AUTO_CLEAN)
endif()

file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/debug/include" "${CURRENT_PACKAGES_DIR}/debug/share")
file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
