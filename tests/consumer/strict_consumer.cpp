// A program as a careful user writes one, built with the warnings such a user turns on: the
// library's headers are included as a consumer includes them (-I, not -isystem), and every
// public template below is instantiated, so a warning inside them shows here. Compiled only.
#include <cluster/cluster.hpp>
#include <cluster/metrics.hpp>

#include <boost/describe.hpp>

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <stop_token>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

using namespace std::chrono_literals;

enum class priority : std::uint8_t { low, high };
BOOST_DESCRIBE_ENUM(priority, low, high)

struct base_job {
    std::uint64_t id = 0;
};
BOOST_DESCRIBE_STRUCT(base_job, (), (id))

struct job : base_job {
    std::string text;
    std::vector<std::int32_t> numbers;
    std::map<std::string, double> weights;
    std::unordered_map<std::uint16_t, std::int64_t> counts;
    std::optional<std::chrono::milliseconds> deadline;
    std::variant<std::monostate, std::int16_t, std::string> tag;
    std::array<std::uint8_t, 4> bytes{};
    priority level = priority::low;
    bool urgent = false;
    float ratio = 0;
    char letter = 'a';
};
BOOST_DESCRIBE_STRUCT(job, (base_job),
                      (text, numbers, weights, counts, deadline, tag, bytes, level, urgent, ratio, letter))

struct done {
    std::uint64_t id = 0;
    std::size_t words = 0;
};
BOOST_DESCRIBE_STRUCT(done, (), (id, words))

struct payload {
    cluster::shared_bytes data;
    cluster::unique_fd file;
};
BOOST_DESCRIBE_STRUCT(payload, (), (data, file))

using proto = cluster::protocol<job, done, payload>;

cluster::task<void> serve(cluster::tcp_stream client, std::stop_token stop) {
    std::array<char, 512> request{};
    auto got = co_await client.read_some(request).with_stop_token(stop);
    if (!got || *got == 0) co_return;
    (void)client.set_nodelay();
    const std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    (void)co_await client.write(answer);
    (void)co_await client.shutdown(SHUT_WR);
}

cluster::task<void> listen_and_serve(cluster::worker<proto>& w) {
    auto l = co_await w.listen(cluster::endpoint("127.0.0.1:0"), cluster::schedule::round_robin);
    std::printf("listening on %s\n", l.local().to_string().c_str());
    cluster::scope open;
    while (auto s = co_await l.accept()) open.spawn(serve(std::move(*s), w.stop_token()));
    co_await open.join();
}

cluster::task<void> worker_main(cluster::worker<proto>& w) {
    (void)co_await w.ready();
    if (auto first = co_await w.receive<job>()) {
        const done d{first->value.id, first->value.text.size()};
        (void)co_await w.reply(*first, d);
    }
    while (auto msg = co_await w.receive()) {
        if (auto* j = msg->get_if<job>()) {
            const done d{j->id, j->numbers.size()};
            if (msg->is_request())
                (void)co_await w.reply(*msg, d);
            else
                (void)co_await w.send(d);
            (void)co_await w.send_to(msg->from == cluster::from_primary ? 2u : msg->from, *j);
            (void)co_await w.broadcast(d);
        } else if (auto* p = msg->get_if<payload>()) {
            std::printf("%zu bytes\n", p->data.size());
        }
    }
    const job ask{};
    auto answer = co_await w.request<done>(ask, 1s);
    if (answer) std::printf("%zu words\n", answer->words);
    co_await listen_and_serve(w);
    (void)co_await w.disconnect();
}

cluster::task<void> talk_to(cluster::worker_handle<proto>& h) {
    job j;
    j.id = 7;
    j.text = "the quick brown fox";
    j.weights["fox"] = 0.5;
    j.counts[3] = -1;
    j.deadline = 20ms;
    j.tag = std::int16_t{-3};
    (void)co_await h.send(j);
    auto r = co_await h.request<done>(j, std::chrono::seconds(2));
    if (r) std::printf("job %llu: %zu words\n", static_cast<unsigned long long>(r->id), r->words);
    cluster::shared_bytes::builder b(4096);
    b.data()[0] = std::byte{1};
    const payload big{std::move(b).freeze(), cluster::unique_fd()};
    (void)co_await h.send(big);
}

