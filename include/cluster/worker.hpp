// cluster::worker<P>: a worker process's side of the cluster, in the protocol P — its id and slot,
// messages from and to the primary, requests both ways, messages to other workers,
// listening, readiness, and leaving gracefully. The work is detail::worker_core's.
#pragma once

#include <coroutine>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include <cluster/detail/boxed_message.hpp>
#include <cluster/detail/link.hpp>
#include <cluster/detail/worker_core.hpp>
#include <cluster/hand_over.hpp>
#include <cluster/incoming.hpp>
#include <cluster/io/awaited_temporary.hpp>
#include <cluster/io/task.hpp>
#include <cluster/net/endpoint.hpp>
#include <cluster/net/listener.hpp>
#include <cluster/net/schedule.hpp>
#include <cluster/net/udp_endpoint.hpp>
#include <cluster/net/udp_socket.hpp>
#include <cluster/overload.hpp>
#include <cluster/result.hpp>
#include <cluster/wire/frame.hpp>
#include <cluster/wire/protocol.hpp>

namespace cluster {

namespace detail {
// The user's message in m, as the type of protocol P's it is.
template <class P>
incoming<P> unboxed(incoming<erased>&& m) {
    return incoming<P>{std::move(unbox<P>(m.value)), m.from, m.request_tag};
}
}  // namespace detail

template <class P>
class worker : public detail::link_end<P> {
    // The inbox's wait, handing out the message as P's.
    template <class Taker>
    struct typed_take {
        Taker taker;
        bool await_ready() { return taker.await_ready(); }
        template <class Promise>
        void await_suspend(std::coroutine_handle<Promise> h) {
            taker.await_suspend(h);
        }
        std::optional<incoming<P>> await_resume() {
            auto m = taker.await_resume();
            if (!m) return std::nullopt;
            return detail::unboxed<P>(std::move(*m));
        }
    };

public:
    using main_function = std::function<io::task<void>(worker&)>;

    explicit worker(detail::worker_core& core) noexcept : detail::link_end<P>(core.primary_link()), core_(core) {}
    worker(const worker&) = delete;
    worker& operator=(const worker&) = delete;

    [[nodiscard]] unsigned id() const noexcept { return core_.id(); }
    // The slot this worker fills (worker_handle::slot()): a worker that replaces another has
    // a new id, and the same slot.
    [[nodiscard]] unsigned slot() const noexcept { return core_.slot(); }
    [[nodiscard]] pid_t pid() const noexcept { return core_.pid(); }

    // The next message from the primary (or, routed, from another worker); nothing once
    // the primary has disconnected this worker or gone away.
    [[nodiscard]] auto receive() { return typed_take<decltype(core_.inbox().take())>{core_.inbox().take()}; }

    // The next message that is a T; other messages stay for receive().
    template <class T>
        requires wire::message_of<T, P>
    io::task<std::optional<incoming<T>>> receive() {
        auto m = co_await core_.inbox().take([](const incoming<detail::erased>& candidate,
                                                std::uint64_t id) noexcept { return candidate.value.type_id == id; },
                                             P::template id<T>);
        if (!m) co_return std::nullopt;
        co_return incoming<T>{std::move(std::get<T>(detail::unbox<P>(m->value))), m->from, m->request_tag};
    }

    // To another worker, through the primary, or straight from one thread worker to another;
    // dropped if that worker is gone. An rvalue (or hand_over(msg)) is given away, as send()'s
    // is: between threads it arrives as itself.
    template <class T>
        requires wire::message_of<detail::message_type<T>, P>
    [[nodiscard]] auto send_to(unsigned worker_id, T&& msg) {
        io::refuse_awaited_temporary<T>();
        if (worker_id == 0 || worker_id == wire::frame_flags::all_workers)
            throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                                    "cluster: send_to() needs a worker id (use send() for the primary)");
        return this->link_.template send_routed<P>(detail::forward_message(std::forward<T>(msg)), worker_id);
    }

    // To every other worker, through the primary. msg is copied, whatever it is passed as:
    // every worker gets one of its own.
    template <class T>
        requires wire::message_of<std::remove_cvref_t<T>, P>
    [[nodiscard]] auto broadcast(T&& msg) {
        io::refuse_awaited_temporary<T>();
        return this->link_.template send_user<P>(msg, wire::frame_flags::all_workers, wire::frame_flags::routed);
    }

