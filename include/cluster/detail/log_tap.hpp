// cluster::detail::log_tap: copies of the workers' relayed output for whoever follows it (the
// control socket's `logs`), each follower with a bound: one that falls behind is dropped, not buffered.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <cluster/io/mailbox.hpp>

namespace cluster::detail {

// What a follower has not taken yet past which it is dropped: a second or so of a busy
// cluster's output, and nothing a slow terminal could make the primary hold without end.
inline constexpr std::size_t follower_backlog = 1u << 20;

class log_tap {
public:
    // One follower's lines, as the relay wrote them (whole lines, prefixed). Closed when the
    // follower fell behind (dropped is set) or the tap went away.
    struct follower {
        io::mailbox<std::string> lines{[](const std::string& s) noexcept { return s.size(); }};
        bool dropped = false;
    };

    log_tap() = default;
    log_tap(const log_tap&) = delete;
    log_tap& operator=(const log_tap&) = delete;
    ~log_tap() {
        for (auto& f : followers_) f->lines.close();
    }

    [[nodiscard]] std::shared_ptr<follower> follow() {
        auto f = std::make_shared<follower>();
        followers_.push_back(f);
        return f;
    }

    // The follower has gone (or was dropped): nothing more is copied for it.
    void forget(const std::shared_ptr<follower>& f) { std::erase(followers_, f); }

    // Lines the relay wrote; a follower they would put past its backlog is dropped.
    void copy(std::string_view lines) {
        if (followers_.empty()) return;
        std::vector<std::shared_ptr<follower>> behind;
        for (auto& f : followers_) {
            if (f->lines.queued_cost() + lines.size() <= follower_backlog) {
                f->lines.push(std::string(lines));
                continue;
            }
            f->dropped = true;
            f->lines.close();
            behind.push_back(f);
        }
        for (auto& f : behind) forget(f);
    }

    [[nodiscard]] std::size_t followers() const noexcept { return followers_.size(); }

private:
    std::vector<std::shared_ptr<follower>> followers_;
};

}  // namespace cluster::detail
