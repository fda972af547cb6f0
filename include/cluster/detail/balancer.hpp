// cluster::detail::balancer: the primary's listening sockets, one per endpoint the workers
// listen on (or adopted), with their members — the workers the socket's connections go to —
// each socket's life from the first listener to the last, and the wiring between its
// acceptor, its picker and the handoff of each connection.
#pragma once

#include <fcntl.h>
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
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <cluster/detail/acceptor.hpp>
#include <cluster/detail/connection_touched.hpp>
#include <cluster/detail/control.hpp>
#include <cluster/detail/handoff.hpp>
#include <cluster/detail/head_peek.hpp>
#include <cluster/detail/picker.hpp>
#include <cluster/detail/pressure_log.hpp>
#include <cluster/detail/worker_record.hpp>
#include <cluster/io/scope.hpp>
#include <cluster/net/endpoint.hpp>
#include <cluster/net/inherited_socket.hpp>
#include <cluster/net/listen_socket.hpp>
#include <cluster/net/schedule.hpp>
#include <cluster/net/sticky_key.hpp>
#include <cluster/net/udp_endpoint.hpp>
#include <cluster/net/udp_socket.hpp>
#include <cluster/options.hpp>
#include <cluster/overload.hpp>
#include <cluster/result.hpp>
#include <cluster/unique_fd.hpp>

namespace cluster::detail {

// A listening socket handed to a binary upgrade's successor, under the name LISTEN_FDNAMES
// gives it there.
struct handed_socket {
    int fd = -1;
    std::string name;
};

// The most connections offered to one worker and not answered yet. The primary keeps each
// until answered, so a worker that stops answering (frozen, or busy in a long computation)
// would otherwise pin descriptors until none are left for the workers that do answer.
// Node hands one at a time; a few in flight keep a burst flowing.
inline constexpr std::size_t max_unanswered_handoffs = 16;
static_assert(control::answers_held_at_most < max_unanswered_handoffs);

// The most memory one socket's peeks at request heads hold at once (sticky keys): past it,
// or past its backlog's worth of peeks, connections go by address without one.
inline constexpr std::size_t max_peek_memory = 16u << 20;

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
    // A Unix socket file the primary made is the primary's to remove.
    ~balancer() {
        for (auto& [id, l] : by_id_) l->file.remove();
    }

    // A worker's listen request: the answer to send it. Starts accepting when the schedule
    // has the primary accept. `listening` is filled in on success, for the event.
    control::listen_reply listen(const std::shared_ptr<record>& h, const control::listen_request& ask, io::scope& tasks,
                                 net::endpoint& listening) {
        control::listen_reply reply;
        auto l = find_or_open(*h, ask, tasks, reply);
        if (!l) return reply;
        if (!join(*l, h, reply)) {
            close_if_unused(*l);
            return reply;
        }
        reply.listener = l->id;
        reply.local = l->udp ? net::udp_endpoint(l->local).to_string() : l->local.to_string();
        listening = l->local;
        return reply;
    }

    // Takes `fd`, a listening socket the primary was handed, as the cluster's, under
    // "fd:<name>" and its address (see primary<P>::adopt): the endpoint naming it, or why not.
    result<net::endpoint> adopt(unique_fd fd, std::string name, std::string& what) {
        if (name.empty()) name = std::to_string(fd.get());
        auto named = net::endpoint::parse("fd:" + name);
        if (!named) {
            what = "\"" + name + "\" cannot name an inherited socket";
            return named.error();
        }
        auto inherited = net::inspect_inherited(std::move(fd), what);
        if (!inherited) return inherited.error();
        std::vector<std::string> keys{named->to_string(), inherited->local.to_string()};
        if (listeners_.contains(keys[0])) {
            what = "a socket was adopted as \"" + name + "\" already";
            return errno_code(EEXIST);
        }
        if (auto at = listeners_.find(keys[1]); at != listeners_.end()) {
            if (!takes_spare(*at->second, *inherited)) {
                what = "the cluster has a socket on " + keys[1] + " already";
                return errno_code(EADDRINUSE);
            }
            add_spare(at->second, std::move(inherited->fd), std::move(keys[0]));
            return *named;
        }
        auto l = std::make_shared<listening_socket>(next_listener_++, &options_->pick);
        l->adopted = true;
        l->idle = true;
        l->local = inherited->local;
        l->socket = std::move(inherited->fd);
        l->options.reuse_port = inherited->reuse_port;
        l->options.v6_only = inherited->v6_only;
        l->options.defer_accept = inherited->defer_accept;
        enlist(l, std::move(keys));
        return *named;
    }

