# Stand-ins for the vcpkg helper functions ports/cluster/portfile.cmake calls, for running it
# where vcpkg cannot be installed: each does what vcpkg's does to the release half of a build
# for the x64-linux triplet (static libraries), from the variables vcpkg sets before a portfile
# (PORT, FEATURES, CURRENT_PACKAGES_DIR, CURRENT_INSTALLED_DIR, CURRENT_BUILDTREES_DIR), with
# CXX the compiler. vcpkg's toolchain file is stood in for by CMAKE_PREFIX_PATH; the debug half
# of the build is not made. What the portfile asked for is left in stand_in_* variables.

function(vcpkg_check_linkage)
    cmake_parse_arguments(PARSE_ARGV 0 arg "ONLY_STATIC_LIBRARY;ONLY_DYNAMIC_LIBRARY;ONLY_DYNAMIC_CRT;ONLY_STATIC_CRT" "" "")
    set(stand_in_static_only ${arg_ONLY_STATIC_LIBRARY} PARENT_SCOPE)
endfunction()

# -D<option>=ON for each feature asked for, OFF for the others.
function(vcpkg_check_features)
    cmake_parse_arguments(PARSE_ARGV 0 arg "" "OUT_FEATURE_OPTIONS" "FEATURES")
    set(options)
    set(mapped)
    while(arg_FEATURES)
        list(POP_FRONT arg_FEATURES feature option)
        list(APPEND mapped ${feature})
        if(feature IN_LIST FEATURES)
            list(APPEND options "-D${option}=ON")
        else()
            list(APPEND options "-D${option}=OFF")
        endif()
    endwhile()
    set(${arg_OUT_FEATURE_OPTIONS} ${options} PARENT_SCOPE)
    set(stand_in_mapped_features ${mapped} PARENT_SCOPE)
endfunction()

function(vcpkg_find_acquire_program program)
    if(NOT program STREQUAL "PKGCONFIG")
        message(FATAL_ERROR "the stand-in knows PKGCONFIG, not ${program}")
    endif()
    find_program(PKGCONFIG pkg-config REQUIRED)
    set(PKGCONFIG "${PKGCONFIG}" PARENT_SCOPE)
endfunction()

# The configure vcpkg runs, with the arguments of its own that matter here; any of the portfile's
# options the project does not use is an error (support.cmake's check_options_used).
function(vcpkg_cmake_configure)
    cmake_parse_arguments(PARSE_ARGV 0 arg "DISABLE_PARALLEL_CONFIGURE" "SOURCE_PATH" "OPTIONS;OPTIONS_RELEASE;OPTIONS_DEBUG")
    set(options ${arg_OPTIONS} ${arg_OPTIONS_RELEASE})
    execute_process(
        COMMAND ${CMAKE_COMMAND} -S "${arg_SOURCE_PATH}" -B "${CURRENT_BUILDTREES_DIR}/rel"
            -DCMAKE_BUILD_TYPE=Release "-DCMAKE_INSTALL_PREFIX=${CURRENT_PACKAGES_DIR}"
            "-DCMAKE_PREFIX_PATH=${CURRENT_INSTALLED_DIR}" -DCMAKE_CXX_COMPILER=${CXX} -DBUILD_SHARED_LIBS=OFF
            -DCMAKE_INSTALL_LIBDIR=lib -DCMAKE_INSTALL_BINDIR=bin -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON
            ${options}
        RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "the port's configure failed:\n${out}\n${err}")
    endif()
    check_options_used("${err}" ${options})
    set(stand_in_options ${options} PARENT_SCOPE)
endfunction()

function(vcpkg_cmake_install)
    run(${CMAKE_COMMAND} --build "${CURRENT_BUILDTREES_DIR}/rel" --parallel 2)
    run(${CMAKE_COMMAND} --install "${CURRENT_BUILDTREES_DIR}/rel")
endfunction()

