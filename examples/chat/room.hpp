// chat's room: the WebSockets of one worker, and the delivery of one message to each of them.
#pragma once

#include <cluster/websocket.hpp>

#include <string_view>
#include <unordered_set>

namespace chat {

class room {
public:
    // A socket in the room for as long as this lives.
    class seat {
    public:
        seat(room& r, cluster::websocket::socket& s) : room_(r), socket_(s) { room_.members_.insert(&socket_); }
        seat(const seat&) = delete;
        seat& operator=(const seat&) = delete;
        ~seat() { room_.members_.erase(&socket_); }

    private:
        room& room_;
        cluster::websocket::socket& socket_;
    };

    // Queues `text` to every member, as one text frame. send_text queues without suspending,
    // so no member leaves meanwhile; a member whose queue is full is closed with 1008.
    cluster::task<void> deliver(std::string_view text) {
        for (auto* s : members_) {
            auto sent = co_await s->send_text(text);
            (void)sent;
        }
    }

    [[nodiscard]] std::size_t size() const noexcept { return members_.size(); }

private:
    std::unordered_set<cluster::websocket::socket*> members_;
};

}  // namespace chat
