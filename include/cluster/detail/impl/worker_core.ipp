// cluster::detail::worker_core's definitions: the worker's loop, listening, the inbox and
// leaving. Inline in a header-only build; compiled once into cluster::core otherwise.
#pragma once

#include <cluster/detail/worker_core.hpp>
#include <cluster/metrics/registry.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace cluster::detail {

CLUSTER_DECL void worker_core::close_link_in_forked_children() {
    static const int registered = ::pthread_atfork(nullptr, nullptr, [] {
        for (worker_core* w = running_; w; w = w->previous_) w->link_.close_in_forked_child();
    });
    (void)registered;
}

CLUSTER_DECL io::task<net::listener> worker_core::listen(const net::endpoint& at, net::schedule how,
                                                         net::listener_options o) {
    std::string what;
    auto opened = co_await open_listener(at, how, o, what);
    if (!opened) cannot_listen(opened.error(), at.to_string(), what);
    co_return std::move(*opened);
}

CLUSTER_DECL io::task<result<net::listener>> worker_core::try_listen(const net::endpoint& at, net::schedule how,
                                                                     net::listener_options o) {
    std::string what;
    co_return co_await open_listener(at, how, o, what);
}

CLUSTER_DECL io::task<net::udp_socket> worker_core::listen(const net::udp_endpoint& at, net::schedule how,
                                                           net::udp_options o) {
    std::string what;
    auto opened = co_await open_udp(at, how, o, what);
    if (!opened) cannot_listen(opened.error(), at.to_string(), what);
    co_return std::move(*opened);
}

CLUSTER_DECL io::task<result<net::udp_socket>> worker_core::try_listen(const net::udp_endpoint& at, net::schedule how,
                                                                       net::udp_options o) {
    std::string what;
    co_return co_await open_udp(at, how, o, what);
}

CLUSTER_DECL io::task<result<void>> worker_core::announce_listening(int listening_fd) {
    auto local = net::local_endpoint(listening_fd);
    if (!local) co_return local.error();
    int type = 0;
    socklen_t len = sizeof type;
    const bool udp =
        local->is_ip() && ::getsockopt(listening_fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_DGRAM;
    const auto described = describe_listening(*local, udp);
    co_return co_await link_.send(described);
}

CLUSTER_DECL io::task<result<void>> worker_core::ready() {
    const control::ready r;
    co_return co_await link_.send(r);
}

CLUSTER_DECL io::task<result<void>> worker_core::disconnect() {
    // Before `leaving`: once the channel is shut, no answer about a connection could
    // reach the primary, which then offers every unanswered one elsewhere.
    give_back_connections();
    leaving_ = true;
    const control::leaving bye;
    auto sent = co_await link_.send(bye);
    if (!sent) co_return sent;
    co_return co_await link_.shutdown();
}

CLUSTER_DECL overload_counts worker_core::overload() const noexcept {
    overload_counts counts = overload_;
    counts.fds_lost = link_.fds_lost();
    return counts;
}

CLUSTER_DECL io::task<int> worker_core::run(const std::function<io::task<void>(worker_core&)>& main) {
    io::scope background;
    background_ = &background;
    background.spawn(pump(*this));
    const control::online hello{static_cast<std::int32_t>(::getpid())};
    (void)co_await link_.send(hello);
    (void)co_await configured_.wait();  // main may ask for slot()
    int code = 0;
    try {
        co_await main(*this);
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "cluster: worker %u: uncaught exception: %s\n", id_, e.what());
        failure_ = e.what();
        const bool exhausted = e.code().category() == std::system_category() && out_of_resources(e.code().value());
        code = exhausted ? exit_code::out_of_resources : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cluster: worker %u: uncaught exception: %s\n", id_, e.what());
        failure_ = e.what();
        code = 1;
    }
    report_metrics();  // what was counted since the last heartbeat, so the cluster's totals lose none
    (void)co_await io::with_timeout(leave(), final_flush_timeout);
    background_ = nullptr;  // its tasks end with it, release_answers() among them
    co_return code;
}

CLUSTER_DECL io::task<void> worker_core::pump(worker_core& self) {
    while (auto e = co_await self.link_.receive()) {
        if (!self.dispatch(std::move(*e))) break;
    }
    // A primary gone without a word is not coming back for it.
    if (self.leave_reason_ == cluster::leave_reason::staying) self.leave_reason_ = cluster::leave_reason::going_away;
    self.inbox_.close();
    self.link_.requests.fail_all(make_error_code(errc::peer_gone));
    self.stop_listeners();
    self.stopping_.request_stop();
    self.configured_.set();
    self.pump_ended_.set();
}

CLUSTER_DECL io::task<void> worker_core::leave() {
    (void)co_await link_.shutdown();
    (void)co_await pump_ended_.wait();
    while (auto e = co_await link_.receive()) {}
}

