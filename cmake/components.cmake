# The optional components, each present when what it needs is found on this machine:
#   cluster::redis      a Redis client and subscriber (cluster/redis.hpp), on hiredis's RESP
#                       reader and formatter (Debian: libhiredis-dev), found through pkg-config;
#   cluster::http       HTTP/1.1 (cluster/http.hpp), on llhttp, Node's own parser, built here
#                       from the C sources Debian's node-llhttp ships;
#   cluster::websocket  RFC 6455 (cluster/websocket.hpp), on cluster::http and wslay
#                       (Debian: libwslay-dev);
#   cluster::asio       the Asio bridge (cluster/asio.hpp): an asio::io_context on a worker's
#                       thread, connections handed to Asio sockets; on Boost.Asio's headers
#                       (Boost.System header-only), which libboost1.81-dev ships with Boost.Beast.
# scripts/install-deps.sh installs them. CLUSTER_HAS_REDIS, CLUSTER_HAS_HTTP,
# CLUSTER_HAS_WEBSOCKET and CLUSTER_HAS_ASIO say which are; CLUSTER_HAS_BEAST whether
# Boost.Beast is there for examples/beast_server and its benchmark.
set(CLUSTER_HAS_REDIS OFF)
set(CLUSTER_HAS_HTTP OFF)
set(CLUSTER_HAS_WEBSOCKET OFF)
set(CLUSTER_HAS_ASIO OFF)
set(CLUSTER_HAS_BEAST OFF)

find_path(CLUSTER_ASIO_INCLUDE_DIR boost/asio/io_context.hpp HINTS ${Boost_INCLUDE_DIRS})
if(CLUSTER_ASIO_INCLUDE_DIR)
    add_library(cluster_asio INTERFACE)
    add_library(cluster::asio ALIAS cluster_asio)
    set_target_properties(cluster_asio PROPERTIES EXPORT_NAME asio)
    target_link_libraries(cluster_asio INTERFACE cluster)
    set(CLUSTER_HAS_ASIO ON)
    find_path(CLUSTER_BEAST_INCLUDE_DIR boost/beast/core.hpp HINTS ${Boost_INCLUDE_DIRS})
    if(CLUSTER_BEAST_INCLUDE_DIR)
        set(CLUSTER_HAS_BEAST ON)
    else()
        message(STATUS "cluster: Boost.Beast not found, so examples/beast_server is not built")
    endif()
else()
    message(STATUS "cluster: Boost.Asio not found, so cluster::asio is not built")
endif()

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
    message(STATUS "cluster: hiredis not found, so cluster::redis is not built (Debian: libhiredis-dev; scripts/install-deps.sh --test installs it)")
endif()

find_path(LLHTTP_INCLUDE_DIR llhttp.h PATHS /usr/share/include /usr/local/share/include PATH_SUFFIXES llhttp)
set(llhttp_sources)
foreach(part api http llhttp)
    find_file(LLHTTP_${part}_SOURCE ${part}.c PATHS /usr/share/llhttp /usr/local/share/llhttp NO_DEFAULT_PATH)
    list(APPEND llhttp_sources ${LLHTTP_${part}_SOURCE})
endforeach()
if(NOT (LLHTTP_INCLUDE_DIR AND LLHTTP_api_SOURCE AND LLHTTP_http_SOURCE AND LLHTTP_llhttp_SOURCE))
    message(STATUS "cluster: node-llhttp not found, so cluster::http and cluster::websocket are not built (scripts/install-deps.sh installs it)")
    return()
endif()
enable_language(C)
# Not our code: built without the project's warnings. Optimised whatever the build type:
# examples/http_server is measured against nginx (benchmarks/http_bench.sh).
add_library(cluster_llhttp STATIC ${llhttp_sources})
set_target_properties(cluster_llhttp PROPERTIES EXPORT_NAME llhttp POSITION_INDEPENDENT_CODE ON)
target_include_directories(cluster_llhttp SYSTEM PUBLIC $<BUILD_INTERFACE:${LLHTTP_INCLUDE_DIR}>
                                                        $<INSTALL_INTERFACE:${LLHTTP_INCLUDE_DIR}>)
target_compile_options(cluster_llhttp PRIVATE -O2)

add_library(cluster_http INTERFACE)
add_library(cluster::http ALIAS cluster_http)
set_target_properties(cluster_http PROPERTIES EXPORT_NAME http)
target_link_libraries(cluster_http INTERFACE cluster cluster_llhttp)
set(CLUSTER_HAS_HTTP ON)

find_path(WSLAY_INCLUDE_DIR wslay/wslay.h)
find_library(WSLAY_LIBRARY wslay)
if(NOT (WSLAY_INCLUDE_DIR AND WSLAY_LIBRARY))
    message(STATUS "cluster: wslay not found, so cluster::websocket is not built (Debian: libwslay-dev; scripts/install-deps.sh installs it)")
    return()
endif()
add_library(cluster_websocket INTERFACE)
add_library(cluster::websocket ALIAS cluster_websocket)
set_target_properties(cluster_websocket PROPERTIES EXPORT_NAME websocket)
target_include_directories(cluster_websocket SYSTEM INTERFACE ${WSLAY_INCLUDE_DIR})
target_link_libraries(cluster_websocket INTERFACE cluster_http ${WSLAY_LIBRARY})
set(CLUSTER_HAS_WEBSOCKET ON)
