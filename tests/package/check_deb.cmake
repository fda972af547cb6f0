# Script mode: makes BUILD_DIR's Debian packages with cpack (cmake/package.cmake), checks their
# fields and contents, installs them with dpkg into a scratch root whose package database holds
# this machine's packages they depend on, builds consumer/ against that root through
# find_package and through pkg-config, and removes them again.
include("${CMAKE_CURRENT_LIST_DIR}/support.cmake")
file(REMOVE_RECURSE "${WORK_DIR}")
set(root "${WORK_DIR}/root")
string(REPLACE "," ";" COMPONENTS "${COMPONENTS}")

# cpack's "preinstall" step builds the whole tree first where the build's generator has one
# (Makefiles'); CTest runs after the build, beside tests that build in the same tree
# (tests/consumer), so the step is left to a generator that has none.
run(cpack -G DEB --config "${BUILD_DIR}/CPackConfig.cmake" -B "${WORK_DIR}/debs" -D CPACK_CMAKE_GENERATOR=Ninja)

run(dpkg --print-architecture)
string(STRIP "${last_output}" arch)
set(release "${VERSION}-1")
set(packages libcluster-dev)
foreach(component IN LISTS COMPONENTS)
    list(APPEND packages libcluster-${component}-dev)
endforeach()
if(CLUSTERCTL)
    list(APPEND packages clusterctl)
endif()
file(GLOB made RELATIVE "${WORK_DIR}/debs" "${WORK_DIR}/debs/*.deb")
set(expected)
foreach(package IN LISTS packages)
    list(APPEND expected "${package}_${release}_${arch}.deb")
endforeach()
list(SORT made)
list(SORT expected)
if(NOT made STREQUAL expected)
    message(FATAL_ERROR "cpack made '${made}', not '${expected}'")
endif()

# What each package must depend on, and hold (paths as dpkg-deb -c prints them, after ./usr/).
set(libcluster-dev_depends "liburing-dev (>= 2.3)" "libboost1.81-dev")
set(libcluster-dev_holds include/cluster/cluster.hpp "lib[^ ]*/cmake/cluster/clusterConfig.cmake"
    "lib[^ ]*/libcluster_core.a" share/pkgconfig/cluster.pc "lib[^ ]*/pkgconfig/cluster-core.pc")
set(libcluster-http-dev_depends "libcluster-dev (= ${release})" node-llhttp)
set(libcluster-websocket-dev_depends "libcluster-http-dev (= ${release})" libwslay-dev)
set(libcluster-redis-dev_depends "libcluster-dev (= ${release})" libhiredis-dev)
foreach(component IN LISTS COMPONENTS)
    string(SUBSTRING ${component} 0 1 first)
    string(TOUPPER ${first} first)
    string(SUBSTRING ${component} 1 -1 tail)
    set(libcluster-${component}-dev_holds include/cluster/${component}.hpp include/cluster/${component}/
        "lib[^ ]*/cmake/cluster/cluster${first}${tail}Targets.cmake")
endforeach()
set(clusterctl_depends libc6 libstdc++6)
set(clusterctl_holds bin/clusterctl)

set(dependencies)
foreach(package IN LISTS packages)
    set(deb "${WORK_DIR}/debs/${package}_${release}_${arch}.deb")
    foreach(field Package Version Architecture Maintainer Section Description Depends)
        run(dpkg-deb -f "${deb}" ${field})
        string(STRIP "${last_output}" ${field})
    endforeach()
    if(NOT Package STREQUAL package OR NOT Version STREQUAL release OR NOT Architecture STREQUAL arch
       OR NOT Maintainer MATCHES ".+ <.+@.+>" OR Section STREQUAL "" OR NOT Description MATCHES "^[^\n]+\n .+")
        message(FATAL_ERROR "${deb}: Package '${Package}', Version '${Version}', Architecture '${Architecture}', "
                            "Maintainer '${Maintainer}', Section '${Section}', Description '${Description}'")
    endif()
    foreach(depend IN LISTS ${package}_depends)
        string(FIND "${Depends}" "${depend}" at)
        if(at LESS 0)
            message(FATAL_ERROR "${package} depends on '${Depends}', without '${depend}'")
        endif()
    endforeach()
    # Every package name it depends on, for the scratch root's database below.
    string(REGEX REPLACE "\\([^)]*\\)" "" names "${Depends}")
    string(REGEX REPLACE "[ ,|]+" ";" names "${names}")
    list(APPEND dependencies ${names})

    run(dpkg-deb -c "${deb}")
    set(contents "${last_output}")
    foreach(path IN LISTS ${package}_holds ITEMS share/doc/${package}/copyright)
        if(NOT contents MATCHES " \\./usr/${path}\n")
            message(FATAL_ERROR "${package} does not hold /usr/${path}:\n${contents}")
        endif()
    endforeach()
    foreach(component http websocket redis)
        if(contents MATCHES " \\./usr/include/cluster/${component}[./]" AND NOT package STREQUAL "libcluster-${component}-dev")
            message(FATAL_ERROR "${package} holds headers of libcluster-${component}-dev:\n${contents}")
        endif()
    endforeach()
    string(REGEX MATCHALL "[^\n]+" entries "${contents}")
    list(FILTER entries EXCLUDE REGEX " root/root ")
    if(entries)
        message(FATAL_ERROR "${package} has entries root does not own: ${entries}")
    endif()
