# Script mode: checks conanfile.py without Conan, which cannot be installed here. Installs
# BUILD_DIR into WORK_DIR/prefix; loads the recipe with a stand-in for Conan (conan/), which
# checks it against the project's version and that install's targets and prints the cache
# variables its generate() sets; configures the project with those, as Conan's CMake would; and
# builds test_package/ against the install, whose targets are the ones CMakeDeps would generate.
cmake_minimum_required(VERSION 3.20)
include("${CMAKE_CURRENT_LIST_DIR}/support.cmake")
file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}")

run(${PYTHON} "${CMAKE_CURRENT_LIST_DIR}/conan/check_recipe.py" "${SOURCE_DIR}" ${VERSION} "${prefix}" "${COMPONENTS}" ${CLUSTERCTL})
string(REGEX MATCHALL "-D[^\n]+" cache_variables "${last_output}")
execute_process(COMMAND ${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK_DIR}/build" -DCMAKE_BUILD_TYPE=Release
                        -DCMAKE_CXX_COMPILER=${CXX} ${cache_variables}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "the project does not configure with the recipe's cache variables ${cache_variables}:\n${out}\n${err}")
endif()
check_options_used("${err}" ${cache_variables})

run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/test_package" -B "${WORK_DIR}/test_package"
    "-DCMAKE_PREFIX_PATH=${prefix}" -DCMAKE_CXX_COMPILER=${CXX} ${consumer_build_type})
run(${CMAKE_COMMAND} --build "${WORK_DIR}/test_package")
run("${WORK_DIR}/test_package/test_package")
if(NOT last_output MATCHES "consumer: 42")
    message(FATAL_ERROR "test_package printed: ${last_output}")
endif()
message(STATUS "the recipe matches the project, configures it with ${cache_variables}, and its test_package runs")
