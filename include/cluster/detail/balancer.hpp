// cluster::detail::balancer: the primary's listening sockets, one per endpoint the workers
// listen on, with their members — the workers the socket's connections go to — and the
// wiring between its acceptor, its picker and the handoff of each connection.
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <cluster/detail/acceptor.hpp>
#include <cluster/detail/control.hpp>
#include <cluster/detail/handoff.hpp>
#include <cluster/detail/picker.hpp>
#include <cluster/detail/pressure_log.hpp>
#include <cluster/detail/worker_record.hpp>
#include <cluster/io/scope.hpp>
#include <cluster/net/endpoint.hpp>
#include <cluster/net/listen_socket.hpp>
#include <cluster/net/schedule.hpp>
#include <cluster/net/udp_endpoint.hpp>
#include <cluster/net/udp_socket.hpp>
#include <cluster/options.hpp>
#include <cluster/overload.hpp>
#include <cluster/unique_fd.hpp>

namespace cluster::detail {

// The most connections offered to one worker and not answered yet. The primary keeps each
// until answered, so a worker that stops answering (frozen, or busy in a long computation)
// would otherwise pin descriptors until none are left for the workers that do answer.
// Node hands one at a time; a few in flight keep a burst flowing.
inline constexpr std::size_t max_unanswered_handoffs = 16;

inline unique_fd dup_socket(int fd) noexcept { return unique_fd(::fcntl(fd, F_DUPFD_CLOEXEC, 0)); }

// The kernel's cap on a listening socket's backlog, which it applies silently: the most
// connections the primary holds for a socket, whatever backlog a worker asked for.
inline int max_backlog() {
    static const int value = [] {
        int n = 4096;
        if (std::FILE* f = std::fopen("/proc/sys/net/core/somaxconn", "re")) {
            if (std::fscanf(f, "%d", &n) != 1 || n <= 0) n = 4096;
            std::fclose(f);
        }
        return n;
    }();
    return value;
}

class balancer {
public:
    using record = worker_record;

    balancer(const primary_options& options, overload_counts& counts) noexcept : options_(&options), counts_(counts) {}
    balancer(const balancer&) = delete;
    balancer& operator=(const balancer&) = delete;
    // A Unix socket file is the primary's to remove: it made it.
    ~balancer() {
        for (auto& [key, l] : listeners_)
            if (l->local.is_unix() && !l->local.is_abstract()) ::unlink(l->local.address().c_str());
    }

    // A worker's listen request: the answer to send it. Starts accepting when the schedule
    // has the primary accept. `listening` is filled in on success, for the event.
    control::listen_reply listen(const std::shared_ptr<record>& h, const control::listen_request& ask, io::scope& tasks,
                                 net::endpoint& listening) {
        control::listen_reply reply;
        auto l = find_or_open(ask, tasks, reply);
        if (!l) return reply;
        if (std::any_of(l->members.begin(), l->members.end(), [&](const auto& m) { return m.get() == h.get(); })) {
            failure(reply, EADDRINUSE, "this worker already listens there");
            return reply;
        }
        if (l->sched == net::schedule::shared) {
            reply.socket = dup_socket(l->socket.get());
            if (!reply.socket) {
                failure(reply, errno, "duplicating the listening socket");
                return reply;
            }
        } else if (l->sched == net::schedule::reuseport) {
            if (!socket_for_slot(*l, h->home_slot, reply)) return reply;
        }
        // Every schedule's members: where the primary accepts, they get its connections; with
        // shared and reuseport, they get what a graceful stop takes out of the sockets.
        l->members.push_back(h);
        retry_waiting(*l);
        reply.listener = l->id;
        reply.local = l->udp ? net::udp_endpoint(l->local).to_string() : l->local.to_string();
        listening = l->local;
        return reply;
    }

    // The worker took the connection `seq`, or refused it: then it goes to another.
    // A connection taken also makes room in that worker's window: connections waiting may
    // go now. A refusal makes none: offered again at once, they would only come back.
    void acknowledged(const record& h, std::uint64_t seq, bool accepted) {
        auto c = handoff_.answered(seq, h.id);
        if (!c) return;
        auto l = by_id(c->listener);
        if (!l) return;
        if (accepted) return retry_waiting(*l);
        uncount(*l, h.id);
        c->refused.push_back(h.id);
        distribute(*l, std::move(*c));
    }

