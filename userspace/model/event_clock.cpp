#include "model/event_clock.hpp"

#include <time.h>

#include <cstdint>

namespace ztseg {

namespace {
int64_t nanos(clockid_t clock) {
    timespec ts{};
    clock_gettime(clock, &ts);
    return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}
}  // namespace

EventClock::EventClock() {
    // A preempted read between the two clocks would skew every timestamp by
    // the preemption time; bracket the realtime read with monotonic reads and
    // keep the tightest of a few samples.
    int64_t best_window = INT64_MAX;
    for (int i = 0; i < 5; ++i) {
        int64_t before = nanos(CLOCK_MONOTONIC);
        int64_t real = nanos(CLOCK_REALTIME);
        int64_t after = nanos(CLOCK_MONOTONIC);
        if (after - before < best_window) {
            best_window = after - before;
            offset_ns_ = real - (before + (after - before) / 2);
        }
    }
    error_bound_ns_ = (best_window + 1) / 2;
}

std::chrono::system_clock::time_point EventClock::wallTime(uint64_t ts_ns) const {
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::nanoseconds(wallNanos(ts_ns))));
}

}  // namespace ztseg
