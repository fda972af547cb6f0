// cluster::io::external_loop: another event loop that shares an io_context's thread (Asio's,
// through cluster/asio.hpp). The io_context waits in it, and the ring wakes it with an eventfd.
#pragma once

namespace cluster::io {

class external_loop {
public:
    // A turn of the io_context that has nothing ready and must wait: runs what this loop has
    // ready, or blocks until it has something, or until the ring may have completions. It blocks
    // only between io_context::arm_notification() (true) and disarm_notification(), watching
    // notification_fd(). An exception it throws leaves io_context::run_once().
    virtual void wait() = 0;

    // A turn of the io_context with work of its own: runs some of what this loop has ready,
    // without blocking, so that neither loop starves the other.
    virtual void poll() = 0;

protected:
    ~external_loop() = default;
};

}  // namespace cluster::io