cluster::task<void> primary_main(cluster::primary<proto>& p) {
    for (unsigned i = 0; i < cluster::cpu_count(); ++i) co_await p.fork();
    for (auto* h : p.workers()) co_await talk_to(*h);
    auto m = co_await p.next_message<job>();
    const done d{m.value.id, 1};
    if (m.is_request()) (void)co_await p.reply(m, d);
    auto e = co_await cluster::with_timeout(p.next_event(), 100ms);
    if (e) {
        if (auto* r = e->message<done>()) std::printf("%zu words\n", r->words);
        if (const auto* x = e->get_if<cluster::exit_event>()) std::printf("%s\n", x->status.to_string().c_str());
    }
    auto exited = co_await p.next<cluster::exit_event>();
    std::printf("worker %u: %s\n", exited.worker_id, exited.status.to_string().c_str());
    co_await p.scale(2);
    (void)co_await p.reload();
    co_await p.disconnect_all();
}

cluster::task<std::optional<proto::variant>> next_of(cluster::channel<proto>& ch) { co_return co_await ch.receive(); }

cluster::task<std::optional<int>> take(cluster::mailbox<int>& box) { co_return co_await box.take(); }

cluster::task<void> wait_for(cluster::latch& l) { (void)co_await l.wait(); }

cluster::task<void> nap() { (void)co_await cluster::io::sleep_for(1ms); }

// The runtime and a channel on their own.
cluster::task<int> runtime_alone() {
    auto [a, b] = cluster::ipc::make_socket_pair().value();
    cluster::channel<proto> left(std::move(a)), right(std::move(b));
    cluster::mailbox<int> box;
    cluster::latch go;
    cluster::scope s;
    box.push(1);
    go.set();
    const job j{};
    (void)left.try_send(j);
    (void)co_await left.send(j);
    auto both = co_await cluster::when_all(next_of(right), nap());
    auto first = co_await cluster::when_any(take(box), wait_for(go));
    (void)co_await left.shutdown();
    while (auto e = co_await right.receive_envelope()) std::printf("tag %u\n", e->tag);
    co_await s.join();
    auto child = cluster::child_process::fork().value();
    if (child.is_child()) ::_exit(0);
    auto status = co_await cluster::with_timeout(child.wait(), 1s);
    cluster::signal_set stop{SIGUSR2};
    auto signalled = co_await cluster::with_timeout(stop.next(), 1ms);
    auto stream = co_await cluster::with_timeout(cluster::net::connect(cluster::endpoint("127.0.0.1:1")), 10ms);
    if (!status || signalled || stream) co_return 2;
    cluster::wire::buffer out;
    cluster::wire::encode(j, out);
    auto back = cluster::wire::decode<job>(out.bytes());
    co_return std::get<0>(both).has_value() && first.index() == 0 && back ? 0 : 1;
}

// A worker's metrics, their snapshot through the codec, and the primary's page of them.
int metrics_alone() {
    namespace metrics = cluster::metrics;
    metrics::registry r;
    r.counter("jobs_total", "Jobs.", {"kind"}).with({"mail"}).inc();
    r.gauge("depth", "Depth.").with({}).dec(0.5);
    r.histogram("latency_seconds", "Latency.", {}, {0.1, 1}).with({}).observe(0.2);
    cluster::wire::buffer out;
    cluster::wire::encode(r.snapshot(), out);
    auto back = cluster::wire::decode<metrics::registry_snapshot>(out.bytes());
    if (!back) return 1;
    metrics::aggregate all;
    all.update(1, std::move(*back));
    all.retire(1);
    std::string page;
    metrics::text_writer w(page);
    all.render(w);
    return page.empty() ? 1 : 0;
}

int main(int argc, char** argv) {
    if (argc > 2) return metrics_alone();
    if (argc > 1) return cluster::sync_wait(runtime_alone());
    cluster::primary_options o;
    o.restart.max_restarts = 3;
    o.heartbeat_timeout = 2s;
    return cluster::run<proto>(argc, argv, primary_main, worker_main, std::move(o));
}
