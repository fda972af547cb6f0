// The scripted worker's behaviours. They run in the worker process: no Catch here; a broken
// expectation throws, which ends the worker with exit code 1.
#include "scripted_worker.hpp"

#include "descriptors.hpp"

#include <cluster/metrics.hpp>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CLUSTER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(CLUSTER_ASAN)
// <sanitizer/allocator_interface.h> declares it, but comes with clang only; g++'s libasan has it too.
extern "C" void __sanitizer_purge_allocator();
#endif

#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace support {

namespace {

using cluster::task;
using cluster::worker;
using namespace std::chrono_literals;

std::string env_or(const char* name, std::string fallback = {}) {
    const char* value = cluster::getenv(name);  // a thread worker's env option too
    return value ? value : fallback;
}

void check(const cluster::result<void>& r, const char* what) {
    if (!r) throw std::system_error(r.error(), what);
}

template <class T>
task<void> send(worker<proto>& w, const T& msg) {
    auto sent = co_await w.send(msg);
    check(sent, "send");
}

task<void> tell(worker<proto>& w, std::string text) {
    const note n{w.id(), std::move(text)};
    (void)co_await w.send(n);
}

task<void> drain(worker<proto>& w) {
    while (auto m = co_await w.receive()) {}
}

// ---- lifecycle ----

// Lets the test see that the worker's code went on after receive() ended.
void write_marker() {
    const std::string path = env_or(setting::marker);
    if (path.empty()) return;
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw std::system_error(errno, std::system_category(), "open " + path);
    const bool whole =
        ::write(fd, finished_mark.data(), finished_mark.size()) == static_cast<ssize_t>(finished_mark.size());
    ::close(fd);
    if (!whole) throw std::runtime_error("short write to " + path);
}

task<void> say_hello(worker<proto>& w) {
    const hello h{w.id()};
    co_await send(w, h);
}

task<void> drain_until_disconnected(worker<proto>& w) {
    co_await drain(w);
    write_marker();
}

task<void> hello_then_disconnect(worker<proto>& w) {
    co_await say_hello(w);
    auto left = co_await w.disconnect();
    check(left, "disconnect");
}

task<void> hello_then_return(worker<proto>& w) { co_await say_hello(w); }

task<void> wait_for_disconnect(worker<proto>& w) { co_await drain_until_disconnected(w); }

// Leaving on its own must end its receive() too.
task<void> leave_then_wait(worker<proto>& w) {
    auto left = co_await w.disconnect();
    check(left, "disconnect");
    co_await drain_until_disconnected(w);
}

task<void> throw_at_once(worker<proto>&) {
    throw std::runtime_error("thrown on purpose by the test's worker");
    co_return;
}

task<void> ignore_disconnect(worker<proto>&) { (void)co_await cluster::io::sleep_for(std::chrono::hours(1)); }

task<void> report_identity(worker<proto>& w) {
    const identity me{cluster::is_primary(),
                      cluster::is_worker(),
                      cluster::this_worker_id(),
                      ::getuid(),
                      ::getgid(),
                      env_or(setting::tag),
                      self_exe(),
                      own_inode(),
                      w.slot()};
    co_await send(w, me);
}

// Listens until disconnected on a socket of its own, so the primary can connect to what was announced.
task<void> announce_listening(worker<proto>& w) {
    const auto listener = tcp_listener();
    auto announced = co_await w.announce_listening(listener.get());
    check(announced, "announce_listening");
    const bound_port port{ntohs(local_address(listener.get()).sin_port)};
    co_await send(w, port);
    co_await drain_until_disconnected(w);
}

task<void> chatty(worker<proto>&) {
    for (int i = 0; i < chatty_out_lines; ++i) std::printf("%s\n", chatty_line("out", i).c_str());
    for (int i = 0; i < chatty_err_lines; ++i) std::fprintf(stderr, "%s\n", chatty_line("err", i).c_str());
    std::printf("%.*s", static_cast<int>(chatty_tail.size()), chatty_tail.data());
    co_return;
}

// Its output all written before it dies: a worker that SIGPIPE would kill dies of that instead.
task<void> chatty_then_crash(worker<proto>& w) {
    co_await chatty(w);
    std::fflush(nullptr);
    throw std::runtime_error("crashed on purpose by the test's worker, after its output");
}

task<void> numbered_lines(worker<proto>& w) {
    for (int i = 0; i < numbered_out_lines; ++i) {
        std::printf("%s\n", numbered_line("out", w.id(), i).c_str());
        if (i % (numbered_out_lines / numbered_err_lines) == 0)
            std::fprintf(stderr, "%s\n",
                         numbered_line("err", w.id(), i / (numbered_out_lines / numbered_err_lines)).c_str());
    }
    co_return;
}

task<void> print_commands(worker<proto>& w) {
    while (auto c = co_await w.receive<command>()) {
        const std::string_view text(c->value.text);
        if (text.empty()) continue;
        const int fd = text.front() == 'e' ? STDERR_FILENO : STDOUT_FILENO;
        (void)!::write(fd, text.data() + 1, text.size() - 1);
    }
}

task<void> count_commands(worker<proto>& w) {
    auto& registry = cluster::metrics::registry::global();
    auto& counted = registry.counter("app_commands_total", "Commands counted.", {"text"});
    auto& last = registry.gauge("app_last_length", "The last command's length.").with({});
    auto& sizes = registry.histogram("app_command_bytes", "Commands' lengths.", {}, {1, 4, 16}).with({});
    while (auto c = co_await w.receive<command>()) {
        counted.with({c->value.text}).inc();
        last.set(static_cast<double>(c->value.text.size()));
        sizes.observe(static_cast<double>(c->value.text.size()));
        const note said{w.id(),
                        "counted " + c->value.text};  // named: g++ 12 destroys a braced temporary in co_await twice
        co_await send(w, said);
    }
}

// The writes come from a thread, so that the worker's loop answers pings while they wait on a
// full pipe.
task<void> endless_line(worker<proto>& w) {
    std::atomic<std::uint64_t> written{0};
    std::thread writer([&written] {
        const std::string chunk(64 * 1024, 'x');
        while (written < endless_bytes) {
            const ssize_t n =
                ::write(STDOUT_FILENO, chunk.data(), std::min<std::uint64_t>(chunk.size(), endless_bytes - written));
            if (n <= 0) return;
            written += static_cast<std::uint64_t>(n);
        }
        (void)!::write(STDOUT_FILENO, "\n", 1);
    });
    while (auto m = co_await w.receive<ping>()) {
        const note so_far{w.id(), std::to_string(written.load())};
        (void)co_await w.reply(*m, so_far);
    }
    writer.join();
}

// ---- connections ----

// This process's sockets accepted on `port`: connected, with `port` as their own end. A
// worker forked by the primary has none before it takes a connection; one it has then is a
// client's connection the primary held, and which now stays open as long as this copy.
std::size_t accepted_on_port(std::uint16_t port) {
    std::size_t n = 0;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
        const int fd = std::stoi(entry.path().filename().string());
        int listening = 1;
        socklen_t len = sizeof listening;
        if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening) continue;
        auto local = cluster::local_endpoint(fd);
        if (local && local->is_ip() && local->port() == port) ++n;
    }
    return n;
}

