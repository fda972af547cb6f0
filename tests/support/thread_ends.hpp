// support::thread_ends: a test's wait for thread workers' threads to have ended, everything they
// held closed. An abandoned thread worker (kill(SIGKILL), a supervisor's deadline) runs on
// detached with its own descriptors until it returns (docs/threads.md): a test that counts
// descriptors afterwards waits for it first.
#pragma once

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
    // Made before the primary, so that its eventfd is not counted as the cluster's.
    thread_ends() : fd_(::eventfd(0, EFD_CLOEXEC)) {
        REQUIRE(fd_);
        ended_ = 0;
        signal_fd_ = fd_.get();
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

    // Waits, bounded, until n watched threads have ended.
    [[nodiscard]] cluster::task<void> until(unsigned n) const {
        while (ended_.load() < n) {
            std::uint64_t count = 0;
            auto woken = co_await bounded(
                cluster::io::read_exact(fd_.get(), std::as_writable_bytes(std::span(&count, 1))), "a thread's end");
            REQUIRE(woken.has_value());
        }
    }

private:
    struct guard {
        bool armed = false;
        ~guard() {
            if (!armed) return;
            ended_.fetch_add(1);
            const std::uint64_t one = 1;
            if (const int fd = signal_fd_.load(); fd >= 0) (void)!::write(fd, &one, sizeof one);
        }
    };

    inline static std::atomic<unsigned> ended_{0};
    inline static std::atomic<int> signal_fd_{-1};
    inline static std::atomic<pid_t> owner_{0};
    cluster::unique_fd fd_;
};

}  // namespace support
