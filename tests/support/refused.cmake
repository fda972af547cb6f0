# Script mode: compiles SOURCE, a user's file that the library must refuse, with CXX and
# FLAGS (those of this build's tests), and checks what the compiler says. SOURCE opens with
# what it expects, one comment line each:
#   // refused by: GNU before 14     which compilers refuse it (none said: every compiler)
#   // expect: <text>                text the one error must show (as many lines as needed)
# A compiler that refuses it must fail with exactly one "error:" and every expected text;
# one that does not must compile it without a word. COMPILER_ID and COMPILER_VERSION are
# CMake's for CXX; IMPLICIT_INCLUDES its own include directories.
file(STRINGS "${SOURCE}" expectations REGEX "^// (refused by|expect): ")

set(refused TRUE)
set(texts "")
foreach(line IN LISTS expectations)
    if(line MATCHES "^// refused by: ([A-Za-z]+)( before ([0-9.]+))?$")
        set(refused FALSE)
        if(COMPILER_ID STREQUAL CMAKE_MATCH_1 AND (NOT CMAKE_MATCH_3 OR COMPILER_VERSION VERSION_LESS CMAKE_MATCH_3))
            set(refused TRUE)
        endif()
    elseif(line MATCHES "^// expect: (.+)$")
        list(APPEND texts "${CMAKE_MATCH_1}")
    endif()
endforeach()

# CMake leaves the compiler's own include directories out of compile lines, and so do we:
# -I/usr/include would break libstdc++'s #include_next.
foreach(dir IN LISTS IMPLICIT_INCLUDES)
    list(REMOVE_ITEM FLAGS "-I${dir}")
endforeach()

# -fsyntax-only: the front end says all there is to say, and says it faster.
execute_process(COMMAND ${CXX} ${FLAGS} -fsyntax-only "${SOURCE}" RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE out)
string(LENGTH "${out}" bytes)
string(REGEX MATCHALL "error:" errors "${out}")
list(LENGTH errors error_count)

if(NOT refused)
    if(NOT rc EQUAL 0 OR NOT out STREQUAL "")
        message(FATAL_ERROR "${COMPILER_ID} ${COMPILER_VERSION} should compile ${SOURCE} cleanly:\n${out}")
    endif()
    message(STATUS "compiled cleanly, as ${COMPILER_ID} ${COMPILER_VERSION} should")
    return()
endif()

if(rc EQUAL 0)
    message(FATAL_ERROR "${COMPILER_ID} ${COMPILER_VERSION} compiled ${SOURCE}, which must be refused:\n${out}")
endif()
foreach(text IN LISTS texts)
    string(FIND "${out}" "${text}" at)
    if(at EQUAL -1)
        message(FATAL_ERROR "the error does not say \"${text}\":\n${out}")
    endif()
endforeach()
if(NOT error_count EQUAL 1)
    message(FATAL_ERROR "${error_count} errors where one should say it all:\n${out}")
endif()
message(STATUS "refused with one error of ${bytes} bytes of output:\n${out}")
