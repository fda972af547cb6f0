// cluster::detail::pressure_log: one line on stderr when a bound is hit — descriptors run out,
// a queue full — at most once a second however often it is hit, saying how often it was.
#pragma once

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace cluster::detail {

class pressure_log {
public:
    using clock = std::chrono::steady_clock;

    // A hit: said now, or counted into the next line. A flood of them must not become a
    // flood of lines, which would cost more than what is being reported.
    void hit(const std::string& what) {
        ++unreported_;
        const auto now = clock::now();
        if (reported_once_ && now - last_ < std::chrono::seconds(1)) return;
        if (unreported_ > 1)
            std::fprintf(stderr, "cluster: %s (%llu times since the last report)\n", what.c_str(),
                         static_cast<unsigned long long>(unreported_));
        else
            std::fprintf(stderr, "cluster: %s\n", what.c_str());
        unreported_ = 0;
        last_ = now;
        reported_once_ = true;
    }

private:
    clock::time_point last_{};
    std::uint64_t unreported_ = 0;
    bool reported_once_ = false;
};

// Whether an error is the process running out of descriptors or memory: a load to shed
// and wait out, not a failure of whatever was being done.
inline bool out_of_resources(int err) noexcept {
    return err == EMFILE || err == ENFILE || err == ENOMEM || err == ENOBUFS;
}

}  // namespace cluster::detail
