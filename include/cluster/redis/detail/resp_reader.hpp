// cluster::redis::detail::resp_reader: hiredis's RESP reader, fed the bytes the socket gave,
// handing back whole replies as values; input past the size limit or not RESP is an error.
#pragma once

#include <hiredis/hiredis.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <system_error>

#include <cluster/redis/error.hpp>
#include <cluster/redis/reply.hpp>
#include <cluster/result.hpp>

namespace cluster::redis::detail {

inline reply to_reply(const redisReply& r) {
    reply out;
    switch (r.type) {
    case REDIS_REPLY_STATUS: out.kind = reply_kind::status; break;
    case REDIS_REPLY_STRING: out.kind = reply_kind::string; break;
    case REDIS_REPLY_ERROR: out.kind = reply_kind::error; break;
    case REDIS_REPLY_INTEGER: out.kind = reply_kind::integer; break;
    case REDIS_REPLY_ARRAY: out.kind = reply_kind::array; break;
    default: out.kind = reply_kind::nil; break;
    }
    if (out.has_text()) out.text.assign(r.str, r.len);
    out.integer = r.integer;
    out.elements.reserve(r.elements);
    for (std::size_t i = 0; i < r.elements; ++i) out.elements.push_back(to_reply(*r.element[i]));
    return out;
}

class resp_reader {
public:
    explicit resp_reader(std::size_t max_bytes) : reader_(redisReaderCreate()), max_bytes_(max_bytes) {
        if (!reader_) throw std::bad_alloc();
    }

    result<void> feed(std::span<const std::byte> bytes) {
        if (redisReaderFeed(reader_.get(), reinterpret_cast<const char*>(bytes.data()), bytes.size()) != REDIS_OK)
            return errc::protocol_error;
        // What is buffered and not yet parsed belongs to the reply being read: bounded.
        if (reader_->len - reader_->pos > max_bytes_) return errc::reply_too_large;
        return {};
    }

    // The next whole reply, nothing while one is incomplete, or protocol_error.
    result<std::optional<reply>> next() {
        void* raw = nullptr;
        if (redisReaderGetReply(reader_.get(), &raw) != REDIS_OK) return errc::protocol_error;
        if (!raw) return std::optional<reply>{};
        std::unique_ptr<redisReply, reply_deleter> owned(static_cast<redisReply*>(raw));
        return std::optional<reply>(to_reply(*owned));
    }

private:
    struct reader_deleter {
        void operator()(redisReader* r) const noexcept { redisReaderFree(r); }
    };
    struct reply_deleter {
        void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
    };

    std::unique_ptr<redisReader, reader_deleter> reader_;
    std::size_t max_bytes_;
};

}  // namespace cluster::redis::detail
