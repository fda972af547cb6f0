// detail::handoff on its own: offers kept until their worker answers, answers from anyone
// else ignored, what a worker had not answered, and the primary's copies closed in a child.
#include <catch2/catch.hpp>

#include "support/descriptors.hpp"

#include <cluster/detail/handoff.hpp>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

using cluster::unique_fd;
using cluster::detail::handoff;
using cluster::detail::pending_connection;

namespace {

pending_connection connection_on(std::uint32_t listener, unique_fd socket) {
    pending_connection c;
    c.listener = listener;
    c.socket = std::move(socket);
    return c;
}

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

}  // namespace

TEST_CASE("an offer is kept until its worker answers, and only its worker's answer counts") {
    handoff h;
    auto [a, b] = support::make_socketpair();
    const int fd = a.get();
    const auto seq = h.next_seq();
    h.offered(seq, 3, connection_on(7, std::move(a)));
    CHECK(h.size() == 1);
    CHECK_FALSE(h.answered(seq, 4));  // not offered to worker 4
    CHECK_FALSE(h.answered(seq + 1, 3));
    auto c = h.answered(seq, 3);
    REQUIRE(c);
    CHECK(c->listener == 7);
    CHECK(c->socket.get() == fd);
    CHECK(h.size() == 0);
    CHECK_FALSE(h.answered(seq, 3));  // answered once
}

TEST_CASE("what a worker has not answered can be found, and sequence numbers never repeat") {
    handoff h;
    std::vector<std::uint64_t> to_two;
    for (int i = 0; i < 6; ++i) {
        const auto seq = h.next_seq();
        const unsigned worker = i % 2 == 0 ? 2 : 5;
        if (worker == 2) to_two.push_back(seq);
        h.offered(seq, worker, pending_connection{});
    }
    auto unanswered = h.unanswered(2);
    std::sort(unanswered.begin(), unanswered.end());
    CHECK(unanswered == to_two);
    CHECK(h.unanswered(9).empty());
    (void)h.answered(to_two[0], 2);
    CHECK(h.unanswered(2).size() == 2);
}

TEST_CASE("a forked child closes the primary's copies of offered connections") {
    handoff h;
    auto [a, b] = support::make_socketpair();
    const int fd = a.get();
    h.offered(h.next_seq(), 1, connection_on(1, std::move(a)));
    const pid_t child = ::fork();
    if (child == 0) {
        h.close_in_forked_child();
        ::_exit(is_open(fd) ? 1 : 0);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(is_open(fd));  // the parent's stays open
}