CLUSTER_DECL io::task<result<net::listener>> worker_core::open_listener(const net::endpoint& at, net::schedule how,
                                                                        const net::listener_options& o,
                                                                        std::string& what) {
    auto where = at.absolute();
    if (!where) {
        what = "resolving the Unix socket path against the working directory";
        co_return where.error();
    }
    control::listen_request ask;
    ask.endpoint = where->to_string();
    ask.schedule = static_cast<std::uint8_t>(how);
    ask.backlog = o.socket.backlog;
    ask.v6_only = static_cast<std::int8_t>(o.socket.v6_only ? (*o.socket.v6_only ? 1 : 0) : -1);
    ask.reuse_address = o.socket.reuse_address;
    ask.replace_stale_unix_socket = o.socket.replace_stale_unix_socket;
    ask.mode = o.socket.mode ? static_cast<std::int32_t>(*o.socket.mode) : -1;
    ask.defer_accept_s =
        static_cast<std::uint32_t>(std::clamp<std::chrono::seconds::rep>(o.socket.defer_accept.count(), 0, UINT32_MAX));
    ask.key_from = static_cast<std::uint8_t>(o.sticky.from);
    ask.key_name = o.sticky.name();
    ask.peek_bytes = static_cast<std::uint32_t>(std::min<std::size_t>(o.sticky.peek_bytes, UINT32_MAX));
    ask.peek_timeout_ms = static_cast<std::uint32_t>(
        std::clamp<std::chrono::milliseconds::rep>(o.sticky.peek_timeout.count(), 0, UINT32_MAX));
    ++listens_pending_;
    auto reply = co_await ask_to_listen(ask, what);
    --listens_pending_;
    std::shared_ptr<net::detail::listener_state> state;
    if (reply) {
        auto local = net::endpoint::parse(reply->local);
        state = std::make_shared<net::detail::listener_state>(static_cast<net::detail::listener_host*>(this),
                                                              reply->listener, how, local ? *local : *where,
                                                              std::move(reply->socket), o);
        listeners_[reply->listener] = state;
        if (stopping()) state->stop_accepting();
    }
    route_early();
    if (!reply) co_return reply.error();
    co_return net::listener(std::move(state));
}

CLUSTER_DECL io::task<result<control::listen_reply>> worker_core::ask_to_listen(const control::listen_request& ask,
                                                                                std::string& what) {
    auto reply = co_await ask_control<control::listen_reply>(link_, ask, listen_timeout);
    if (!reply) {
        what = "no answer from the primary";
        co_return reply.error();
    }
    if (reply->error != 0) {
        what = std::move(reply->what);
        co_return errno_code(reply->error);
    }
    co_return std::move(*reply);
}

CLUSTER_DECL void worker_core::cannot_listen(std::error_code error, const std::string& at,
                                             const std::string& what) const {
    throw std::system_error(error, "cluster: worker " + std::to_string(id_) + " cannot listen on " + at + ": " + what);
}

CLUSTER_DECL io::task<result<net::udp_socket>> worker_core::open_udp(const net::udp_endpoint& at, net::schedule how,
                                                                     const net::udp_options& o, std::string& what) {
    control::listen_request ask;
    ask.endpoint = at.to_string();
    ask.schedule = static_cast<std::uint8_t>(how);
    ask.v6_only = static_cast<std::int8_t>(o.v6_only ? (*o.v6_only ? 1 : 0) : -1);
    auto reply = co_await ask_to_listen(ask, what);
    if (!reply) co_return reply.error();
    if (!reply->socket) {
        report_unlisten(reply->listener);
        what = "the socket did not come: this worker is out of descriptors";
        co_return errno_code(EMFILE);
    }
    auto member =
        std::make_shared<net::detail::udp_membership>(static_cast<net::detail::listener_host*>(this), reply->listener);
    udp_members_[reply->listener] = member;
    if (stopping()) member->leave();
    co_return net::udp_socket(std::move(reply->socket), std::move(member));
}

CLUSTER_DECL void worker_core::route(control::connection&& c) {
    if (!c.socket) lost_connection();
    auto it = listeners_.find(c.listener);
    if (it == listeners_.end() && listens_pending_ > 0) return early_.push_back(std::move(c));
    auto state = it == listeners_.end() ? nullptr : it->second.lock();
    if (!state) return acknowledge(c.seq, false);
    state->offer(c.seq, std::move(c.socket));
}

CLUSTER_DECL void worker_core::route_early() {
    auto early = std::exchange(early_, {});
    for (auto& c : early) route(std::move(c));
}

CLUSTER_DECL void worker_core::lost_connection() {
    ++overload_.connections_shed;
    log_.hit("worker " + std::to_string(id_) + ": out of descriptors: refused a connection");
}

