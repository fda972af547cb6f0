// support: a seccomp filter on the calling thread alone, for tests that show a loop makes no
// system call of a kind: one call ends the process, another is skipped and counted (SIGSYS).
#pragma once

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <atomic>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <iterator>

namespace support {

#if defined(__x86_64__)
inline constexpr std::uint32_t this_arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
inline constexpr std::uint32_t this_arch = AUDIT_ARCH_AARCH64;
#else
inline constexpr std::uint32_t this_arch = 0;  // unknown: no filter
#endif

// The calls the filters below skipped, on whichever thread.
inline std::atomic<unsigned> counted_calls{0};

// From now on, on this thread only: system call `forbidden` ends the process (killed by SIGSYS:
// the test fails; an error returned instead could be retried for ever), and `counted` (-1:
// none) is not made but counted in counted_calls, by a SIGSYS handler for the whole process
// that stays until restore_sigsys(). False where the kernel or the architecture has no filter.
inline bool filter_this_thread(long forbidden, long counted = -1) {
    if (this_arch == 0) return false;
    struct sigaction counting {};
    counting.sa_sigaction = [](int, siginfo_t*, void*) { counted_calls.fetch_add(1, std::memory_order_relaxed); };
    counting.sa_flags = SA_SIGINFO;
    if (counted >= 0 && ::sigaction(SIGSYS, &counting, nullptr) != 0) return false;
    const auto nr = [](long n) { return static_cast<std::uint32_t>(n); };
    sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, this_arch, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr(forbidden), 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr(counted), 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    const sock_fprog program{static_cast<unsigned short>(std::size(code)), code};
    return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

// Once the filtered threads have ended.
inline void restore_sigsys() { ::signal(SIGSYS, SIG_DFL); }

}  // namespace support
