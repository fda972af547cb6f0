// cluster::asio::basic_acceptor: a worker's net::listener as an Asio I/O object — async_accept()
// gives each connection, under every schedule and through a drain, as an Asio socket and its lease.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <stop_token>
#include <system_error>
#include <type_traits>
#include <utility>

#include <cluster/asio/adopt.hpp>
#include <cluster/asio/connection.hpp>
#include <cluster/asio/detail/for_handler.hpp>
#include <cluster/io/task.hpp>
#include <cluster/net/listener.hpp>
#include <cluster/result.hpp>

namespace cluster::asio {

namespace detail {

// The next connection of `l`, adopted as a Socket of `where`. `cancel` is the acceptor's.
template <class Socket, class Executor>
io::task<result<connection<Socket>>> accept_as(net::listener& l, Executor where, std::stop_token cancel) {
    auto mine = co_await io::current_stop_token();
    std::stop_source either;
    const std::stop_callback on_mine(mine, net::detail::stop_with{&either});
    const std::stop_callback on_cancel(std::move(cancel), net::detail::stop_with{&either});
    auto accepted = co_await l.accept().with_stop_token(either.get_token());
    if (!accepted) co_return accepted.error();
    co_return try_adopt<Socket>(std::move(where), std::move(*accepted));
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

}  // namespace detail

template <class Protocol = boost::asio::ip::tcp, class Executor = boost::asio::any_io_executor>
class basic_acceptor {
public:
    using executor_type = Executor;
    using protocol_type = Protocol;
    // The socket async_accept() gives, on this acceptor's executor.
    using socket_type = boost::asio::basic_stream_socket<Protocol, Executor>;

    basic_acceptor(const executor_type& ex, net::listener l) : executor_(ex), listener_(std::move(l)) {}
    template <class ExecutionContext>
        requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
    basic_acceptor(ExecutionContext& context, net::listener l) : basic_acceptor(context.get_executor(), std::move(l)) {}
    basic_acceptor(basic_acceptor&&) noexcept = default;
    basic_acceptor& operator=(basic_acceptor&&) noexcept = default;
    ~basic_acceptor() { cancel(); }

    [[nodiscard]] executor_type get_executor() const noexcept { return executor_; }
    // The cluster side: local(), connections(), accepted(), drained(), close().
    [[nodiscard]] net::listener& listener() noexcept { return listener_; }
    [[nodiscard]] bool is_open() const noexcept { return listener_.is_open(); }

    // Stops accepting, as listener::close(): accepts waiting end with cluster::errc::listener_closed,
    // and the primary takes this worker off the socket.
    void close() noexcept { listener_.close(); }
    // Ends the accepts waiting now, with asio::error::operation_aborted; later ones wait again.
    void cancel() noexcept { std::exchange(cancel_, std::stop_source{}).request_stop(); }

    // The next connection: (error_code, connection<socket_type>), the socket on this acceptor's
    // executor. Once the worker is leaving (the primary disconnected it) or the listener is
    // closed, the connections already handed to it come first, then cluster::errc::listener_closed.
    // A connection the listener gave that is no connected stream of Protocol fails as
    // adopt() says. Answers the handler's cancellation slot (operation_aborted).
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
            initiate_accept<socket, Executor1>{this}, token, ex);
    }

private:
    template <class Socket, class Executor1>
    struct initiate_accept {
        basic_acceptor* self;
        template <class Handler>
        void operator()(Handler&& handler, const Executor1& ex) const {
            auto accept = detail::accept_as<Socket>(self->listener_, ex, self->cancel_.get_token());
            detail::start_for_handler(std::move(accept), std::forward<Handler>(handler),
                                      detail::pass_connection<Executor1>{ex}, self->executor_);
        }
    };

    executor_type executor_;
    net::listener listener_;
    std::stop_source cancel_;
};

using acceptor = basic_acceptor<>;

}  // namespace cluster::asio