endforeach()

# The scratch root's database: this machine's own entries for the packages ours depend on, so
# that dpkg checks our Depends against Debian's real packages (names and versions) with no
# --force-depends; ours depend on each other, and dpkg sees to those too.
file(MAKE_DIRECTORY "${root}/var/lib/dpkg/info" "${root}/var/lib/dpkg/updates")
list(REMOVE_DUPLICATES dependencies)
list(REMOVE_ITEM dependencies "" ${packages})
set(status "")
foreach(name IN LISTS dependencies)
    execute_process(COMMAND dpkg-query -s ${name} RESULT_VARIABLE rc OUTPUT_VARIABLE stanza ERROR_QUIET)
    if(rc EQUAL 0)
        string(APPEND status "${stanza}\n")
    endif()
endforeach()
file(WRITE "${root}/var/lib/dpkg/status" "${status}")
list(TRANSFORM packages PREPEND "${WORK_DIR}/debs/" OUTPUT_VARIABLE debs)
list(TRANSFORM debs APPEND "_${release}_${arch}.deb")
run(dpkg --root=${root} --force-not-root --log=/dev/null -i ${debs})
run(dpkg-query --root=${root} -W "-f=\${Package} \${Status}\\n" ${packages})
foreach(package IN LISTS packages)
    if(NOT last_output MATCHES "(^|\n)${package} install ok installed\n")
        message(FATAL_ERROR "dpkg did not install ${package}: ${last_output}")
    endif()
    file(READ "${root}/usr/share/doc/${package}/copyright" copyright)
    file(READ "${SOURCE_DIR}/LICENSE" license)
    if(NOT copyright STREQUAL license)
        message(FATAL_ERROR "/usr/share/doc/${package}/copyright is not the project's LICENSE")
    endif()
endforeach()

if(CLUSTERCTL)
    run("${root}/usr/bin/clusterctl" --help)
    if(NOT last_output MATCHES "usage: clusterctl")
        message(FATAL_ERROR "the installed clusterctl --help printed: ${last_output}")
    endif()
endif()

build_consumer("${WORK_DIR}/consumer" "${root}/usr" cluster::core)
# The components' packages: their config and targets load (an imported target whose files are
# missing stops find_package), and their dependencies are where the targets say.
# cluster::websocket's program there brings cluster::http along.
set(programs ${COMPONENTS})
list(REMOVE_ITEM programs http)
if(programs)
    string(REPLACE ";" "," component_list "${programs}")
    run(${CMAKE_COMMAND} -S "${CMAKE_CURRENT_LIST_DIR}/components" -B "${WORK_DIR}/components"
        "-DCMAKE_PREFIX_PATH=${root}/usr" -DCMAKE_CXX_COMPILER=${CXX} -DCOMPONENTS=${component_list})
endif()

# pkg-config, with the packages' .pc files found where they are, not where dpkg would put them
# on a real system: their prefix is relative to the file (cmake/install.cmake).
file(GLOB_RECURSE core_pc "${root}/usr/lib*/cluster-core.pc")
get_filename_component(core_pc_dir "${core_pc}" DIRECTORY)
set(ENV{PKG_CONFIG_PATH} "${core_pc_dir}:${root}/usr/share/pkgconfig")
run(pkg-config --cflags --libs cluster-core)
string(STRIP "${last_output}" flags)
string(FIND "${flags}" "-I${root}/usr/" at)
if(at LESS 0)
    message(FATAL_ERROR "pkg-config's flags do not name the scratch root's headers: ${flags}")
endif()
separate_arguments(flags UNIX_COMMAND "${flags}")
set(consumer "${CMAKE_CURRENT_LIST_DIR}/consumer")
run(${CXX} "${consumer}/main.cpp" "${consumer}/answer.cpp" -o "${WORK_DIR}/consumer_pc" ${flags})
run("${WORK_DIR}/consumer_pc")
if(NOT last_output MATCHES "consumer: 42")
    message(FATAL_ERROR "the pkg-config consumer printed: ${last_output}")
endif()

# Purged, the packages leave nothing behind: no file, no directory, outside dpkg's own.
run(dpkg --root=${root} --force-not-root --log=/dev/null -P ${packages})
file(GLOB_RECURSE left RELATIVE "${root}" LIST_DIRECTORIES true "${root}/*")
list(FILTER left EXCLUDE REGEX "^var(/lib(/dpkg(/.*)?)?)?$")
if(left)
    message(FATAL_ERROR "dpkg -P left: ${left}")
endif()
message(STATUS "the Debian packages installed, built a consumer through find_package and pkg-config, and left nothing behind")
