// cluster::io::signal_set's definitions: signals as awaitable events, through a signalfd. Inline
// in a header-only build; compiled once into cluster::core otherwise.
#pragma once

#include <cluster/io/signal_set.hpp>

namespace cluster::io {

CLUSTER_DECL signal_set::signal_set(std::initializer_list<int> signals) {
    sigemptyset(&mask_);
    for (int s : signals) sigaddset(&mask_, s);
    if (int err = pthread_sigmask(SIG_BLOCK, &mask_, &previous_); err != 0)
        throw std::system_error(errno_code(err), "cluster: pthread_sigmask");
    fd_.reset(::signalfd(-1, &mask_, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!fd_) {
        int err = errno;
        pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
        throw std::system_error(errno_code(err), "cluster: signalfd");
    }
}

CLUSTER_DECL signal_set::~signal_set() {
    sigset_t unblock;
    sigemptyset(&unblock);
    for (int s = 1; s < NSIG; ++s)
        if (sigismember(&mask_, s) == 1 && sigismember(&previous_, s) == 0) sigaddset(&unblock, s);
    fd_.reset();
    pthread_sigmask(SIG_UNBLOCK, &unblock, nullptr);
}

}  // namespace cluster::io
