// cluster::net::tcp_stream's definitions: a connection's reads, writes, shutdown and close.
// Inline in a header-only build; compiled once into cluster::core otherwise.
#pragma once

#include <cluster/net/tcp_stream.hpp>

namespace cluster::net {

CLUSTER_DECL tcp_stream& tcp_stream::operator=(tcp_stream&& other) noexcept {
    if (this != &other) {
        untrack();
        end_shared();
        fd_ = std::move(other.fd_);
        peer_ = other.peer_;
        tracker_ = std::move(other.tracker_);
        shared_ = std::exchange(other.shared_, false);
    }
    return *this;
}

CLUSTER_DECL tcp_stream::~tcp_stream() {
    untrack();
    end_shared();
}

CLUSTER_DECL unique_fd tcp_stream::release() noexcept {
    untrack();
    shared_ = false;
    return std::move(fd_);
}

CLUSTER_DECL leased_socket tcp_stream::lease() noexcept {
    // Handed over by the primary, the connection is not shut down when the lease ends: the
    // acknowledgement that lets the primary drop its copy left as accept() returned it.
    shared_ = false;
    return {std::move(fd_), connection_lease(std::move(tracker_))};
}

CLUSTER_DECL io::close_op tcp_stream::close() noexcept {
    untrack();
    end_shared();
    return io::close(std::move(fd_));
}

CLUSTER_DECL result<endpoint> tcp_stream::peer() const noexcept {
    if (is_open() && !peer_.empty()) return peer_;
    return peer_endpoint(fd_.get());
}

CLUSTER_DECL result<void> tcp_stream::set_nodelay(bool on) noexcept {
    const int value = on ? 1 : 0;
    if (::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &value, sizeof value) != 0) return errno_code(errno);
    return {};
}

CLUSTER_DECL void tcp_stream::untrack() noexcept {
    if (tracker_) std::exchange(tracker_, nullptr)->closed();
}

CLUSTER_DECL void tcp_stream::end_shared() noexcept {
    if (std::exchange(shared_, false) && fd_.valid()) ::shutdown(fd_.get(), SHUT_RDWR);
}

}  // namespace cluster::net
