# Warnings for the project's own programs: the library must build clean under these
# with g++ 12 and clang++ 14. CLUSTER_SANITIZE=ON adds ASan + UBSan.
option(CLUSTER_WERROR "Treat warnings as errors in tests, examples and benchmarks" OFF)
option(CLUSTER_SANITIZE "Build tests, examples and benchmarks with ASan + UBSan" OFF)

add_library(cluster_warnings INTERFACE)
target_compile_options(cluster_warnings INTERFACE -Wall -Wextra -Wpedantic $<$<BOOL:${CLUSTER_WERROR}>:-Werror>)
# g++ 12 at -O3 (CMake's Release) takes std::string's and std::vector's own copies, inlined
# into a caller, for ones of impossible sizes or bounds: `o.env[name] = "1"`, `"[" +
# std::to_string(i) + "]"`, a vector's insert (GCC bugs 105329, 105651 and their kin, fixed in
# 13). Those four access warnings are off for g++ 12 in the tests, examples and benchmarks;
# clang++ keeps them. The library's headers are clean of them (wire/codec.hpp's error path),
# since a user's build would show theirs.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(cluster_warnings INTERFACE -Wno-restrict -Wno-stringop-overflow -Wno-stringop-overread
                                                      -Wno-array-bounds)
endif()
if(CLUSTER_SANITIZE)
    target_compile_options(cluster_warnings INTERFACE -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
    # clang 14's -fsanitize=function emits assembly it cannot assemble for coroutines
    # ("Cannot represent a difference across sections").
    if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
        target_compile_options(cluster_warnings INTERFACE -fno-sanitize=function)
    endif()
    # Position-dependent programs: a test starts hundreds of times, and a PIE one spent 0.1 s of
    # each start applying ASan's 860,000 relocations (0.23 s for a test that asserts one thing).
    target_link_options(cluster_warnings INTERFACE -fsanitize=address,undefined
                                                   $<$<STREQUAL:$<TARGET_PROPERTY:TYPE>,EXECUTABLE>:-no-pie>)
endif()
