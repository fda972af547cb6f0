// cluster::detail::link: one end of the link between a primary and a worker — a socketpair's
// channel to a process, or a thread link's pipes to a thread — what both ends offer their users
// through it (link_end<P>: send, request, reply), and how the user's messages become incoming<erased>.
#pragma once

#include <sys/ioctl.h>
#include <sys/socket.h>

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <cluster/detail/boxed_message.hpp>
#include <cluster/detail/control.hpp>
#include <cluster/detail/link_envelope.hpp>
#include <cluster/detail/message_clone.hpp>
#include <cluster/detail/thread_link.hpp>
#include <cluster/detail/thread_peers.hpp>
#include <cluster/hand_over.hpp>
#include <cluster/incoming.hpp>
#include <cluster/io/awaited_temporary.hpp>
#include <cluster/io/io_context.hpp>
#include <cluster/io/ops.hpp>
#include <cluster/io/task.hpp>
#include <cluster/ipc/channel.hpp>
#include <cluster/ipc/request_table.hpp>
#include <cluster/unique_fd.hpp>
#include <cluster/wire/frame.hpp>

namespace cluster::detail {

class link;

// What a send on a link waits for: room below the high-water mark, on a socket's send queue
// or a thread link's pipe (another thread worker's, for a send straight to it). Either way it
// completes at once while there is room.
class link_wait {
    using socket_wait = decltype(std::declval<ipc::channel<control::link_protocol>&>().wait_for_room({}));
    using slow_wait = io::task<result<void>>;

    struct thread_wait {
        envelope_pipe* pipe;  // none: nothing to wait for
        std::error_code queued;
        bool turn_first;                    // the loop takes a turn before this send completes
        io::doorbell* bell;                 // another thread worker's pipe: the sender's doorbell for room
        const bool* ended;                  // and whether the sender's link has ended meanwhile
        std::shared_ptr<thread_link> peer;  // that pipe's link, held while this waits
        std::optional<slow_wait> slow;
        std::optional<decltype(std::declval<slow_wait&>().operator co_await())> awaiting;

        bool await_ready() const { return !turn_first && (queued || !pipe || !pipe->full()); }
        template <class Promise>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) {
            slow.emplace(turn_first ? after_a_turn()
                         : bell     ? peer_room(pipe, bell, ended)
                                    : pipe->wait_for_room(queued));
            awaiting.emplace(slow->operator co_await());
            return awaiting->await_suspend(h);
        }
        result<void> await_resume() {
            if (awaiting) return awaiting->await_resume();
            if (queued) return queued;
            return {};
        }

        // Another thread worker's pipe: room there, or this sender's link ended meanwhile.
        static slow_wait peer_room(envelope_pipe* pipe, io::doorbell* bell, const bool* ended) {
            while (pipe && !pipe->room_or_arm(*bell)) {
                co_await bell->wait();
                if (*ended) co_return make_error_code(errc::channel_closed);
            }
            co_return result<void>{};
        }
        slow_wait after_a_turn() {
            (void)co_await io::nop();
            if (bell) co_return co_await peer_room(pipe, bell, ended);
            co_return co_await pipe->wait_for_room(queued);
        }
    };

public:
    explicit link_wait(socket_wait w) noexcept : w_(std::in_place_index<0>, std::move(w)) {}
    link_wait(envelope_pipe& pipe, std::error_code queued, bool turn_first) noexcept
        : w_(std::in_place_index<1>,
             thread_wait{&pipe, queued, turn_first, nullptr, nullptr, nullptr, std::nullopt, std::nullopt}) {}
    // Into another thread worker's pipe, waiting for room there on `bell` unless `ended`
    // becomes true; with no pipe, nothing to wait for.
    link_wait(std::shared_ptr<thread_link> peer, bool turn_first, io::doorbell& bell, const bool& ended) noexcept
        : w_(std::in_place_index<1>, thread_wait{peer ? &peer->to_worker : nullptr,
                                                 {},
                                                 turn_first,
                                                 &bell,
                                                 &ended,
                                                 std::move(peer),
                                                 std::nullopt,
                                                 std::nullopt}) {}

