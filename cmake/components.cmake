# The optional components, each present when what it needs is found on this machine:
#   cluster::redis      a Redis client and subscriber (cluster/redis.hpp), on hiredis's RESP
#                       reader and formatter (Debian: libhiredis-dev), found through pkg-config;
#   cluster::http       HTTP/1.1 (cluster/http.hpp), on llhttp, Node's own parser: an installed
#                       llhttp CMake package (vcpkg's, Conan's), or else built here from the C
#                       sources Debian's node-llhttp ships;
#   cluster::websocket  RFC 6455 (cluster/websocket.hpp), on cluster::http and wslay's CMake
#                       package (Debian: libwslay-dev);
#   cluster::asio       the Asio bridge (cluster/asio.hpp): an asio::io_context on a worker's
#                       thread, connections handed to Asio sockets; on Boost.Asio's headers
#                       (Boost.System header-only), which libboost1.81-dev ships with Boost.Beast.
# scripts/install-deps.sh installs them. CLUSTER_HAS_REDIS, CLUSTER_HAS_HTTP,
# CLUSTER_HAS_WEBSOCKET and CLUSTER_HAS_ASIO say which are; CLUSTER_HAS_BEAST whether Boost.Beast
# is there for examples/beast_server and its benchmark; CLUSTER_REDIS_FROM and CLUSTER_HTTP_FROM
# how their dependency was found, which the installed package config does again
# (clusterConfig.cmake.in).
#
# CLUSTER_WITH_<COMPONENT> chooses: AUTO (the default) builds a component where its dependency
# is found; ON makes a missing one an error; OFF leaves the component out. A package manager
# (ports/cluster/portfile.cmake, conanfile.py) says ON or OFF, so that what a package holds
# does not depend on what else happens to be on the machine that built it.
foreach(component REDIS HTTP WEBSOCKET ASIO)
    set(CLUSTER_WITH_${component} AUTO CACHE STRING "Build cluster::${component}: AUTO (where its dependency is found), ON or OFF")
    set_property(CACHE CLUSTER_WITH_${component} PROPERTY STRINGS AUTO ON OFF)
    if(NOT CLUSTER_WITH_${component} MATCHES "^(AUTO|ON|OFF)$")
        message(FATAL_ERROR "CLUSTER_WITH_${component} is '${CLUSTER_WITH_${component}}': AUTO, ON or OFF")
    endif()
    set(CLUSTER_HAS_${component} OFF)
endforeach()
if(CLUSTER_WITH_WEBSOCKET STREQUAL "ON" AND CLUSTER_WITH_HTTP STREQUAL "OFF")
    message(FATAL_ERROR "CLUSTER_WITH_WEBSOCKET=ON needs cluster::http: CLUSTER_WITH_HTTP is OFF")
endif()

# A component whose dependency is missing: an error if it was asked for, a note otherwise.
function(cluster_component_missing component why)
    string(TOUPPER ${component} upper)
    if(CLUSTER_WITH_${upper} STREQUAL "ON")
        message(FATAL_ERROR "cluster: CLUSTER_WITH_${upper}=ON, but ${why}")
    endif()
    message(STATUS "cluster: ${why}, so cluster::${component} is not built")
endfunction()

# Boost.Asio is header-only, and Boost.System with it since Boost 1.69: cluster::asio links
# cluster, whose Boost::headers and Threads::Threads are all Asio needs. Its headers are looked
# for where Boost::headers points (Boost_INCLUDE_DIRS), which is the target's include path, and
# clusterConfig.cmake.in looks there again: a Boost may lack them (vcpkg's boost-asio is a port
# of its own). Boost.Beast, on Asio, is for examples/beast_server, its benchmark and
# docs/asio.md's program only.
set(CLUSTER_HAS_BEAST OFF)
if(NOT CLUSTER_WITH_ASIO STREQUAL "OFF")
    foreach(dir IN LISTS Boost_INCLUDE_DIRS)
        if(EXISTS "${dir}/boost/asio/io_context.hpp")
            set(CLUSTER_HAS_ASIO ON)
        endif()
        if(EXISTS "${dir}/boost/beast/core.hpp")
            set(CLUSTER_HAS_BEAST ON)
        endif()
    endforeach()
    if(CLUSTER_HAS_ASIO)
        add_library(cluster_asio INTERFACE)
        add_library(cluster::asio ALIAS cluster_asio)
        set_target_properties(cluster_asio PROPERTIES EXPORT_NAME asio)
        target_link_libraries(cluster_asio INTERFACE cluster)
        if(NOT CLUSTER_HAS_BEAST)
            message(STATUS "cluster: Boost.Beast not found, so examples/beast_server is not built")
        endif()
    else()
        cluster_component_missing(asio "Boost.Asio's headers are not in Boost's include directories (${Boost_INCLUDE_DIRS})")
    endif()
endif()

