# Warnings for the project's own programs: the library must build clean under these
# with g++ 12 and clang++ 14. CLUSTER_SANITIZE=ON adds ASan + UBSan.
option(CLUSTER_WERROR "Treat warnings as errors in tests, examples and benchmarks" OFF)
option(CLUSTER_SANITIZE "Build tests, examples and benchmarks with ASan + UBSan" OFF)

add_library(cluster_warnings INTERFACE)
target_compile_options(cluster_warnings INTERFACE -Wall -Wextra -Wpedantic $<$<BOOL:${CLUSTER_WERROR}>:-Werror>)
if(CLUSTER_SANITIZE)
    target_compile_options(cluster_warnings INTERFACE -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
    # clang 14's -fsanitize=function emits assembly it cannot assemble for coroutines
    # ("Cannot represent a difference across sections").
    if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
        target_compile_options(cluster_warnings INTERFACE -fno-sanitize=function)
    endif()
    target_link_options(cluster_warnings INTERFACE -fsanitize=address,undefined)
endif()
