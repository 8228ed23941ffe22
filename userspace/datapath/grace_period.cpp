#include "datapath/grace_period.hpp"

#include <bpf/bpf.h>

#include <cerrno>

#include "common/error.hpp"

namespace ztseg {

GracePeriod::GracePeriod() {
    inner_ = BpfMap::create(BPF_MAP_TYPE_ARRAY, "ztseg_grace_in", 4, 4, 1, 0);
    LIBBPF_OPTS(bpf_map_create_opts, opts, .inner_map_fd = uint32_t(inner_.fd()));
    int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "ztseg_grace", 4, 4, 1, &opts);
    if (fd < 0) {
        throwErrno("create map ztseg_grace", errno);
    }
    outer_ = BpfMap(UniqueFd(fd), "ztseg_grace");
}

GracePeriod::~GracePeriod() {
    if (waiter_.joinable()) {
        waiter_.join();
    }
}

void GracePeriod::start() {
    wait();
    waiter_ = std::thread([outer = outer_.fd(), inner = inner_.fd(), error = error_] {
        uint32_t key = 0;
        uint32_t value = uint32_t(inner);
        if (bpf_map_update_elem(outer, &key, &value, 0) != 0) {
            error->store(errno);
        }
    });
}

void GracePeriod::wait() {
    if (waiter_.joinable()) {
        waiter_.join();
    }
    if (int err = error_->exchange(0); err != 0) {
        throwErrno("wait for an RCU grace period (update ztseg_grace)", err);
    }
}

}  // namespace ztseg
