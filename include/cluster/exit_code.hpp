// cluster::exit_code: what run() returns in the primary, so whatever started it (systemd,
// a shell, CI) can tell a clean stop from a crash loop the restart policy gave up on.
#pragma once

namespace cluster::exit_code {

inline constexpr int ok = 0;       // stopped: by a signal, shutdown(), or with no worker left
inline constexpr int failed = 1;   // primary_main threw
inline constexpr int gave_up = 3;  // too many restarts too quickly (restart_policy)

}  // namespace cluster::exit_code
