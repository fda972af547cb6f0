# Script mode: install BUILD_DIR into WORK_DIR/prefix and build CONSUMER_DIR against it.
file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")

function(run)
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
    endif()
    set(last_output "${out}" PARENT_SCOPE)
endfunction()

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

run(${CMAKE_COMMAND} -S "${CONSUMER_DIR}" -B "${WORK_DIR}/consumer"
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CXX})
run(${CMAKE_COMMAND} --build "${WORK_DIR}/consumer")
run("${WORK_DIR}/consumer/consumer")
if(NOT last_output MATCHES "consumer: 42")
    message(FATAL_ERROR "consumer printed: ${last_output}")
endif()

set(ENV{PKG_CONFIG_PATH} "${prefix}/share/pkgconfig")
run(pkg-config --cflags --libs cluster)
string(STRIP "${last_output}" flags)
separate_arguments(flags UNIX_COMMAND "${flags}")
run(${CXX} ${flags} "${CONSUMER_DIR}/main.cpp" "${CONSUMER_DIR}/answer.cpp" -o "${WORK_DIR}/consumer_pc" ${flags})
run("${WORK_DIR}/consumer_pc")
if(NOT last_output MATCHES "consumer: 42")
    message(FATAL_ERROR "pkg-config consumer printed: ${last_output}")
endif()

# The optional components this build has (COMPONENTS): one consumer project, a program each.
list(REMOVE_ITEM COMPONENTS "")
if(COMPONENTS)
    # Comma-separated: run() takes its arguments as one list, which a ';' would split.
    string(REPLACE ";" "," component_list "${COMPONENTS}")
    run(${CMAKE_COMMAND} -S "${CONSUMER_DIR}/../components" -B "${WORK_DIR}/components"
        -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CXX} -DCOMPONENTS=${component_list})
    run(${CMAKE_COMMAND} --build "${WORK_DIR}/components")
endif()
set(websocket_prints "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\\+xOo=")
set(redis_prints "redis consumer: refused cleanly")
foreach(component IN LISTS COMPONENTS)
    run("${WORK_DIR}/components/${component}_consumer")
    if(NOT last_output MATCHES "${${component}_prints}")
        message(FATAL_ERROR "${component} consumer printed: ${last_output}")
    endif()
endforeach()
message(STATUS "package consumer built and ran through find_package and pkg-config")
