# The Debian packages `cpack -G DEB` makes from a build, one per install component: libcluster-dev
# (the library, and cluster::asio where it is built: its Boost is the library's own),
# libcluster-{http,websocket,redis}-dev (the optional components this build has)
# and clusterctl. Each optional component is a package of its own so that its Depends can be
# hard ones: apt-get install libcluster-websocket-dev brings wslay and llhttp, and a machine
# without them does not have the component, rather than one that find_package cannot load.
set(CLUSTER_DEB_MAINTAINER "cluster's authors <cluster@invalid>" CACHE STRING
    "The Maintainer field of the Debian packages: whoever builds and publishes them")

set(CPACK_PACKAGE_NAME cluster)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${CLUSTER_DEB_MAINTAINER}")
# Each package's description opens with its own synopsis, under which CPack would otherwise put
# the project's description as every package's first line.
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "")
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
set(CPACK_COMPONENTS_ALL dev)

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libcluster-dev)
# Boost 1.81 is libboost1.81-dev in Debian 12, whose libboost-dev is 1.74; later releases' is newer.
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "liburing-dev (>= 2.3), libboost1.81-dev | libboost-dev (>= 1.81)")
set(CPACK_DEBIAN_DEV_PACKAGE_SUGGESTS "clusterctl")
# cluster::asio, where this build has it, is in libcluster-dev (cmake/install.cmake).
set(cluster_deb_asio "")
if(CLUSTER_HAS_ASIO)
    set(cluster_deb_asio "the Boost.Asio bridge (cluster::asio: find_package(cluster COMPONENTS
asio)), ")
endif()
set(CPACK_COMPONENT_DEV_DESCRIPTION "Node.js's cluster module for C++20
A primary process forks, supervises and feeds worker processes: typed
messages checked at compile time, io_uring-driven IPC, coroutine awaitables
for every event, and a supervisor that keeps a service up through crashes,
hangs and reloads.
This package has the headers (header-only: cluster::cluster, pkg-config
cluster), the compiled core (cluster::core, pkg-config cluster-core),
${cluster_deb_asio}and the CMake package: find_package(cluster).")

# The optional components: <component> <its Debian dependencies> <synopsis>. On Debian, llhttp
# is node-llhttp's sources, built into the package (cmake/components.cmake).
set(cluster_deb_components
    http "node-llhttp" "HTTP/1.1 server for cluster, on Node's llhttp"
    websocket "libwslay-dev" "WebSocket (RFC 6455) for cluster, on wslay"
    redis "libhiredis-dev, pkgconf | pkg-config" "Redis client and subscriber for cluster, on hiredis")
while(cluster_deb_components)
    list(POP_FRONT cluster_deb_components component depends synopsis)
    string(TOUPPER ${component} upper)
    if(NOT CLUSTER_HAS_${upper})
        continue()
    endif()
    list(APPEND CPACK_COMPONENTS_ALL ${component})
    set(CPACK_DEBIAN_${upper}_PACKAGE_NAME libcluster-${component}-dev)
    set(CPACK_DEBIAN_${upper}_PACKAGE_DEPENDS "${depends}")
    set(CPACK_COMPONENT_${upper}_DEPENDS dev)
    set(CPACK_COMPONENT_${upper}_DESCRIPTION "${synopsis}
The cluster::${component} component of cluster: its headers
(cluster/${component}.hpp) and its CMake targets, which
find_package(cluster COMPONENTS ${component}) finds.")
    string(APPEND CPACK_DEBIAN_DEV_PACKAGE_SUGGESTS ", libcluster-${component}-dev")
endwhile()
# cluster::websocket builds on cluster::http.
set(CPACK_COMPONENT_WEBSOCKET_DEPENDS http)

if(CLUSTER_BUILD_TOOLS)
    list(APPEND CPACK_COMPONENTS_ALL clusterctl)
endif()
set(CPACK_DEBIAN_CLUSTERCTL_PACKAGE_NAME clusterctl)
set(CPACK_DEBIAN_CLUSTERCTL_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_CLUSTERCTL_PACKAGE_SHLIBDEPS ON)
set(CPACK_COMPONENT_CLUSTERCTL_DESCRIPTION "client of a cluster primary's control socket
Shows a running cluster's workers and their metrics (clusterctl status,
clusterctl top), and reloads, scales or stops it: one clusterctl serves
every program built on cluster.")

# Debian wants each package's copyright in its own /usr/share/doc/<package>/; only the packages
# install these (EXCLUDE_FROM_ALL: a plain cmake --install leaves them out).
foreach(component IN LISTS CPACK_COMPONENTS_ALL)
    string(TOUPPER ${component} upper)
    install(FILES LICENSE DESTINATION "${CMAKE_INSTALL_DATAROOTDIR}/doc/${CPACK_DEBIAN_${upper}_PACKAGE_NAME}"
            RENAME copyright COMPONENT ${component} EXCLUDE_FROM_ALL)
endforeach()

include(CPack)
