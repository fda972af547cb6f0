// cluster::detail::control_server's definitions. Inline in a header-only build; compiled once
// into cluster::core otherwise.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <optional>
#include <span>
#include <system_error>
#include <utility>
#include <variant>

#include <cluster/detail/control_answer.hpp>
#include <cluster/detail/control_server.hpp>
#include <cluster/io/ops.hpp>
#include <cluster/io/timeout.hpp>
#include <cluster/io/transfer.hpp>
#include <cluster/io/when_all.hpp>

namespace cluster::detail {

namespace control_io {

// Bytes up to the first newline (which is dropped), or to the end of the stream; message_size
// once `max` bytes came without one.
inline io::task<result<std::string>> read_line(int fd, std::size_t max) {
    std::string line;
    char buf[256];
    for (;;) {
        const std::size_t room = std::min(sizeof buf, max - line.size());
        auto n = co_await io::recv(fd, std::span(buf, room));
        if (!n) co_return n.error();
        if (*n == 0) co_return line;
        line.append(buf, *n);
        if (const auto end = line.find('\n'); end != std::string::npos) {
            line.resize(end);
            co_return line;
        }
        if (line.size() >= max) co_return std::make_error_code(std::errc::message_size);
    }
}

// Returns once the client has closed its end (or it failed): whatever it sends meanwhile is ignored.
inline io::task<void> until_closed(int fd) {
    char buf[256];
    for (;;) {
        auto n = co_await io::recv(fd, std::span(buf));
        if (!n || *n == 0) co_return;
    }
}

// Takes a client off the server's list when its task ends, however it ends.
class client_entry {
public:
    client_entry(std::set<int>& open, int fd) noexcept : open_(open), fd_(fd) {}
    client_entry(const client_entry&) = delete;
    client_entry& operator=(const client_entry&) = delete;
    ~client_entry() { open_.erase(fd_); }

private:
    std::set<int>& open_;
    int fd_;
};

// What a client sent and nobody read makes close() reset the connection (for a Unix socket as
// for TCP), and the client loses the answer before it: so what is there goes first. Bounded:
// a client that keeps sending gets its reset.
inline void drop_unread(int fd) noexcept {
    char buf[4096];
    for (int i = 0; i < 16 && ::recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0; ++i) {}
}

inline std::string milliseconds_text(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

}  // namespace control_io

CLUSTER_DECL control_server::control_server(const std::string& path, control_target& target, overload_counts& counts,
                                            bool successor, control_limits limits)
    : target_(target), limits_(limits), path_(path), beside_(path + "." + std::to_string(::getpid())) {
    const std::string named = "cluster: control socket " + path + ": ";
    const auto at = net::endpoint::unix_socket(path);
    if (at.is_abstract() || path.empty())
        throw std::system_error(std::make_error_code(std::errc::invalid_argument), named + "give a file's path");
    if (!successor && net::detail::probe_unix_path(at) == net::detail::unix_path_state::live_socket)
        throw std::system_error(std::make_error_code(std::errc::address_in_use),
                                named + "a process listens there already (another primary?)");
    // Bound beside the path, then renamed over it: a successor takes the path from its
    // predecessor without a moment when it names nothing.
    net::listen_options o;
    o.mode = 0600;
    o.backlog = 64;
    const auto beside = net::endpoint::unix_socket(beside_);
    socket_ = net::listen_socket(beside, o);
    file_ = net::socket_file::at(beside);
    if (!successor) {
        if (auto taken = take_path(); !taken) {
            file_.remove();
            throw std::system_error(taken.error(), named + "cannot move " + beside_ + " there");
        }
    }
    acceptor_ = std::make_shared<acceptor>(
        socket_.get(), [this](unique_fd client) { admit(std::move(client)); }, counts);
    tasks_.spawn(acceptor::run(acceptor_));
}

CLUSTER_DECL control_server::~control_server() { file_.remove(); }

CLUSTER_DECL result<void> control_server::take_path() {
    if (::rename(beside_.c_str(), path_.c_str()) != 0) return errno_code(errno);
    file_ = net::socket_file::at(net::endpoint::unix_socket(path_));
    return {};
}

CLUSTER_DECL void control_server::close_in_forked_child() const noexcept {
    acceptor_->close_queued_in_forked_child();
    ::close(socket_.get());
    for (const int fd : open_) ::close(fd);
}

CLUSTER_DECL void control_server::admit(unique_fd client) {
    if (open_.size() >= limits_.max_clients) {
        busy_log_.hit("control socket: " + std::to_string(open_.size()) + " clients already: refused another");
        // A fresh socket's buffer takes a line this short: the send cannot block.
        const auto e = control_error("too many control clients at once (" + std::to_string(limits_.max_clients) +
                                     "): try again shortly");
        (void)::send(client.get(), e.data(), e.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        control_io::drop_unread(client.get());
        return;
    }
    open_.insert(client.get());
    tasks_.spawn(serve(*this, std::move(client)));
}

CLUSTER_DECL std::string control_server::refusal(int client) {
    ucred peer{};
    socklen_t size = sizeof peer;
    if (::getsockopt(client, SOL_SOCKET, SO_PEERCRED, &peer, &size) != 0)
        return "cannot tell who is asking: " + errno_code(errno).message();
    const uid_t own = ::geteuid();
    if (peer.uid == own || peer.uid == 0) return {};
    refused_log_.hit("control socket: refused uid " + std::to_string(peer.uid) + " (pid " + std::to_string(peer.pid) +
                     "): only uid " + std::to_string(own) + " and root may use it");
    return "permission denied: only uid " + std::to_string(own) + " (the primary's user) and root may use this socket";
}

CLUSTER_DECL io::task<void> control_server::serve(control_server& self, unique_fd client) {
    const int fd = client.get();
    const control_io::client_entry listed(self.open_, fd);
    std::string error = self.refusal(fd);
    if (error.empty()) {
        auto got =
            co_await io::with_timeout(control_io::read_line(fd, self.limits_.max_request), self.limits_.request_time);
        if (got) {
            auto parsed = parse_control_request(*got);
            if (auto* refused = std::get_if<control_refusal>(&parsed)) {
                error = std::move(refused->error);
            } else if (const auto& r = std::get<control_request>(parsed); r.command == control_command::logs) {
                co_await self.follow_logs(fd);
            } else {
                std::string answered;
                try {
                    answered = co_await self.answer(r);
                } catch (const std::exception& e) {
                    answered = control_error(e.what());
                }
                (void)co_await self.send_bounded(fd, std::move(answered));
            }
        } else if (got.error() == std::errc::timed_out) {
            error = "no whole request line within " + control_io::milliseconds_text(self.limits_.request_time);
        } else if (got.error() == std::errc::message_size) {
            error = "request longer than " + std::to_string(self.limits_.max_request) + " bytes: send one line";
        }
    }
    if (!error.empty()) (void)co_await self.send_bounded(fd, control_error(error));
    // The answer is whole; the client closes once it has read it, and what it sent meanwhile
    // is read and dropped, so that closing cannot reset the answer away (see drop_unread()).
    ::shutdown(fd, SHUT_WR);
    (void)co_await io::with_timeout(control_io::until_closed(fd), self.limits_.answer_time);
}

CLUSTER_DECL io::task<std::string> control_server::answer(const control_request& r) {
    switch (r.command) {
    case control_command::status: {
        const auto now = target_.status();
        const auto [before, window] = history_.against(now, status_history::clock::now());
        co_return status_answer(now, before, window);
    }
    case control_command::reload: {
        const auto e = co_await target_.reload();
        json_writer w;
        w.boolean("ok", e.ok).count("replaced", e.replaced);
        if (!e.ok) w.string("error", "the reload stopped: " + e.what);
        co_return w.line();
    }
    case control_command::scale: {
        const auto failed = co_await target_.scale(r.workers);
        if (!failed.empty()) co_return control_error(failed);
        co_return json_writer().boolean("ok", true).count("workers", r.workers).line();
    }
    case control_command::stop:
        target_.stop();
        co_return json_writer().boolean("ok", true).boolean("stopping", true).line();
    case control_command::upgrade: {
        const auto why = target_.upgrade();
        if (!why.empty()) co_return control_error("upgrade refused: " + why);
        co_return json_writer().boolean("ok", true).boolean("upgrading", true).line();
    }
    case control_command::logs: break;
    }
    co_return control_error("logs is answered by following them");
}

CLUSTER_DECL io::task<void> control_server::follow_logs(int client) {
    auto& tap = target_.logs();
    auto f = tap.follow();
    const auto following = json_writer().boolean("ok", true).boolean("following", true).line();
    if (co_await send_bounded(client, following))
        (void)co_await io::when_any(copy_logs(client, f), control_io::until_closed(client));
    tap.forget(f);
}

CLUSTER_DECL io::task<void> control_server::copy_logs(int client, std::shared_ptr<log_tap::follower> f) {
    while (auto lines = co_await f->lines.take())
        if (!co_await send_bounded(client, std::move(*lines))) co_return;
    if (f->dropped)
        (void)co_await send_bounded(client, "[cluster] dropped: this follower fell " +
                                                std::to_string(follower_backlog) + " bytes behind\n");
}

CLUSTER_DECL io::task<bool> control_server::send_bounded(int client, std::string text) {
    auto sent = co_await io::with_timeout(io::send_all(client, std::as_bytes(std::span(text))), limits_.answer_time);
    co_return sent.has_value();
}

}  // namespace cluster::detail