// The line protocol. A request is "<c> <payload>\n"; the answer "<worker id> <payload>\n".
//   c: answer, then close;  k: answer, keep the connection;
//   s: say "holding <payload>" to the primary, answer only once the worker is leaving.
// A leaving worker answers what it was asked, then closes; it closes an idle connection
// that already served a request, and gives a fresh one first_request_grace to ask.
task<void> serve(worker<proto>& w, cluster::tcp_stream s, bool note_closes) {
    std::string pending;
    std::array<char, 512> buf{};
    bool served = false;
    for (;;) {
        const auto nl = pending.find('\n');
        if (nl == std::string::npos) {
            cluster::result<std::size_t> n;
            if (w.stopping()) {
                if (served) break;
                n = co_await s.read_some(std::span(buf)).with_timeout(first_request_grace);
            } else {
                n = co_await s.read_some(std::span(buf)).with_stop_token(w.stop_token());
                if (!n && n.error() == std::errc::operation_canceled) continue;  // leaving: look again
            }
            if (!n || *n == 0) break;
            pending.append(buf.data(), *n);
            continue;
        }
        const std::string line = pending.substr(0, nl);
        pending.erase(0, nl + 1);
        const char c = line.empty() ? '?' : line[0];
        const std::string payload = line.size() > 2 ? line.substr(2) : "";
        if (c == 's') {
            co_await tell(w, "holding " + payload);
            (void)co_await cluster::io::sleep_for(std::chrono::hours(1)).with_stop_token(w.stop_token());
        }
        const std::string reply = std::to_string(w.id()) + " " + payload + "\n";
        auto sent = co_await s.write(std::span(reply.data(), reply.size()));
        if (!sent) break;
        served = true;
        if (c == 'c' || w.stopping()) break;
    }
    (void)co_await s.close();
    if (note_closes) co_await tell(w, "closed");
}

