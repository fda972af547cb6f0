// cluster::asio::basic_acceptor: a worker's net::listener as an Asio I/O object — async_accept()
// gives each connection, under every schedule and through a drain, as an Asio socket and its lease.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include <cluster/asio/adopt.hpp>
#include <cluster/asio/connection.hpp>
#include <cluster/asio/detail/for_handler.hpp>
#include <cluster/asio/native_acceptor.hpp>
#include <cluster/io/task.hpp>
#include <cluster/net/listener.hpp>
#include <cluster/result.hpp>

namespace cluster::asio {

namespace detail {

// What an acceptor and its pending accepts share: it may move, or go, while they wait.
template <class Protocol, class Executor>
struct acceptor_state {
    struct closer {
        acceptor_state* state;
        void operator()() const noexcept {
            boost::system::error_code ignored;
            if (state->native) state->native->close(ignored);
        }
    };
    struct canceller {
        acceptor_state* state;
        void operator()() const noexcept {
            boost::system::error_code ignored;
            if (state->native) state->native->cancel(ignored);
        }
    };

    acceptor_state(const Executor& ex, net::listener l) : listener(std::move(l)) {
        std::string what;
        if (auto own = detail::native_acceptor<Protocol>(ex, listener, what)) native.emplace(std::move(*own));
        // Leaving (or closed), the worker must hold no copy of the socket: it keeps listening
        // while a descriptor for it is open, and the primary closes it once nobody listens.
        if (native) close_native.emplace(listener.stop_token(), closer{this});
    }
    acceptor_state(const acceptor_state&) = delete;
    acceptor_state& operator=(const acceptor_state&) = delete;

    net::listener listener;
    // shared, reuseport: Asio's own acceptor on a duplicate of the listener's socket, so that a
    // connection costs what it costs Asio alone.
    std::optional<boost::asio::basic_socket_acceptor<Protocol, Executor>> native;
    std::optional<std::stop_callback<closer>> close_native;
    // The primary handed a connection over: the native accepts end, and go through the listener.
    std::optional<std::stop_callback<canceller>> cancel_on_handed;
    std::stop_source cancel;  // acceptor::cancel() for accepts through the listener
};

// The next connection of the acceptor's listener, adopted as a Socket of `where`. The state is
// held to the end: the acceptor may go meanwhile.
template <class Socket, class State, class Executor>
io::task<result<connection<Socket>>> accept_as(std::shared_ptr<State> state, Executor where) {
    auto mine = co_await io::current_stop_token();
    std::stop_source either;
    const std::stop_callback on_mine(mine, net::detail::stop_with{&either});
    const std::stop_callback on_cancel(state->cancel.get_token(), net::detail::stop_with{&either});
    net::listener& l = state->listener;
    auto accepted = co_await l.accept().with_stop_token(either.get_token());
    if (!accepted) co_return accepted.error();
    l.answer_now();  // an Asio socket closes without a shutdown
    std::string what;
    if (const int family = l.local().family(); family_fits<typename Socket::protocol_type>(family))
        co_return adopt_connected<Socket>(std::move(where), *accepted,
                                          protocol_for<typename Socket::protocol_type>(family), what);
    co_return detail::adopt<Socket>(std::move(where), *accepted, what);
}

// Asio's word for a cancelled operation, where cluster says operation_canceled.
inline boost::system::error_code asio_error(const std::error_code& e) {
    if (e == std::errc::operation_canceled) return boost::asio::error::operation_aborted;
    return e;
}

// Completes an accept's handler: the connection, or an error and a socket that holds none.
template <class Executor>
struct pass_connection {
    Executor executor;

