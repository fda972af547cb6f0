// cluster::detail::batch_scheduling: primary_options::yield_to_workers — the primary's thread
// runs as SCHED_BATCH while it supervises, and the workers it starts run as it did before.
#pragma once

#include <sched.h>

namespace cluster::detail {

// A SCHED_BATCH thread that wakes does not preempt the one running: with every CPU busy,
// the primary's wake-ups (a connection to hand on, a message to route) wait for a worker to
// block or its slice to end, and find more work queued when they run. Taken from SCHED_OTHER
// only: a policy someone chose (SCHED_BATCH already, SCHED_IDLE, a real-time one) is kept.
class batch_scheduling {
public:
    explicit batch_scheduling(bool wanted) noexcept {
        if (!wanted || taken_ || ::sched_getscheduler(0) != SCHED_OTHER) return;
        const sched_param none{};
        mine_ = taken_ = ::sched_setscheduler(0, SCHED_BATCH, &none) == 0;
    }
    batch_scheduling(const batch_scheduling&) = delete;
    batch_scheduling& operator=(const batch_scheduling&) = delete;
    ~batch_scheduling() {
        if (!mine_) return;
        leave_in_this_thread();
        taken_ = false;
    }

    // In a worker the primary starts (a forked child before its code or exec, a thread as it
    // begins), which inherited the primary's policy: SCHED_OTHER again.
    static void leave_in_this_thread() noexcept {
        if (!taken_) return;
        const sched_param none{};
        (void)::sched_setscheduler(0, SCHED_OTHER, &none);
    }

private:
    static inline bool taken_ = false;  // by the primary of this process, whose children inherit it
    bool mine_ = false;
};

}  // namespace cluster::detail
