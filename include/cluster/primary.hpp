// cluster::primary<P>: the primary process's side of the cluster — forking workers, their
// events awaited together or one kind at a time, routing between workers, stopping them all.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <cluster/control.hpp>
#include <cluster/events.hpp>
#include <cluster/io/io_context.hpp>
#include <cluster/io/mailbox.hpp>
#include <cluster/io/ops.hpp>
#include <cluster/io/scope.hpp>
#include <cluster/io/sync_wait.hpp>
#include <cluster/io/task.hpp>
#include <cluster/io/timeout.hpp>
#include <cluster/io/when_all.hpp>
#include <cluster/launch.hpp>
#include <cluster/link.hpp>
#include <cluster/options.hpp>
#include <cluster/role.hpp>
#include <cluster/worker.hpp>
#include <cluster/worker_handle.hpp>

namespace cluster {

namespace detail {

// How long a dead worker's readers get to finish what it left in its stdout and stderr
// pipes, in case a process it forked keeps them open.
inline constexpr std::chrono::milliseconds reader_grace{250};

// The whole life of a worker process, as the process itself sees it.
template <class P>
int run_worker_process(unsigned id, unique_fd link, const typename worker<P>::main_function& main) {
    current_role() = role{true, id};
    io_context ctx;
    worker<P> w(id, std::move(link));
    return sync_wait(w.run(main));
}

} // namespace detail

template <class P>
class primary {
public:
    using protocol = P;
    using handle = worker_handle<P>;
    using worker_main = typename worker<P>::main_function;

    // args: the primary's own command line, which exec'd workers get by default.
    primary(primary_options options, worker_main main, std::vector<std::string> args = {})
        : options_(std::move(options)), worker_main_(std::move(main)), args_(std::move(args)),
          ctx_(&io_context::current_or_throw()) {}
    primary(const primary&) = delete;
    primary& operator=(const primary&) = delete;
    // Tasks go first (their ops are cancelled); then each handle kills and reaps its worker.
    ~primary() = default;

    // Starts a worker and returns its handle once the process exists (its fork event is
    // queued); throws std::system_error, saying what failed, if it cannot start.
    task<handle&> fork(fork_options o = {}) {
        std::string what;
        auto started = co_await start(merged(options_, o), what);
        if (!started) throw std::system_error(started.error(), what);
        co_return **started;
    }

    // The same, with the failure as a value.
    task<result<handle*>> try_fork(fork_options o = {}) {
        std::string what;
        co_return co_await start(merged(options_, o), what);
    }

    // Node's setupPrimary(): options for the workers forked from now on; a setup event follows.
    void setup(primary_options o) {
        options_ = std::move(o);
        events_.push(event<P>(setup_event{options_}));
    }
    [[nodiscard]] const primary_options& settings() const noexcept { return options_; }

    // True once disconnect_all() or stop_all() began: exits from then on are expected,
    // and a restart loop should not replace them.
    [[nodiscard]] bool stopping() const noexcept { return stopping_; }

    // The workers that have not exited, by id (Node's cluster.workers).
    [[nodiscard]] std::vector<handle*> workers() const {
        std::vector<handle*> out;
        for (const auto& [id, h] : handles_)
            if (!h->is_dead()) out.push_back(h.get());
        return out;
    }
    // The worker with this id, until its exit event has been taken; otherwise nullptr.
    [[nodiscard]] handle* worker(unsigned id) const noexcept {
        auto it = handles_.find(id);
        return it == handles_.end() ? nullptr : it->second.get();
    }

    // The next event of any kind. Throws operation_canceled if the task is asked to stop
    // first (as by with_timeout). Taking a worker's exit event forgets its handle.
    task<event<P>> next_event() {
        auto e = co_await events_.take();
        co_return taken(std::move(e));
    }

    // The next event of kind E (fork_event … setup_event, or message<P>); the others stay
    // queued for next_event().
    template <class E>
    task<E> next() {
        auto e = co_await events_.take([](const event<P>& e) noexcept { return e.template is<E>(); });
        co_return std::move(*taken(std::move(e)).template get_if<E>());
    }

    // The next message that is a T, from any worker.
    template <class T>
        requires wire::message_of<T, P>
    task<incoming<T>> next_message() {
        auto e = co_await events_.take([](const event<P>& e) noexcept { return e.template message<T>() != nullptr; });
        auto taken_event = taken(std::move(e));  // named: m points into it
        auto& m = *taken_event.template get_if<message<P>>();
        co_return incoming<T>{std::move(std::get<T>(m.value)), m.from, m.request_tag};
    }

    // Answers a request from a worker; fails with peer_gone if that worker is gone.
    template <class V, class R>
        requires wire::message_of<R, P>
    task<result<void>> reply(const incoming<V>& to, const R& response) {
        detail::check_replyable(to);
        handle* h = worker(to.from);
        if (!h || !h->is_connected()) co_return make_error_code(errc::peer_gone);
        co_return co_await h->reply(to, response);
    }