    template <class Handler, class Socket>
    void operator()(Handler&& h, outcome<result<connection<Socket>>>&& o) const {
        using boost::system::error_code;
        if (o.error) {
            try {
                std::rethrow_exception(o.error);
            } catch (const std::system_error& e) {
                return std::forward<Handler>(h)(asio_error(e.code()), none<Socket>());
            } catch (...) {
                return std::forward<Handler>(h)(error_code(boost::asio::error::no_memory), none<Socket>());
            }
        }
        if (!*o.value) return std::forward<Handler>(h)(asio_error(o.value->error()), none<Socket>());
        std::forward<Handler>(h)(error_code{}, std::move(**o.value));
    }

    template <class Socket>
    connection<Socket> none() const {
        return connection<Socket>{Socket(executor), {}};
    }
};

// One accept: on the listener's own socket through Asio while the listener accepts there, else
// (the primary hands connections over, a drain, max_connections) through the listener itself.
template <class Protocol, class Executor, class Socket, class Executor1, class Handler>
class accept_op {
public:
    accept_op(std::shared_ptr<acceptor_state<Protocol, Executor>> state, Executor io_executor, Executor1 ex,
              Handler handler)
        : state_(std::move(state)), io_executor_(std::move(io_executor)), ex_(std::move(ex)),
          handler_(std::move(handler)) {}

    void start() {
        if (!state_->native || !state_->native->is_open() || !state_->listener.accepts_on_socket())
            return by_listener();
        auto& native = *state_->native;
        handed_ = state_->listener.handed_token();
        cancelled_ = state_->cancel.get_token();
        by_slot_ = boost::asio::cancellation_state(boost::asio::get_associated_cancellation_slot(handler_),
                                                   boost::asio::enable_total_cancellation());
        state_->cancel_on_handed.emplace(handed_, typename acceptor_state<Protocol, Executor>::canceller{state_.get()});
        native.async_accept(ex_, std::move(*this));
    }

    void operator()(const boost::system::error_code& ec, Socket socket) {
        if (!ec) return complete(ec, connection<Socket>{std::move(socket), state_->listener.count_accepted()});
        const bool aborted = ec == boost::asio::error::operation_aborted;
        // The caller's cancel ends it, even where a connection handed over at the same moment
        // ended the native accept too: that connection waits for the next accept.
        if (aborted && (cancelled_.stop_requested() || by_slot_.cancelled() != boost::asio::cancellation_type::none))
            return complete(ec, connection<Socket>{std::move(socket), {}});
        // Ended for a connection the primary handed over: that one, or the next, comes next.
        if (aborted && handed_.stop_requested()) return start();
        // The socket was stopped (a graceful stop) or given up (leaving): what is left comes
        // through the listener.
        if (aborted || ec == boost::asio::error::invalid_argument || ec == boost::asio::error::bad_descriptor)
            return by_listener();
        complete(ec, connection<Socket>{std::move(socket), {}});
    }

    // What the native accept's completion runs with: the handler's.
    using executor_type = boost::asio::associated_executor_t<Handler, Executor>;
    executor_type get_executor() const noexcept { return boost::asio::get_associated_executor(handler_, io_executor_); }
    // The handler's, through by_slot_, which remembers whether it was used.
    using cancellation_slot_type = boost::asio::cancellation_slot;
    cancellation_slot_type get_cancellation_slot() const noexcept { return by_slot_.slot(); }
    using allocator_type = boost::asio::associated_allocator_t<Handler>;
    allocator_type get_allocator() const noexcept { return boost::asio::get_associated_allocator(handler_); }

private:
    void by_listener() {
        start_for_handler(accept_as<Socket>(state_, ex_), std::move(handler_), pass_connection<Executor1>{ex_},
                          io_executor_);
    }

    void complete(const boost::system::error_code& ec, connection<Socket>&& c) {
        auto h = std::move(handler_);
        std::move(h)(ec, std::move(c));
    }

