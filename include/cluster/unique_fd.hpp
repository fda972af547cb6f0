// cluster::unique_fd: sole ownership of one file descriptor, closed on destruction.
// Move-only, like std::unique_ptr; -1 means empty.
#pragma once

#include <unistd.h>

#include <utility>

namespace cluster {

class unique_fd {
public:
    unique_fd() noexcept = default;
    explicit unique_fd(int fd) noexcept : fd_(fd) {}
    unique_fd(unique_fd&& other) noexcept : fd_(other.release()) {}
    unique_fd& operator=(unique_fd&& other) noexcept {
        if (this != &other) reset(other.release());
        return *this;
    }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    ~unique_fd() { reset(); }

    [[nodiscard]] int get() const noexcept { return fd_; }
    [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
    explicit operator bool() const noexcept { return valid(); }

    [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }
    void reset(int fd = -1) noexcept {
        // close() may fail with EINTR, but the fd is released either way on Linux:
        // retrying would risk closing a descriptor another thread just opened.
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

    friend bool operator==(const unique_fd& a, const unique_fd& b) noexcept { return a.fd_ == b.fd_; }

private:
    int fd_ = -1;
};

}  // namespace cluster
