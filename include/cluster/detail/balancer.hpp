// cluster::balancer<P>: the primary's listening sockets, one per endpoint, and the connections
// it hands to workers (round robin, sticky, least connections, custom) or the sockets they accept on.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <stop_token>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <cluster/detail/control.hpp>
#include <cluster/detail/worker_record.hpp>
#include <cluster/io/multishot_accept.hpp>
#include <cluster/io/ops.hpp>
#include <cluster/io/scope.hpp>
#include <cluster/io/task.hpp>
#include <cluster/net/endpoint.hpp>
#include <cluster/net/listen_socket.hpp>
#include <cluster/net/schedule.hpp>
#include <cluster/options.hpp>

namespace cluster::detail {

// Sticky clients remembered at most; past it the table starts over, and the rendezvous
// hash still sends each address where it went while its worker lives.
inline constexpr std::size_t sticky_table_limit = 1u << 16;

// Rendezvous (highest random weight) hashing: an address keeps its worker while that
// worker lives, whoever else comes and goes.
inline std::uint64_t rendezvous_weight(std::uint64_t address, unsigned worker_id) noexcept {
    std::uint64_t h = address ^ (static_cast<std::uint64_t>(worker_id) * 0x9e3779b97f4a7c15ull);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

inline unique_fd dup_socket(int fd) noexcept { return unique_fd(::fcntl(fd, F_DUPFD_CLOEXEC, 0)); }

template <class P>
class balancer {
public:
    using record = worker_record<P>;

    explicit balancer(const primary_options& options) noexcept : options_(&options) {}
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
        } else if (l->sched == net::schedule::reuseport) {
            if (!socket_for_slot(*l, h->home_slot, reply)) return reply;
        }
        // Every schedule's members: where the primary accepts, they get its connections; with
        // shared and reuseport, they get what a graceful stop takes out of the sockets.
        l->members.push_back(h);
        retry_waiting(*l);
        reply.listener = l->id;
        reply.local = l->local.to_string();
        listening = l->local;
        return reply;
    }

    // The worker took the connection `seq`, or refused it: then it goes to another.
    void acknowledged(const record& h, std::uint64_t seq, bool accepted) {
        auto it = in_flight_.find(seq);
        if (it == in_flight_.end() || it->second.worker_id != h.id) return;
        auto entry = std::move(it->second);
        in_flight_.erase(it);
        if (accepted) return;
        auto l = by_id(entry.c.listener);
        if (!l) return;
        uncount(*l, h.id);
        entry.c.refused.push_back(h.id);
        distribute(*l, std::move(entry.c));
    }

    void connections_closed(const record& h, std::uint32_t listener, std::uint32_t count) {
        auto l = by_id(listener);
        if (!l) return;
        for (std::uint32_t i = 0; i < count; ++i) uncount(*l, h.id);
        retry_waiting(*l);
    }

    void unlisten(const record& h, std::uint32_t listener) {
        if (auto l = by_id(listener)) leave(*l, h.id);
    }

    // The worker's channel ended: it takes nothing more, and what it was handed and had not
    // taken goes to the others.
    void worker_gone(const record& h) {
        for (auto& [key, l] : listeners_) leave(*l, h.id);
        std::vector<std::uint64_t> orphans;
        for (const auto& [seq, entry] : in_flight_)
            if (entry.worker_id == h.id) orphans.push_back(seq);
        for (std::uint64_t seq : orphans) acknowledged(h, seq, false);
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
            if (l->acceptor) {
                l->acceptor->pause();
                for (auto& socket : l->acceptor->take_queued()) admit(*l, std::move(socket));
            }
            l->stop_accept_loop.request_stop();
            sweep(*l, l->socket.get());
            for (auto& [slot, s] : l->per_slot) sweep(*l, s.get());
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
            if (l->acceptor) l->acceptor->rearm();
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
        for (const auto& [seq, entry] : in_flight_) ::close(entry.c.socket.get());
    }

private:
    struct pending_connection {
        std::uint32_t listener = 0;
        unique_fd socket;
        net::endpoint peer;             // sticky and custom only
        std::vector<unsigned> refused;  // workers that said no to it
    };

    struct handed_over {
        unsigned worker_id = 0;
        pending_connection c;
    };

    struct listening_socket {
        std::uint32_t id = 0;
        net::schedule sched = net::schedule::round_robin;
        net::endpoint local;
        net::listen_options options;
        unique_fd socket;
        std::map<unsigned, unique_fd> per_slot;    // reuseport: each slot's socket, which its next worker reuses
        std::stop_source stop_accept_loop;         // ends accept_loop, whichever way it accepts
        io::multishot_accept* acceptor = nullptr;  // accept_loop's, while it runs
        bool stopped = false;
        std::vector<std::shared_ptr<record>> members;  // the workers it hands connections to, in join order
        std::size_t cursor = 0;
        std::map<unsigned, std::size_t> open;  // least_connections, custom: per worker
        std::unordered_map<std::uint64_t, unsigned> sticky;
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
        if (ask.backlog > 0) o.backlog = ask.backlog;
        if (ask.v6_only >= 0) o.v6_only = ask.v6_only == 1;
        o.reuse_address = ask.reuse_address;
        o.replace_stale_unix_socket = ask.replace_stale_unix_socket;
        o.reuse_port = s == net::schedule::reuseport;
        return o;
    }

