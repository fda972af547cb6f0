// cluster::ipc::request_table<M>: requests waiting for their responses, by tag. A response
// completes the request with its tag; the end of the channel fails every one still waiting.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <optional>
#include <system_error>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include <cluster/error.hpp>
#include <cluster/io/awaited_temporary.hpp>
#include <cluster/io/detail/parked.hpp>
#include <cluster/io/task.hpp>
#include <cluster/io/timeout.hpp>
#include <cluster/ipc/channel.hpp>
#include <cluster/result.hpp>
#include <cluster/wire/frame.hpp>
#include <cluster/wire/protocol.hpp>

namespace cluster::ipc {

template <class M>
class request_table {
public:
    request_table() = default;
    request_table(const request_table&) = delete;
    request_table& operator=(const request_table&) = delete;

    // One request in flight: its tag while it lives, and the response once it comes.
    class slot : io::detail::parked {
    public:
        explicit slot(request_table& t) : table_(t), tag_(t.open(*this)) {}
        slot(const slot&) = delete;
        slot& operator=(const slot&) = delete;
        ~slot() {
            if (tag_) table_.pending_.erase(tag_);
        }

        [[nodiscard]] std::uint32_t tag() const noexcept { return tag_; }

        // The response; the table's error once it failed; operation_canceled on a stop.
        io::task<result<M>> response() { co_return co_await awaiter{*this}; }

    private:
        friend class request_table;
        struct awaiter {
            slot& s;
            bool await_ready() const noexcept { return s.done(); }
            template <class Promise>
            void await_suspend(std::coroutine_handle<Promise> h) {
                s.park(s.waiters_, h);
            }
            result<M> await_resume() {
                (void)s.resumed();
                if (s.value_) return std::move(*s.value_);
                if (s.error_) return s.error_;
                return std::make_error_code(std::errc::operation_canceled);
            }
        };

        [[nodiscard]] bool done() const noexcept { return value_.has_value() || static_cast<bool>(error_); }
        void finish() noexcept {
            table_.pending_.erase(std::exchange(tag_, 0));
            wake();
        }

        request_table& table_;
        std::optional<M> value_;
        std::error_code error_;
        io::detail::parked_list waiters_;
        // Last: open() may set error_, which must already be constructed by then.
        std::uint32_t tag_;
    };

    // Completes the request tagged `tag`; false when none waits (it timed out, or the
    // peer answered what was never asked).
    bool complete(std::uint32_t tag, M&& response) {
        auto it = pending_.find(tag);
        if (it == pending_.end()) return false;
        slot& s = *it->second;
        s.value_.emplace(std::move(response));
        s.finish();
        return true;
    }

    // Fails every request waiting, and every one made from now on.
    void fail_all(std::error_code ec) {
        error_ = ec;
        while (!pending_.empty()) {
            slot& s = *pending_.begin()->second;
            s.error_ = ec;
            s.finish();
        }
    }

    [[nodiscard]] std::size_t size() const noexcept { return pending_.size(); }

private:
    std::uint32_t open(slot& s) {
        if (error_) {
            s.error_ = error_;
            return 0;
        }
        // Tags wrap around after 2^32 requests; 0 means "no tag", and one still in use is skipped.
        do ++next_;
        while (next_ == 0 || pending_.contains(next_));
        pending_.emplace(next_, &s);
        return next_;
    }

    std::unordered_map<std::uint32_t, slot*> pending_;
    std::uint32_t next_ = 0;
    std::error_code error_;
};

// The response to `s` within `timeout`; duration::max() arms no timer: the wait lasts until
// the response or the end of the channel, for a caller that keeps its own deadlines.
template <class M, class Rep, class Period>
io::task<result<M>> response_within(typename request_table<M>::slot& s, std::chrono::duration<Rep, Period> timeout) {
    if (timeout == std::chrono::duration<Rep, Period>::max()) return s.response();
    return io::with_timeout(s.response(), timeout);
}

// Sends msg as a request over ch and waits up to `timeout` for the response, whatever its
// type; duration::max(): no limit. Errors: the send's, timed_out, or peer_gone (the channel
// ended first).
template <class P, class T, class Rep, class Period>
    requires wire::message_of<std::remove_cvref_t<T>, P>
io::task<result<typename P::variant>> exchange(channel<P>& ch, request_table<typename P::variant>& table, T&& msg,
                                               std::chrono::duration<Rep, Period> timeout) {
    io::refuse_awaited_temporary<T>();
    typename request_table<typename P::variant>::slot slot(table);
    if (slot.tag() == 0) co_return make_error_code(errc::peer_gone);
    auto sent = co_await ch.send(msg, slot.tag(), wire::frame_flags::request);
    if (!sent) co_return sent.error();
    co_return co_await response_within<typename P::variant>(slot, timeout);
}

// exchange(), for a response that must be a Reply: else unexpected_type.
template <class Reply, class P, class T, class Rep, class Period>
    requires wire::message_of<std::remove_cvref_t<T>, P>
io::task<result<Reply>> request(channel<P>& ch, request_table<typename P::variant>& table, T&& msg,
                                std::chrono::duration<Rep, Period> timeout) {
    io::refuse_awaited_temporary<T>();
    auto answer = co_await exchange(ch, table, msg, timeout);
    if (!answer) co_return answer.error();
    if (auto* reply = std::get_if<Reply>(&*answer)) co_return std::move(*reply);
    co_return make_error_code(errc::unexpected_type);
}

}  // namespace cluster::ipc