    // Listens on `at` the way `how` says (see schedule): the primary opens the socket, or
    // shares the one it has, and emits a listening event. Workers that listen on the same
    // endpoint share its socket. Port 0 asks for a socket of one's own: a worker's first
    // listener on "127.0.0.1:0" shares its port with every other worker's first, its second
    // gets another port (as Node keys them by index). A relative Unix path is this worker's
    // working directory's; "fd:name" is a socket the primary adopted. A listener closed may be
    // opened again; once no worker listens, the primary closes the socket. Throws
    // std::system_error naming the endpoint and the step that failed.
    // Without options, they are made here, not as a default argument: that would be a
    // temporary with a destructor (the sticky key's name) in the caller's co_await, which
    // GCC 12 destroys wrongly (docs/runtime.md).
    io::task<net::listener> listen(const net::endpoint& at, net::schedule how = net::schedule::round_robin) {
        return core_.listen(at, how, net::listener_options{});
    }
    io::task<net::listener> listen(const net::endpoint& at, net::schedule how, net::listener_options o) {
        return core_.listen(at, how, std::move(o));
    }

    // The same, with the failure as a value.
    io::task<result<net::listener>> try_listen(const net::endpoint& at,
                                               net::schedule how = net::schedule::round_robin) {
        return core_.try_listen(at, how, net::listener_options{});
    }
    io::task<result<net::listener>> try_listen(const net::endpoint& at, net::schedule how, net::listener_options o) {
        return core_.try_listen(at, how, std::move(o));
    }

    // A UDP socket on `at` (Node's dgram in a cluster), which the primary opens: one every
    // worker receives from (shared, the default, as Node does), or one per worker slot that
    // the slot's next worker reuses (reuseport). Other schedules are EINVAL: UDP has no
    // connections to hand on. Workers that listen on the same endpoint text share it, port 0
    // included. Throws std::system_error naming the endpoint and the step that failed.
    io::task<net::udp_socket> listen(const net::udp_endpoint& at, net::schedule how = net::schedule::shared,
                                     net::udp_options o = {}) {
        return core_.listen(at, how, std::move(o));
    }

    // The same, with the failure as a value.
    io::task<result<net::udp_socket>> try_listen(const net::udp_endpoint& at, net::schedule how = net::schedule::shared,
                                                 net::udp_options o = {}) {
        return core_.try_listen(at, how, std::move(o));
    }

    // Tells the primary that `listening_fd`, a socket this worker opened itself, listens:
    // it emits a listening event.
    io::task<result<void>> announce_listening(int listening_fd) { return core_.announce_listening(listening_fd); }

    // Tells the primary this worker is ready to serve. With primary_options::wait_ready, a
    // rolling reload waits for it, instead of for online, before it retires an old worker.
    io::task<result<void>> ready() { return core_.ready(); }

    // Leaves the cluster: the primary learns this worker chose to (exited_after_disconnect),
    // everything queued is delivered, and the channel closes; receive() then ends. Its
    // listeners accept no more; connections handed to them and not taken go to other workers.
    io::task<result<void>> disconnect() { return core_.disconnect(); }

    [[nodiscard]] bool is_connected() const noexcept { return core_.is_connected(); }
    // What this worker had to refuse or drop since it started (see docs/reliability.md).
    [[nodiscard]] overload_counts overload() const noexcept { return core_.overload(); }
    // Requested once the primary disconnects this worker or goes away: pass it to the loops
    // that should end then (an accept loop, a timer).
    [[nodiscard]] std::stop_token stop_token() const noexcept { return core_.stop_token(); }
    [[nodiscard]] bool stopping() const noexcept { return core_.stopping(); }
    // Why the primary disconnected this worker, known once stop_token() is requested:
    // replaced (a rolling reload, a recycle, a binary upgrade) or going_away (a stop, a
    // scale-down, a disconnect, the primary gone); staying before. websocket::group's
    // close_all_on(w) closes with 1012 or 1001 by it.
    [[nodiscard]] cluster::leave_reason leave_reason() const noexcept { return core_.leave_reason(); }
    // The socket to the primary, for diagnostics and tests: bytes written to it directly
    // bypass the protocol (and a primary cuts off a worker whose bytes are not frames).
    [[nodiscard]] int native_handle() const noexcept { return core_.native_handle(); }

private:
    detail::worker_core& core_;
};

}  // namespace cluster
