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

}  // namespace ztseg