# The CMake package config moves to share/<package>, and the paths its files compute from where
# they are (the prefix of an export's targets, PACKAGE_PREFIX_DIR) are made two folders up.
function(vcpkg_cmake_config_fixup)
    cmake_parse_arguments(PARSE_ARGV 0 arg "NO_PREFIX_CORRECTION" "PACKAGE_NAME;CONFIG_PATH" "")
    if(NOT arg_PACKAGE_NAME)
        set(arg_PACKAGE_NAME ${PORT})
    endif()
    set(share "${CURRENT_PACKAGES_DIR}/share/${arg_PACKAGE_NAME}")
    file(MAKE_DIRECTORY "${CURRENT_PACKAGES_DIR}/share")
    file(RENAME "${CURRENT_PACKAGES_DIR}/${arg_CONFIG_PATH}" "${share}")
    file(GLOB files "${share}/*.cmake")
    foreach(file IN LISTS files)
        file(READ "${file}" text)
        string(REGEX REPLACE "get_filename_component\\(_IMPORT_PREFIX \"\\\${CMAKE_CURRENT_LIST_FILE}\" PATH\\)(\nget_filename_component\\(_IMPORT_PREFIX \"\\\${_IMPORT_PREFIX}\" PATH\\))*"
               "get_filename_component(_IMPORT_PREFIX \"\${CMAKE_CURRENT_LIST_FILE}\" PATH)\nget_filename_component(_IMPORT_PREFIX \"\${_IMPORT_PREFIX}\" PATH)\nget_filename_component(_IMPORT_PREFIX \"\${_IMPORT_PREFIX}\" PATH)"
               text "${text}")
        string(REGEX REPLACE "get_filename_component\\(PACKAGE_PREFIX_DIR \"\\\${CMAKE_CURRENT_LIST_DIR}/[./]*\" ABSOLUTE\\)"
               "get_filename_component(PACKAGE_PREFIX_DIR \"\${CMAKE_CURRENT_LIST_DIR}/../../\" ABSOLUTE)" text "${text}")
        file(WRITE "${file}" "${text}")
    endforeach()
    file(GLOB left "${CURRENT_PACKAGES_DIR}/lib/cmake/*")
    if(NOT left)
        file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/lib/cmake")
    endif()
endfunction()

# vcpkg rewrites a .pc file's absolute paths relative to ${pcfiledir}; a stand-in that finds one
# to rewrite fails instead, and checks that pkg-config reads each file.
function(vcpkg_fixup_pkgconfig)
    file(GLOB files "${CURRENT_PACKAGES_DIR}/lib/pkgconfig/*.pc" "${CURRENT_PACKAGES_DIR}/share/pkgconfig/*.pc")
    set(ENV{PKG_CONFIG_PATH} "${CURRENT_PACKAGES_DIR}/lib/pkgconfig:${CURRENT_PACKAGES_DIR}/share/pkgconfig:${CURRENT_INSTALLED_DIR}/lib/pkgconfig")
    foreach(file IN LISTS files)
        file(READ "${file}" text)
        string(FIND "${text}" "${CURRENT_PACKAGES_DIR}" at)
        if(at GREATER_EQUAL 0)
            message(FATAL_ERROR "${file} names the packages folder, which vcpkg would have to rewrite:\n${text}")
        endif()
        run(pkg-config --validate "${file}")
    endforeach()
endfunction()

function(vcpkg_copy_tools)
    cmake_parse_arguments(PARSE_ARGV 0 arg "AUTO_CLEAN" "" "TOOL_NAMES")
    file(MAKE_DIRECTORY "${CURRENT_PACKAGES_DIR}/tools/${PORT}")
    foreach(tool IN LISTS arg_TOOL_NAMES)
        file(RENAME "${CURRENT_PACKAGES_DIR}/bin/${tool}" "${CURRENT_PACKAGES_DIR}/tools/${PORT}/${tool}")
    endforeach()
    file(GLOB left "${CURRENT_PACKAGES_DIR}/bin/*")
    if(arg_AUTO_CLEAN AND NOT left)
        file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/bin")
    endif()
endfunction()

function(vcpkg_install_copyright)
    cmake_parse_arguments(PARSE_ARGV 0 arg "" "" "FILE_LIST")
    file(INSTALL ${arg_FILE_LIST} DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}" RENAME copyright)
endfunction()