// Serves what the listener gives until it gives no more; returns why it stopped.
task<std::error_code> accept_all(worker<proto>& w, cluster::listener& l, cluster::scope& conns, bool note_closes) {
    for (;;) {
        auto s = co_await l.accept();
        if (s) {
            conns.spawn(serve(w, std::move(*s), note_closes));
            continue;
        }
        if (s.error() == cluster::errc::listener_closed || s.error() == std::errc::operation_canceled)
            co_return s.error();
        co_await tell(w, "accept: " + s.error().message());
        (void)co_await cluster::io::sleep_for(10ms).with_stop_token(w.stop_token());
    }
}

task<void> lines_messages(worker<proto>& w, cluster::listener& l) {
    while (auto m = co_await w.receive()) {
        if (m->is<ping>()) {
            const pong answer{w.id(), l.accepted(), l.connections(), own_rss(), 0, w.overload().connections_shed};
            (void)co_await w.reply(*m, answer);
        } else if (auto* c = m->get_if<command>(); c && c->text == "close_listener") {
            l.close();
            co_await tell(w, "listener closed");
        }
    }
}

// Listens as the settings say and reports how it went; the listener, or nothing if it failed.
task<std::optional<cluster::listener>> listen_as_set(worker<proto>& w) {
    const cluster::endpoint at(env_or(setting::endpoint, "127.0.0.1:0"));
    const auto how =
        cluster::parse_schedule(env_or(setting::schedule, "round_robin")).value_or(cluster::schedule::round_robin);
    cluster::listener_options lo;
    lo.max_connections = std::strtoul(env_or(setting::max_connections, "0").c_str(), nullptr, 10);
    if (auto key = cluster::net::parse_sticky_key(env_or(setting::sticky_key, "address"))) lo.sticky = *key;
    if (const auto ms = env_or(setting::peek_timeout_ms); !ms.empty())
        lo.sticky.peek_timeout = std::chrono::milliseconds(std::stol(ms));
    auto opened = co_await w.try_listen(at, how, lo);
    listen_result r;
    r.worker_id = w.id();
    if (!opened) {
        r.error = opened.error().value();
        r.category = opened.error().category().name();
        try {
            (void)co_await w.listen(at, how, lo);
            r.what = "listen() succeeded after try_listen() failed";
        } catch (const std::system_error& e) {
            r.what = e.what();
        }
        (void)co_await w.send(r);
        co_return std::nullopt;
    }
    r.local = opened->local().to_string();
    r.port = opened->local().port();
    (void)co_await w.send(r);
    co_return std::move(*opened);
}

task<void> lines(worker<proto>& w, bool lazy) {
    if (const auto port = env_or(setting::inherited_port); !port.empty())
        co_await tell(w, "inherited " + std::to_string(accepted_on_port(static_cast<std::uint16_t>(std::stoul(port)))));
    auto l = co_await listen_as_set(w);
    if (!l) co_return co_await drain(w);
    (void)co_await w.ready();
    const bool note_closes = env_or(setting::note_closes, "0") == "1";
    cluster::scope conns;
    if (lazy) {
        co_await lines_messages(w, *l);
        const auto ended = co_await accept_all(w, *l, conns, note_closes);
        co_await tell(w, "accept ended: " + ended.message());
    } else {
        cluster::scope background;
        background.spawn(lines_messages(w, *l));
        (void)co_await accept_all(w, *l, conns, note_closes);
        co_await background.join();
    }
    co_await conns.join();
}

task<void> serve_lines(worker<proto>& w) { co_await lines(w, false); }
task<void> lazy_lines(worker<proto>& w) { co_await lines(w, true); }