    // What a binary upgrade's successor takes over: every TCP socket a worker listens on (an
    // adopted one nobody uses stays behind), under its adopted name or "listen-<id>". Under
    // reuseport, every slot's socket, the first under that name and the others under
    // "<name>.<n>": the successor adopts them as one socket with spares, and its slots accept
    // on them, so none closes and nothing the kernel queued on them is lost.
    [[nodiscard]] std::vector<handed_socket> handover() const {
        std::vector<handed_socket> out;
        for (const auto& [id, l] : by_id_) {
            if (l->udp || l->idle || l->stopped) continue;
            const std::string name = l->adopted ? l->keys.front().substr(3) : "listen-" + std::to_string(id);
            const auto fds = sockets_of(*l);
            for (std::size_t n = 0; n < fds.size(); ++n)
                out.push_back({fds[n], n == 0 ? name : name + "." + std::to_string(n)});
        }
        return out;
    }

    // The successor serves `handed` now: this primary never shuts them down, nor removes a Unix
    // socket's file, as it would its own. It keeps one copy of each address's, closed as it
    // stops; its workers accept on theirs until they leave.
    void handed_over(const std::vector<handed_socket>& handed) {
        for (auto& [id, l] : by_id_) {
            if (l->udp) continue;
            for (const auto& h : handed) {
                auto slot = std::find_if(l->per_slot.begin(), l->per_slot.end(),
                                         [&](const auto& s) { return s.second.get() == h.fd; });
                if (slot != l->per_slot.end()) {
                    if (!l->socket) l->socket = std::move(slot->second);
                    l->per_slot.erase(slot);
                }
                auto spare = std::find_if(l->spares.begin(), l->spares.end(),
                                          [&](const auto& s) { return s.socket.get() == h.fd; });
                if (spare == l->spares.end()) continue;
                stop_accepting_on(*spare);
                l->spares.erase(spare);
            }
            l->adopted = true;
            l->file = net::socket_file{};
        }
    }

    // An adopted socket nobody listens on yet: a binary upgrade's successor is not ready to
    // take over while one of the sockets handed to it waits for its workers.
    [[nodiscard]] bool adopted_idle() const noexcept {
        return std::any_of(by_id_.begin(), by_id_.end(),
                           [](const auto& l) { return l.second->adopted && l.second->idle; });
    }

    // The worker took the connection `seq`, or refused it: then it goes to another.
    // A connection taken also makes room in that worker's window: connections waiting may
    // go now. A refusal makes none: offered again at once, they would only come back.
    // False if `seq` was no connection offered to that worker (nothing to count).
    bool acknowledged(const record& h, std::uint64_t seq, bool accepted) {
        auto c = handoff_.answered(seq, h.id);
        if (!c) return false;
        auto l = by_id(c->listener);
        if (!l) return true;
        if (accepted) {
            retry_waiting(*l);
            return true;
        }
        uncount(*l, h.id);
        c->refused.push_back(h.id);
        distribute(*l, std::move(*c));
        return true;
    }

    // Connections handed to the worker and not reported closed, on every socket.
    [[nodiscard]] std::uint64_t open_in(unsigned worker_id) const {
        std::uint64_t n = 0;
        for (const auto& [id, l] : by_id_) n += count_of(*l, worker_id);
        return n;
    }
    // Connections offered to the worker and held by the primary until it answers.
    [[nodiscard]] std::uint64_t held_for(unsigned worker_id) const noexcept { return handoff_.in_flight_to(worker_id); }

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

    // The worker closed its listener: it leaves the socket, which closes if it was the last.
    void unlisten(const record& h, std::uint32_t listener) {
        auto l = by_id(listener);
        if (!l || !remove_member(*l, h.id)) return;
        release_slot(*l, h.home_slot);
        close_if_unused(*l);
    }

