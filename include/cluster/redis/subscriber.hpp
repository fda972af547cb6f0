// cluster::redis::subscriber: a connection of its own in subscribe mode — channels and
// patterns, their messages awaited one at a time, the subscriptions restored on reconnect.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <cluster/io/latch.hpp>
#include <cluster/io/mailbox.hpp>
#include <cluster/io/task.hpp>
#include <cluster/redis/detail/format_command.hpp>
#include <cluster/redis/detail/link.hpp>
#include <cluster/redis/error.hpp>
#include <cluster/redis/options.hpp>
#include <cluster/redis/reply.hpp>
#include <cluster/result.hpp>

namespace cluster::redis {

// A published message; `pattern` is the subscription it matched, empty for a plain channel.
struct message {
    std::string pattern;
    std::string channel;
    std::string payload;
};

class subscriber final : private detail::link_events {
public:
    explicit subscriber(options o = {}) : link_(std::move(o), *this) {}
    subscriber(const subscriber&) = delete;
    subscriber& operator=(const subscriber&) = delete;
    ~subscriber() { fail_confirmations(errc::closed); }

    [[nodiscard]] task<result<void>> connect() { return link_.connect(); }
    [[nodiscard]] task<result<void>> wait_connected() { return link_.wait_connected(); }
    [[nodiscard]] task<void> close() {
        co_await link_.close();
        messages_.close();
        std::exchange(restored_, std::make_shared<io::latch>())->set();
    }
    [[nodiscard]] bool connected() const noexcept { return link_.connected(); }
    // Messages dropped because max_pending of them were waiting to be taken.
    [[nodiscard]] std::size_t dropped() const noexcept { return dropped_; }

    // SUBSCRIBE channel / PSUBSCRIBE pattern: kept for the subscriber's life and restored on
    // every reconnect. Returns once the server confirms; errc::not_connected if the link is
    // down (the subscription is made when it comes up), connection_lost if it dropped first.
    [[nodiscard]] task<result<void>> subscribe(std::string channel) { return add(kind::channel, std::move(channel)); }
    [[nodiscard]] task<result<void>> psubscribe(std::string pattern) { return add(kind::pattern, std::move(pattern)); }

    // Times the link came back after dropping and the server confirmed every subscription
    // again. Messages published in between were lost: an application that must not miss
    // one reads what it missed from elsewhere (a list, a stream) when this counts up.
    [[nodiscard]] std::size_t restorations() const noexcept { return restorations_; }

    // Returns once restorations() > past; errc::closed once closed, operation_canceled if the
    // awaiting task is asked to stop.
    [[nodiscard]] task<result<void>> wait_restored(std::size_t past) {
        while (restorations_ <= past) {
            if (link_.closed()) co_return errc::closed;
            auto restored = restored_;
            const bool done = co_await restored->wait();
            if (!done) co_return std::make_error_code(std::errc::operation_canceled);
        }
        co_return result<void>{};
    }

    // The next message, waiting for one; errc::closed once closed, operation_canceled if the
    // awaiting task is asked to stop. Messages published while the link is down are lost.
    [[nodiscard]] task<result<message>> next() {
        auto m = co_await messages_.take();
        if (m) co_return std::move(*m);
        if (messages_.closed()) co_return errc::closed;
        co_return std::make_error_code(std::errc::operation_canceled);
    }

private:
    enum class kind { channel, pattern };

    struct confirmation {
        kind what;
        std::string name;
        std::error_code outcome;
        io::latch done;
    };

    static std::string_view verb(kind k) noexcept { return k == kind::channel ? "SUBSCRIBE" : "PSUBSCRIBE"; }

    task<result<void>> add(kind k, std::string name) {
        if (link_.closed()) co_return errc::closed;
        (k == kind::channel ? channels_ : patterns_).push_back(name);
        if (!link_.connected()) co_return errc::not_connected;
        confirmation c{k, name, {}, {}};
        confirmations_.push_back(&c);
        link_.send(detail::format_command(verb(k), name).value());
        const bool done = co_await c.done.wait();
        if (!done) {
            std::erase(confirmations_, &c);
            co_return std::make_error_code(std::errc::operation_canceled);
        }
        if (c.outcome) co_return c.outcome;
        co_return result<void>{};
    }

    void on_link_up() override {
        resubscribe(kind::channel, channels_);
        resubscribe(kind::pattern, patterns_);
        if (!std::exchange(been_up_, true)) return;
        unconfirmed_ = channels_.size() + patterns_.size();
        if (unconfirmed_ == 0) restored();
    }

    void restored() {
        ++restorations_;
        std::exchange(restored_, std::make_shared<io::latch>())->set();
    }

    void resubscribe(kind k, const std::vector<std::string>& names) {
        if (names.empty()) return;
        std::vector<std::string_view> argv{verb(k)};
        argv.insert(argv.end(), names.begin(), names.end());
        link_.send(detail::format_argv(argv).value());
    }

    void on_link_down(std::error_code why) override {
        unconfirmed_ = 0;
        fail_confirmations(why == errc::closed ? why : make_error_code(errc::connection_lost));
    }

    std::error_code on_reply(reply r) override {
        if (!r.is_array() || r.elements.empty()) return {};
        const auto& e = r.elements;
        const std::string_view type = e[0].text;
        if (type == "message" && e.size() == 3)
            deliver({{}, std::move(r.elements[1].text), std::move(r.elements[2].text)});
        else if (type == "pmessage" && e.size() == 4)
            deliver({std::move(r.elements[1].text), std::move(r.elements[2].text), std::move(r.elements[3].text)});
        else if ((type == "subscribe" || type == "psubscribe") && e.size() == 3)
            confirm(type == "subscribe" ? kind::channel : kind::pattern, e[1].text);
        return {};
    }

    void deliver(message m) {
        if (messages_.size() >= link_.settings().max_pending) {
            (void)messages_.try_take();
            ++dropped_;
        }
        messages_.push(std::move(m));
    }

    // The server confirms a subscription: one a task awaits in add(), or one of those
    // resubscribe() restored.
    void confirm(kind k, std::string_view name) {
        for (auto it = confirmations_.begin(); it != confirmations_.end(); ++it) {
            if ((*it)->what == k && (*it)->name == name) {
                (*it)->done.set();
                confirmations_.erase(it);
                return;
            }
        }
        if (unconfirmed_ > 0 && --unconfirmed_ == 0) restored();
    }

    void fail_confirmations(std::error_code why) {
        for (confirmation* c : std::exchange(confirmations_, {})) {
            c->outcome = why;
            c->done.set();
        }
    }

    std::vector<std::string> channels_;
    std::vector<std::string> patterns_;
    std::deque<confirmation*> confirmations_;
    io::mailbox<message> messages_;
    std::size_t dropped_ = 0;
    bool been_up_ = false;
    std::size_t unconfirmed_ = 0;  // restored subscriptions the server has not confirmed yet
    std::size_t restorations_ = 0;
    std::shared_ptr<io::latch> restored_ = std::make_shared<io::latch>();
    detail::link link_;  // last: its background task is stopped before the state above goes
};

}  // namespace cluster::redis
