// cluster::worker<P>: a worker process's side of the cluster — its id, messages from and to
// the primary, requests both ways, messages to other workers, heartbeats, and leaving gracefully.
#pragma once

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>

#include <cluster/control.hpp>
#include <cluster/io/mailbox.hpp>
#include <cluster/io/ops.hpp>
#include <cluster/io/scope.hpp>
#include <cluster/io/task.hpp>
#include <cluster/io/timeout.hpp>
#include <cluster/ipc/channel.hpp>
#include <cluster/link.hpp>
#include <cluster/message.hpp>

namespace cluster {

namespace detail {
// A socket's local address as text and port, for a listening event.
inline result<control::listening> describe_listening(int fd) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return errno_code(errno);
    control::listening out;
    out.family = addr.ss_family;
    char text[INET6_ADDRSTRLEN] = {};
    if (addr.ss_family == AF_INET) {
        const auto& in = reinterpret_cast<const sockaddr_in&>(addr);
        ::inet_ntop(AF_INET, &in.sin_addr, text, sizeof text);
        out.address = text;
        out.port = ntohs(in.sin_port);
    } else if (addr.ss_family == AF_INET6) {
        const auto& in6 = reinterpret_cast<const sockaddr_in6&>(addr);
        ::inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof text);
        out.address = text;
        out.port = ntohs(in6.sin6_port);
    } else if (addr.ss_family == AF_UNIX) {
        const auto& un = reinterpret_cast<const sockaddr_un&>(addr);
        out.address.assign(un.sun_path, strnlen(un.sun_path, sizeof un.sun_path));
    }
    return out;
}

// How long a finished worker waits for its last messages to reach the primary.
inline constexpr std::chrono::seconds final_flush_timeout{5};
} // namespace detail

template <class P>
class worker : public link_end<P> {
    using link_end<P>::link_;
    using link_end<P>::requests_;

public:
    using typename link_end<P>::link_protocol;
    using main_function = std::function<task<void>(worker&)>;

    worker(unsigned id, unique_fd link) : link_end<P>(std::move(link)), id_(id) {}

    [[nodiscard]] unsigned id() const noexcept { return id_; }
    [[nodiscard]] pid_t pid() const noexcept { return ::getpid(); }

    // The next message from the primary (or, routed, from another worker); nothing once
    // the primary has disconnected this worker or gone away.
    [[nodiscard]] auto receive() { return inbox_.take(); }

    // The next message that is a T; other messages stay for receive().
    template <class T>
        requires wire::message_of<T, P>
    task<std::optional<incoming<T>>> receive() {
        auto m = co_await inbox_.take([](const message<P>& m) noexcept { return m.template is<T>(); });
        if (!m) co_return std::nullopt;
        co_return incoming<T>{std::move(std::get<T>(m->value)), m->from, m->request_tag};
    }