    // Disconnects every worker and waits until each has exited (Node's cluster.disconnect()).
    task<void> disconnect_all() {
        stopping_ = true;
        std::vector<task<void>> leaving;
        for (handle* h : workers()) leaving.push_back(disconnect_and_wait(find(h->id())));
        (void)co_await when_all(std::move(leaving));
    }

    // The end of run(): workers get options().stop_timeout to leave, then SIGKILL.
    task<void> stop_all() {
        auto left = co_await with_timeout(disconnect_all(), options_.stop_timeout);
        if (left) co_return;
        std::vector<task<void>> dying;
        for (handle* h : workers()) {
            (void)h->kill(SIGKILL);
            dying.push_back(wait_exited(find(h->id())));
        }
        (void)co_await when_all(std::move(dying));
    }

    // The primary's life in run(): main, then stop_all(). Returns the exit code (1 if main threw).
    task<int> run(std::function<task<void>(primary&)> main) {
        int code = 0;
        try {
            co_await main(*this);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "cluster: primary: uncaught exception: %s\n", e.what());
            code = 1;
        }
        co_await stop_all();
        co_return code;
    }

private:
    using link_protocol = control::link_protocol<P>;
    using link_envelope = ipc::envelope<link_protocol>;

    task<result<handle*>> start(primary_options o, std::string& what) {
        const unsigned id = next_id_++;
        auto started = detail::launch(o, args_, id, [this, id](unique_fd link) { return become_worker(id, std::move(link)); });
        if (!started) {
            what = "cluster: cannot start worker " + std::to_string(id);
            co_return started.error();
        }
        auto h = std::make_shared<handle>(id, std::move(*started));
        // Listed before the wait below: a worker forked meanwhile must close these fds.
        handles_.emplace(id, h);
        std::optional<detail::launch_failure> failure;
        if (h->status_pipe_) failure = co_await read_launch_failure(h->status_pipe_.get());
        h->status_pipe_.reset();
        if (failure) {
            handles_.erase(id);
            (void)co_await h->child_.wait();
            what = "cluster: worker " + std::to_string(id) + " could not start: " + to_string(failure->stage) +
                   detail::stage_subject(failure->stage, o);
            co_return errno_code(failure->error);
        }
        tasks_.spawn(supervise(*this, h));
        events_.push(event<P>(fork_event{id, h->pid()}, h));
        co_return h.get();
    }

    // Nothing once the worker started (exec'd, or ready to run its code); else what failed.
    static task<std::optional<detail::launch_failure>> read_launch_failure(int fd) {
        detail::launch_failure f{};
        std::size_t got = 0;
        while (got < sizeof f) {
            auto n = co_await io::read(fd, std::span(reinterpret_cast<std::byte*>(&f) + got, sizeof f - got));
            if (!n || *n == 0) break;
            got += *n;
        }
        if (got != sizeof f) co_return std::nullopt;
        co_return f;
    }

    // In a fork-mode worker, still inside fork(): close what is the primary's, then run.
    int become_worker(unsigned id, unique_fd link) {
        ::close(ctx_->native_handle());
        for (const auto& [other, h] : handles_) h->close_in_forked_child();
        return detail::run_worker_process<P>(id, std::move(link), worker_main_);
    }

    std::shared_ptr<handle> find(unsigned id) const {
        auto it = handles_.find(id);
        return it == handles_.end() ? nullptr : it->second;
    }

    event<P> taken(std::optional<event<P>> e) {
        if (!e) throw std::system_error(std::make_error_code(std::errc::operation_canceled), "cluster: event wait stopped");
        if (auto* x = e->template get_if<exit_event>()) forget(x->worker_id);
        return std::move(*e);
    }

    // Once its exit is taken, a worker's fork, online, listening and disconnect events still
    // queued are history: a loop that only takes exits must not pile them up (nor the handle
    // they hold). Its messages stay.
    void forget(unsigned id) {
        handles_.erase(id);
        events_.erase_if([id](const event<P>& e) {
            return e.worker_id() == id && e.kind() != event_kind::message && e.kind() != event_kind::setup;
        });
    }

    // Everything the primary does for one worker, from fork to exit event.
    static task<void> supervise(primary& self, std::shared_ptr<handle> h) {
        h->readers_ = 1;
        self.tasks_.spawn(pump(self, h));
        if (h->out_) {
            h->readers_ += 2;
            self.tasks_.spawn(relay(h, h->out_.get(), STDOUT_FILENO));
            self.tasks_.spawn(relay(h, h->err_.get(), STDERR_FILENO));
        }
        auto status = co_await h->child_.wait();
        // All the worker sent is in our receive queue by now, but its end of the socket closes
        // only when the kernel tears its io_uring down, milliseconds later: end the stream here.
        ::shutdown(h->link_.native_handle(), SHUT_RD);
        auto drained = co_await with_timeout(wait_latch(h->readers_done_), detail::reader_grace);
        if (!drained) {
            // A process the worker forked holds its end: stop reading what it may still send.
            h->disconnected();
            h->stop_readers_.request_stop();
            (void)co_await h->readers_done_.wait();
        }
        h->release();
        exit_event e{h->id_, h->pid(), status ? *status : exit_status{}, h->exited_after_disconnect_};
        h->exited_.set();
        self.events_.push(event<P>(std::move(e), h));
    }