    bool await_ready() { return w_.index() == 0 ? std::get<0>(w_).await_ready() : std::get<1>(w_).await_ready(); }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) {
        if (w_.index() == 1) return std::get<1>(w_).await_suspend(h);
        std::get<0>(w_).await_suspend(h);
        return std::noop_coroutine();
    }
    result<void> await_resume() {
        return w_.index() == 0 ? std::get<0>(w_).await_resume() : std::get<1>(w_).await_resume();
    }

private:
    std::variant<socket_wait, thread_wait> w_;
};

// A link's next message: decoded off the socket, or taken off the thread link's pipe.
class link_take {
    using socket_take = decltype(std::declval<ipc::channel<control::link_protocol>&>().receive_envelope());
    using slow_take = io::task<std::optional<link_envelope>>;

    struct thread_take {
        link* owner;
        std::optional<slow_take> slow;
        std::optional<decltype(std::declval<slow_take&>().operator co_await())> awaiting;

        bool await_ready();
        template <class Promise>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h);
        std::optional<link_envelope> await_resume();
    };

public:
    explicit link_take(socket_take t) noexcept : t_(std::in_place_index<0>, std::move(t)) {}
    explicit link_take(link& l) noexcept : t_(std::in_place_index<1>, thread_take{&l, std::nullopt, std::nullopt}) {}

    [[gnu::always_inline]] bool await_ready() {
        return t_.index() == 0 ? std::get<0>(t_).await_ready() : std::get<1>(t_).await_ready();
    }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) {
        if (t_.index() == 1) return std::get<1>(t_).await_suspend(h);
        std::get<0>(t_).await_suspend(h);
        return std::noop_coroutine();
    }
    [[gnu::always_inline]] std::optional<link_envelope> await_resume() {
        if (t_.index() == 1) return std::get<1>(t_).await_resume();
        auto e = std::get<0>(t_).await_resume();
        if (!e) return std::nullopt;
        return link_envelope(std::move(*e));
    }

private:
    std::variant<socket_take, thread_take> t_;
};

// One end of the link between a primary and a worker: it carries the control messages beside
// the user's, and keeps the requests sent on it that wait for their answers. To a process it
// is a channel on a socketpair, every message encoded; to a thread, two pipes that move each
// message as it is (the sender's own if given away, else a copy with its fds dup'd), no codec
// and no socket.
class link {
public:
    using protocol = control::link_protocol;
    using envelope = link_envelope;
    using socket_channel = ipc::channel<protocol>;

    explicit link(unique_fd socket) : socket_(std::in_place, std::move(socket)) {}
    // On the thread this end belongs to: its loop is the one its doorbells wake.
    explicit link(thread_end end) : thread_(std::move(end)) {
        thread_->out().producer_open();
        thread_->in().consumer_open();
    }
    link(const link&) = delete;
    link& operator=(const link&) = delete;
    ~link() { end_thread_link(); }

    [[nodiscard]] bool threaded() const noexcept { return thread_.has_value(); }

    // ---- sending ----

    // A control message, queued at once; waits for room past the high-water mark.
    template <class T>
    [[nodiscard]] link_wait send(const T& msg, std::uint32_t tag = 0, std::uint16_t flags = 0) {
        if (socket_) return link_wait(socket_->wait_for_room(socket_->queue(msg, tag, flags)));
        return wait_for_room(push(thread_->out(), protocol::variant(clone_message(msg)), tag, flags, {}));
    }

    // A message of the user's protocol P: encoded for a process, boxed for a thread. An rvalue
    // is given away: moved into a thread's box as itself, or encoded and then dropped here.
    template <class P, class T>
    [[nodiscard]] link_wait send_user(T&& msg, std::uint32_t tag = 0, std::uint16_t flags = 0) {
        return wait_for_room(queue_user<P>(std::forward<T>(msg), tag, flags));
    }