// The echo_heads protocol: a request head (to its empty line) is answered with "<worker id>
// <its size>\n" and the head itself, then the connection closes. The primary hears "handed
// empty" of a connection that came with nothing to read yet, and "ended <n>" once one ends
// after n bytes.
task<void> serve_head(worker<proto>& w, cluster::tcp_stream s) {
    int unread = 0;
    if (::ioctl(s.native_handle(), FIONREAD, &unread) == 0 && unread == 0) co_await tell(w, "handed empty");
    std::string head;
    std::array<char, 1024> buf{};
    while (head.find("\r\n\r\n") == std::string::npos) {
        auto n = co_await s.read_some(std::span(buf)).with_stop_token(w.stop_token());
        if (!n || *n == 0) break;
        head.append(buf.data(), *n);
    }
    if (head.find("\r\n\r\n") != std::string::npos) {
        const std::string reply = std::to_string(w.id()) + " " + std::to_string(head.size()) + "\n" + head;
        (void)co_await s.write(std::span(reply.data(), reply.size()));
    }
    (void)co_await s.close();
    co_await tell(w, "ended " + std::to_string(head.size()));
}

task<void> echo_heads(worker<proto>& w) {
    auto l = co_await listen_as_set(w);
    if (!l) co_return co_await drain(w);
    (void)co_await w.ready();
    cluster::scope conns;
    cluster::scope background;
    background.spawn(lines_messages(w, *l));
    for (;;) {
        auto s = co_await l->accept();
        if (!s) break;
        conns.spawn(serve_head(w, std::move(*s)));
    }
    co_await background.join();
    co_await conns.join();
}

// ---- work ----

task<void> answer_each_work(worker<proto>& w) {
    while (auto j = co_await w.receive<work>()) {
        const work_done d{j->value.id, w.id()};
        auto sent = co_await w.reply(*j, d);
        check(sent, "reply");
    }
}

task<void> ready(worker<proto>& w) {
    auto told = co_await w.ready();
    check(told, "ready");
}

// The failure this worker was started to show, or nothing.
std::string failure_of(const worker<proto>& w) {
    const std::string from = env_or(setting::failing_from);
    if (from.empty() || w.id() < std::stoul(from)) return "";
    return env_or(setting::failure);
}

task<void> answer_work(worker<proto>& w) {
    const std::string failure = failure_of(w);
    if (failure == failure::crash) throw std::runtime_error("crashed on purpose by the test's worker");
    if (failure != failure::never_ready) co_await ready(w);
    co_await answer_each_work(w);
}

task<void> hold_work(worker<proto>& w) {
    std::vector<cluster::incoming<work>> held;
    while (auto j = co_await w.receive<work>()) {
        const holding h{w.id(), j->value.id};
        co_await send(w, h);
        held.push_back(std::move(*j));
    }
    (void)co_await cluster::io::sleep_for(held_work);
    for (const auto& j : held) {
        const work_done d{j.value.id, w.id()};
        auto sent = co_await w.reply(j, d);
        check(sent, "reply");
    }
}

task<void> ignore_stop(worker<proto>& w) {
    co_await drain(w);
    if (const std::string fd = env_or(setting::notify_fd); !fd.empty()) {
        const char byte = 1;
        if (::write(std::stoi(fd), &byte, 1) != 1) throw std::system_error(errno, std::system_category(), "notify");
    }
    (void)co_await cluster::io::sleep_for(std::chrono::hours(1));
}

task<void> identify(worker<proto>& w) {
    identity me;
    me.worker = true;
    me.worker_id = w.id();
    me.inode = own_inode();
    me.tag = env_or(setting::tag);
    me.slot = w.slot();
    co_await send(w, me);
    co_await answer_each_work(w);
}

task<void> ready_on_go(worker<proto>& w) {
    const waiting here{w.id()};
    co_await send(w, here);
    auto told = co_await w.receive<go>();
    if (!told) co_return;
    const readying now{w.id()};
    co_await send(w, now);
    co_await ready(w);
    co_await answer_each_work(w);
}

// ---- hostile and greedy ----

// Writes one frame of msg, in the link's protocol (control messages included), straight to
// the worker's socket, with `fds` attached however many the frame announces.
template <class T>
void write_raw(worker<proto>& w, const T& msg, const std::vector<int>& fds = {}) {
    cluster::wire::buffer out;
    (void)cluster::wire::encode_frame<cluster::detail::control::link_protocol>(out, msg);
    iovec iov{out.data(), out.size()};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    std::vector<std::byte> control;
    cluster::io::attach_fds(m, control, fds);
    if (::sendmsg(w.native_handle(), &m, MSG_NOSIGNAL) != static_cast<ssize_t>(out.size()))
        throw std::system_error(errno, std::system_category(), "sendmsg");
}

