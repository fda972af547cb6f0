// ws_bench: the clients of benchmarks/ws_bench.sh, for any chat server (examples/chat, node/chat.js):
// frames delivered per second to every client, and the end-to-end latency of each delivery.
//   ws_bench --targets HOST:PORT[,HOST:PORT...] [--clients N] [--senders N] [--messages N] [--window N]
//            [--paced N] [--rate R] [--size B] [--timeout S]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "report.hpp"

namespace {

// The clock of the kernel's receive timestamps (SO_TIMESTAMPNS), which end each delivery.
using clock_type = std::chrono::system_clock;

constexpr const char* measures =
    "C WebSocket clients on each chat instance (GET /ws); --senders of them send messages, each\n"
    "stamped with its id and send time, and every client must receive every message exactly once.\n"
    "Throughput phase: --messages sent with at most --window of them not yet delivered to every\n"
    "client. Paced phase: --paced messages at --rate per second. For each phase, one line:\n"
    "  <phase>: delivered=D seconds=S deliveries_per_s=R p50_ms=P p99_ms=Q read_p50_ms=P read_p99_ms=Q\n"
    "           first_p50_ms=P first_p99_ms=Q local_p99_ms=Q remote_p99_ms=Q missing=M duplicates=U\n"
    "A delivery's latency ends when the kernel has it in the client's socket (SO_TIMESTAMPNS); read_*\n"
    "end when this program, one process standing for every client, has read it. first_*: each\n"
    "message's first delivery alone; local_, remote_: deliveries to clients of the sender's own\n"
    "target, of the others.\n"
    "Exits 1 if a message is missing or delivered twice, or a phase outlives --timeout.\n"
    "Options: --targets HOST:PORT,... (required), --clients N per target (50), --senders N (4),\n"
    "--messages N (2000), --window N (8), --paced N (1000), --rate R (200), --size B (64),\n"
    "--timeout S per phase (60).\n";

struct settings {
    std::vector<sockaddr_in> targets;
    unsigned clients = 50;
    unsigned senders = 4;
    unsigned messages = 2000;
    unsigned window = 8;
    unsigned paced = 1000;
    unsigned rate = 200;
    unsigned size = 64;
    unsigned timeout = 60;
};

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what); }

[[noreturn]] void fail_errno(const char* what) { throw std::system_error(errno, std::system_category(), what); }

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch()).count();
}

sockaddr_in parse_target(std::string_view text) {
    const auto colon = text.rfind(':');
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    const std::string host(text.substr(0, colon));
    const unsigned long port = colon == std::string_view::npos ? 0 : std::strtoul(text.data() + colon + 1, nullptr, 10);
    if (port == 0 || port > 65535 || ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1)
        fail("--targets: '" + std::string(text) + "' is not IPV4:PORT");
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    return addr;
}

unsigned parse_count(std::string_view flag, const char* text) {
    char* end = nullptr;
    const unsigned long n = std::strtoul(text, &end, 10);
    if (*text == '\0' || *end != '\0' || n == 0 || n > 10'000'000)
        fail(std::string(flag) + ": '" + text + "' is not a whole number from 1 to 10000000");
    return static_cast<unsigned>(n);
}

settings parse(int argc, char** argv) {
    struct count_option {
        std::string_view flag;
        unsigned settings::*field;
    };
    static constexpr count_option counts[] = {
        {"--clients", &settings::clients}, {"--senders", &settings::senders}, {"--messages", &settings::messages},
        {"--window", &settings::window},   {"--paced", &settings::paced},     {"--rate", &settings::rate},
        {"--size", &settings::size},       {"--timeout", &settings::timeout},
    };
    settings s;
    for (int i = 1; i < argc; i += 2) {
        const std::string_view flag = argv[i];
        if (i + 1 >= argc) fail(std::string(flag) + " needs a value (see --help)");
        const char* value = argv[i + 1];
        if (flag == "--targets") {
            std::string_view list = value;
            while (!list.empty()) {
                const auto comma = std::min(list.find(','), list.size());
                s.targets.push_back(parse_target(list.substr(0, comma)));
                list.remove_prefix(std::min(comma + 1, list.size()));
            }
        } else if (const auto count = std::find_if(std::begin(counts), std::end(counts),
                                                   [&](const auto& c) { return flag == c.flag; });
                   count != std::end(counts)) {
            s.*(count->field) = parse_count(flag, value);
        } else {
            fail("unknown option '" + std::string(flag) + "' (see --help)");
        }
    }
    if (s.targets.empty()) fail("--targets is required (see --help)");
    if (s.targets.size() > 16) fail("--targets: at most 16");
    if (s.senders > s.clients * s.targets.size()) fail("--senders: more than there are clients");
    if (s.size < 40 || s.size > 65535) fail("--size: from 40 bytes (the id and the timestamp) to 65535");
    return s;
}