    // To worker `to`, routed: straight into its pipe when both are thread workers of one
    // primary (see thread_peers), else through the primary. A worker gone drops it either way.
    template <class P, class T>
    [[nodiscard]] link_wait send_routed(T&& msg, unsigned to) {
        if constexpr (wire::sendable<std::remove_cvref_t<T>>) {
            if (auto peer = peer_link(to)) {
                const auto queued =
                    push_user<P>(peer->to_worker, std::forward<T>(msg), thread_->worker_id, wire::frame_flags::routed);
                if (queued) {
                    forget_peer(to);
                    peer.reset();
                }
                return link_wait(std::move(peer), takes_a_turn(), peer_room(), ended_);
            }
        }
        return send_user<P>(std::forward<T>(msg), to, wire::frame_flags::routed);
    }

    // Queues without waiting, whatever is queued already: a process's own small messages.
    template <class T>
    std::error_code queue(const T& msg, std::uint32_t tag = 0, std::uint16_t flags = 0) {
        if (socket_) return socket_->queue(msg, tag, flags);
        return push(thread_->out(), protocol::variant(clone_message(msg)), tag, flags, {});
    }

    // queue() for a message whose fds the sender keeps open until the other end answers it
    // (the primary's handoffs): a socket sends them as they are; a thread takes a copy, dup'd.
    template <class T>
    std::error_code lend(const T& msg) {
        if (socket_) return socket_->lend(msg);
        return queue(msg);
    }

    // queue() for an answer that may wait to leave with the next message, up to `most` of
    // them or until release() (see send_queue::hold). A thread's pipe takes it at once.
    template <class T>
    std::error_code hold(const T& msg, std::size_t most) {
        if (socket_) return socket_->hold(msg, most);
        return queue(msg);
    }
    void release() {
        if (socket_) socket_->release();
    }

    template <class P, class T>
    std::error_code queue_user(T&& msg, std::uint32_t tag = 0, std::uint16_t flags = 0) {
        using M = std::remove_cvref_t<T>;
        // A message the codec refuses has had its one error from protocol<>: no copy of it is
        // compiled, whose errors would only repeat that one.
        if constexpr (!wire::sendable<M>) {
            return socket_ ? socket_->queue(msg, tag, flags) : make_error_code(errc::invalid_value);
        } else {
            if (socket_) return encode_user(std::forward<T>(msg), tag, flags);
            return push_user<P>(thread_->out(), std::forward<T>(msg), tag, flags);
        }
    }

    // Queues msg unless the high-water mark is passed already (resource_unavailable_try_again).
    template <class T>
    result<void> try_send(const T& msg) {
        if (socket_) return socket_->try_send(msg);
        if (thread_->out().full()) return std::make_error_code(std::errc::resource_unavailable_try_again);
        if (auto ec = queue(msg)) return ec;
        return {};
    }

    [[nodiscard]] link_wait wait_for_room(std::error_code queued) {
        if (socket_) return link_wait(socket_->wait_for_room(queued));
        return link_wait(thread_->out(), queued, takes_a_turn());
    }

    // Delivers what was queued, then tells the other end no more is coming.
    io::task<result<void>> shutdown() {
        if (socket_) co_return co_await socket_->shutdown();
        if (!forked_) thread_->out().producer_close();
        co_return result<void>{};
    }

    // ---- receiving ----

    // The next message, or nothing once the link has ended (see close_reason()).
    [[nodiscard]] link_take receive() {
        if (socket_) return link_take(socket_->receive_envelope());
        return link_take(*this);
    }

    // The next message if it is here already (what the last read brought, or a thread link's
    // pipe holds); nothing if it would have to wait, or once the link has ended.
    [[nodiscard]] std::optional<envelope> try_receive() {
        auto next = receive();
        if (!next.await_ready()) return std::nullopt;
        return next.await_resume();
    }

    // Whether what the other end sent waits unread here.
    [[nodiscard]] bool has_unread() const noexcept {
        if (socket_) {
            int n = 0;
            return ::ioctl(socket_->native_handle(), FIONREAD, &n) == 0 && n > 0;
        }
        return !forked_ && (!arrived_.empty() || thread_->in().has_queued());
    }

