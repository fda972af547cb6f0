// cluster::io::external_loop: another event loop that shares an io_context's thread (Asio's,
// through cluster/asio.hpp). The io_context waits in it, and the ring wakes it with an eventfd.
#pragma once

namespace cluster::io {

class external_loop {
public:
    // Called by a turn of the io_context that has nothing ready and must wait: runs what this
    // loop has ready, or blocks until it has something, or until the ring may have completions.
    // It blocks only between io_context::arm_notification() (true) and disarm_notification(),
    // watching notification_fd(). An exception it throws leaves io_context::run_once().
    virtual void wait() = 0;

    // Work of its own to wait for: while it has some, an io_context with nothing in flight waits
    // in it instead of reporting a deadlock, and while it has none, the io_context waits alone.
    [[nodiscard]] virtual bool has_work() const noexcept = 0;

protected:
    ~external_loop() = default;
};

}  // namespace cluster::io
