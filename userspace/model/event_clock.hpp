// Flow event timestamps (CLOCK_MONOTONIC, as the kernel writes them) in
// wall-clock time.
#pragma once

#include <chrono>
#include <cstdint>

namespace ztseg {

// Event timestamps are CLOCK_MONOTONIC; this maps them to wall-clock time.
// The offset between the clocks is read when the EventClock is made, so a
// batch of events shares one pair of clock reads.
class EventClock {
  public:
    EventClock();
    int64_t wallNanos(uint64_t ts_ns) const { return int64_t(ts_ns) + offset_ns_; }
    std::chrono::system_clock::time_point wallTime(uint64_t ts_ns) const;
    // How far the offset may be off: half the monotonic window the realtime
    // read was bracketed by (nanoseconds; large when the reads were slowed
    // down, e.g. under a sanitizer or preemption).
    int64_t errorBoundNs() const { return error_bound_ns_; }

  private:
    int64_t offset_ns_ = 0;  // CLOCK_REALTIME - CLOCK_MONOTONIC
    int64_t error_bound_ns_ = 0;
};

}  // namespace ztseg