// One client connection: its bytes in and out, and what it has received in this phase.
struct connection {
    int fd = -1;
    bool open = false;        // the 101 answer is in
    bool want_write = false;  // EPOLLOUT is on: `out` did not all go
    std::string in;
    std::string out;
    std::uint32_t warm_from = 0;    // bit t: a warm-up message from target t has arrived
    std::int64_t arrived_ns = 0;    // when the kernel received the last bytes read
    std::vector<std::uint8_t> got;  // per message id of the phase
};

// What each phase measures, over every client.
struct phase_state {
    char tag = 0;  // first byte of this phase's messages
    unsigned messages = 0;
    std::vector<std::uint32_t> receivers;  // per message id
    unsigned complete = 0;                 // messages every client has
    unsigned outstanding = 0;              // sent, not yet complete
    std::uint64_t delivered = 0;
    std::uint64_t duplicates = 0;
    std::vector<std::int64_t> latencies_ns;       // send to arrival in the receiver's socket
    std::vector<std::int64_t> read_latencies_ns;  // send to this program's read
    std::vector<std::int64_t> first_ns;           // each message's first delivery: one hop at most
    std::vector<std::int64_t> local_ns;           // to clients of the sender's own instance
    std::vector<std::int64_t> remote_ns;          // to clients of the other instances
    std::int64_t first_send = 0;
    std::int64_t last_delivery = 0;
};

class bench_client {
public:
    explicit bench_client(const settings& s) : s_(s), epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
        if (epoll_ < 0) fail_errno("epoll_create1");
    }
    bench_client(const bench_client&) = delete;
    bench_client& operator=(const bench_client&) = delete;
    ~bench_client() {
        for (auto& c : conns_)
            if (c.fd >= 0) ::close(c.fd);
        ::close(epoll_);
    }

    void connect_all() {
        conns_.resize(s_.clients * s_.targets.size());
        for (std::size_t i = 0; i < conns_.size(); ++i) open_connection(i, static_cast<unsigned>(i / s_.clients));
        const auto deadline = now_ns() + seconds(s_.timeout);
        while (std::any_of(conns_.begin(), conns_.end(), [](const connection& c) { return !c.open; })) {
            if (now_ns() > deadline) fail("not every client was answered 101 within --timeout");
            poll(100);
        }
    }

    // Until every client has a message sent from each target: then every worker and every
    // instance's Redis subscription is in place. Sent again every 200 ms until then.
    void warm_up() {
        const std::uint32_t all = (std::uint32_t{1} << s_.targets.size()) - 1;
        const auto deadline = now_ns() + seconds(s_.timeout);
        while (std::any_of(conns_.begin(), conns_.end(), [&](const connection& c) { return c.warm_from != all; })) {
            if (now_ns() > deadline) fail("warm-up: not every client heard from every instance within --timeout");
            for (unsigned t = 0; t < s_.targets.size(); ++t) send_text(conns_[t * s_.clients], stamped('w', t));
            const auto until = now_ns() + 200'000'000;
            while (now_ns() < until) poll(50);
        }
    }

    // Sends `messages` (at `rate` per second; 0: as the window allows), with at most `window`
    // not complete, until each is complete or the timeout; prints the phase's line.
    bool run_phase(const char* name, char tag, unsigned messages, unsigned rate, unsigned window) {
        phase_ = phase_state{};
        phase_.tag = tag;
        phase_.messages = messages;
        phase_.receivers.assign(messages, 0);
        phase_.latencies_ns.reserve(std::size_t{messages} * conns_.size());
        phase_.read_latencies_ns.reserve(std::size_t{messages} * conns_.size());
        phase_.first_ns.reserve(messages);
        for (auto& c : conns_) c.got.assign(messages, 0);
        const std::int64_t interval = rate ? 1'000'000'000 / rate : 0;
        phase_.first_send = now_ns();
        const auto deadline = phase_.first_send + seconds(s_.timeout);
        std::int64_t due = phase_.first_send;
        unsigned next = 0;
        while (phase_.complete < messages && now_ns() < deadline) {
            while (next < messages && phase_.outstanding < window && now_ns() >= due) {
                send_text(conns_[sender_index(next)], stamped(tag, next));
                ++phase_.outstanding;
                ++next;
                due += interval;
            }
            const bool waiting_for_due = next < messages && phase_.outstanding < window;
            poll(waiting_for_due ? static_cast<int>(std::max<std::int64_t>(0, due - now_ns()) / 1'000'000) : 100);
        }
        return report(name);
    }