    // `count` connections of `listener` closed in the worker. More than were handed to it is
    // no mistake a worker makes: the answer is why to cut it off.
    [[nodiscard]] std::optional<std::string> connections_closed(const record& h, std::uint32_t listener,
                                                                std::uint32_t count) {
        auto l = by_id(listener);
        if (!l) return std::nullopt;
        const std::size_t handed = count_of(*l, h.id);
        if (count > handed)
            return "connections_closed: " + std::to_string(count) + " closed, " + std::to_string(handed) + " handed";
        if (count != 0) l->open[h.id] = handed - count;
        retry_waiting(*l);
        return std::nullopt;
    }

    void unlisten(const record& h, std::uint32_t listener) {
        if (auto l = by_id(listener)) leave(*l, h.id);
    }

    // The worker's channel ended: it takes nothing more, and what it was handed and had not
    // taken goes to the others.
    void worker_gone(const record& h) {
        for (auto& [key, l] : listeners_) leave(*l, h.id);
        for (std::uint64_t seq : handoff_.unanswered(h.id)) acknowledged(h, seq, false);
    }

    // A slot the primary no longer keeps: its reuseport sockets close with their last worker.
    void forget_slot(unsigned slot) {
        for (auto& [key, l] : listeners_) l->per_slot.erase(slot);
    }

    // The cluster stops: the connections already waiting in the primary's sockets go to the
    // workers before they are disconnected, and then every socket stops listening, so that
    // later clients are refused instead of left waiting for workers that are leaving.
    //
    // A listening socket that stops listening resets the connections the kernel completed
    // and nobody accepted. So every socket, the workers' own included (shared, reuseport:
    // the primary holds them too), is emptied first; and the workers, told by the failed
    // accept, take what is handed to them until their disconnect.
    void stop_accepting() {
        for (auto& [key, l] : listeners_) {
            if (l->stopped) continue;
            l->stopped = true;
            // A UDP socket has no connections queued, and one shut down for reading would
            // end its workers' receives as if with empty datagrams: their leaving ends them.
            if (l->udp) continue;
            if (l->acceptor) l->acceptor->stop();
            const admit_function admit_here = [this, &l = *l](unique_fd socket) { admit(l, std::move(socket)); };
            sweep(l->socket.get(), admit_here);
            for (auto& [slot, s] : l->per_slot) sweep(s.get(), admit_here);
            ::shutdown(l->socket.get(), SHUT_RD);
            for (auto& [slot, s] : l->per_slot) ::shutdown(s.get(), SHUT_RD);
            l->waiting.clear();
        }
    }

    // Around a fork-mode worker's fork(): every connection accepted by then is one the
    // balancer knows of, which the child closes, and none is accepted until it exists.
    void pause_accepting() {
        for (auto& [key, l] : listeners_)
            if (l->acceptor) l->acceptor->pause();
    }
    void resume_accepting() {
        for (auto& [key, l] : listeners_)
            if (l->acceptor) l->acceptor->resume();
    }

    // In a fork-mode worker, still inside fork(): the primary's sockets, and the clients'
    // connections it holds, are not the worker's to keep open.
    void close_in_forked_child() const noexcept {
        for (const auto& [key, l] : listeners_) {
            if (l->acceptor) l->acceptor->close_queued_in_forked_child();
            ::close(l->socket.get());
            for (const auto& [slot, s] : l->per_slot) ::close(s.get());
            for (const auto& c : l->waiting) ::close(c.socket.get());
        }
        handoff_.close_in_forked_child();
    }

private:
    struct listening_socket {
        listening_socket(std::uint32_t i, net::schedule s, net::listen_options o, const net::pick_function* custom)
            : id(i), sched(s), options(o), picker(s, custom) {}

        std::uint32_t id;
        net::schedule sched;
        net::listen_options options;
        bool udp = false;  // a UDP socket, bound: every worker receives on it (or on its slot's)
        net::endpoint local;
        unique_fd socket;
        std::map<unsigned, unique_fd> per_slot;      // reuseport: each slot's socket, which its next worker reuses
        std::shared_ptr<detail::acceptor> acceptor;  // where the primary accepts
        bool stopped = false;
        std::vector<std::shared_ptr<record>> members;  // the workers it hands connections to, in join order
        detail::picker picker;
        std::map<unsigned, std::size_t> open;    // handed to each worker and not reported closed
        std::deque<pending_connection> waiting;  // no worker could take them yet
    };

    static control::listen_reply& failure(control::listen_reply& reply, int error, std::string what) {
        reply.error = error;
        reply.what = std::move(what);
        return reply;
    }

    static int errno_of(const std::error_code& ec) noexcept {
        return ec.category() == std::system_category() ? ec.value() : EINVAL;
    }

