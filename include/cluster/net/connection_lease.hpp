// cluster::net::connection_lease: a connection counted open by the listener that accepted it while
// its socket is held elsewhere (by an Asio socket, say); the count ends when the lease does.
#pragma once

#include <memory>
#include <utility>

namespace cluster::net {

namespace detail {

// What counts a listener's open connections: told once when a stream it handed out is
// closed, destroyed or released, or when the lease that counts it ends.
class connection_tracker {
public:
    virtual void closed() noexcept = 0;

protected:
    ~connection_tracker() = default;
};

}  // namespace detail

class connection_lease {
public:
    connection_lease() noexcept = default;
    explicit connection_lease(std::shared_ptr<detail::connection_tracker> tracker) noexcept
        : tracker_(std::move(tracker)) {}
    connection_lease(connection_lease&&) noexcept = default;
    connection_lease& operator=(connection_lease&& other) noexcept {
        if (this != &other) {
            reset();
            tracker_ = std::move(other.tracker_);
        }
        return *this;
    }
    connection_lease(const connection_lease&) = delete;
    connection_lease& operator=(const connection_lease&) = delete;
    ~connection_lease() { reset(); }

    // Whether a listener still counts the connection.
    [[nodiscard]] bool counted() const noexcept { return static_cast<bool>(tracker_); }
    explicit operator bool() const noexcept { return counted(); }

    // The connection is closed: its listener counts it no more (connections(), max_connections,
    // drained(), and the primary's least_connections).
    void reset() noexcept {
        if (tracker_) std::exchange(tracker_, nullptr)->closed();
    }

private:
    std::shared_ptr<detail::connection_tracker> tracker_;
};

}  // namespace cluster::net