    // ---- ending ----

    // Stops both ways at once: the other end's receive ends, and so does ours once it took
    // what had come.
    void cut() {
        if (socket_) {
            ::shutdown(socket_->native_handle(), SHUT_RDWR);
            return;
        }
        end_thread_link();
    }

    // Ends it now: what is queued is dropped; later sends fail with channel_closed.
    void close() {
        if (socket_) return socket_->close();
        end_thread_link();
        read_closed_ = true;
        if (!reason_) reason_ = make_error_code(errc::channel_closed);
    }

    // Cuts off a peer that broke the protocol: it learns at once, nothing more it sends is
    // read, and close_reason() says why.
    void abort(std::error_code why, std::string detail) {
        if (socket_) return socket_->abort(why, std::move(detail));
        if (read_closed_) return;
        reason_ = why;
        reason_detail_ = std::move(detail);
        close();
    }

    [[nodiscard]] bool is_open() const noexcept { return socket_ ? socket_->is_open() : !read_closed_; }
    // Empty after a clean end; otherwise why the link ended.
    [[nodiscard]] std::error_code close_reason() const noexcept { return socket_ ? socket_->close_reason() : reason_; }
    [[nodiscard]] std::string close_message() const {
        if (socket_) return socket_->close_message();
        if (!reason_) return "closed";
        return reason_detail_.empty() ? reason_.message() : reason_detail_ + ": " + reason_.message();
    }
    // The socket, for diagnostics and tests; -1 for a thread link.
    [[nodiscard]] int native_handle() const noexcept { return socket_ ? socket_->native_handle() : -1; }

    // In a process forked without exec from this link's owner: see ipc::channel. A thread
    // link's pipes are the parent's threads': the child leaves them untouched.
    void close_in_forked_child() noexcept {
        if (socket_) return socket_->close_in_forked_child();
        forked_ = true;
        read_closed_ = true;
        reason_ = make_error_code(errc::forked_child);
    }
    void owned_queued_fds(std::vector<int>& fds) const {
        if (socket_) socket_->owned_queued_fds(fds);
    }

    [[nodiscard]] const ipc::channel_stats& stats() const noexcept { return socket_ ? socket_->stats() : stats_; }
    [[nodiscard]] std::uint64_t fds_lost() const noexcept { return socket_ ? socket_->fds_lost() : 0; }

    ipc::request_table<link_envelope> requests;

private:
    friend class link_take;

    // Queued on the socket, with dups of its fds. A message given away is the sender's no
    // longer, as it would be had it gone to a thread: its fds are closed now, not left open.
    template <class T>
    std::error_code encode_user(T&& msg, std::uint32_t tag, std::uint16_t flags) {
        auto queued = socket_->queue(msg, tag, flags);
        if constexpr (given_away<T>) {
            [[maybe_unused]] const auto dropped = std::move(msg);
        }
        return queued;
    }

    // A sender that finds room every time never suspends, so its loop never turns and its
    // timers (its heartbeats among them) wait for the burst to end. A process's channel fills
    // until the loop writes it out; a thread's pipe, emptied by the other thread as it fills,
    // may never be full. So every sends_per_turn-th send in one turn of the loop waits for the
    // next turn first, as a channel's sender would wait for its socket.
    bool takes_a_turn() noexcept {
        const auto* loop = io::io_context::current();
        const std::uint64_t turn = loop ? loop->turns() : 0;
        if (turn != send_turn_) {
            send_turn_ = turn;
            sends_this_turn_ = 0;
        }
        return ++sends_this_turn_ % sends_per_turn == 0;
    }