private:
    static std::int64_t seconds(unsigned s) { return std::int64_t{s} * 1'000'000'000; }

    std::size_t sender_index(unsigned long id) const {
        return std::size_t{id % s_.senders} * conns_.size() / s_.senders;
    }

    std::size_t target_of(std::size_t index) const { return index / s_.clients; }

    // "<tag><id> <send ns> " padded with 'x' to --size bytes.
    std::string stamped(char tag, unsigned id) const {
        std::string text = tag + std::to_string(id) + ' ' + std::to_string(now_ns()) + ' ';
        text.resize(std::max<std::size_t>(text.size(), s_.size), 'x');
        return text;
    }

    void open_connection(std::size_t index, unsigned target) {
        connection& c = conns_[index];
        c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c.fd < 0) fail_errno("socket");
        const auto& addr = s_.targets[target];
        if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) fail_errno("connect");
        const int one = 1;
        ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (::setsockopt(c.fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) != 0) fail_errno("SO_TIMESTAMPNS");
        char host[INET_ADDRSTRLEN];
        ::inet_ntop(AF_INET, &addr.sin_addr, host, sizeof host);
        c.out = "GET /ws HTTP/1.1\r\nHost: " + std::string(host) + ':' + std::to_string(ntohs(addr.sin_port)) +
                "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        // Connected blocking (loopback: at once), then non-blocking for the epoll loop.
        if (::fcntl(c.fd, F_SETFL, O_NONBLOCK) != 0) fail_errno("fcntl");
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = index;
        if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &ev) != 0) fail_errno("epoll_ctl");
        flush(c, index);
    }

    // A client's frame: FIN, text, masked (RFC 6455 5.3: a client always masks).
    void send_text(connection& c, const std::string& text) {
        const std::size_t index = static_cast<std::size_t>(&c - conns_.data());
        std::string frame;
        frame.push_back(static_cast<char>(0x81));
        if (text.size() < 126) {
            frame.push_back(static_cast<char>(0x80 | text.size()));
        } else {  // parse() keeps --size within 16 bits
            frame.push_back(static_cast<char>(0x80 | 126));
            frame.push_back(static_cast<char>(text.size() >> 8));
            frame.push_back(static_cast<char>(text.size() & 0xff));
        }
        const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
        frame.append(reinterpret_cast<const char*>(mask), 4);
        for (std::size_t i = 0; i < text.size(); ++i) frame.push_back(static_cast<char>(text[i] ^ mask[i % 4]));
        c.out += frame;
        flush(c, index);
    }

    void flush(connection& c, std::size_t index) {
        while (!c.out.empty()) {
            const ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
            if (n < 0 && errno == EAGAIN) break;
            if (n < 0) fail_errno("send");
            c.out.erase(0, static_cast<std::size_t>(n));
        }
        const bool want = !c.out.empty();
        if (want == c.want_write) return;
        epoll_event ev{};
        ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
        ev.data.u64 = index;
        if (::epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev) != 0) fail_errno("epoll_ctl");
        c.want_write = want;
    }

    void poll(int timeout_ms) {
        epoll_event events[256];
        const int n = ::epoll_wait(epoll_, events, 256, timeout_ms);
        if (n < 0 && errno != EINTR) fail_errno("epoll_wait");
        for (int i = 0; i < n; ++i) {
            const auto index = static_cast<std::size_t>(events[i].data.u64);
            connection& c = conns_[index];
            if (events[i].events & EPOLLOUT) flush(c, index);
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) receive(c, index);
        }
    }

    // Each read's frames are handled before the next read, with the time that read's bytes arrived.
    // A short read leaves nothing behind: the level-triggered epoll_wait reports what comes next.
    void receive(connection& c, std::size_t index) {
        char buf[65536];
        for (;;) {
            const ssize_t n = receive_stamped(c, buf, sizeof buf);
            if (n < 0 && errno == EAGAIN) return;
            if (n < 0) fail_errno("recv");
            if (n == 0) fail("client " + std::to_string(index) + ": the server closed the connection");
            c.in.append(buf, static_cast<std::size_t>(n));
            handle_input(c, index);
            if (static_cast<std::size_t>(n) < sizeof buf) return;
        }
    }

    // recv, leaving in c.arrived_ns when the kernel received the last of the bytes read.
    static ssize_t receive_stamped(connection& c, char* buf, std::size_t size) {
        iovec iov{buf, size};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        const ssize_t n = ::recvmsg(c.fd, &msg, 0);
        if (n <= 0) return n;
        c.arrived_ns = now_ns();
        for (cmsghdr* m = CMSG_FIRSTHDR(&msg); m; m = CMSG_NXTHDR(&msg, m)) {
            if (m->cmsg_level != SOL_SOCKET || m->cmsg_type != SCM_TIMESTAMPNS) continue;
            timespec ts{};
            std::memcpy(&ts, CMSG_DATA(m), sizeof ts);
            c.arrived_ns = std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
        }
        return n;
    }

    void handle_input(connection& c, std::size_t index) {
        std::size_t at = 0;
        if (!c.open) {
            const auto end = c.in.find("\r\n\r\n");
            if (end == std::string::npos) return;
            if (c.in.compare(0, 12, "HTTP/1.1 101") != 0)
                fail("client " + std::to_string(index) + ": no 101 answer: " + c.in.substr(0, c.in.find('\r')));
            c.open = true;
            at = end + 4;
        }
        while (const std::size_t used = frame_at(c, index, at)) at += used;
        c.in.erase(0, at);
    }

    // Handles the whole frame at `at` and returns its length; 0 if it is not all in yet.
    std::size_t frame_at(connection& c, std::size_t index, std::size_t at) {
        const auto* p = reinterpret_cast<const unsigned char*>(c.in.data()) + at;
        const std::size_t left = c.in.size() - at;
        if (left < 2) return 0;
        const unsigned opcode = p[0] & 0x0fu;
        const bool fin = (p[0] & 0x80u) != 0;
        const bool masked = (p[1] & 0x80u) != 0;
        std::uint64_t length = p[1] & 0x7fu;
        std::size_t header = 2;
        if (length == 126) {
            if (left < 4) return 0;
            length = std::uint64_t{p[2]} << 8 | p[3];
            header = 4;
        } else if (length == 127) {
            if (left < 10) return 0;
            length = 0;
            for (int i = 2; i < 10; ++i) length = length << 8 | p[i];
            header = 10;
        }
        if (masked) fail("client " + std::to_string(index) + ": a masked frame from the server");
        if (left < header + length) return 0;
        const std::string_view payload(reinterpret_cast<const char*>(p) + header, static_cast<std::size_t>(length));
        if (opcode == 0x1 && fin)
            delivered(c, payload);
        else if (opcode == 0x9)
            send_control(c, index, 0x8a, payload);
        else if (opcode == 0x8)
            fail("client " + std::to_string(index) + ": the server sent a close frame");
        else if (opcode != 0xa)
            fail("client " + std::to_string(index) + ": a frame that is not one whole text frame");
        return header + static_cast<std::size_t>(length);
    }

    void send_control(connection& c, std::size_t index, unsigned char first, std::string_view payload) {
        c.out.push_back(static_cast<char>(first));
        c.out.push_back(static_cast<char>(0x80 | payload.size()));
        c.out.append(4, '\0');  // a zero mask leaves the payload as it is
        c.out.append(payload);
        flush(c, index);
    }

    void delivered(connection& c, std::string_view text) {
        if (text.empty()) return;
        const char* end = text.data() + text.size();
        char* after = nullptr;
        const unsigned long id = std::strtoul(text.data() + 1, &after, 10);
        const long long sent = after < end ? std::strtoll(after, nullptr, 10) : 0;
        if (text[0] == 'w') {
            if (id < 32) c.warm_from |= std::uint32_t{1} << id;
            return;
        }
        if (text[0] != phase_.tag || id >= phase_.messages) return;  // a late frame of an earlier phase
        if (c.got[id]) {
            ++phase_.duplicates;
            return;
        }
        c.got[id] = 1;
        ++phase_.delivered;
        const std::int64_t latency = c.arrived_ns - sent;
        phase_.latencies_ns.push_back(latency);
        if (phase_.receivers[id] == 0) phase_.first_ns.push_back(latency);
        const bool local = target_of(static_cast<std::size_t>(&c - conns_.data())) == target_of(sender_index(id));
        (local ? phase_.local_ns : phase_.remote_ns).push_back(latency);
        phase_.read_latencies_ns.push_back(now_ns() - sent);
        phase_.last_delivery = c.arrived_ns;
        if (++phase_.receivers[id] == conns_.size()) {
            ++phase_.complete;
            --phase_.outstanding;
        }
    }

    bool report(const char* name) {
        const double p50 = percentile(phase_.latencies_ns, 0.50);
        const double p99 = percentile(phase_.latencies_ns, 0.99);
        const double read_p50 = percentile(phase_.read_latencies_ns, 0.50);
        const double read_p99 = percentile(phase_.read_latencies_ns, 0.99);
        const std::uint64_t expected = std::uint64_t{phase_.messages} * conns_.size();
        const double secs = static_cast<double>(phase_.last_delivery - phase_.first_send) / 1e9;
        std::printf("%s: delivered=%llu seconds=%.4f deliveries_per_s=%.1f p50_ms=%.4f p99_ms=%.4f read_p50_ms=%.4f "
                    "read_p99_ms=%.4f first_p50_ms=%.4f first_p99_ms=%.4f local_p99_ms=%.4f remote_p99_ms=%.4f "
                    "missing=%llu duplicates=%llu\n",
                    name, static_cast<unsigned long long>(phase_.delivered), secs,
                    secs > 0 ? static_cast<double>(phase_.delivered) / secs : 0.0, p50, p99, read_p50, read_p99,
                    percentile(phase_.first_ns, 0.50), percentile(phase_.first_ns, 0.99),
                    percentile(phase_.local_ns, 0.99), percentile(phase_.remote_ns, 0.99),
                    static_cast<unsigned long long>(expected - phase_.delivered),
                    static_cast<unsigned long long>(phase_.duplicates));
        std::fflush(stdout);
        return phase_.delivered == expected && phase_.duplicates == 0;
    }

    // In milliseconds; sorts `l`.
    static double percentile(std::vector<std::int64_t>& l, double q) {
        if (l.empty()) return 0.0;
        std::sort(l.begin(), l.end());
        const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(l.size())));
        return static_cast<double>(l[std::max<std::size_t>(rank, 1) - 1]) / 1e6;
    }

    const settings& s_;
    int epoll_;
    std::vector<connection> conns_;
    phase_state phase_;
};

}  // namespace

int main(int argc, char** argv) {
    if (bench::answered_help(argc, argv, measures)) return 0;
    try {
        const settings s = parse(argc, argv);
        bench_client client(s);
        client.connect_all();
        client.warm_up();
        if (!client.run_phase("throughput", 't', s.messages, 0, s.window)) return 1;
        return client.run_phase("paced", 'p', s.paced, s.rate, s.paced) ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ws_bench: %s\n", e.what());
        return 1;
    }
}
