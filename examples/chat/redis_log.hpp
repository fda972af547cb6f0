// chat's redis_log: one line when Redis is first reached or found unreachable, and one at each
// change after that, however many commands fail meanwhile.
#pragma once

#include <cstdio>
#include <optional>
#include <string>
#include <system_error>

namespace chat {

class redis_log {
public:
    redis_log(std::string who, std::string where) : who_(std::move(who)), where_(std::move(where)) {}

    // A command's or a connection's outcome: the Redis client reconnects by itself, with backoff.
    void outcome(std::error_code failure) {
        const bool up = !failure;
        if (up_ == up) return;
        up_ = up;
        if (up)
            std::fprintf(stderr, "chat: %s: redis at %s: connected\n", who_.c_str(), where_.c_str());
        else
            std::fprintf(stderr, "chat: %s: redis at %s: unreachable (%s); retrying with backoff\n", who_.c_str(),
                         where_.c_str(), failure.message().c_str());
    }

private:
    std::string who_;
    std::string where_;
    std::optional<bool> up_;
};

}  // namespace chat