    // The worker's channel ended: it takes nothing more, and what it was handed and had not
    // taken goes to the others. Not what it began to serve, though its answer had not come (a
    // worker holds its answers a little, see control::answers_held_at_most): a request it read
    // would never reach the next worker, whose client would wait for an answer to it. The
    // primary closes those, as the worker would have. A worker that dies or leaves did not
    // close its listeners: if its slot is kept (a restart is coming, or a reload's new worker
    // has yet to listen), its sockets stay open, their connections waiting for the slot's next
    // worker. Otherwise they close once it was the last.
    void worker_gone(const record& h, bool slot_kept) {
        const auto all = sockets();
        for (const auto& l : all) {
            if (!remove_member(*l, h.id)) continue;
            if (!slot_kept)
                release_slot(*l, h.home_slot);
            else if (!has_member_in(*l, h.home_slot))
                l->awaiting.insert(h.home_slot);
        }
        for (std::uint64_t seq : handoff_.unanswered(h.id))
            (void)acknowledged(h, seq, connection_touched(handoff_.socket_of(seq)));
        for (const auto& l : all) {
            retry_waiting(*l);  // sticky clients that waited for it: it is gone, they go elsewhere
            close_if_unused(*l);
        }
    }

    // A slot the primary no longer keeps: no socket waits for its next worker any more, and
    // its reuseport sockets close with its last worker.
    void forget_slot(unsigned slot) {
        for (const auto& l : sockets()) {
            l->awaiting.erase(slot);
            release_slot(*l, slot);
            close_if_unused(*l);
        }
    }

    // The cluster stops: the connections already waiting in the primary's sockets go to the
    // workers before they are disconnected, and then every socket stops listening, so that
    // later clients are refused instead of left waiting for workers that are leaving.
    //
    // A listening socket that stops listening resets the connections the kernel completed
    // and nobody accepted. So every socket, the workers' own included (shared, reuseport:
    // the primary holds them too), is emptied first; and the workers, told by the failed
    // accept, take what is handed to them until their disconnect.
    //
    // An adopted socket is not the primary's to shut down (systemd, say, holds it too): it
    // goes on listening, and what the kernel queues on it waits for its next owner.
    void stop_accepting() {
        for (const auto& l : sockets()) {
            if (l->stopped || l->idle) continue;
            l->stopped = true;
            // A UDP socket has no connections queued, and one shut down for reading would
            // end its workers' receives as if with empty datagrams: their leaving ends them.
            if (l->udp) continue;
            if (l->acceptor) l->acceptor->stop();
            const admit_function admit_here = [this, &l = *l](unique_fd socket) { admit(l, std::move(socket)); };
            if (!l->adopted) sweep(l->socket.get(), admit_here);
            for (auto& [slot, s] : l->per_slot) sweep(s.get(), admit_here);
            for (auto& spare : l->spares) {
                stop_accepting_on(spare);
                sweep(spare.socket.get(), admit_here);
            }
            if (!l->adopted) ::shutdown(l->socket.get(), SHUT_RD);
            for (auto& [slot, s] : l->per_slot) ::shutdown(s.get(), SHUT_RD);
            for (auto& spare : l->spares) ::shutdown(spare.socket.get(), SHUT_RD);
            l->waiting.clear();
        }
    }

    // Around a fork-mode worker's fork(): every connection accepted by then is one the
    // balancer knows of, which the child closes, and none is accepted until it exists.
    void pause_accepting() {
        for (auto& a : acceptors()) a->pause();
    }
    void resume_accepting() {
        for (auto& a : acceptors()) a->resume();
    }

    // In a fork-mode worker, still inside fork(): the primary's sockets (adopted ones too),
    // and the clients' connections it holds, are not the worker's to keep open.
    void close_in_forked_child() const noexcept {
        for (const auto& [id, l] : by_id_) {
            if (l->acceptor) l->acceptor->close_queued_in_forked_child();
            ::close(l->socket.get());
            for (const auto& [slot, s] : l->per_slot) ::close(s.get());
            for (const auto& spare : l->spares) {
                if (spare.acceptor) spare.acceptor->close_queued_in_forked_child();
                ::close(spare.socket.get());
            }
            for (const auto& c : l->waiting) ::close(c.socket.get());
            for (const int fd : l->peeking) ::close(fd);
        }
        handoff_.close_in_forked_child();
    }

private:
    // A socket adopted beside the first on its address, both with SO_REUSEPORT: a binary
    // upgrade's predecessor hands over each of its reuseport slots' sockets. A reuseport slot
    // without a socket takes one before opening its own; until then, the kernel goes on
    // queueing connections on it, and the primary accepts them and hands them on.
    struct spare_socket {
        unique_fd socket;
        std::shared_ptr<detail::acceptor> acceptor;  // while the socket is active and no slot took it
    };

