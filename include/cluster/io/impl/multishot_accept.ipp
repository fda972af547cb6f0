// cluster::io::multishot_accept's definitions: one SQE, many accepted connections. Inline in a
// header-only build; compiled once into cluster::core otherwise.
#pragma once

#include <cluster/io/multishot_accept.hpp>

namespace cluster::io {

CLUSTER_DECL multishot_accept::~multishot_accept() {
    if (armed_) ctx_->cancel_and_wait(this, disarmed_);
}

CLUSTER_DECL void multishot_accept::cancel() {
    if (armed_) return ctx_->cancel(this);
    if (waiter_) {
        queue_.emplace_back(errno_code(ECANCELED));
        ctx_->post(std::exchange(waiter_, {}));
    }
}

CLUSTER_DECL void multishot_accept::pause() {
    if (!armed_) return;
    pausing_ = true;
    ctx_->cancel_and_wait(this, disarmed_);
    pausing_ = false;
}

CLUSTER_DECL void multishot_accept::rearm() {
    if (!waiter_) return;
    if (queue_.empty()) return arm();
    ctx_->post(std::exchange(waiter_, {}));
}

CLUSTER_DECL std::vector<unique_fd> multishot_accept::take_queued() {
    std::vector<unique_fd> out;
    for (auto& r : queue_)
        if (r) out.push_back(std::move(*r));
    queue_.clear();
    return out;
}

CLUSTER_DECL void multishot_accept::close_queued_in_forked_child() const noexcept {
    for (const auto& r : queue_)
        if (r) ::close(r->get());
}

CLUSTER_DECL void multishot_accept::arm() {
    if (armed_) return;
    ctx_ = &io_context::current_or_throw();
    io_uring_prep_multishot_accept(ctx_->sqe(this), fd_, nullptr, nullptr, SOCK_CLOEXEC);
    armed_ = true;
    disarmed_ = false;
}

CLUSTER_DECL void multishot_accept::on_complete(detail::completion* self, int res, unsigned flags, bool resume) noexcept {
    auto* m = static_cast<multishot_accept*>(self);
    if (!(flags & IORING_CQE_F_MORE)) {
        m->armed_ = false;
        m->disarmed_ = true;
    }
    if (res >= 0)
        m->queue_.emplace_back(unique_fd(res));
    else if (!(flags & IORING_CQE_F_MORE) && !(m->pausing_ && res == -ECANCELED))
        m->queue_.emplace_back(errno_code(-res));
    if (resume && m->waiter_ && !m->queue_.empty()) m->waiter_.resume();
}

}  // namespace cluster::io
