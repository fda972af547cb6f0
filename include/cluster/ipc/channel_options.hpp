// cluster::ipc::channel_options and channel_stats: what a channel is set to — its limits,
// where backpressure starts, when payloads go by memfd — and what it has done so far.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cluster::ipc {

struct channel_options {
    std::size_t max_frame_size = 64u << 20;    // larger payloads are refused, and close the channel
    std::size_t high_water_mark = 256u << 10;  // queued bytes past which send() waits for the socket
    std::size_t memfd_threshold = 1u << 20;    // larger payloads travel in a sealed memfd
    std::size_t read_chunk = 64u << 10;        // bytes asked of each receive
};

// How much went each way, how well sends coalesce, and how much went by memfd.
struct channel_stats {
    std::uint64_t frames_sent = 0;
    std::uint64_t writes = 0;        // sendmsg calls that carried them
    std::uint64_t memfd_frames = 0;  // frames whose payload travelled in a sealed memfd
    std::uint64_t frames_received = 0;
    std::uint64_t bytes_sent = 0;  // headers and payloads (a memfd's too) of the frames queued
    std::uint64_t bytes_received = 0;
};

}  // namespace cluster::ipc
