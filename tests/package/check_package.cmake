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

# The optional components, where this build has them.
if(HAS_WEBSOCKET)
    run(${CMAKE_COMMAND} -S "${CONSUMER_DIR}/../components" -B "${WORK_DIR}/components"
        -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CXX})
    run(${CMAKE_COMMAND} --build "${WORK_DIR}/components")
    run("${WORK_DIR}/components/components_consumer")
    if(NOT last_output MATCHES "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\\+xOo=")
        message(FATAL_ERROR "components consumer printed: ${last_output}")
    endif()
endif()
message(STATUS "package consumer built and ran through find_package and pkg-config")