    static net::listen_options options_of(const control::listen_request& ask, net::schedule s) {
        net::listen_options o;
        if (ask.backlog > 0) o.backlog = std::min(ask.backlog, max_backlog());
        if (ask.v6_only >= 0) o.v6_only = ask.v6_only == 1;
        o.reuse_address = ask.reuse_address;
        o.replace_stale_unix_socket = ask.replace_stale_unix_socket;
        o.reuse_port = s == net::schedule::reuseport;
        return o;
    }

    // The address a listen request names, a stream endpoint's or a UDP endpoint's.
    static result<net::endpoint> address_of(const std::string& text) {
        if (!net::udp_endpoint::names_udp(text)) return net::endpoint::parse(text);
        auto udp = net::udp_endpoint::parse(text);
        if (!udp) return udp.error();
        return udp->ip();
    }

    // A stream socket listening, or a UDP socket bound, on `at`, as `l` was asked for.
    static result<unique_fd> open_socket(const listening_socket& l, const net::endpoint& at, std::string& step) {
        if (!l.udp) return net::detail::open_listening(at, l.options, step);
        const net::udp_options o{l.options.reuse_port, l.options.v6_only};
        return net::detail::open_udp(at, o, step);
    }

    std::shared_ptr<listening_socket> find_or_open(const control::listen_request& ask, io::scope& tasks,
                                                   control::listen_reply& reply) {
        auto ep = address_of(ask.endpoint);
        if (!ep) return (failure(reply, EINVAL, "not an endpoint: " + ep.error().message()), nullptr);
        if (ask.schedule > static_cast<std::uint8_t>(net::last_schedule))
            return (failure(reply, EINVAL, "unknown schedule " + std::to_string(ask.schedule)), nullptr);
        const auto s = static_cast<net::schedule>(ask.schedule);
        const bool udp = net::udp_endpoint::names_udp(ask.endpoint);
        if (udp && net::primary_accepts(s))
            return (failure(reply, EINVAL,
                            std::string("schedule ") + net::to_string(s) +
                                " cannot serve UDP, which has no connections to hand on: use shared or reuseport"),
                    nullptr);
        if (auto it = listeners_.find(ask.endpoint); it != listeners_.end()) {
            if (it->second->sched != s)
                return (failure(reply, EADDRINUSE,
                                std::string("the cluster already listens there with schedule ") +
                                    net::to_string(it->second->sched)),
                        nullptr);
            if (it->second->stopped) return (failure(reply, ECANCELED, "the cluster is stopping"), nullptr);
            return it->second;
        }
        if (s == net::schedule::custom && !options_->pick)
            return (failure(reply, EINVAL, "schedule custom needs primary_options::pick"), nullptr);
        if (s == net::schedule::reuseport && !ep->is_ip())
            return (failure(reply, EINVAL, "schedule reuseport needs an IP endpoint (SO_REUSEPORT is for TCP)"),
                    nullptr);
        auto l = std::make_shared<listening_socket>(next_listener_++, s, options_of(ask, s), &options_->pick);
        l->udp = udp;
        std::string step;
        auto opened = open_socket(*l, *ep, step);
        if (!opened) return (failure(reply, errno_of(opened.error()), step), nullptr);
        l->socket = std::move(*opened);
        auto local = net::local_endpoint(l->socket.get());
        l->local = local ? *local : *ep;
        listeners_.emplace(ask.endpoint, l);
        by_id_.emplace(l->id, l);
        if (net::primary_accepts(s)) {
            l->acceptor = std::make_shared<detail::acceptor>(
                l->socket.get(), [this, &l = *l](unique_fd socket) { admit(l, std::move(socket)); }, counts_);
            tasks.spawn(detail::acceptor::run(l->acceptor));
        }
        return l;
    }

    // reuseport: the slot's socket, opened on the port the first one got. A worker that
    // replaces another in its slot (a restart, a reload) accepts on the same socket, so
    // the connections queued there are not lost with the worker that leaves.
    bool socket_for_slot(listening_socket& l, unsigned slot, control::listen_reply& reply) {
        auto it = l.per_slot.find(slot);
        if (it == l.per_slot.end()) {
            if (l.per_slot.empty() && l.socket) {
                it = l.per_slot.emplace(slot, std::move(l.socket)).first;
            } else {
                std::string step;
                auto opened = open_socket(l, l.local, step);
                if (!opened) return (failure(reply, errno_of(opened.error()), step), false);
                it = l.per_slot.emplace(slot, std::move(*opened)).first;
            }
        }
        reply.socket = dup_socket(it->second.get());
        if (!reply.socket) return (failure(reply, errno, "duplicating the slot's listening socket"), false);
        return true;
    }

    std::shared_ptr<listening_socket> by_id(std::uint32_t id) const {
        auto it = by_id_.find(id);
        return it == by_id_.end() ? nullptr : it->second;
    }

