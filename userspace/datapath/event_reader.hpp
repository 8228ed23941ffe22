// Consumes flow events from the datapath's ring buffer.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "abi.h"
#include "model/event_clock.hpp"

struct ring_buffer;

namespace ztseg {

class EventReader {
  public:
    using Callback = std::function<void(const ztseg_flow_event&)>;
    using DrainedCallback = std::function<void()>;
    // `drained` (optional) runs after poll() or drain() delivered events and
    // found the ring buffer empty: the moment to flush what was batched.
    EventReader(int events_map_fd, Callback cb, DrainedCallback drained = {});
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
    int delivered(int n);
    Callback cb_;
    DrainedCallback drained_;
    struct Deleter {
        void operator()(ring_buffer* rb) const;
    };
    std::unique_ptr<ring_buffer, Deleter> rb_;
    uint64_t malformed_ = 0;
};

}  // namespace ztseg