    // msg in P's box, queued on `to` (this link's pipe, or another thread worker's).
    template <class P, class T>
    std::error_code push_user(envelope_pipe& to, T&& msg, std::uint32_t tag, std::uint16_t flags) {
        using M = std::remove_cvref_t<T>;
        auto value = make_box<typename P::variant>(std::in_place_type<M>, boxed_value(std::forward<T>(msg)));
        wire::raw_message stub;
        stub.type_id = P::template id<M>;
        return push(to, protocol::variant(std::move(stub)), tag, flags,
                    boxed_message{std::move(value), stub.type_id, sizeof(M)});
    }

    std::error_code push(envelope_pipe& to, protocol::variant value, std::uint32_t tag, std::uint16_t flags,
                         boxed_message boxed) {
        if (forked_) return make_error_code(errc::forked_child);
        const std::size_t bytes = sizeof(link_envelope) + boxed.size;
        auto pushed = to.push(link_envelope(std::move(value), tag, flags, std::move(boxed)));
        if (pushed) return pushed;
        ++stats_.frames_sent;
        stats_.bytes_sent += bytes;
        return {};
    }

    // A message taken off the pipe, counted; the end of the stream closes this side for reading.
    std::optional<link_envelope> took(std::optional<link_envelope>&& e) noexcept {
        if (!e) {
            read_closed_ = true;
            return std::nullopt;
        }
        count_received(*e);
        return std::move(e);
    }

    void count_received(const link_envelope& e) noexcept {
        ++stats_.frames_received;
        stats_.bytes_received += weigh(e);
    }

    void end_thread_link() noexcept {
        if (!thread_ || forked_ || ended_) return;
        ended_ = true;
        forget_peers();
        thread_->out().producer_close();
        thread_->in().consumer_close();
    }

    // Worker `to`'s thread link, if it is a thread worker of this one's primary and this link
    // is a thread worker's; null otherwise. Kept once looked up; ones that no longer take
    // values are dropped as another is added.
    std::shared_ptr<thread_link> peer_link(unsigned to) {
        if (!thread_ || !thread_->peers || ended_ || forked_) return nullptr;
        for (const auto& [id, l] : peers_seen_)
            if (id == to) return l;
        auto l = thread_->peers->find(to);
        if (!l) return nullptr;
        std::erase_if(peers_seen_, [](const auto& seen) { return !seen.second->to_worker.taking(); });
        peers_seen_.emplace_back(to, l);
        return l;
    }
    void forget_peer(unsigned to) {
        std::erase_if(peers_seen_, [to](const auto& seen) { return seen.first == to; });
    }

    // This thread's doorbell for room in other thread workers' pipes, made on first use.
    io::doorbell& peer_room() {
        if (!peer_room_) peer_room_.emplace();
        return *peer_room_;
    }

    // As the link ends, on this thread: no pipe rings the doorbell any more, and sends that
    // wait for room in one end (channel_closed), as they would on this link's own pipe.
    void forget_peers() noexcept {
        if (peer_room_) {
            for (const auto& [id, l] : peers_seen_) l->to_worker.forget_producer(*peer_room_);
            peer_room_->wake_here();
        }
        peers_seen_.clear();
    }

    std::optional<socket_channel> socket_;
    std::optional<thread_end> thread_;
    envelope_pipe::batch arrived_;  // a thread link's, taken off its pipe in a burst
    std::vector<std::pair<unsigned, std::shared_ptr<thread_link>>> peers_seen_;  // see peer_link()
    std::optional<io::doorbell> peer_room_;                                      // see peer_room()
    ipc::channel_stats stats_;                                                   // a thread link's
    static constexpr unsigned sends_per_turn = 1024;
    std::uint64_t send_turn_ = 0;  // the loop's turn of the last send on a thread link
    unsigned sends_this_turn_ = 0;
    bool read_closed_ = false;
    bool ended_ = false;
    bool forked_ = false;
    std::error_code reason_;
    std::string reason_detail_;
};

// What came in a burst is taken in place, moved once: a thread link's messages move as themselves.
inline bool link_take::thread_take::await_ready() {
    if (owner->read_closed_) return true;
    auto& arrived = owner->arrived_;
    if (arrived.empty()) owner->thread_->in().take_all(arrived);
    return !arrived.empty();
}

