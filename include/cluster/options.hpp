// cluster::primary_options and fork_options: how workers start — Node's setupPrimary()
// settings (exec, args, env, cwd, silent, uid, gid) and the start mode, fork or exec.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace cluster {

enum class start_mode {
    fork,  // the worker is a copy of the primary: fast, shares what was loaded before fork()
    exec,  // the worker re-executes a program: clean state, safe from a multi-threaded primary
};

struct primary_options {
    start_mode mode = start_mode::fork;
    std::string exec;                              // exec mode: the program; empty = this one
    std::optional<std::vector<std::string>> args;  // exec mode: its arguments; unset = the primary's own
    std::map<std::string, std::string> env;        // set over the primary's environment
    std::string cwd;                               // the worker's directory; empty = the primary's
    bool silent = false;                           // the worker's stdout/stderr relayed as "[worker N] line"
    std::optional<uid_t> uid;
    std::optional<gid_t> gid;
    int death_signal = SIGKILL;                    // what a worker gets if its primary dies
    std::chrono::milliseconds stop_timeout{5000};  // run(): how long workers have to leave at the end
};

// What one fork() changes from the primary's options; env is merged over theirs.
struct fork_options {
    std::map<std::string, std::string> env;
    std::optional<start_mode> mode;
    std::optional<std::string> exec;
    std::optional<std::vector<std::string>> args;
    std::optional<std::string> cwd;
    std::optional<bool> silent;
    std::optional<uid_t> uid;
    std::optional<gid_t> gid;
};

// The primary's options with one fork's changes applied.
inline primary_options merged(primary_options base, const fork_options& o) {
    for (const auto& [name, value] : o.env) base.env[name] = value;
    if (o.mode) base.mode = *o.mode;
    if (o.exec) base.exec = *o.exec;
    if (o.args) base.args = *o.args;
    if (o.cwd) base.cwd = *o.cwd;
    if (o.silent) base.silent = *o.silent;
    if (o.uid) base.uid = *o.uid;
    if (o.gid) base.gid = *o.gid;
    return base;
}

} // namespace cluster
