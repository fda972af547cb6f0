// cluster::exit_code: what run() returns, so whatever started the process (systemd, a shell,
// CI, its primary) can tell a clean stop from a crash loop, exhaustion or a missing io_uring.
#pragma once

namespace cluster::exit_code {

inline constexpr int ok = 0;       // stopped: by a signal, shutdown(), or with no worker left
inline constexpr int failed = 1;   // primary_main threw, or the primary could not start
inline constexpr int gave_up = 3;  // too many restarts too quickly (restart_policy)

// What a worker returns when an uncaught error was the system running out of descriptors or
// memory (EMFILE, ENFILE, ENOMEM, ENOBUFS): not a crash of its code. It is replaced, with the
// backoff, but not counted toward the restart policy's crash-loop cap.
inline constexpr int out_of_resources = 4;

// What run() returns, in the primary or in a worker, when this process cannot set up its
// io_uring (not permitted by a sysctl or a seccomp profile, not in this kernel, not enough
// locked memory): a setting to change, not a crash. Why is on stderr.
inline constexpr int io_uring_unavailable = 5;

}  // namespace cluster::exit_code