template <class Promise>
std::coroutine_handle<> link_take::thread_take::await_suspend(std::coroutine_handle<Promise> h) {
    slow.emplace(owner->thread_->in().receive());
    awaiting.emplace(slow->operator co_await());
    return awaiting->await_suspend(h);
}

inline std::optional<link_envelope> link_take::thread_take::await_resume() {
    if (awaiting) return owner->took(awaiting->await_resume());
    auto& arrived = owner->arrived_;
    if (owner->read_closed_ || arrived.empty()) return std::nullopt;
    std::optional<link_envelope> e(std::in_place, std::move(arrived.front()));
    arrived.pop_front();
    owner->count_received(*e);
    return e;
}

// P's box for a message from one worker on its way to another, queued on `to`: moved on if this
// is the box's last use (`last`) and nobody else holds it, else copied.
template <class P>
std::error_code queue_boxed(link& to, boxed_message& b, bool last, std::uint32_t tag, std::uint16_t flags) {
    const bool take = last && b.value.use_count() == 1;
    return std::visit(
        [&](auto& m) {
            if constexpr (std::is_same_v<std::decay_t<decltype(m)>, std::monostate>)
                return std::error_code{};  // an empty protocol's: none is ever decoded
            else if (take)
                return to.template queue_user<P>(std::move(m), tag, flags);
            else
                return to.template queue_user<P>(std::as_const(m), tag, flags);
        },
        unbox<P>(b));
}

template <class P>
struct ops_for {
    static_assert(control::apart_from_control<P>,
                  "cluster: a message type has the type id of one of the cluster's own control messages (a hash "
                  "collision); give it a distinct cluster_name");
    static constexpr protocol_ops value{&decode_boxed<P>, &queue_boxed<P>};
};

// P's ops, for the machinery.
template <class P>
inline constexpr const protocol_ops& ops_of = ops_for<P>::value;

// A user's message that arrived on a link (e holds a raw_message, or its box off a thread):
// who sent it (a routed message's tag names the worker it came from), and the tag a reply
// must carry. A raw message that does not decode is the peer breaking the protocol: the link
// is cut off, saying why, and nothing is returned.
inline std::optional<incoming<erased>> to_incoming(link& l, const protocol_ops& ops, link_envelope&& e,
                                                   unsigned sender) {
    const bool routed = (e.flags & wire::frame_flags::routed) != 0;
    const bool request = (e.flags & wire::frame_flags::request) != 0;
    if (e.is_boxed()) return incoming<erased>{std::move(e.boxed), routed ? e.tag : sender, request ? e.tag : 0};
    auto boxed = ops.decode(std::get<wire::raw_message>(e.value));
    if (!boxed) {
        l.abort(boxed.error().code, std::move(boxed.error().path));
        return std::nullopt;
    }
    return incoming<erased>{std::move(*boxed), routed ? e.tag : sender, request ? e.tag : 0};
}

// A request can only be answered by whoever received it.
template <class V>
void check_replyable(const incoming<V>& to) {
    if (!to.is_request())
        throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                                "cluster: reply() to a message that is not a request");
}

// Waits up to `timeout` (duration::max(): no limit) for the answer to the request `slot` names,
// once `sent` says it left. Errors: the send's, timed_out, peer_gone.
template <class Rep, class Period>
io::task<result<link_envelope>> answer_to(ipc::request_table<link_envelope>::slot& slot, result<void> sent,
                                          std::chrono::duration<Rep, Period> timeout) {
    if (!sent) co_return sent.error();
    co_return co_await ipc::response_within<link_envelope>(slot, timeout);
}

// Sends a control message on l as a request and waits up to `timeout` for a Reply. Errors:
// timed_out, peer_gone, unexpected_type (another type came back), or the send's.
template <class Reply, class T, class Rep, class Period>
io::task<result<Reply>> ask_control(link& l, const T& msg, std::chrono::duration<Rep, Period> timeout) {
    ipc::request_table<link_envelope>::slot slot(l.requests);
    if (slot.tag() == 0) co_return make_error_code(errc::peer_gone);
    auto sent = co_await l.send(msg, slot.tag(), wire::frame_flags::request);
    auto answer = co_await answer_to(slot, std::move(sent), timeout);
    if (!answer) co_return answer.error();
    if (auto* reply = std::get_if<Reply>(&answer->value)) co_return std::move(*reply);
    co_return make_error_code(errc::unexpected_type);
}

