// cluster::io::scope's definitions: structured concurrency's joins and cancellation. Inline in
// a header-only build; compiled once into cluster::core otherwise.
#pragma once

#include <cluster/io/scope.hpp>

namespace cluster::io {

CLUSTER_DECL scope::~scope() {
    while (head_) {
        auto h = std::coroutine_handle<child_promise>::from_promise(*head_);
        unlink(*head_);
        h.destroy();
    }
}

CLUSTER_DECL void scope::spawn(task<void> t) {
    t.with_stop_token(stop_.get_token());
    auto started = run_child(std::move(t));
    link(started.handle.promise());
    started.handle.resume();
}

CLUSTER_DECL void scope::link(child_promise& p) noexcept {
    p.owner = this;
    p.next = head_;
    if (head_) head_->prev = &p;
    head_ = &p;
    ++size_;
}

CLUSTER_DECL void scope::unlink(child_promise& p) noexcept {
    if (p.prev)
        p.prev->next = p.next;
    else
        head_ = p.next;
    if (p.next) p.next->prev = p.prev;
    --size_;
}

}  // namespace cluster::io
