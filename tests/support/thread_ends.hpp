// support::thread_ends: a test's wait for thread workers' threads to have ended, everything they
// held closed. An abandoned thread worker (kill(SIGKILL), a supervisor's deadline) runs on
// detached with its own descriptors until it returns (docs/threads.md): a test that counts
// descriptors afterwards waits for it first.
#pragma once

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <span>

#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>

#include "waiting.hpp"

namespace support {

class thread_ends {
public:
    // Made before the primary, so that its eventfd is not counted as the cluster's. The eventfd
    // is the process's, made once and never closed: a thread's last write to it may come as
    // the test ends (ThreadSanitizer sees no order between it and a close, the test reading
    // the eventfd through io_uring). What an earlier test's threads counted is taken first.
    thread_ends() {
        static const int eventfd = ::eventfd(0, EFD_CLOEXEC);
        REQUIRE(eventfd >= 0);
        fd_ = eventfd;
        pollfd readable{fd_, POLLIN, 0};
        std::uint64_t stale = 0;
        if (::poll(&readable, 1, 0) == 1) (void)!::read(fd_, &stale, sizeof stale);
        signal_fd_ = fd_;
        owner_ = ::getpid();
    }
    thread_ends(const thread_ends&) = delete;
    thread_ends& operator=(const thread_ends&) = delete;
    ~thread_ends() {
        owner_ = 0;
        signal_fd_ = -1;
    }

    // In a worker's code: a thread worker's thread counts as ended once it has returned, its
    // loop and its end of the link closed (a thread_local's destructor, the last thing it
    // runs). Nothing in a process, or with no thread_ends in the test.
    static void watch() {
        if (::getpid() != owner_.load()) return;
        thread_local guard g;
        g.armed = true;
    }

    // Waits, bounded, until n watched threads have ended: each adds one to the eventfd's count,
    // the last thing it does, so that reading it orders the thread's end before what follows.
    [[nodiscard]] cluster::task<void> until(std::uint64_t n) {
        while (ended_ < n) {
            std::uint64_t count = 0;
            auto woken = co_await bounded(cluster::io::read_exact(fd_, std::as_writable_bytes(std::span(&count, 1))),
                                          "a thread's end");
            REQUIRE(woken.has_value());
            ended_ += count;
        }
    }

private:
    struct guard {
        bool armed = false;
        ~guard() {
            if (!armed) return;
            const std::uint64_t one = 1;
            if (const int fd = signal_fd_.load(); fd >= 0) (void)!::write(fd, &one, sizeof one);
        }
    };

    inline static std::atomic<int> signal_fd_{-1};
    inline static std::atomic<pid_t> owner_{0};
    int fd_ = -1;
    std::uint64_t ended_ = 0;  // of the watched threads, as the eventfd counted them
};

}  // namespace support
