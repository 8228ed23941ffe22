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

  private:
    int64_t offset_ns_;  // CLOCK_REALTIME - CLOCK_MONOTONIC
};

}  // namespace ztseg
