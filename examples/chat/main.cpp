// chat: a clustered WebSocket chat room — a worker per core, any number of instances on any
// number of hosts sharing one Redis. docs/chat.md tells the whole of it.
//   ./chat [--help] [--host A] [--port P] [--workers N] [--redis HOST:PORT] [--schedule S]
//          [--max-message B] [--send-queue B]
//   GET /        the page, which chats over /ws
//   GET /ws      a WebSocket: each text message goes to every client of every instance, once
//   GET /visits  INCRs chat:visits in Redis and answers its new value
// SIGHUP replaces the workers (their WebSockets close with 1012, and clients reconnect);
// SIGTERM or Ctrl-C stops (1001).
#include <cluster/cluster.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string_view>

#include "messages.hpp"
#include "primary.hpp"
#include "settings.hpp"
#include "worker.hpp"

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    if (std::any_of(argv + 1, argv + argc, [](std::string_view a) { return a == "--help" || a == "-h"; })) {
        chat::print_usage(stdout, argv[0]);
        return 0;
    }
    const auto s = chat::parse_settings(argc, argv);
    if (!s) {
        chat::print_usage(stderr, argv[0]);
        return 2;
    }
    cluster::primary_options options;
    options.metrics = s->metrics;
    const int code = cluster::run<chat::protocol>(
        argc, argv, [&s](cluster::primary<chat::protocol>& p) { return chat::primary_main(p, *s); },
        [&s](cluster::worker<chat::protocol>& w) { return chat::worker_main(w, *s); }, options);
    std::printf("Primary %d stopped: exit code %d\n", ::getpid(), code);
    return code;
}
