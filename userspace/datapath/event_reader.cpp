#include "datapath/event_reader.hpp"

#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>

#include "common/error.hpp"

namespace ztseg {

void EventReader::Deleter::operator()(ring_buffer* rb) const {
    ring_buffer__free(rb);
}

EventReader::EventReader(int events_map_fd, Callback cb, DrainedCallback drained)
    : cb_(std::move(cb)), drained_(std::move(drained)) {
    rb_.reset(ring_buffer__new(events_map_fd, &EventReader::onSample, this, nullptr));
    if (!rb_) {
        throwErrno("open flow event ring buffer", errno);
    }
}

EventReader::~EventReader() = default;

int EventReader::onSample(void* self, void* data, size_t size) {
    auto* r = static_cast<EventReader*>(self);
    if (size < sizeof(ztseg_flow_event)) {
        if (r->malformed_++ == 0) {
            spdlog::error("flow event of {} bytes, expected {}: datapath/agent ABI mismatch", size,
                          sizeof(ztseg_flow_event));
        }
        return 0;
    }
    ztseg_flow_event ev;
    std::memcpy(&ev, data, sizeof(ev));
    r->cb_(ev);
    return 0;
}

int EventReader::poll(std::chrono::milliseconds timeout) {
    int n = ring_buffer__poll(rb_.get(), int(timeout.count()));
    if (n < 0 && n != -EINTR) {
        throwErrno("poll flow event ring buffer", -n);
    }
    return delivered(n < 0 ? 0 : n);
}

int EventReader::delivered(int n) {
    if (n > 0 && drained_) {
        drained_();
    }
    return n;
}

int EventReader::drain() {
    int n = ring_buffer__consume(rb_.get());
    if (n < 0) {
        throwErrno("consume flow event ring buffer", -n);
    }
    return delivered(n);
}

int EventReader::epollFd() const {
    return ring_buffer__epoll_fd(rb_.get());
}

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
}

std::chrono::system_clock::time_point EventClock::wallTime(uint64_t ts_ns) const {
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::nanoseconds(wallNanos(ts_ns))));
}

std::chrono::system_clock::time_point eventWallTime(uint64_t ts_ns) {
    return EventClock().wallTime(ts_ns);
}

}  // namespace ztseg
