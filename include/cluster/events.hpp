// cluster::event<P> and its kinds: what a primary hears about its workers (Node's cluster
// events fork … setup) and what its supervisor decides (restarts, giving up, reloads).
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include <cluster/exit_code.hpp>
#include <cluster/incoming.hpp>
#include <cluster/io/child_process.hpp>
#include <cluster/options.hpp>

namespace cluster {

enum class event_kind { fork, online, listening, message, disconnect, exit, setup, restart_scheduled, gave_up, reload };

inline const char* to_string(event_kind k) noexcept {
    switch (k) {
    case event_kind::fork: return "fork";
    case event_kind::online: return "online";
    case event_kind::listening: return "listening";
    case event_kind::message: return "message";
    case event_kind::disconnect: return "disconnect";
    case event_kind::exit: return "exit";
    case event_kind::setup: return "setup";
    case event_kind::restart_scheduled: return "restart_scheduled";
    case event_kind::gave_up: return "gave_up";
    case event_kind::reload: return "reload";
    }
    return "unknown";
}

// Why the primary ended a worker, when it was the primary's doing.
enum class stop_reason {
    none,          // the worker ended on its own (returned, crashed, was killed from outside)
    disconnect,    // worker_handle::disconnect() or disconnect_all()
    hung,          // no heartbeat for heartbeat_timeout, or alive shutdown_timeout after leaving on its own
    not_ready,     // a replacement not ready within ready_timeout
    reload,        // replaced by a rolling reload
    scale_down,    // scale() removed it
    max_messages,  // recycled after max_messages
    max_memory,    // recycled above max_memory
    shutdown,      // shutdown(), a stop signal, or run()'s end
};

inline const char* to_string(stop_reason r) noexcept {
    switch (r) {
    case stop_reason::none: return "none";
    case stop_reason::disconnect: return "disconnect";
    case stop_reason::hung: return "hung";
    case stop_reason::not_ready: return "not ready";
    case stop_reason::reload: return "reload";
    case stop_reason::scale_down: return "scale down";
    case stop_reason::max_messages: return "max_messages";
    case stop_reason::max_memory: return "max_memory";
    case stop_reason::shutdown: return "shutdown";
    }
    return "unknown";
}

// The worker process exists; it is not running the worker's code yet.
struct fork_event {
    static constexpr event_kind kind = event_kind::fork;
    unsigned worker_id = 0;
    pid_t pid = 0;
    unsigned slot = 0;  // the slot it was started for (see worker_handle::slot())
};

// The worker runs: its loop is up and it is about to call the worker's code.
struct online_event {
    static constexpr event_kind kind = event_kind::online;
    unsigned worker_id = 0;
    pid_t pid = 0;
    unsigned slot = 0;
};

// A socket of the worker's listens (worker<P>::listen(), announce_listening()).
struct listening_event {
    static constexpr event_kind kind = event_kind::listening;
    unsigned worker_id = 0;
    int family = 0;  // AF_INET, AF_INET6 or AF_UNIX
    std::string address;
    std::uint16_t port = 0;
    bool udp = false;  // a UDP socket; else a stream one (TCP or Unix-domain)

    // Node's addressType, in words: "udp4", "udp6", "tcp4", "tcp6" or "unix".
    [[nodiscard]] const char* address_type() const noexcept {
        if (family == AF_UNIX) return "unix";
        if (udp) return family == AF_INET6 ? "udp6" : "udp4";
        return family == AF_INET6 ? "tcp6" : "tcp4";
    }
};

// The channel to the worker has closed: nothing more comes from it or goes to it.
struct disconnect_event {
    static constexpr event_kind kind = event_kind::disconnect;
    unsigned worker_id = 0;
    std::error_code error;  // empty when the worker closed it cleanly (or exited)
};

// The worker process is gone; always after its disconnect event.
struct exit_event {
    static constexpr event_kind kind = event_kind::exit;
    unsigned worker_id = 0;
    pid_t pid = 0;
    io::exit_status status;
    bool exited_after_disconnect = false;  // it left because it was asked to (or chose to)
    stop_reason reason = stop_reason::none;
    unsigned slot = 0;  // the slot it was started for
    // A thread worker whose code threw: the exception's message (its "crash"); else empty.
    std::string failure;