// Sends msg on l as a request and waits up to `timeout` for a Reply of protocol P. Errors:
// timed_out, peer_gone (the other end disconnected or died first), unexpected_type (it
// answered with another type), or the send's. An answer that does not decode cuts the link off.
template <class P, class Reply, class T, class Rep, class Period>
io::task<result<Reply>> request(link& l, T&& msg, std::chrono::duration<Rep, Period> timeout) {
    ipc::request_table<link_envelope>::slot slot(l.requests);
    if (slot.tag() == 0) co_return make_error_code(errc::peer_gone);
    auto sent = co_await l.template send_user<P>(std::forward<T>(msg), slot.tag(), wire::frame_flags::request);
    auto answer = co_await answer_to(slot, std::move(sent), timeout);
    if (!answer) co_return answer.error();
    if (answer->is_boxed()) {
        if (auto* reply = std::get_if<Reply>(&unbox<P>(answer->boxed))) co_return std::move(*reply);
        co_return make_error_code(errc::unexpected_type);
    }
    auto* raw = std::get_if<wire::raw_message>(&answer->value);
    if (!raw) co_return make_error_code(errc::unexpected_type);
    auto decoded = wire::decode_raw<P>(*raw);
    if (!decoded) {
        const auto why = decoded.error().code;
        l.abort(why, std::move(decoded.error().path));
        co_return why;
    }
    if (auto* reply = std::get_if<Reply>(&*decoded)) co_return std::move(*reply);
    co_return make_error_code(errc::unexpected_type);
}

// What both ends offer their users alike: send, request, reply, in the user's protocol P.
// Each takes its message as T&&: an lvalue is copied (to a thread) or encoded, and left as it
// was; an rvalue, or a name passed through hand_over(), is given away (docs/threads.md). T&& also
// refuses the temporaries GCC 12 would destroy twice (io::refuse_awaited_temporary).
template <class P>
class link_end {
public:
    using protocol = P;

    link_end(const link_end&) = delete;
    link_end& operator=(const link_end&) = delete;

    template <class T>
        requires wire::message_of<message_type<T>, P>
    [[nodiscard]] auto send(T&& msg) {
        io::refuse_awaited_temporary<T>();
        return link_.template send_user<P>(forward_message(std::forward<T>(msg)));
    }

    // Asks the other end and waits up to `timeout` for its reply, a Reply. Errors:
    // timed_out, peer_gone (the other end disconnected or died first), unexpected_type
    // (it answered with another type), or the send's.
    template <wire::message_of<P> Reply, class T, class Rep = std::int64_t, class Period = std::milli>
        requires wire::message_of<message_type<T>, P>
    io::task<result<Reply>> request(T&& msg, std::chrono::duration<Rep, Period> timeout = std::chrono::seconds(5)) {
        io::refuse_awaited_temporary<T>();
        return detail::request<P, Reply>(link_, forward_message(std::forward<T>(msg)), timeout);
    }

    // Answers a request that came in on this link.
    template <class M, class R>
        requires wire::message_of<message_type<R>, P>
    [[nodiscard]] auto reply(const incoming<M>& to, R&& response) {
        io::refuse_awaited_temporary<R>();
        check_replyable(to);
        return link_.template send_user<P>(forward_message(std::forward<R>(response)), to.request_tag,
                                           wire::frame_flags::response);
    }

    [[nodiscard]] const ipc::channel_stats& stats() const noexcept { return link_.stats(); }

protected:
    explicit link_end(link& l) noexcept : link_(l) {}
    ~link_end() = default;

    link& link_;
};

}  // namespace cluster::detail