    std::shared_ptr<acceptor_state<Protocol, Executor>> state_;
    Executor io_executor_;
    Executor1 ex_;
    Handler handler_;
    std::stop_token handed_;                   // the listener's handed_token() as the native accept began
    std::stop_token cancelled_;                // and acceptor::cancel()'s
    boost::asio::cancellation_state by_slot_;  // the handler's cancellation slot, relayed to the native accept
};

}  // namespace detail

template <class Protocol = boost::asio::ip::tcp, class Executor = boost::asio::any_io_executor>
class basic_acceptor {
public:
    using executor_type = Executor;
    using protocol_type = Protocol;
    // The socket async_accept() gives, on this acceptor's executor.
    using socket_type = boost::asio::basic_stream_socket<Protocol, Executor>;

    basic_acceptor(const executor_type& ex, net::listener l)
        : executor_(ex), state_(std::make_shared<detail::acceptor_state<Protocol, Executor>>(ex, std::move(l))) {}
    template <class ExecutionContext>
        requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
    basic_acceptor(ExecutionContext& context, net::listener l) : basic_acceptor(context.get_executor(), std::move(l)) {}
    basic_acceptor(basic_acceptor&&) noexcept = default;
    basic_acceptor& operator=(basic_acceptor&& other) noexcept {
        if (this != &other) {
            close();
            executor_ = std::move(other.executor_);
            state_ = std::move(other.state_);
        }
        return *this;
    }
    ~basic_acceptor() { close(); }

    [[nodiscard]] executor_type get_executor() const noexcept { return executor_; }
    // The cluster side: local(), connections(), accepted(), drained().
    [[nodiscard]] net::listener& listener() noexcept { return state_->listener; }
    [[nodiscard]] bool is_open() const noexcept { return state_ && state_->listener.is_open(); }

    // Stops accepting, as listener::close(): accepts waiting end with cluster::errc::listener_closed,
    // and the primary takes this worker off the socket.
    void close() noexcept {
        if (state_) state_->listener.close();
    }
    // Ends the accepts waiting now, with asio::error::operation_aborted; later ones wait again.
    void cancel() noexcept {
        if (!state_) return;
        std::exchange(state_->cancel, std::stop_source{}).request_stop();
        boost::system::error_code ignored;
        if (state_->native) state_->native->cancel(ignored);
    }

    // The next connection: (error_code, connection<socket_type>), the socket on this acceptor's
    // executor. Under shared and reuseport Asio accepts on the listener's own socket, as it would
    // alone; where the primary hands connections over, they come through the listener. Once the
    // worker is leaving (the primary disconnected it) or the listener is closed, the connections
    // already handed to it come first, then cluster::errc::listener_closed. Answers the handler's
    // cancellation slot and cancel() (operation_aborted).
    template <class CompletionToken = boost::asio::default_completion_token_t<executor_type>>
    auto async_accept(CompletionToken&& token = boost::asio::default_completion_token_t<executor_type>()) {
        return async_accept(executor_, std::forward<CompletionToken>(token));
    }

    // The same, the socket on `ex` (a strand of its own, say).
    template <class Executor1, class CompletionToken = boost::asio::default_completion_token_t<executor_type>>
        requires(!std::is_convertible_v<Executor1&, boost::asio::execution_context&>)
    auto async_accept(const Executor1& ex,
                      CompletionToken&& token = boost::asio::default_completion_token_t<executor_type>()) {
        using socket = boost::asio::basic_stream_socket<Protocol, Executor1>;
        return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code, connection<socket>)>(
            initiate_accept<socket, Executor1>{state_, executor_}, token, ex);
    }

private:
    template <class Socket, class Executor1>
    struct initiate_accept {
        std::shared_ptr<detail::acceptor_state<Protocol, Executor>> state;
        Executor io_executor;
        template <class Handler>
        void operator()(Handler&& handler, const Executor1& ex) const {
            detail::accept_op<Protocol, Executor, Socket, Executor1, std::decay_t<Handler>>(
                state, io_executor, ex, std::forward<Handler>(handler))
                .start();
        }
    };

    executor_type executor_;
    std::shared_ptr<detail::acceptor_state<Protocol, Executor>> state_;
};

using acceptor = basic_acceptor<>;

}  // namespace cluster::asio