    struct listening_socket {
        listening_socket(std::uint32_t i, const net::pick_function* custom)
            : id(i), picker(net::schedule::round_robin, custom) {}

        std::uint32_t id;
        net::schedule sched = net::schedule::round_robin;
        net::listen_options options;
        bool udp = false;  // a UDP socket, bound: every worker receives on it (or on its slot's)
        net::endpoint local;
        unique_fd socket;
        std::vector<std::string> keys;  // where listeners_ has it: its endpoint, or an adopted one's name and address
        net::socket_file file;          // a Unix socket file the primary made, removed as the socket closes
        bool adopted = false;           // handed to the primary: kept open, never shut down
        bool idle = false;              // adopted, and nobody listens: the next listener picks the schedule
        std::map<unsigned, unique_fd> per_slot;      // reuseport: each slot's socket, which its next worker reuses
        std::vector<spare_socket> spares;            // adopted on the same address, for slots yet to take them
        unsigned adopted_slot = 0;                   // reuseport: the slot accepting on the adopted socket, if any
        std::shared_ptr<detail::acceptor> acceptor;  // where the primary accepts
        bool stopped = false;
        std::vector<std::shared_ptr<record>> members;  // the workers it hands connections to, in join order
        std::set<unsigned> awaiting;  // slots whose worker died or left, and whose next one has not listened yet
        detail::picker picker;
        std::map<unsigned, std::size_t> open;    // handed to each worker and not reported closed
        std::deque<pending_connection> waiting;  // no worker could take them yet
        net::sticky_key key;                     // sticky, custom: what the primary peeks at, if anything
        io::scope* tasks = nullptr;              // where its peeks run
        std::set<int> peeking;                   // connections being peeked at, not handed on yet
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
        if (ask.mode >= 0) o.mode = static_cast<mode_t>(ask.mode);
        o.defer_accept = std::chrono::seconds(ask.defer_accept_s);
        return o;
    }

    // The key `ask` names, once valid_key() has passed it.
    static net::sticky_key key_of(const control::listen_request& ask) {
        using source = net::sticky_key::source;
        net::sticky_key k;
        switch (static_cast<source>(ask.key_from)) {
        case source::address: break;
        case source::header: k = net::sticky_key::header(ask.key_name); break;
        case source::cookie: k = net::sticky_key::cookie(ask.key_name); break;
        case source::query: k = net::sticky_key::query(ask.key_name); break;
        }
        k.peek_bytes = ask.peek_bytes;
        k.peek_timeout = std::chrono::milliseconds(ask.peek_timeout_ms);
        return k;
    }

