// cluster::exit_code: what run() returns in the primary, so whatever started it (systemd,
// a shell, CI) can tell a clean stop from a crash loop; and a worker's resource exhaustion.
#pragma once

namespace cluster::exit_code {

inline constexpr int ok = 0;       // stopped: by a signal, shutdown(), or with no worker left
inline constexpr int failed = 1;   // primary_main threw
inline constexpr int gave_up = 3;  // too many restarts too quickly (restart_policy)

// What a worker returns when an uncaught error was the system running out of descriptors or
// memory (EMFILE, ENFILE, ENOMEM, ENOBUFS): not a crash of its code. It is replaced, with the
// backoff, but not counted toward the restart policy's crash-loop cap.
inline constexpr int out_of_resources = 4;

}  // namespace cluster::exit_code
