// cluster::io::signal_name: a signal's name as users write it ("SIGHUP"), for exit
// descriptions, the primary's status and logs; a number the C library cannot name stays one.
#pragma once

#include <string.h>

#include <string>

namespace cluster::io {

inline std::string signal_name(int signo) {
    const char* abbrev = sigabbrev_np(signo);
    return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(signo);
}

}  // namespace cluster::io