CLUSTER_DECL void worker_core::stay_within_bound() {
    while (inbox_.queued_cost() > max_queued_bytes_ && inbox_.size() > 1) {
        (void)inbox_.evict_first([](const incoming<erased>&) noexcept { return true; });
        ++overload_.events_dropped;
        log_.hit("worker " + std::to_string(id_) + ": messages queued past max_queued_bytes (" +
                 std::to_string(max_queued_bytes_) + "): dropped the oldest");
    }
}

CLUSTER_DECL void worker_core::give_back_connections() noexcept {
    for (auto& [id, weak] : listeners_)
        if (auto state = weak.lock()) state->give_back();
}

CLUSTER_DECL void worker_core::stop_listeners() noexcept {
    for (auto& [id, weak] : listeners_)
        if (auto state = weak.lock()) state->stop_accepting();
    for (auto& [id, weak] : udp_members_)
        if (auto member = weak.lock()) member->leave();
}

// A refusal goes at once, and takes what was held with it: the primary offers the connection
// elsewhere without waiting.
CLUSTER_DECL void worker_core::acknowledge(std::uint64_t seq, bool accepted) noexcept {
    const control::handoff_ack ack{seq, accepted};
    if (accepted) return hold_answer(ack);
    (void)link_.queue(ack);
}

// Room again goes at once too: connections may be waiting in the primary for it.
CLUSTER_DECL void worker_core::report_closed(std::uint32_t listener, bool room_again) noexcept {
    const control::connections_closed closed{listener, 1};
    if (!room_again) return hold_answer(closed);
    (void)link_.queue(closed);
}

CLUSTER_DECL io::task<void> worker_core::release_answers(worker_core& self) {
    (void)co_await io::sleep_for(control::answers_held_for);
    self.answers_release_armed_ = false;
    self.link_.release();
}

CLUSTER_DECL void worker_core::report_unlisten(std::uint32_t listener) noexcept {
    listeners_.erase(listener);
    udp_members_.erase(listener);
    // A worker that fails (its listener destroyed by an exception on its way out) or leaves
    // keeps its place for its slot's replacement: the primary learns of its end from its exit.
    if (std::uncaught_exceptions() > 0 || stopping() || leaving_) return;
    const control::unlisten bye{listener};
    (void)link_.send(bye);
}

CLUSTER_DECL bool worker_core::dispatch(link_envelope&& e) {
    if (e.flags & wire::frame_flags::response) {
        (void)link_.requests.complete(e.tag, std::move(e));
        return true;
    }
    if (auto* d = std::get_if<control::disconnect>(&e.value)) {
        const bool replaced = d->reason == static_cast<std::uint8_t>(cluster::leave_reason::replaced);
        leave_reason_ = replaced ? cluster::leave_reason::replaced : cluster::leave_reason::going_away;
        return false;
    }
    if (auto* c = std::get_if<control::connection>(&e.value)) {
        route(std::move(*c));
    } else if (auto* s = std::get_if<control::settings>(&e.value)) {
        apply(*s);
    } else if (auto* echo = std::get_if<control::heartbeat_echo>(&e.value)) {
        round_trip_ = std::max(std::chrono::microseconds(0), since_epoch() - std::chrono::microseconds(echo->sent_us));
    } else if (auto m = to_incoming(link_, ops_, std::move(e), from_primary)) {
        inbox_.push(std::move(*m));
        stay_within_bound();
        count_message();
    }
    return true;
}

CLUSTER_DECL void worker_core::apply(const control::settings& s) {
    slot_ = s.slot;
    configured_.set();
    max_messages_ = s.max_messages;
    if (s.max_queued_bytes != 0) max_queued_bytes_ = s.max_queued_bytes;
    if (s.heartbeat_interval_ms > 0)
        background_->spawn(beat(*this, std::chrono::milliseconds(s.heartbeat_interval_ms)));
}

CLUSTER_DECL void worker_core::count_message() {
    if (max_messages_ != 0 && ++received_ % max_messages_ == 0) {
        const control::recycle r;
        (void)link_.send(r);
    }
}

CLUSTER_DECL io::task<void> worker_core::beat(worker_core& self, std::chrono::milliseconds every) {
    for (;;) {
        auto slept = co_await io::sleep_for(every);
        if (!slept) co_return;
        const control::heartbeat b{since_epoch().count(), self.round_trip_.count()};
        auto sent = co_await self.link_.send(b);
        if (!sent) co_return;
        self.report_metrics();
    }
}

// Only a worker that defined metrics reports them: the rest send nothing more than before. A
// thread worker's registry is the whole process's, which the primary serves itself.
CLUSTER_DECL void worker_core::report_metrics() {
    if (link_.threaded()) return;
    control::metrics_report report{metrics::registry::global().snapshot()};
    if (report.snapshot.families.empty()) return;
    (void)link_.try_send(report);
}

}  // namespace cluster::detail
