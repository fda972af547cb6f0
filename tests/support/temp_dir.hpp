// support::temp_dir: a fresh directory under /tmp for a test's files and sockets, removed
// with everything in it when it goes.
#pragma once

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace support {

class temp_dir {
public:
    temp_dir() {
        char name[] = "/tmp/cluster_test_XXXXXX";
        if (!::mkdtemp(name)) throw std::system_error(errno, std::system_category(), "mkdtemp");
        path_ = name;
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }

    [[nodiscard]] const std::string& str() const noexcept { return path_; }
    [[nodiscard]] std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

}  // namespace support