    std::shared_ptr<listening_socket> find_or_open(const control::listen_request& ask, io::scope& tasks,
                                                   control::listen_reply& reply) {
        auto ep = net::endpoint::parse(ask.endpoint);
        if (!ep) return (failure(reply, EINVAL, "not an endpoint: " + ep.error().message()), nullptr);
        if (ask.schedule > static_cast<std::uint8_t>(net::last_schedule))
            return (failure(reply, EINVAL, "unknown schedule " + std::to_string(ask.schedule)), nullptr);
        const auto s = static_cast<net::schedule>(ask.schedule);
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
        auto l = std::make_shared<listening_socket>();
        l->id = next_listener_++;
        l->sched = s;
        l->options = options_of(ask, s);
        std::string step;
        auto opened = net::detail::open_listening(*ep, l->options, step);
        if (!opened) return (failure(reply, errno_of(opened.error()), step), nullptr);
        l->socket = std::move(*opened);
        auto local = net::local_endpoint(l->socket.get());
        l->local = local ? *local : *ep;
        listeners_.emplace(ask.endpoint, l);
        if (net::primary_accepts(s)) tasks.spawn(accept_loop(*this, l));
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
                auto opened = net::detail::open_listening(l.local, l.options, step);
                if (!opened) return (failure(reply, errno_of(opened.error()), step), false);
                it = l.per_slot.emplace(slot, std::move(*opened)).first;
            }
        }
        reply.socket = dup_socket(it->second.get());
        return true;
    }

    std::shared_ptr<listening_socket> by_id(std::uint32_t id) const {
        for (const auto& [key, l] : listeners_)
            if (l->id == id) return l;
        return nullptr;
    }

    void leave(listening_socket& l, unsigned worker_id) {
        std::erase_if(l.members, [&](const auto& m) { return m->id == worker_id; });
        l.open.erase(worker_id);
    }

    static bool takes_connections(const record& r) noexcept { return r.takes_connections(); }

    // A multishot io_uring accept: one armed op yields every connection, with no accept
    // syscalls of our own. Kernels before 5.19 answer EINVAL: readiness and accept4() then.
    static io::task<void> accept_loop(balancer& self, std::shared_ptr<listening_socket> l) {
        io::multishot_accept acceptor(l->socket.get());
        const acceptor_registration registered(*l, acceptor);
        std::stop_callback on_stop(l->stop_accept_loop.get_token(), [&acceptor] { acceptor.cancel(); });
        bool accepted_any = false;
        while (!l->stopped) {
            auto next = co_await acceptor.next();
            if (l->stopped) break;
            if (next) {
                accepted_any = true;
                self.admit(*l, std::move(*next));
                continue;
            }
            if (!accepted_any && next.error() == std::errc::invalid_argument) break;
            const bool go_on = co_await self.survive(next.error());
            if (!go_on) co_return;
        }
        if (!l->stopped) co_await poll_loop(self, l);
    }

    // While accept_loop runs: fork() and stop_accepting() reach its acceptor through this.
    struct acceptor_registration {
        listening_socket& l;
        acceptor_registration(listening_socket& s, io::multishot_accept& a) noexcept : l(s) { l.acceptor = &a; }
        ~acceptor_registration() { l.acceptor = nullptr; }
        acceptor_registration(const acceptor_registration&) = delete;
        acceptor_registration& operator=(const acceptor_registration&) = delete;
    };

    // Readiness, then accept4() until the queue is empty: each connection is the
    // balancer's from the moment it exists.
    static io::task<void> poll_loop(balancer& self, std::shared_ptr<listening_socket> l) {
        const int fd = l->socket.get();
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        while (!l->stopped) {
            auto ready = co_await io::poll(fd, POLLIN).with_stop_token(l->stop_accept_loop.get_token());
            if (l->stopped) break;
            const std::error_code failed = ready ? self.accept_queued(*l, fd) : ready.error();
            if (!failed) continue;
            const bool go_on = co_await self.survive(failed);
            if (!go_on) break;
        }
    }

    // Every connection the kernel has queued; an error other than an empty queue.
    std::error_code accept_queued(listening_socket& l, int fd) {
        for (;;) {
            unique_fd socket(::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC));
            if (socket) {
                admit(l, std::move(socket));
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) return {};
            if (errno != EINTR && errno != ECONNABORTED && errno != EPROTO) return errno_code(errno);
        }
    }

    // Out of descriptors or memory: say so once and wait a little, as a server must; a
    // connection the client gave up on before we took it is not an error.
    io::task<bool> survive(const std::error_code& ec) {
        if (ec == std::errc::operation_canceled) co_return false;
        if (ec == std::errc::connection_aborted || ec == std::errc::protocol_error) co_return true;
        if (!warned_) std::fprintf(stderr, "cluster: primary: accept: %s (retrying)\n", ec.message().c_str());
        warned_ = true;
        auto slept = co_await io::sleep_for(std::chrono::milliseconds(10));
        co_return static_cast<bool>(slept);
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

    // The graceful stop's last accepts: what the kernel already queued.
    void sweep(listening_socket& l, int fd) {
        if (fd < 0) return;
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        (void)accept_queued(l, fd);
    }

    void distribute(listening_socket& l, pending_connection c) {
        auto target = choose(l, c);
        if (!target) return hold(l, std::move(c));
        const std::uint64_t seq = ++next_seq_;
        control::connection offer;
        offer.listener = l.id;
        offer.seq = seq;
        offer.socket = std::move(c.socket);
        (void)target->link.channel.send(offer);  // the channel sends a dup: ours is kept until the answer
        c.socket = std::move(offer.socket);
        if (l.sched == net::schedule::least_connections || l.sched == net::schedule::custom) ++l.open[target->id];
        in_flight_.emplace(seq, handed_over{target->id, std::move(c)});
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

    void retry_waiting(listening_socket& l) {
        auto waiting = std::exchange(l.waiting, {});
        for (auto& c : waiting) distribute(l, std::move(c));
    }

    void uncount(listening_socket& l, unsigned worker_id) {
        auto it = l.open.find(worker_id);
        if (it != l.open.end() && it->second > 0) --it->second;
    }

    std::shared_ptr<record> choose(listening_socket& l, const pending_connection& c) {
        std::vector<std::shared_ptr<record>*> live;
        for (auto& m : l.members)
            if (takes_connections(*m) && std::find(c.refused.begin(), c.refused.end(), m->id) == c.refused.end())
                live.push_back(&m);
        if (live.empty()) return nullptr;
        switch (l.sched) {
        case net::schedule::sticky: return pick_sticky(l, c, live);
        case net::schedule::least_connections: return pick_least(l, live);
        case net::schedule::custom: return pick_custom(l, c, live);
        default: return next_in_turn(l, live);
        }
    }

    // The next live member after the last one served, in join order.
    std::shared_ptr<record> next_in_turn(listening_socket& l, const std::vector<std::shared_ptr<record>*>& live) {
        const std::size_t n = l.members.size();
        for (std::size_t i = 0; i < n; ++i) {
            const std::size_t at = (l.cursor + i) % n;
            if (std::find(live.begin(), live.end(), &l.members[at]) != live.end()) {
                l.cursor = at + 1;
                return l.members[at];
            }
        }
        return nullptr;
    }

    std::shared_ptr<record> pick_sticky(listening_socket& l, const pending_connection& c,
                                        const std::vector<std::shared_ptr<record>*>& live) {
        const std::uint64_t address = c.peer.address_hash();
        auto known = l.sticky.find(address);
        if (known != l.sticky.end())
            for (auto* m : live)
                if ((*m)->id == known->second) return *m;
        std::shared_ptr<record> best;
        std::uint64_t best_weight = 0;
        for (auto* m : live) {
            const auto w = rendezvous_weight(address, (*m)->id);
            if (!best || w > best_weight) {
                best = *m;
                best_weight = w;
            }
        }
        // Re-mapped only when its worker no longer takes connections, not when it refused one.
        const bool its_worker_left =
            known == l.sticky.end() || std::none_of(l.members.begin(), l.members.end(), [&](const auto& m) {
                return m->id == known->second && takes_connections(*m);
            });
        if (its_worker_left) {
            if (l.sticky.size() >= sticky_table_limit) l.sticky.clear();
            l.sticky[address] = best->id;
        }
        return best;
    }

    std::shared_ptr<record> pick_least(listening_socket& l, const std::vector<std::shared_ptr<record>*>& live) {
        std::size_t fewest = SIZE_MAX;
        for (auto* m : live) fewest = std::min(fewest, l.open[(*m)->id]);
        std::vector<std::shared_ptr<record>*> least;
        for (auto* m : live)
            if (l.open[(*m)->id] == fewest) least.push_back(m);
        return next_in_turn(l, least);  // ties in turn, so equals share alike
    }

    std::shared_ptr<record> pick_custom(listening_socket& l, const pending_connection& c,
                                        const std::vector<std::shared_ptr<record>*>& live) {
        std::vector<net::candidate> candidates;
        candidates.reserve(live.size());
        for (auto* m : live) candidates.push_back(net::candidate{(*m)->id, l.open[(*m)->id]});
        const unsigned chosen = options_->pick(c.peer, candidates);
        for (auto* m : live)
            if ((*m)->id == chosen) return *m;
        return next_in_turn(l, live);
    }

    const primary_options* options_;
    std::map<std::string, std::shared_ptr<listening_socket>> listeners_;  // by endpoint text, as the workers asked
    std::unordered_map<std::uint64_t, handed_over> in_flight_;            // by seq
    std::uint32_t next_listener_ = 1;
    std::uint64_t next_seq_ = 0;
    bool warned_ = false;
};

}  // namespace cluster::detail
