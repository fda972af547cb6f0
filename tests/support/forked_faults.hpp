// support: forked_faults — forked workers that die of a fault (SIGSEGV, SIGBUS, SIGILL, SIGFPE,
// SIGABRT), counted in memory every fork shares, so that a worker that crashes after its last
// answer fails the test instead of going unseen.
#pragma once

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <iterator>
#include <new>

namespace support {

namespace detail {

struct fault_record {
    pid_t watcher = 0;  // the test's own process, where nothing is counted
    std::atomic<int> count{0};
    std::atomic<int> last_signal{0};
};

inline constexpr int fault_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};

// Made once, before the first fork that counts, and shared with every process forked after it.
inline fault_record* fault_counts() {
    static fault_record* const record = [] {
        void* shared = ::mmap(nullptr, sizeof(fault_record), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (shared == MAP_FAILED) std::abort();
        return new (shared) fault_record;
    }();
    return record;
}

// In a worker: what each signal did before it was counted, which the fault is then left to.
inline struct sigaction fault_actions_before[std::size(fault_signals)];
inline fault_record* counting_into = nullptr;

// Counts the fault, then leaves it to the action the worker had: a fault the kernel raised
// comes again as the instruction is retried (a sanitizer's report, a core file); one that was
// sent (abort()) is sent again.
inline void count_fault(int sig, siginfo_t* info, void*) {
    counting_into->count.fetch_add(1);
    counting_into->last_signal.store(sig);
    for (std::size_t i = 0; i < std::size(fault_signals); ++i)
        if (fault_signals[i] == sig) ::sigaction(sig, &fault_actions_before[i], nullptr);
    if (info->si_code <= 0) ::raise(sig);
}

}  // namespace detail

// Called first in a forked worker's main: its faults count for the watch. A worker that is a
// thread of the test's own process is not counted.
inline void count_faults_in_worker() {
    auto* record = detail::fault_counts();
    if (::getpid() == record->watcher) return;
    detail::counting_into = record;
    struct sigaction counting {};
    counting.sa_sigaction = detail::count_fault;
    counting.sa_flags = SA_SIGINFO;
    ::sigemptyset(&counting.sa_mask);
    for (std::size_t i = 0; i < std::size(detail::fault_signals); ++i)
        ::sigaction(detail::fault_signals[i], &counting, &detail::fault_actions_before[i]);
}

// From its construction on, what count_faults_in_worker() counted in the workers forked since.
class forked_fault_watch {
public:
    forked_fault_watch() : record_(detail::fault_counts()) {
        record_->watcher = ::getpid();
        record_->count.store(0);
        record_->last_signal.store(0);
    }
    forked_fault_watch(const forked_fault_watch&) = delete;
    forked_fault_watch& operator=(const forked_fault_watch&) = delete;

    [[nodiscard]] int count() const noexcept { return record_->count.load(); }
    [[nodiscard]] int last_signal() const noexcept { return record_->last_signal.load(); }

private:
    detail::fault_record* record_;
};

}  // namespace support