    void leave(listening_socket& l, unsigned worker_id) {
        std::erase_if(l.members, [&](const auto& m) { return m->id == worker_id; });
        l.open.erase(worker_id);
    }

    void admit(listening_socket& l, unique_fd socket) {
        pending_connection c;
        c.listener = l.id;
        if (l.sched == net::schedule::sticky || l.sched == net::schedule::custom) {
            auto peer = net::peer_endpoint(socket.get());
            if (peer) c.peer = *peer;
        }
        c.socket = std::move(socket);
        distribute(l, std::move(c));
    }

    // Offers `c` to the worker the schedule picks. The channel sends a dup, and ours is kept
    // until the answer; with no descriptor left for the dup, the connection is shed.
    void distribute(listening_socket& l, pending_connection c) {
        for (;;) {
            auto target = choose(l, c);
            if (!target) return hold(l, std::move(c));
            const std::uint64_t seq = handoff_.next_seq();
            control::connection offer;
            offer.listener = l.id;
            offer.seq = seq;
            offer.socket = std::move(c.socket);
            const std::error_code failed = target->link.channel.queue(offer);
            c.socket = std::move(offer.socket);
            if (!failed) {
                ++l.open[target->id];
                return handoff_.offered(seq, target->id, std::move(c));
            }
            if (failed.category() == std::system_category() && out_of_resources(failed.value())) return shed(l, failed);
            c.refused.push_back(target->id);  // its link is closing: another worker
        }
    }

    // Closing a connection we cannot hand on frees what it holds, and says the truth to the
    // client at once; holding it would only fill the descriptor table further.
    void shed(listening_socket& l, const std::error_code& why) {
        ++counts_.connections_shed;
        log_.hit("primary: shed a connection on " + l.local.to_string() + ": " + why.message());
        if (l.acceptor) l.acceptor->back_off();
    }

    // Nobody can take it now (all refused, or no worker listens: between a crash and its
    // restart, say): it waits in the primary, up to the socket's backlog.
    void hold(listening_socket& l, pending_connection c) {
        if (l.stopped) return;
        if (l.waiting.size() >= static_cast<std::size_t>(std::max(l.options.backlog, 1)))
            return;  // closed: as a full backlog would drop it
        c.refused.clear();
        l.waiting.push_back(std::move(c));
    }

    // In order, for as long as someone can take them; each once at most (a custom pick
    // may still say no, and send one back to the end).
    void retry_waiting(listening_socket& l) {
        for (std::size_t n = l.waiting.size(); n > 0 && !l.waiting.empty() && anyone_takes(l, l.waiting.front()); --n) {
            auto c = std::move(l.waiting.front());
            l.waiting.pop_front();
            distribute(l, std::move(c));
        }
    }

    [[nodiscard]] bool takes(const record& m, const pending_connection& c) const {
        return m.takes_connections() && handoff_.in_flight_to(m.id) < max_unanswered_handoffs &&
               std::find(c.refused.begin(), c.refused.end(), m.id) == c.refused.end();
    }
    [[nodiscard]] bool anyone_takes(const listening_socket& l, const pending_connection& c) const {
        return std::any_of(l.members.begin(), l.members.end(), [&](const auto& m) { return takes(*m, c); });
    }

    void uncount(listening_socket& l, unsigned worker_id) {
        auto it = l.open.find(worker_id);
        if (it != l.open.end() && it->second > 0) --it->second;
    }

    std::shared_ptr<record> choose(listening_socket& l, const pending_connection& c) {
        std::vector<pick_member> members;
        members.reserve(l.members.size());
        for (const auto& m : l.members) {
            const bool refused = std::find(c.refused.begin(), c.refused.end(), m->id) != c.refused.end();
            const bool saturated = handoff_.in_flight_to(m->id) >= max_unanswered_handoffs;
            members.push_back(pick_member{m->id, count_of(l, m->id), m->takes_connections() && !saturated, refused});
        }
        const unsigned chosen = l.picker.pick(c.peer, members);
        for (const auto& m : l.members)
            if (m->id == chosen) return m;
        return nullptr;
    }

    static std::size_t count_of(const listening_socket& l, unsigned worker_id) {
        auto it = l.open.find(worker_id);
        return it == l.open.end() ? 0 : it->second;
    }

    const primary_options* options_;
    overload_counts& counts_;
    pressure_log log_;
    std::map<std::string, std::shared_ptr<listening_socket>> listeners_;  // by endpoint text, as the workers asked
    std::map<std::uint32_t, std::shared_ptr<listening_socket>> by_id_;
    handoff handoff_;
    std::uint32_t next_listener_ = 1;
};

}  // namespace cluster::detail