    // To another worker, through the primary; dropped if that worker is gone.
    template <class T>
        requires wire::message_of<T, P>
    [[nodiscard]] auto send_to(unsigned worker_id, const T& msg) {
        if (worker_id == 0 || worker_id == wire::frame_flags::all_workers)
            throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                                    "cluster: send_to() needs a worker id (use send() for the primary)");
        return link_.send(msg, worker_id, wire::frame_flags::routed);
    }

    // To every other worker, through the primary.
    template <class T>
        requires wire::message_of<T, P>
    [[nodiscard]] auto broadcast(const T& msg) {
        return link_.send(msg, wire::frame_flags::all_workers, wire::frame_flags::routed);
    }

    // Tells the primary that `listening_fd` listens: it emits a listening event.
    task<result<void>> announce_listening(int listening_fd) {
        auto described = detail::describe_listening(listening_fd);
        if (!described) co_return described.error();
        co_return co_await link_.send(*described);
    }

    // Tells the primary this worker is ready to serve. With primary_options::wait_ready, a
    // rolling reload waits for it, instead of for online, before it retires an old worker.
    task<result<void>> ready() {
        const control::ready r;
        co_return co_await link_.send(r);
    }

    // Leaves the cluster: the primary learns this worker chose to (exited_after_disconnect),
    // everything queued is delivered, and the channel closes; receive() then ends.
    task<result<void>> disconnect() {
        const control::leaving bye;
        auto sent = co_await link_.send(bye);
        if (!sent) co_return sent;
        co_return co_await link_.shutdown();
    }

    [[nodiscard]] bool is_connected() const noexcept { return link_.is_open() && !inbox_.closed(); }
    // Requested once the primary disconnects this worker or goes away: pass it to the loops
    // that should end then (an accept loop, a timer).
    [[nodiscard]] std::stop_token stop_token() const noexcept { return stopping_.get_token(); }
    [[nodiscard]] bool stopping() const noexcept { return stopping_.stop_requested(); }
    // The socket to the primary, for diagnostics and tests: bytes written to it directly
    // bypass the protocol (and a primary cuts off a worker whose bytes are not frames).
    [[nodiscard]] int native_handle() const noexcept { return link_.native_handle(); }

    // The worker process's life: say online, run main, deliver what it sent, and return
    // its exit code (1 if it threw).
    task<int> run(const main_function& main) {
        scope background;
        background_ = &background;
        background.spawn(pump(*this));
        const control::online hello{static_cast<std::int32_t>(::getpid())};
        (void)co_await link_.send(hello);
        int code = 0;
        try {
            co_await main(*this);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "cluster: worker %u: uncaught exception: %s\n", id_, e.what());
            code = 1;
        }
        (void)co_await with_timeout(link_.shutdown(), detail::final_flush_timeout);
        co_return code;
    }

private:
    static task<void> pump(worker& self) {
        while (auto e = co_await self.link_.receive_envelope()) {
            if (!self.dispatch(std::move(*e))) break;
        }
        self.inbox_.close();
        self.requests_.fail_all(make_error_code(errc::peer_gone));
        self.stopping_.request_stop();
    }

    // False once the primary has asked this worker to leave: nothing follows that.
    bool dispatch(ipc::envelope<link_protocol>&& e) {
        if (e.flags & wire::frame_flags::response) {
            (void)requests_.complete(e.tag, std::move(e.message));
            return true;
        }
        if (std::holds_alternative<control::disconnect>(e.message)) return false;
        if (auto* s = std::get_if<control::settings>(&e.message)) {
            apply(*s);
        } else if (auto m = detail::to_incoming<P>(std::move(e), from_primary)) {
            inbox_.push(std::move(*m));
            count_message();
        }
        return true;
    }

    void apply(const control::settings& s) {
        max_messages_ = s.max_messages;
        if (s.heartbeat_interval_ms > 0) background_->spawn(beat(*this, std::chrono::milliseconds(s.heartbeat_interval_ms)));
    }

    // max_messages: the primary replaces this worker (it keeps serving until disconnected).
    // Asked again after each max_messages more, in case that replacement failed (was not
    // ready in time): retried, but no faster than that, should replacements keep failing.
    void count_message() {
        if (max_messages_ != 0 && ++received_ % max_messages_ == 0) {
            const control::recycle r;
            (void)link_.send(r);
        }
    }

    // Heartbeats come from the loop itself, so they stop when code blocks it (a CPU-bound
    // loop, a blocking call) and not while it only keeps the loop busy. They go on after a
    // disconnect, while main finishes its work: that worker is not hung.
    static task<void> beat(worker& self, std::chrono::milliseconds every) {
        const control::heartbeat b;
        for (;;) {
            auto slept = co_await io::sleep_for(every);
            if (!slept) co_return;
            auto sent = co_await self.link_.send(b);
            if (!sent) co_return;
        }
    }

    unsigned id_;
    mailbox<message<P>> inbox_;
    std::stop_source stopping_;
    scope* background_ = nullptr;  // run()'s: the tasks that end with it
    std::uint64_t max_messages_ = 0;
    std::uint64_t received_ = 0;
};

} // namespace cluster