if(NOT CLUSTER_WITH_REDIS STREQUAL "OFF")
    find_package(PkgConfig QUIET)
    if(PkgConfig_FOUND)
        pkg_check_modules(cluster_hiredis QUIET IMPORTED_TARGET GLOBAL hiredis)
    endif()
    if(cluster_hiredis_FOUND)
        add_library(cluster_redis INTERFACE)
        add_library(cluster::redis ALIAS cluster_redis)
        set_target_properties(cluster_redis PROPERTIES EXPORT_NAME redis)
        target_link_libraries(cluster_redis INTERFACE cluster PkgConfig::cluster_hiredis)
        set(CLUSTER_HAS_REDIS ON)
    else()
        cluster_component_missing(redis "hiredis was not found through pkg-config (Debian: libhiredis-dev; scripts/install-deps.sh --test installs it)")
    endif()
endif()

# llhttp: its own CMake package names its target llhttp::llhttp_static or _shared (vcpkg's
# port), or llhttp::llhttp (Conan's); Debian has only the sources, built here as cluster::llhttp.
if(NOT CLUSTER_WITH_HTTP STREQUAL "OFF")
    find_package(llhttp CONFIG QUIET)
    foreach(target llhttp::llhttp llhttp::llhttp_static llhttp::llhttp_shared)
        if(TARGET ${target})
            set(CLUSTER_HTTP_FROM ${target})
            break()
        endif()
    endforeach()
    if(NOT CLUSTER_HTTP_FROM)
        find_path(LLHTTP_INCLUDE_DIR llhttp.h PATHS /usr/share/include /usr/local/share/include PATH_SUFFIXES llhttp)
        set(llhttp_sources)
        foreach(part api http llhttp)
            find_file(LLHTTP_${part}_SOURCE ${part}.c PATHS /usr/share/llhttp /usr/local/share/llhttp NO_DEFAULT_PATH)
            list(APPEND llhttp_sources ${LLHTTP_${part}_SOURCE})
        endforeach()
        if(LLHTTP_INCLUDE_DIR AND LLHTTP_api_SOURCE AND LLHTTP_http_SOURCE AND LLHTTP_llhttp_SOURCE)
            enable_language(C)
            # Not our code: built without the project's warnings. Optimised whatever the build
            # type: examples/http_server is measured against nginx (benchmarks/http_bench.sh).
            add_library(cluster_llhttp STATIC ${llhttp_sources})
            set_target_properties(cluster_llhttp PROPERTIES EXPORT_NAME llhttp POSITION_INDEPENDENT_CODE ON)
            target_include_directories(cluster_llhttp SYSTEM PUBLIC $<BUILD_INTERFACE:${LLHTTP_INCLUDE_DIR}>
                                                                    $<INSTALL_INTERFACE:${LLHTTP_INCLUDE_DIR}>)
            target_compile_options(cluster_llhttp PRIVATE -O2)
            set(CLUSTER_HTTP_FROM sources)
        endif()
    endif()
    if(CLUSTER_HTTP_FROM)
        add_library(cluster_http INTERFACE)
        add_library(cluster::http ALIAS cluster_http)
        set_target_properties(cluster_http PROPERTIES EXPORT_NAME http)
        if(CLUSTER_HTTP_FROM STREQUAL "sources")
            target_link_libraries(cluster_http INTERFACE cluster cluster_llhttp)
        else()
            target_link_libraries(cluster_http INTERFACE cluster ${CLUSTER_HTTP_FROM})
        endif()
        set(CLUSTER_HAS_HTTP ON)
    else()
        cluster_component_missing(http "llhttp was found neither as a CMake package nor as node-llhttp's sources (scripts/install-deps.sh installs them)")
    endif()
endif()

# wslay's CMake package names its target wslay (static, and Debian's shared one) or wslay_shared.
if(NOT CLUSTER_WITH_WEBSOCKET STREQUAL "OFF")
    if(CLUSTER_HAS_HTTP)
        find_package(wslay CONFIG QUIET)
    endif()
    if(NOT CLUSTER_HAS_HTTP)
        cluster_component_missing(websocket "cluster::http, which it builds on, is not built")
    elseif(TARGET wslay OR TARGET wslay_shared)
        add_library(cluster_websocket INTERFACE)
        add_library(cluster::websocket ALIAS cluster_websocket)
        set_target_properties(cluster_websocket PROPERTIES EXPORT_NAME websocket)
        if(TARGET wslay)
            target_link_libraries(cluster_websocket INTERFACE cluster_http wslay)
        else()
            target_link_libraries(cluster_websocket INTERFACE cluster_http wslay_shared)
        endif()
        set(CLUSTER_HAS_WEBSOCKET ON)
    else()
        cluster_component_missing(websocket "wslay's CMake package was not found (Debian: libwslay-dev; scripts/install-deps.sh installs it)")
    endif()
endif()
