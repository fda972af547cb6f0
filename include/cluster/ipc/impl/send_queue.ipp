// cluster::ipc::send_queue's definitions but for queue(), a template, and its hot path:
// batching, writing, backpressure. Inline in a header-only build; compiled once into cluster::core otherwise.
#pragma once

#include <cluster/ipc/send_queue.hpp>

namespace cluster::ipc {

CLUSTER_DECL send_queue::~send_queue() {
    for (waiter* w : blocked_senders_) w->owner = nullptr;
    for (waiter* w : flush_waiters_) w->owner = nullptr;
    cancel_writes();
}

CLUSTER_DECL void send_queue::fail(std::error_code ec) {
    if (!write_error_) write_error_ = ec;
    sending_.clear();
    filling_.clear();
    sent_ = 0;
    marks_sent_ = 0;
    fds_sent_ = 0;
}

CLUSTER_DECL void send_queue::cancel_writes() {
    if (flush_scheduled_) ctx_->cancel_defer(&flush_hook_);
    flush_scheduled_ = false;
    if (!write_idle_) ctx_->cancel_and_wait(&write_hook_, write_idle_);
}

CLUSTER_DECL void send_queue::wake_all() {
    wake(blocked_senders_);
    wake(flush_waiters_);
}

CLUSTER_DECL void send_queue::owned_queued_fds(std::vector<int>& fds) const {
    for (const auto* b : {&filling_, &sending_})
        for (const auto& fd : b->fds)
            if (fd.is_owned()) fds.push_back(raw_fd(fd));
}

CLUSTER_DECL void send_queue::drop_in_forked_child(std::error_code ec) noexcept {
    fail(ec);
    blocked_senders_.clear();
    flush_waiters_.clear();
    flush_scheduled_ = false;
    write_idle_ = true;
}

CLUSTER_DECL void send_queue::forget(waiter* w) noexcept {
    std::erase(blocked_senders_, w);
    std::erase(flush_waiters_, w);
}

CLUSTER_DECL result<void> send_queue::result_so_far() const noexcept {
    if (write_error_) return write_error_;
    return {};
}

CLUSTER_DECL void send_queue::undo(std::size_t bytes, std::size_t fds, std::size_t runs) {
    filling_.bytes.truncate(bytes);
    filling_.fds.erase(filling_.fds.begin() + static_cast<std::ptrdiff_t>(fds), filling_.fds.end());
    while (filling_.gather.runs.size() > runs) {
        filling_.gather.total -= filling_.gather.runs.back().bytes.size();
        filling_.gather.runs.pop_back();
    }
}

CLUSTER_DECL void send_queue::queue_memfd_header(const wire::frame_header& h) {
    wire::encode_header(h, std::span<std::byte, wire::frame_header_size>(filling_.bytes.extend(wire::frame_header_size),
                                                                         wire::frame_header_size));
}

CLUSTER_DECL std::error_code send_queue::take_fds(const wire::fd_list& fds, fd_use use) {
    for (int raw : fds) {
        if (use == fd_use::lend) {
            filling_.fds.push_back(detail::queued_fd::lent(raw));
            continue;
        }
        unique_fd dup(::fcntl(raw, F_DUPFD_CLOEXEC, 0));
        if (!dup) return errno_code(errno);
        filling_.fds.push_back(detail::queued_fd::owned(std::move(dup)));
    }
    return {};
}

CLUSTER_DECL void send_queue::schedule_flush() {
    if (flush_scheduled_ || !write_idle_) return;
    ctx_->defer(&flush_hook_);
    flush_scheduled_ = true;
}

CLUSTER_DECL void send_queue::on_flush(int, bool resume) {
    flush_scheduled_ = false;
    if (!resume) return;
    write_more();
    wake_senders();
}

CLUSTER_DECL void send_queue::write_more() {
    if (write_idle_ && !write_error_ && sent_ == sending_.size() && filling_.fds.empty() &&
        filling_.gather.runs.empty())
        return write_plain_batch();
    write_queued();
}

CLUSTER_DECL void send_queue::write_plain_batch() {
    const std::size_t size = filling_.bytes.size();
    if (size == 0) return;
    const ssize_t n = ::send(fd_, filling_.bytes.data(), size, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(size)) {
        ++stats_.writes;
        filling_.clear();
        return;
    }
    const int err = errno;
    start_sending_filled();
    prepare_write();
    if (n < 0 && err != EAGAIN && err != EWOULDBLOCK) return fail(errno_code(err));
    if (n >= 0) {
        ++stats_.writes;
        (void)written(static_cast<std::size_t>(n));  // a short write: the rest is prepared
    }
    submit_write();
}

CLUSTER_DECL void send_queue::write_queued() {
    while (write_idle_ && !write_error_) {
        if (sent_ == sending_.size()) {
            if (filling_.size() == 0) return;
            start_sending_filled();
        }
        prepare_write();
        const ssize_t n = send_prepared();
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return fail(errno_code(errno));
        if (n >= 0) ++stats_.writes;
        if (n < 0 || !written(static_cast<std::size_t>(n))) return submit_write();
    }
}

CLUSTER_DECL void send_queue::start_sending_filled() {
    std::swap(sending_, filling_);
    filling_.clear();
    sent_ = 0;
    marks_sent_ = 0;
    fds_sent_ = 0;
}

CLUSTER_DECL void send_queue::prepare_write() {
    std::size_t end = sending_.size(), fd_count = 0;
    if (marks_sent_ < sending_.marks.size()) {
        const fd_mark& next = sending_.marks[marks_sent_];
        if (sent_ < next.offset) {
            end = next.offset;
        } else {
            end = next.end;
            fd_count = next.count;
        }
    }
    send_msg_ = {};
    if (sending_.gather.runs.empty()) {
        send_iov_ = {sending_.bytes.data() + sent_, end - sent_};
        send_msg_.msg_iov = &send_iov_;
        send_msg_.msg_iovlen = 1;
    } else {
        gather_iovs(end);
        send_msg_.msg_iov = send_iovs_.data();
        send_msg_.msg_iovlen = send_iovs_.size();
    }
    io::attach_fds(send_msg_, send_control_,
                   std::span<const detail::queued_fd>(sending_.fds).subspan(fds_sent_, fd_count));
    pending_fds_ = fd_count;
}

CLUSTER_DECL ssize_t send_queue::send_prepared() noexcept {
    constexpr int flags = MSG_DONTWAIT | MSG_NOSIGNAL;
    if (send_msg_.msg_iovlen == 1 && send_msg_.msg_controllen == 0)
        return ::send(fd_, send_msg_.msg_iov[0].iov_base, send_msg_.msg_iov[0].iov_len, flags);
    return ::sendmsg(fd_, &send_msg_, flags);
}

CLUSTER_DECL void send_queue::submit_write() {
    io_uring_prep_sendmsg(ctx_->sqe(&write_hook_), fd_, &send_msg_, MSG_NOSIGNAL);
    write_idle_ = false;
    ++stats_.writes;
}

CLUSTER_DECL bool send_queue::written(std::size_t n) {
    const std::size_t wanted = prepared_bytes();
    sent_ += n;
    if (n > 0 && pending_fds_ != 0) {
        ++marks_sent_;
        fds_sent_ += std::exchange(pending_fds_, 0);
    }
    if (sent_ == sending_.size()) {
        sending_.clear();
        sent_ = 0;
        marks_sent_ = 0;
        fds_sent_ = 0;
    }
    if (n == wanted) return true;
    prepare_write();  // the rest, from where the socket stopped
    return false;
}

CLUSTER_DECL std::size_t send_queue::prepared_bytes() const noexcept {
    std::size_t n = 0;
    for (std::size_t i = 0; i < send_msg_.msg_iovlen; ++i) n += send_msg_.msg_iov[i].iov_len;
    return n;
}

CLUSTER_DECL void send_queue::gather_iovs(std::size_t end) {
    send_iovs_.clear();
    std::size_t at = 0, buffered = 0;  // stream offset of bytes.data() + buffered
    auto piece = [&](const std::byte* p, std::size_t n) {
        const std::size_t from = std::max(sent_, at), to = std::min(end, at + n);
        if (from < to && send_iovs_.size() < 64)
            send_iovs_.push_back({const_cast<std::byte*>(p) + (from - at), to - from});
        at += n;
    };
    for (const auto& run : sending_.gather.runs) {
        if (at >= end) break;
        piece(sending_.bytes.data() + buffered, run.at - buffered);
        buffered = run.at;
        piece(run.bytes.data(), run.bytes.size());
    }
    if (at < end) piece(sending_.bytes.data() + buffered, sending_.bytes.size() - buffered);
}

CLUSTER_DECL void send_queue::on_written(int res, bool resume) {
    write_idle_ = true;
    if (res < 0) {
        fail(errno_code(-res));
    } else {
        (void)written(static_cast<std::size_t>(res));
        if (resume) write_more();
    }
    if (resume) wake_senders();
}

CLUSTER_DECL void send_queue::wake_senders() {
    if (write_error_ || !full()) wake(blocked_senders_);
    if (write_error_ || queued_bytes() == 0) wake(flush_waiters_);
}

CLUSTER_DECL void send_queue::wake(std::vector<waiter*>& list) {
    for (waiter* w : std::exchange(list, {})) {
        w->owner = nullptr;
        w->h.resume();
    }
}

}  // namespace cluster::ipc