// The first listener a primary opens has id 1: claims for it get past the unknown-listener check.
task<void> huge_count(worker<proto>& w) {
    auto l = co_await listen_as_set(w);
    if (!l) co_return;
    for (int i = 0; i < 4; ++i) write_raw(w, cluster::detail::control::connections_closed{1, 0xffffffffu});
    co_await drain(w);
}

task<void> fd_flood(worker<proto>& w) {
    std::vector<cluster::unique_fd> held;
    std::vector<int> fds;
    for (int i = 0; i < fds_per_frame; ++i) {
        held.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        fds.push_back(held.back().get());
    }
    for (int i = 0; i < flood_frames; ++i) {
        const hello h{w.id()};
        write_raw(w, h, fds);
    }
    co_await drain(w);
}

task<void> flood_messages(worker<proto>& w) {
    note big{w.id(), std::string(flood_bytes, 'x')};
    for (int i = 0; i < flood_count; ++i) co_await send(w, big);
    const hello done{w.id()};
    co_await send(w, done);
}

task<void> pings_only(worker<proto>& w) {
    while (auto m = co_await w.receive<ping>()) {
        const pong answer{w.id(), 0, 0, own_rss(), w.overload().events_dropped, 0};
        (void)co_await w.reply(*m, answer);
    }
}

task<void> out_of_fds(worker<proto>&) {
    throw std::system_error(EMFILE, std::system_category(), "accept");
    co_return;
}

task<void> report_systemd_env(worker<proto>& w) {
    note found{w.id(), {}};
    for (const char* name :
         {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"})
        if (std::getenv(name)) found.text += (found.text.empty() ? "" : " ") + std::string(name);
    co_await send(w, found);
    co_await answer_each_work(w);
}

using behaviour_fn = task<void> (*)(worker<proto>&);

constexpr std::pair<std::string_view, behaviour_fn> behaviours[] = {
    {behaviour::hello_then_disconnect, hello_then_disconnect},
    {behaviour::hello_then_return, hello_then_return},
    {behaviour::wait_for_disconnect, wait_for_disconnect},
    {behaviour::leave_then_wait, leave_then_wait},
    {behaviour::throw_at_once, throw_at_once},
    {behaviour::ignore_disconnect, ignore_disconnect},
    {behaviour::report_identity, report_identity},
    {behaviour::announce_listening, announce_listening},
    {behaviour::chatty, chatty},
    {behaviour::chatty_then_crash, chatty_then_crash},
    {behaviour::numbered_lines, numbered_lines},
    {behaviour::endless_line, endless_line},
    {behaviour::print_commands, print_commands},
    {behaviour::count_commands, count_commands},
    {behaviour::serve_lines, serve_lines},
    {behaviour::lazy_lines, lazy_lines},
    {behaviour::echo_heads, echo_heads},
    {behaviour::answer_work, answer_work},
    {behaviour::hold_work, hold_work},
    {behaviour::ignore_stop, ignore_stop},
    {behaviour::identify, identify},
    {behaviour::ready_on_go, ready_on_go},
    {behaviour::report_systemd_env, report_systemd_env},
    {behaviour::huge_count, huge_count},
    {behaviour::fd_flood, fd_flood},
    {behaviour::flood_messages, flood_messages},
    {behaviour::pings_only, pings_only},
    {behaviour::out_of_fds, out_of_fds},
};

}  // namespace

std::uint64_t own_rss() {
#if defined(__SANITIZE_ADDRESS__) || defined(CLUSTER_ASAN)
    // ASan keeps freed memory in quarantine, resident, to catch uses after free: what this
    // process still holds is what is left once it is drained.
    __sanitizer_purge_allocator();
#endif
    auto rss = cluster::resident_memory(::getpid());
    return rss ? *rss : 0;
}

std::string self_exe() {
    char path[PATH_MAX];
    const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path);
    return n > 0 ? std::string(path, static_cast<std::size_t>(n)) : std::string();
}

std::uint64_t own_inode() {
    struct stat st {};
    if (::stat("/proc/self/exe", &st) != 0)
        throw std::system_error(errno, std::system_category(), "stat /proc/self/exe");
    return st.st_ino;
}

task<void> worker_main(worker<proto>& w) {
    const std::string name = env_or(behaviour_env);
    for (const auto& [known, run] : behaviours)
        if (known == name) co_return co_await run(w);
    throw std::invalid_argument("no worker behaviour named '" + name + "' (set " + behaviour_env + ")");
}

}  // namespace support
