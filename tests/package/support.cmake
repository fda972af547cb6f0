# What the package tests' scripts share: running a command, and building and running the
# consumer project (consumer/) against an installed cluster.

# run(<command...>): fails the test with the command's output if it fails; what it printed is
# left in last_output.
function(run)
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
    endif()
    set(last_output "${out}" PARENT_SCOPE)
endfunction()

# The consumers are built as the README builds: Release. Without a build type g++ 12 emits the
# body of every inline coroutine a header defines, used or not, and takes twice as long.
set(consumer_build_type -DCMAKE_BUILD_TYPE=Release)
# A makefile's consumer compiles with its CXXFLAGS.
separate_arguments(consumer_cxx_flags UNIX_COMMAND "-O2 $ENV{CXXFLAGS}")

# build_consumer(<build dir> <prefix path> <target> [<cmake option>...]): builds consumer/
# against the cluster that <prefix path> has, linking <target>, and runs it; the package it
# found must be that one.
function(build_consumer build_dir prefix_path target)
    run(${CMAKE_COMMAND} -S "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/consumer" -B "${build_dir}" "-DCMAKE_PREFIX_PATH=${prefix_path}"
        -DCMAKE_CXX_COMPILER=${CXX} ${consumer_build_type} -DCLUSTER_CONSUMER_TARGET=${target} ${ARGN})
    file(STRINGS "${build_dir}/CMakeCache.txt" found REGEX "^cluster_DIR:")
    string(FIND "${found}" "=${prefix_path}/" at)
    if(NOT at GREATER 0)
        message(FATAL_ERROR "the consumer found cluster elsewhere than in ${prefix_path}: ${found}")
    endif()
    run(${CMAKE_COMMAND} --build "${build_dir}")
    run("${build_dir}/consumer")
    if(NOT last_output MATCHES "consumer: 42")
        message(FATAL_ERROR "the consumer built in ${build_dir} printed: ${last_output}")
    endif()
endfunction()

# configure_components(<build dir> <prefix path> <components...>): configures components/ for
# those components (websocket, redis, asio) against the cluster that <prefix path> has: their
# config and targets load (an imported target whose files are missing stops find_package), and
# their dependencies are where the targets say.
function(configure_components build_dir prefix_path)
    # Comma-separated: run() takes its arguments as one list, which a ';' would split.
    string(REPLACE ";" "," component_list "${ARGN}")
    run(${CMAKE_COMMAND} -S "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/components" -B "${build_dir}"
        "-DCMAKE_PREFIX_PATH=${prefix_path}" -DCMAKE_CXX_COMPILER=${CXX} ${consumer_build_type} -DCOMPONENTS=${component_list})
endfunction()

# build_components(<build dir> <prefix path> <components...>): configures components/ so, then
# builds each component's program and runs it.
function(build_components build_dir prefix_path)
    configure_components("${build_dir}" "${prefix_path}" ${ARGN})
    run(${CMAKE_COMMAND} --build "${build_dir}")
    set(websocket_prints "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\\+xOo=")
    set(redis_prints "redis consumer: refused cleanly")
    set(asio_prints "asio consumer: 42")
    foreach(component IN LISTS ARGN)
        run("${build_dir}/${component}_consumer")
        if(NOT last_output MATCHES "${${component}_prints}")
            message(FATAL_ERROR "${component} consumer printed: ${last_output}")
        endif()
    endforeach()
endfunction()

# check_options_used(<configure's stderr> <-D options...>): fails the test if CMake warned that
# the project does not use one of the options, which a package manager's recipe passed.
function(check_options_used configure_err)
    if(NOT configure_err MATCHES "Manually-specified variables were not used by the project:\n\n(([ ]+[^\n]+\n)+)")
        return()
    endif()
    string(REGEX MATCHALL "[A-Za-z0-9_]+" unused "${CMAKE_MATCH_1}")
    foreach(option IN LISTS ARGN)
        string(REGEX REPLACE "^-D([A-Za-z0-9_]+)[:=].*" "\\1" name "${option}")
        if(name IN_LIST unused)
            message(FATAL_ERROR "${option} is passed to the build, which does not use it")
        endif()
    endforeach()
endfunction()
