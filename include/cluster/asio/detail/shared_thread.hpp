// cluster::asio::detail::shared_thread: one asio::io_context run on the thread of a cluster loop,
// as that loop's external_loop — Asio's reactor is where both wait; the ring wakes it by eventfd.
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <fcntl.h>

#include <array>
#include <cerrno>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <string>
#include <system_error>
#include <utility>

#include <cluster/error.hpp>
#include <cluster/io/external_loop.hpp>
#include <cluster/io/io_context.hpp>

#if defined(BOOST_ASIO_NO_TS_EXECUTORS)
#error                                                                                                                 \
    "cluster/asio.hpp counts work through io_context::executor_type::on_work_started(), which BOOST_ASIO_NO_TS_EXECUTORS removes"
#endif

namespace cluster::asio::detail {

// The cluster loop waits in Asio's reactor for its ring's eventfd: its rings are then made so
// that the kernel signals it as a completion comes (io_context_options::defer_taskrun).
inline const bool external_loops_declared = (io::detail::external_loops_in_program = true);

class shared_thread final : public io::external_loop {
public:
    shared_thread(boost::asio::io_context& asio, io::io_context& cluster)
        : asio_(asio), cluster_(cluster), notifications_(asio, duplicate(cluster.notification_fd())) {}
    shared_thread(const shared_thread&) = delete;
    shared_thread& operator=(const shared_thread&) = delete;
    // Goes with its asio::io_context, which must go before the cluster loop (in a worker, it is
    // a local of worker_main): only a run() abandoned mid-way still needs the loop then.
    ~shared_thread() {
        if (attached_) cluster_.detach(*this);
    }

    [[nodiscard]] boost::asio::io_context& asio() const noexcept { return asio_; }
    [[nodiscard]] io::io_context& cluster() const noexcept { return cluster_; }

    // From now on the cluster loop waits in Asio's, until Asio's stops or runs out of work:
    // then `runner` is resumed (with what a handler threw, if one did).
    void start(std::coroutine_handle<> runner) {
        cluster_.attach(*this);
        attached_ = true;
        runner_ = runner;
        error_ = nullptr;
    }

    // The runner is gone (its frame destroyed) before its end: nobody is to be resumed.
    void abandon(std::coroutine_handle<> runner) noexcept {
        if (runner_ == runner) runner_ = {};
        cluster_.cancel_post(runner);
        detach();
    }

    void rethrow_what_a_handler_threw() {
        if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
    }

    // A turn with work of its own: Asio's ready handlers are not to wait for its end.
    void poll() override { run(&boost::asio::io_context::poll_one); }

    void wait() override {
        if (asio_.stopped()) return finish();
        // Completions came meanwhile: the cluster loop is not to wait, nor Asio's to starve.
        if (!cluster_.arm_notification()) return poll();
        watch();
        run(&boost::asio::io_context::run_one);
        cluster_.disarm_notification();
    }

private:
    static int duplicate(int fd) {
        const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (copy < 0) throw std::system_error(errno_code(errno), "cluster: duplicating the ring's eventfd for Asio");
        return copy;
    }

    // One handler at most: the cluster loop's turn comes between any two.
    void run(std::size_t (boost::asio::io_context::*one)()) {
        try {
            (void)(asio_.*one)();
        } catch (...) {
            error_ = std::current_exception();
        }
        if (error_ || asio_.stopped()) finish();
    }

    void finish() noexcept {
        detach();
        if (runner_) cluster_.post(std::exchange(runner_, {}));
    }

    void detach() noexcept {
        cluster_.detach(*this);
        attached_ = false;
    }

    // The ring's eventfd, watched while the cluster loop waits in Asio's. A read, rather than a
    // wait: it empties the eventfd as it completes (a wait would be re-armed with an epoll_ctl,
    // which a readable eventfd would trigger at once), and a buffer longer than the 8 bytes it
    // gives tells Asio not to try the next read before the next signal. The watch is not the
    // user's work: uncounted, Asio runs out of work, and stops, when the user's is done, as
    // io_context::run() does alone. Its handler counts itself back before Asio counts it done.
    void watch() {
        if (watching_) return;
        watching_ = true;
        notifications_.async_read_some(boost::asio::buffer(signalled_),
                                       [this](const boost::system::error_code&, std::size_t) {
                                           asio_.get_executor().on_work_started();
                                           watching_ = false;
                                       });
        asio_.get_executor().on_work_finished();
    }

    boost::asio::io_context& asio_;
    io::io_context& cluster_;
    boost::asio::posix::stream_descriptor notifications_;
    bool attached_ = false;
    bool watching_ = false;
    std::array<std::uint64_t, 2> signalled_{};
    std::coroutine_handle<> runner_;
    std::exception_ptr error_;
};

}  // namespace cluster::asio::detail