    // Killed for missing its heartbeats.
    [[nodiscard]] bool hung() const noexcept { return reason == stop_reason::hung; }
    // Ended by the system running out of descriptors or memory (exit_code::out_of_resources):
    // neither a clean exit nor a crash, and not counted toward the crash-loop cap.
    [[nodiscard]] bool out_of_resources() const noexcept {
        return status.exited() && status.code == exit_code::out_of_resources;
    }
};

// primary<P>::setup() changed the options of the workers forked from now on.
struct setup_event {
    static constexpr event_kind kind = event_kind::setup;
    primary_options settings;
};

// The restart policy will replace the worker that exited, after `delay`.
struct restart_scheduled_event {
    static constexpr event_kind kind = event_kind::restart_scheduled;
    unsigned worker_id = 0;  // the worker that exited; its replacement gets a new id
    std::chrono::milliseconds delay{0};
    unsigned attempt = 0;  // restarts since the backoff was last reset, this one included
    unsigned slot = 0;     // where the replacement goes
};

// Too many restarts too quickly: the primary restarts no more and stops; run() returns
// exit_code::gave_up.
struct gave_up_event {
    static constexpr event_kind kind = event_kind::gave_up;
    unsigned worker_id = 0;  // the worker whose exit was one too many
    std::string what;        // the restart policy's limit that was passed
};

// A rolling replacement ended: a reload, or the recycling of one worker.
struct reload_event {
    static constexpr event_kind kind = event_kind::reload;
    stop_reason reason = stop_reason::reload;  // reload, max_messages or max_memory
    bool ok = true;                            // false: it stopped early, the old workers still serve
    unsigned replaced = 0;
    std::string what;  // why it stopped, when it did
};

template <class P>
class worker_handle;

template <class P>
class event {
public:
    using value_type = std::variant<fork_event, online_event, listening_event, incoming<P>, disconnect_event,
                                    exit_event, setup_event, restart_scheduled_event, gave_up_event, reload_event>;

    template <class E>
    event(E e, std::shared_ptr<worker_handle<P>> worker = nullptr) : value_(std::move(e)), worker_(std::move(worker)) {}

    [[nodiscard]] event_kind kind() const noexcept { return static_cast<event_kind>(value_.index()); }

    // E is one of the event structs above, or incoming<P>.
    template <class E>
    [[nodiscard]] bool is() const noexcept {
        return std::holds_alternative<E>(value_);
    }
    template <class E>
    [[nodiscard]] E* get_if() noexcept {
        return std::get_if<E>(&value_);
    }
    template <class E>
    [[nodiscard]] const E* get_if() const noexcept {
        return std::get_if<E>(&value_);
    }

    // The message, if this is a message event whose message is a T.
    template <class T>
        requires wire::message_of<T, P>
    [[nodiscard]] T* message() noexcept {
        auto* m = get_if<incoming<P>>();
        return m ? m->template get_if<T>() : nullptr;
    }
    template <class T>
        requires wire::message_of<T, P>
    [[nodiscard]] const T* message() const noexcept {
        auto* m = get_if<incoming<P>>();
        return m ? m->template get_if<T>() : nullptr;
    }

    // The worker the event is about (none for setup and reload). The handle lives as long as the
    // event does, even after the worker's exit.
    [[nodiscard]] worker_handle<P>* worker() const noexcept { return worker_.get(); }
    [[nodiscard]] const std::shared_ptr<worker_handle<P>>& worker_ptr() const noexcept { return worker_; }
    [[nodiscard]] unsigned worker_id() const noexcept;

    [[nodiscard]] value_type& value() noexcept { return value_; }

private:
    value_type value_;
    std::shared_ptr<worker_handle<P>> worker_;
};

static_assert(static_cast<int>(event_kind::reload) == 9, "event_kind follows event<P>'s alternatives");

template <class P>
unsigned event<P>::worker_id() const noexcept {
    return std::visit(
        [](const auto& e) -> unsigned {
            using E = std::decay_t<decltype(e)>;
            if constexpr (std::is_same_v<E, setup_event> || std::is_same_v<E, reload_event>)
                return 0;
            else if constexpr (std::is_same_v<E, incoming<P>>)
                return e.from;
            else
                return e.worker_id;
        },
        value_);
}

}  // namespace cluster
