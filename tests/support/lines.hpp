// support: text a test read back (a log file, a process's output) as lines, and where two
// line lists first differ, for a failure that reads.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

namespace support {

// The lines of `text`; a last one without its newline comes back marked "(unterminated) ".
inline std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::size_t at = 0;
    for (std::size_t nl; (nl = text.find('\n', at)) != std::string::npos; at = nl + 1)
        out.push_back(text.substr(at, nl - at));
    if (at != text.size()) out.push_back("(unterminated) " + text.substr(at));
    return out;
}

// Where two line lists first differ; empty when they are equal.
inline std::string first_difference(const std::vector<std::string>& got, const std::vector<std::string>& want) {
    for (std::size_t i = 0; i < std::max(got.size(), want.size()); ++i) {
        const std::string g = i < got.size() ? got[i] : "(nothing)", w = i < want.size() ? want[i] : "(nothing)";
        if (g != w)
            return "line " + std::to_string(i) + ": got '" + g.substr(0, 100) + "', want '" + w.substr(0, 100) + "'";
    }
    return "";
}

}  // namespace support
