// cluster::net::listener's definitions, and its state's: accepting, handed connections, draining.
// Inline in a header-only build; compiled once into cluster::core otherwise.
#pragma once

#include <cluster/net/listener.hpp>

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include <cluster/io/ops.hpp>

namespace cluster::net {

CLUSTER_DECL void detail::listener_state::offer(std::uint64_t seq, unique_fd socket) {
    if (!socket || !accepting() || at_limit(handed_.size())) {
        refused_at_limit_ = accepting();
        if (host_) host_->acknowledge(seq, false);
        return;
    }
    handed_.push(handed_connection{seq, std::move(socket)});
    handed_waiting_.request_stop();
}

CLUSTER_DECL void detail::listener_state::stop_accepting() noexcept {
    stopped_ = true;
    handed_.close();
    stop_.request_stop();
    room_.notify();
}

CLUSTER_DECL void detail::listener_state::give_back() noexcept {
    stop_accepting();
    while (auto c = handed_.try_take())
        if (host_) host_->acknowledge(c->seq, false);
}

CLUSTER_DECL void detail::listener_state::close() noexcept {
    if (closed_) return;
    give_back();
    closed_ = true;
    if (host_) host_->report_unlisten(id_);
    socket_.reset();
}

CLUSTER_DECL void detail::listener_state::closed() noexcept {
    --open_;
    const bool room_again = std::exchange(refused_at_limit_, false);
    if ((reports_closes_ || room_again) && host_) host_->report_closed(id_, room_again);
    room_.notify();
    if (open_ == 0) idle_.notify();
}

CLUSTER_DECL bool detail::listener_state::takes_handed_only() const noexcept {
    return primary_accepts(schedule_) || socket_stopped_ || stopped_ || handed_.size() > 0;
}

CLUSTER_DECL bool detail::listener_state::at_limit(std::size_t queued) const noexcept {
    return max_connections_ != 0 && open_ + queued >= max_connections_;
}

CLUSTER_DECL listener& listener::operator=(listener&& other) noexcept {
    if (this != &other) {
        close();
        state_ = std::move(other.state_);
    }
    return *this;
}

CLUSTER_DECL io::task<result<tcp_stream>> listener::accept() {
    auto state = state_;  // the listener may be moved or closed while this waits
    if (!state || state->closed_) co_return make_error_code(errc::listener_closed);
    if (state->takes_handed_only()) co_return co_await take_handed(std::move(state));
    co_return co_await accept_on_socket(std::move(state));
}

CLUSTER_DECL void listener::close() noexcept {
    if (state_) state_->close();
}

CLUSTER_DECL io::task<bool> listener::drained() {
    auto state = state_;
    while (state && state->open_ > 0) {
        const bool woke = co_await state->idle_.wait();
        if (!woke) co_return false;
    }
    co_return true;
}

CLUSTER_DECL connection_lease listener::count_accepted() {
    if (!state_) return {};
    ++state_->open_;
    ++state_->accepted_;
    return connection_lease(state_);
}

CLUSTER_DECL tcp_stream listener::track(const std::shared_ptr<detail::listener_state>& state, tcp_stream s) {
    ++state->open_;
    ++state->accepted_;
    s.tracker_ = state;
    return s;
}

CLUSTER_DECL io::task<result<tcp_stream>> listener::take_handed(std::shared_ptr<detail::listener_state> state) {
    auto handed = co_await state->handed_.take();
    if (!handed) {
        if (state->stopped_) co_return make_error_code(errc::listener_closed);
        co_return std::make_error_code(std::errc::operation_canceled);
    }
    if (state->handed_.size() == 0) state->handed_waiting_ = std::stop_source{};
    if (state->host_) state->host_->acknowledge(handed->seq, true);
    tcp_stream stream(std::move(handed->socket));
    stream.shared_ = true;
    co_return track(state, std::move(stream));
}

CLUSTER_DECL io::task<result<tcp_stream>> listener::accept_on_socket(std::shared_ptr<detail::listener_state> state) {
    auto mine = co_await io::current_stop_token();
    for (;;) {
        while (state->accepting() && state->at_limit(0)) {
            const bool woke = co_await state->room_.wait();
            if (!woke) co_return std::make_error_code(std::errc::operation_canceled);
        }
        if (state->takes_handed_only()) co_return co_await take_handed(std::move(state));
        std::stop_source either;
        std::stop_callback on_mine(mine, detail::stop_with{&either});
        std::stop_callback on_leaving(state->stop_.get_token(), detail::stop_with{&either});
        std::stop_callback on_handed(state->handed_waiting_.get_token(), detail::stop_with{&either});
        auto accepted = co_await accept_ready(state->socket_.get(), either.get_token());
        if (accepted) co_return track(state, std::move(*accepted));
        // EINVAL: the socket no longer listens; the cluster is stopping, and what was queued
        // on it comes through the primary.
        if (accepted.error() == std::errc::invalid_argument) state->socket_stopped_ = true;
        if (state->takes_handed_only()) co_return co_await take_handed(std::move(state));
        // Woken for a handed connection that another accept took first: wait again.
        if (accepted.error() == std::errc::operation_canceled && !mine.stop_requested() &&
            !state->stop_.stop_requested())
            continue;
        co_return accepted.error();
    }
}

CLUSTER_DECL io::task<result<tcp_stream>> listener::accept_ready(int fd, std::stop_token stop) {
    for (;;) {
        // Readiness first, even with connections queued: accept4() alone would take the whole
        // queue in one turn of the loop, before any accepted connection is served.
        auto ready = co_await io::poll(fd, POLLIN).with_stop_token(stop);
        if (!ready) co_return ready.error();
        sockaddr_storage peer{};
        socklen_t len = sizeof peer;
        unique_fd socket(::accept4(fd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC));
        if (socket) {
            const auto from = endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&peer), len);
            co_return tcp_stream(std::move(socket), from ? *from : endpoint{});
        }
        // Another worker took it, or a client gave up before it was accepted: neither is
        // this worker's failure.
        const int err = errno;
        if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR && err != ECONNABORTED && err != EPROTO)
            co_return errno_code(err);
    }
}

}  // namespace cluster::net