    // Whether the sticky key asked for is one the primary can peek for under `s`.
    static bool valid_key(const control::listen_request& ask, net::schedule s, control::listen_reply& reply) {
        if (ask.key_from > static_cast<std::uint8_t>(net::sticky_key::source::query))
            return (failure(reply, EINVAL, "unknown sticky key source " + std::to_string(ask.key_from)), false);
        if (ask.key_name.size() > net::max_key_name)
            return (failure(reply, EINVAL,
                            "a sticky key's name is " + std::to_string(ask.key_name.size()) + " bytes, past " +
                                std::to_string(net::max_key_name)),
                    false);
        const auto k = key_of(ask);
        if (!k.peeks()) return true;
        if (s != net::schedule::sticky && s != net::schedule::custom)
            return (failure(reply, EINVAL,
                            std::string("a sticky key (") + net::to_string(k.from) + ") is for schedule sticky or " +
                                "custom, not " + net::to_string(s)),
                    false);
        if (k.name().empty())
            return (failure(reply, EINVAL, std::string("a sticky key by ") + net::to_string(k.from) + " needs a name"),
                    false);
        if (k.peek_bytes == 0 || k.peek_bytes > net::max_peek_bytes)
            return (failure(reply, EINVAL,
                            "sticky key peek_bytes: from 1 to " + std::to_string(net::max_peek_bytes) + ", not " +
                                std::to_string(k.peek_bytes)),
                    false);
        if (k.peek_timeout.count() <= 0 || k.peek_timeout > net::max_peek_timeout)
            return (failure(reply, EINVAL,
                            "sticky key peek_timeout: from 1 to " + std::to_string(net::max_peek_timeout.count()) +
                                " ms, not " + std::to_string(k.peek_timeout.count())),
                    false);
        return true;
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

    // Where listeners_ keeps a socket: its endpoint's text; with port 0, also which of a
    // worker's sockets there it is. Port 0 asks for a socket of one's own, so a worker's second
    // listen there gets a second port; and a worker's n-th such socket is every other worker's
    // n-th, as Node keys them by index, so workers that listen alike share their ports.
    static std::string key_of(const net::endpoint& ep, bool udp, unsigned index) {
        const std::string text = udp ? net::udp_endpoint(ep).to_string() : ep.to_string();
        return port_zero(ep) ? text + "#" + std::to_string(index) : text;
    }
    static bool port_zero(const net::endpoint& ep) noexcept { return ep.is_ip() && ep.port() == 0; }

    std::shared_ptr<listening_socket> find_or_open(const record& h, const control::listen_request& ask,
                                                   io::scope& tasks, control::listen_reply& reply) {
        auto ep = address_of(ask.endpoint);
        if (!ep) return (failure(reply, EINVAL, "not an endpoint: " + ep.error().message()), nullptr);
        if (ask.schedule > static_cast<std::uint8_t>(net::last_schedule))
            return (failure(reply, EINVAL, "unknown schedule " + std::to_string(ask.schedule)), nullptr);
        if (ask.mode >= 0 && !net::detail::has_socket_file(*ep))
            return (failure(reply, EINVAL, "mode: only a Unix socket path has a file to set it on"), nullptr);
        const auto s = static_cast<net::schedule>(ask.schedule);
        if (!valid_key(ask, s, reply)) return nullptr;
        const bool udp = net::udp_endpoint::names_udp(ask.endpoint);
        if (udp && net::primary_accepts(s))
            return (failure(reply, EINVAL,
                            std::string("schedule ") + net::to_string(s) +
                                " cannot serve UDP, which has no connections to hand on: use shared or reuseport"),
                    nullptr);
        for (unsigned index = 0;; ++index) {
            const std::string key = key_of(*ep, udp, index);
            auto it = listeners_.find(key);
            if (it == listeners_.end()) {
                if (ep->is_inherited())
                    return (failure(reply, EBADF, "no socket was adopted as \"" + ep->name() + "\" (primary::adopt)"),
                            nullptr);
                return open(key, *ep, udp, s, ask, tasks, reply);
            }
            if (port_zero(*ep) && is_member(*it->second, h.id)) continue;  // this worker's next one
            if (!usable(*it->second, s, ask, tasks, reply)) return nullptr;
            return it->second;
        }
    }

    // A new socket, listening and accepting as `s` says.
    std::shared_ptr<listening_socket> open(std::string key, const net::endpoint& ep, bool udp, net::schedule s,
                                           const control::listen_request& ask, io::scope& tasks,
                                           control::listen_reply& reply) {
        if (!serves(ep, s, reply)) return nullptr;
        auto l = std::make_shared<listening_socket>(next_listener_++, &options_->pick);
        l->options = options_of(ask, s);
        l->key = key_of(ask);
        l->udp = udp;
        std::string step;
        auto opened = open_socket(*l, ep, step);
        if (!opened) return (failure(reply, errno_of(opened.error()), step), nullptr);
        l->socket = std::move(*opened);
        auto local = net::local_endpoint(l->socket.get());
        l->local = local ? *local : ep;
        l->file = net::socket_file::at(l->local);
        enlist(l, {std::move(key)});
        start(*l, s, tasks);
        return l;
    }

    // Whether `s` can serve `ep` at all.
    bool serves(const net::endpoint& ep, net::schedule s, control::listen_reply& reply) const {
        if (s == net::schedule::custom && !options_->pick)
            return (failure(reply, EINVAL, "schedule custom needs primary_options::pick"), false);
        if (s == net::schedule::reuseport && !ep.is_ip())
            return (failure(reply, EINVAL, "schedule reuseport needs an IP endpoint (SO_REUSEPORT is for TCP)"), false);
        return true;
    }

    // An existing socket takes a listener with schedule `s`: its own schedule, unless it is an
    // idle adopted socket, which takes the schedule it is asked for.
    bool usable(listening_socket& l, net::schedule s, const control::listen_request& ask, io::scope& tasks,
                control::listen_reply& reply) {
        if (l.idle) return activate(l, s, ask, tasks, reply);
        if (l.sched != s)
            return (failure(reply, EADDRINUSE,
                            std::string("the cluster already listens there with schedule ") + net::to_string(l.sched)),
                    false);
        if (l.stopped) return (failure(reply, ECANCELED, "the cluster is stopping"), false);
        return true;
    }

    // An adopted socket serves `s` from now on. The sockets reuseport opens beside it bind its
    // address, which only a socket that set SO_REUSEPORT before it was bound shares.
    bool activate(listening_socket& l, net::schedule s, const control::listen_request& ask, io::scope& tasks,
                  control::listen_reply& reply) {
        if (!serves(l.local, s, reply)) return false;
        if (s == net::schedule::reuseport && !l.options.reuse_port)
            return (failure(reply, EINVAL,
                            "schedule reuseport on an adopted socket needs SO_REUSEPORT set on it before it was bound"),
                    false);
        auto o = options_of(ask, s);
        o.reuse_port = l.options.reuse_port;
        o.v6_only = l.options.v6_only;
        o.defer_accept = l.options.defer_accept;
        l.options = o;
        l.key = key_of(ask);
        start(l, s, tasks);
        return true;
    }

    // `l` serves `s` from now on: where the primary accepts, it starts accepting; on spares,
    // whatever the schedule.
    void start(listening_socket& l, net::schedule s, io::scope& tasks) {
        l.sched = s;
        l.picker = detail::picker(s, &options_->pick);
        l.tasks = &tasks;
        l.idle = false;
        for (auto& spare : l.spares) spare.acceptor = accept_on(l, spare.socket.get());
        if (net::primary_accepts(s)) l.acceptor = accept_on(l, l.socket.get());
    }

    // The primary accepting on `fd`, each connection admitted to `l`.
    std::shared_ptr<detail::acceptor> accept_on(listening_socket& l, int fd) {
        auto a = std::make_shared<detail::acceptor>(
            fd, [this, &l](unique_fd socket) { admit(l, std::move(socket)); }, counts_);
        l.tasks->spawn(detail::acceptor::run(a));
        return a;
    }

    // Whether `s`, adopted on `l`'s address, joins it as a spare: both set SO_REUSEPORT.
    static bool takes_spare(const listening_socket& l, const net::inherited_socket& s) noexcept {
        return l.adopted && !l.udp && l.options.reuse_port && s.reuse_port;
    }

    // A spare of a socket already serving is accepted on at once.
    void add_spare(const std::shared_ptr<listening_socket>& l, unique_fd fd, std::string key) {
        auto& spare = l->spares.emplace_back(spare_socket{std::move(fd), nullptr});
        if (!l->idle && !l->stopped) spare.acceptor = accept_on(*l, spare.socket.get());
        listeners_.emplace(key, l);
        l->keys.push_back(std::move(key));
    }

    // The primary accepts on the spare no more: what it accepted is handed on first.
    static void stop_accepting_on(spare_socket& spare) {
        if (spare.acceptor) spare.acceptor->stop();
        spare.acceptor.reset();
    }

    // A spare for a reuseport slot: the primary no longer accepts on it.
    static unique_fd take_spare(listening_socket& l) {
        auto spare = std::move(l.spares.back());
        l.spares.pop_back();
        stop_accepting_on(spare);
        return std::move(spare.socket);
    }

    // Every listening socket of `l`'s, the one that stands for it first.
    static std::vector<int> sockets_of(const listening_socket& l) {
        std::vector<int> fds;
        if (l.socket) fds.push_back(l.socket.get());
        for (const auto& [slot, s] : l.per_slot) fds.push_back(s.get());
        for (const auto& spare : l.spares) fds.push_back(spare.socket.get());
        return fds;
    }

    // Where the primary accepts, on every socket.
    std::vector<std::shared_ptr<detail::acceptor>> acceptors() const {
        std::vector<std::shared_ptr<detail::acceptor>> out;
        for (const auto& [id, l] : by_id_) {
            if (l->acceptor) out.push_back(l->acceptor);
            for (const auto& spare : l->spares)
                if (spare.acceptor) out.push_back(spare.acceptor);
        }
        return out;
    }

    void enlist(const std::shared_ptr<listening_socket>& l, std::vector<std::string> keys) {
        for (const auto& key : keys) listeners_.emplace(key, l);
        l->keys = std::move(keys);
        by_id_.emplace(l->id, l);
    }

    // `h` joins `l`'s members, with the socket to accept on where the workers accept.
    bool join(listening_socket& l, const std::shared_ptr<record>& h, control::listen_reply& reply) {
        if (is_member(l, h->id)) return (failure(reply, EADDRINUSE, "this worker already listens there"), false);
        if (l.sched == net::schedule::shared) {
            reply.socket = dup_socket(l.socket.get());
            if (!reply.socket) return (failure(reply, errno, "duplicating the listening socket"), false);
        } else if (l.sched == net::schedule::reuseport) {
            if (!socket_for_slot(l, h->home_slot, reply)) return false;
        }
        // Every schedule's members: where the primary accepts, they get its connections; with
        // shared and reuseport, they get what a graceful stop takes out of the sockets.
        l.members.push_back(h);
        l.awaiting.erase(h->home_slot);
        retry_waiting(l);
        return true;
    }

    // reuseport: a dup of the slot's socket for its worker.
    bool socket_for_slot(listening_socket& l, unsigned slot, control::listen_reply& reply) {
        const int fd = slot_socket(l, slot, reply);
        if (fd < 0) return false;
        reply.socket = dup_socket(fd);
        if (!reply.socket) return (failure(reply, errno, "duplicating the slot's listening socket"), false);
        return true;
    }

    // reuseport: the slot's socket — the one it had, the first one (or the adopted one, while
    // no slot accepts on it), or one opened on the port the first one got; -1 if it cannot be
    // opened. A worker that replaces another in its slot (a restart, a reload) accepts on the
    // same socket, so the connections queued there are not lost with the worker that leaves.
    int slot_socket(listening_socket& l, unsigned slot, control::listen_reply& reply) {
        if (auto it = l.per_slot.find(slot); it != l.per_slot.end()) return it->second.get();
        if (l.adopted && (l.adopted_slot == 0 || l.adopted_slot == slot)) {
            l.adopted_slot = slot;
            return l.socket.get();
        }
        if (!l.spares.empty()) return l.per_slot.emplace(slot, take_spare(l)).first->second.get();
        if (!l.adopted && l.socket) return l.per_slot.emplace(slot, std::move(l.socket)).first->second.get();
        std::string step;
        auto opened = open_socket(l, l.local, step);
        if (!opened) return (failure(reply, errno_of(opened.error()), step), -1);
        return l.per_slot.emplace(slot, std::move(*opened)).first->second.get();
    }

    // reuseport: a slot none of whose workers listens any more gives its socket up (what the
    // kernel queued on it is reset, as with nginx); an adopted one waits for the next slot.
    static void release_slot(listening_socket& l, unsigned slot) {
        if (has_member_in(l, slot)) return;
        if (auto it = l.per_slot.find(slot); it != l.per_slot.end()) {
            stop_listening(it->second.get());
            l.per_slot.erase(it);
        }
        if (l.adopted_slot == slot) l.adopted_slot = 0;
    }

    // A worker's accept still in flight on a socket keeps it open, and listening, until it
    // ends: the socket stops listening now, and new clients are refused at once.
    static void stop_listening(int fd) noexcept { ::shutdown(fd, SHUT_RD); }

    // Nobody listens on `l`, and no slot waits for its next worker to: the socket closes, and
    // new clients are refused (as in Node); its acceptor, its reuseport sockets, the
    // connections held for it and its socket file go with it. An adopted socket stays open
    // and idle instead, its clients waiting for the next listener.
    void close_if_unused(listening_socket& l) {
        if (!l.members.empty() || !l.awaiting.empty() || l.idle) return;
        if (l.acceptor) l.acceptor->stop();
        l.acceptor.reset();
        for (auto& spare : l.spares) stop_accepting_on(spare);
        for (const auto& [slot, s] : l.per_slot) stop_listening(s.get());
        l.per_slot.clear();
        l.adopted_slot = 0;
        l.open.clear();
        l.stopped = false;
        l.idle = true;
        if (!l.adopted) forget(l);
    }

    // The socket closes with the last of these references: the caller's.
    void forget(listening_socket& l) {
        stop_listening(l.socket.get());
        l.waiting.clear();
        l.file.remove();
        for (const auto& key : l.keys) listeners_.erase(key);
        by_id_.erase(l.id);
    }

    std::shared_ptr<listening_socket> by_id(std::uint32_t id) const {
        auto it = by_id_.find(id);
        return it == by_id_.end() ? nullptr : it->second;
    }

    // Every socket, as a list that outlives the ones that close meanwhile.
    std::vector<std::shared_ptr<listening_socket>> sockets() const {
        std::vector<std::shared_ptr<listening_socket>> out;
        out.reserve(by_id_.size());
        for (const auto& [id, l] : by_id_) out.push_back(l);
        return out;
    }

    static bool is_member(const listening_socket& l, unsigned worker_id) {
        return std::any_of(l.members.begin(), l.members.end(), [&](const auto& m) { return m->id == worker_id; });
    }
    static bool has_member_in(const listening_socket& l, unsigned slot) {
        return std::any_of(l.members.begin(), l.members.end(), [&](const auto& m) { return m->home_slot == slot; });
    }
    // False if it was none.
    static bool remove_member(listening_socket& l, unsigned worker_id) {
        l.open.erase(worker_id);
        return std::erase_if(l.members, [&](const auto& m) { return m->id == worker_id; }) > 0;
    }

    void admit(listening_socket& l, unique_fd socket) {
        pending_connection c;
        c.listener = l.id;
        if (l.sched == net::schedule::sticky || l.sched == net::schedule::custom) {
            auto peer = net::peer_endpoint(socket.get());
            if (peer) c.peer = *peer;
        }
        c.socket = std::move(socket);
        if (!peeks(l)) return distribute(l, std::move(c));
        l.peeking.insert(c.socket.get());
        l.tasks->spawn(peek_then_distribute(by_id(l.id), std::move(c)));
    }

    // Whether the next connection's head is peeked at. Past a backlog's worth of peeks at
    // once, or max_peek_memory's, connections go by address: a flood of slow clients holds
    // no more than that, and nobody waits behind them. A graceful stop's last connections
    // go at once, while the workers still take them.
    static bool peeks(const listening_socket& l) noexcept {
        if (!l.key.peeks() || !l.tasks || l.stopped) return false;
        const std::size_t most = std::min(static_cast<std::size_t>(std::max(l.options.backlog, 1)),
                                          std::max<std::size_t>(max_peek_memory / l.key.peek_bytes, 1));
        return l.peeking.size() < most;
    }

    // Peeks while other connections go on being admitted; then `c` goes where its key says,
    // unless its socket closed meanwhile (then so does `c`).
    io::task<void> peek_then_distribute(std::shared_ptr<listening_socket> l, pending_connection c) {
        auto head = co_await peek_head(c.socket.get(), l->key);
        l->peeking.erase(c.socket.get());
        if (l->idle || by_id(l->id) != l) co_return;
        c.peeked = std::move(head.bytes);
        c.key = std::move(head.key);
        distribute(*l, std::move(c));
    }

    // Offers `c` to the worker the schedule picks. Ours is kept until the answer, so a worker
    // process's channel sends it as it is (lent); a thread's takes a dup, and with no
    // descriptor left for it the connection is shed.
    void distribute(listening_socket& l, pending_connection c) {
        for (;;) {
            auto target = choose(l, c);
            if (!target) return hold(l, std::move(c));
            const std::uint64_t seq = handoff_.next_seq();
            control::connection offer;
            offer.listener = l.id;
            offer.seq = seq;
            offer.socket = std::move(c.socket);
            const std::error_code failed = target->link.lend(offer);
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
    // restart, say), or its sticky worker has max_unanswered_handoffs unanswered: it waits in
    // the primary, up to the socket's backlog.
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
            members.push_back(pick_member{m->id, count_of(l, m->id), m->takes_connections(), refused, saturated});
        }
        const unsigned chosen = l.picker.pick(net::pick_context{c.peer, c.peeked, c.key}, members);
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
    std::map<std::string, std::shared_ptr<listening_socket>> listeners_;  // by key_of(), and adopted ones by name
    std::map<std::uint32_t, std::shared_ptr<listening_socket>> by_id_;    // each once
    handoff handoff_;
    std::uint32_t next_listener_ = 1;
};

}  // namespace cluster::detail
