#include "datapath/event_reader.hpp"

#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "common/error.hpp"

namespace ztseg {

void EventReader::Deleter::operator()(ring_buffer* rb) const {
    ring_buffer__free(rb);
}

EventReader::EventReader(int events_map_fd, Callback cb) : cb_(std::move(cb)) {
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
    return n < 0 ? 0 : n;
}

int EventReader::drain() {
    int n = ring_buffer__consume(rb_.get());
    if (n < 0) {
        throwErrno("consume flow event ring buffer", -n);
    }
    return n;
}

int EventReader::epollFd() const {
    return ring_buffer__epoll_fd(rb_.get());
}

std::chrono::system_clock::time_point eventWallTime(uint64_t ts_ns) {
    timespec mono{}, real{};
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_REALTIME, &real);
    int64_t mono_ns = int64_t(mono.tv_sec) * 1'000'000'000 + mono.tv_nsec;
    int64_t real_ns = int64_t(real.tv_sec) * 1'000'000'000 + real.tv_nsec;
    int64_t wall = real_ns - (mono_ns - int64_t(ts_ns));
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::nanoseconds(wall)));
}

}  // namespace ztseg
