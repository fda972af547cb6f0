// cluster::websocket::group: the WebSockets of one worker, closed together with a code
// when the worker is told to leave (1001 going away, 1012 service restart, by its leave_reason).
#pragma once

#include <cluster/leave_reason.hpp>
#include <cluster/websocket/close_code.hpp>

#include <cstddef>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

namespace cluster::websocket {

class group {
public:
    // What a socket is to its group: a link, and the start of a close handshake.
    class member {
    public:
        member(const member&) = delete;
        member& operator=(const member&) = delete;

    protected:
        explicit member(group* g) noexcept : group_(g) {}
        ~member() {
            if (group_) group_->unlink(*this);
        }
        // Called by the socket once it is whole: the group may close it from then on.
        void join_group() noexcept {
            if (group_) group_->link(*this);
        }
        // Starts the close handshake; the socket's own tasks finish it.
        virtual void begin_close(close_code code, std::string_view reason) noexcept = 0;

    private:
        friend class group;
        group* group_;
        member* prev_ = nullptr;
        member* next_ = nullptr;
        bool linked_ = false;
    };

    group() = default;
    group(const group&) = delete;  // its members point at it
    group& operator=(const group&) = delete;

    // Every member, now, sends a close frame with `code`: its receive() gives the close
    // once the peer answers, or close_timeout passes. Members that join later are closed
    // too, once close_all has been called: a leaving worker takes no new WebSockets.
    void close_all(close_code code, std::string_view reason) noexcept {
        closing_ = code;
        reason_ = reason.substr(0, 123);  // a close frame's reason has room for 123 bytes
        for (member* m = head_; m; m = m->next_) m->begin_close(code, reason_);
    }

    // close_all(code, reason) once `token` is requested: pass the worker's stop token, so
    // that its WebSockets close when the primary disconnects it.
    void close_all_on(std::stop_token token, close_code code, std::string_view reason) {
        on_stop_.emplace(std::move(token), closer{this, [code] { return code; }, std::string(reason)});
    }

    // close_all once worker `w` is disconnected, with the code its leave_reason() calls for:
    // service_restart (1012) when it is replaced, going_away (1001) when it leaves for good.
    template <class Worker>
    void close_all_on(const Worker& w) {
        on_stop_.emplace(w.stop_token(), closer{this, [&w] { return code_for(w.leave_reason()); }, {}});
    }

    [[nodiscard]] static close_code code_for(leave_reason why) noexcept {
        return why == leave_reason::replaced ? close_code::service_restart : close_code::going_away;
    }

    [[nodiscard]] std::size_t size() const noexcept { return size_; }

private:
    struct closer {
        group* self;
        std::function<close_code()> code;
        std::string reason;  // empty: the code's own words
        void operator()() const noexcept {
            const close_code c = code();
            self->close_all(c, reason.empty() ? words_for(c) : std::string_view(reason));
        }
    };

    static std::string_view words_for(close_code c) noexcept {
        return c == close_code::service_restart ? "server restarting" : "server going away";
    }

    void link(member& m) noexcept {
        m.linked_ = true;
        m.next_ = head_;
        if (head_) head_->prev_ = &m;
        head_ = &m;
        ++size_;
        if (closing_) m.begin_close(*closing_, reason_);
    }
    void unlink(member& m) noexcept {
        if (!m.linked_) return;
        if (m.prev_)
            m.prev_->next_ = m.next_;
        else
            head_ = m.next_;
        if (m.next_) m.next_->prev_ = m.prev_;
        --size_;
    }

    member* head_ = nullptr;
    std::size_t size_ = 0;
    std::optional<close_code> closing_;
    std::string reason_;
    std::optional<std::stop_callback<closer>> on_stop_;
};

}  // namespace cluster::websocket
