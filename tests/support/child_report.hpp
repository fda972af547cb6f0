// support: what a test's forked child writes down, a line at a time, for the test to read
// after — the child makes no Catch assertion of its own.
#pragma once

#include <unistd.h>

#include <string>

namespace support {

class report {
public:
    explicit report(int fd) noexcept : fd_(fd) {}
    void line(const std::string& text) const { (void)!::write(fd_, (text + "\n").data(), text.size() + 1); }

private:
    int fd_;
};

}  // namespace support
