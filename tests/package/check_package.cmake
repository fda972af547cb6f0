# Script mode: install BUILD_DIR into WORK_DIR/prefix and build CONSUMER_DIR against it, and the
# components' programs (components/) that COMPONENTS names.
cmake_minimum_required(VERSION 3.20)
file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")

include("${CMAKE_CURRENT_LIST_DIR}/support.cmake")

run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}")
foreach(f include/cluster/cluster.hpp lib/cmake/cluster/clusterConfig.cmake
          lib/cmake/cluster/clusterConfigVersion.cmake share/pkgconfig/cluster.pc)
    if(NOT EXISTS "${prefix}/${f}")
        message(FATAL_ERROR "install did not produce ${f}")
    endif()
endforeach()

# clusterctl, the control socket's client, comes with the library (tools/).
if(CLUSTERCTL)
    run("${prefix}/bin/clusterctl" --help)
    if(NOT last_output MATCHES "usage: clusterctl")
        message(FATAL_ERROR "the installed clusterctl --help printed: ${last_output}")
    endif()
endif()

build_consumer("${WORK_DIR}/consumer" "${prefix}" cluster::cluster)

set(ENV{PKG_CONFIG_PATH} "${prefix}/share/pkgconfig")
run(pkg-config --cflags --libs cluster)
string(STRIP "${last_output}" flags)
separate_arguments(flags UNIX_COMMAND "${flags}")
run(${CXX} ${consumer_cxx_flags} ${flags} "${CONSUMER_DIR}/main.cpp" "${CONSUMER_DIR}/answer.cpp" -o "${WORK_DIR}/consumer_pc" ${flags})
run("${WORK_DIR}/consumer_pc")
if(NOT last_output MATCHES "consumer: 42")
    message(FATAL_ERROR "pkg-config consumer printed: ${last_output}")
endif()
# cluster::asio has no module of its own: cluster's flags are all its headers need (Boost's are
# on the compiler's path, as Debian puts them).
list(REMOVE_ITEM COMPONENTS "")
if("asio" IN_LIST COMPONENTS)
    run(${CXX} ${consumer_cxx_flags} "${CMAKE_CURRENT_LIST_DIR}/components/asio.cpp" -o "${WORK_DIR}/asio_pc" ${flags})
    run("${WORK_DIR}/asio_pc")
    if(NOT last_output MATCHES "asio consumer: 42")
        message(FATAL_ERROR "pkg-config asio consumer printed: ${last_output}")
    endif()
endif()

# The optional components this build has (COMPONENTS): one consumer project, a program each.
if(COMPONENTS)
    build_components("${WORK_DIR}/components" "${prefix}" ${COMPONENTS})
endif()
message(STATUS "package consumer built and ran through find_package and pkg-config")
