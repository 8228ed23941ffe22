// Consumes flow events from the datapath's ring buffer.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "maps.h"

struct ring_buffer;

namespace ztseg {

class EventReader {
  public:
    using Callback = std::function<void(const ztseg_flow_event&)>;
    EventReader(int events_map_fd, Callback cb);
    ~EventReader();
    EventReader(const EventReader&) = delete;
    EventReader& operator=(const EventReader&) = delete;

    // Wait up to `timeout` for events and deliver them; returns how many.
    int poll(std::chrono::milliseconds timeout);
    // Deliver whatever is queued now, without waiting.
    int drain();
    int epollFd() const;

  private:
    static int onSample(void* self, void* data, size_t size);
    Callback cb_;
    struct Deleter {
        void operator()(ring_buffer* rb) const;
    };
    std::unique_ptr<ring_buffer, Deleter> rb_;
    uint64_t malformed_ = 0;
};

// Event timestamps are CLOCK_MONOTONIC; this maps them to wall-clock time.
std::chrono::system_clock::time_point eventWallTime(uint64_t ts_ns);

}  // namespace ztseg