    static task<void> wait_latch(latch& l) { (void)co_await l.wait(); }

    static void reader_done(handle& h) {
        if (--h.readers_ == 0) h.readers_done_.set();
    }

    static task<void> pump(primary& self, std::shared_ptr<handle> h) {
        while (auto e = co_await h->link_.receive_envelope()) {
            if (e->flags & wire::frame_flags::routed)
                co_await self.forward(*h, std::move(*e));
            else
                self.dispatch(h, std::move(*e));
        }
        h->disconnected();
        self.events_.push(event<P>(disconnect_event{h->id_, h->link_.close_reason()}, h));
        reader_done(*h);
    }

    void dispatch(const std::shared_ptr<handle>& h, link_envelope&& e) {
        if (e.flags & wire::frame_flags::response) {
            (void)h->requests_.complete(e.tag, std::move(e.message));
        } else if (std::holds_alternative<control::online>(e.message)) {
            h->online_ = true;
            events_.push(event<P>(online_event{h->id_, h->pid()}, h));
        } else if (auto* l = std::get_if<control::listening>(&e.message)) {
            events_.push(event<P>(listening_event{h->id_, l->family, std::move(l->address), l->port}, h));
        } else if (std::holds_alternative<control::leaving>(e.message)) {
            h->exited_after_disconnect_ = true;
        } else if (auto m = detail::to_incoming<P>(std::move(e), h->id_)) {
            events_.push(event<P>(std::move(*m), h));
        }
    }

    // A message from one worker to another (or to all others): it goes on marked with
    // the sender's id. Messages for a worker that is gone are dropped.
    task<void> forward(handle& from, link_envelope&& e) {
        if (e.message.index() < control::control_count) co_return;
        std::vector<std::shared_ptr<handle>> targets;
        if (e.tag == wire::frame_flags::all_workers) {
            for (const auto& [id, h] : handles_)
                if (id != from.id_ && h->is_connected()) targets.push_back(h);
        } else if (auto h = find(e.tag); h && h->is_connected()) {
            targets.push_back(std::move(h));
        }
        for (const auto& target : targets) {
            auto sent = std::visit([&](const auto& m) { return target->link_.send(m, from.id_, wire::frame_flags::routed); },
                                   e.message);
            (void)co_await sent;
        }
    }

    static task<void> relay(std::shared_ptr<handle> h, int from, int to) {
        co_await relay_lines(from, to, "[worker " + std::to_string(h->id_) + "] ", h->stop_readers_.get_token());
        reader_done(*h);
    }

    // Copies lines from `from` to `to`, each prefixed; whole lines per write, so workers'
    // lines never interleave mid-line. A last line without a newline gets one.
    static task<void> relay_lines(int from, int to, std::string prefix, std::stop_token stop) {
        std::string partial, out;
        char buf[4096];
        for (;;) {
            auto n = co_await io::read(from, std::span(buf)).with_stop_token(stop);
            if (!n || *n == 0) break;
            partial.append(buf, *n);
            std::size_t start = 0;
            for (std::size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1) {
                if (out.size() + prefix.size() + nl + 1 - start > 4096) co_await write_all(to, out);
                out.append(prefix).append(partial, start, nl + 1 - start);
            }
            partial.erase(0, start);
            co_await write_all(to, out);
        }
        if (!partial.empty()) out.append(prefix).append(partial).append("\n");
        co_await write_all(to, out);
    }

    static task<void> write_all(int fd, std::string& data) {
        std::size_t done = 0;
        while (done < data.size()) {
            auto n = co_await io::write(fd, std::span(data.data() + done, data.size() - done));
            if (!n || *n == 0) break;
            done += *n;
        }
        data.clear();
    }

    static task<void> disconnect_and_wait(std::shared_ptr<handle> h) {
        (void)co_await h->disconnect();
        (void)co_await h->exited_.wait();
    }

    static task<void> wait_exited(std::shared_ptr<handle> h) { (void)co_await h->exited_.wait(); }

    primary_options options_;
    worker_main worker_main_;
    std::vector<std::string> args_;
    io_context* ctx_;
    unsigned next_id_ = 1;
    bool stopping_ = false;
    std::map<unsigned, std::shared_ptr<handle>> handles_;
    mailbox<event<P>> events_;
    scope tasks_;  // last: destroyed first, while the handles its tasks use still exist
};

} // namespace cluster
