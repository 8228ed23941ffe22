#include "datapath/bpf_map.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "common/error.hpp"

namespace ztseg {

BpfMap BpfMap::openPinned(const std::string& path, const std::string& name) {
    int fd = bpf_obj_get(path.c_str());
    if (fd < 0) {
        throwErrno("open pinned map " + name + " at " + path, errno);
    }
    return BpfMap(UniqueFd(fd), name);
}

BpfMap BpfMap::openPinnedReadOnly(const std::string& path, const std::string& name) {
    LIBBPF_OPTS(bpf_obj_get_opts, opts, .file_flags = BPF_F_RDONLY);
    int fd = bpf_obj_get_opts(path.c_str(), &opts);
    if (fd < 0) {
        throwErrno("open pinned map " + name + " at " + path + " (read-only)", errno);
    }
    return BpfMap(UniqueFd(fd), name);
}

BpfMap BpfMap::openByIdReadOnly(uint32_t id, const std::string& name) {
    // The raw command: libbpf's bpf_map_get_fd_by_id_opts() needs libbpf 1.1,
    // the floor is 1.0 (CONTRIBUTING.md).
    union bpf_attr attr {};
    attr.map_id = id;
    attr.open_flags = BPF_F_RDONLY;
    int fd = int(::syscall(__NR_bpf, BPF_MAP_GET_FD_BY_ID, &attr, sizeof(attr)));
    if (fd < 0) {
        throwErrno("open map " + name + " (id " + std::to_string(id) + ", read-only)", errno);
    }
    return BpfMap(UniqueFd(fd), name);
}

BpfMap BpfMap::create(uint32_t type, const std::string& name, uint32_t key_size,
                      uint32_t value_size, uint32_t max_entries, uint32_t flags) {
    LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = flags);
    int fd = bpf_map_create(static_cast<bpf_map_type>(type), name.c_str(), key_size, value_size,
                            max_entries, &opts);
    if (fd < 0) {
        throwErrno("create map " + name + " (" + std::to_string(max_entries) + " entries)", errno);
    }
    return BpfMap(UniqueFd(fd), name);
}

void BpfMap::update(const void* key, const void* value, uint64_t flags) const {
    if (bpf_map_update_elem(fd(), key, value, flags) != 0) {
        throwErrno("update map " + name_, errno);
    }
}

void BpfMap::updateBatch(const void* keys, const void* values, uint32_t count, uint32_t key_size,
                         uint32_t value_size) const {
    const auto* k = static_cast<const uint8_t*>(keys);
    const auto* v = static_cast<const uint8_t*>(values);
    uint32_t done = 0;
    while (done < count) {
        uint32_t n = count - done;
        LIBBPF_OPTS(bpf_map_batch_opts, opts);
        if (bpf_map_update_batch(fd(), k + size_t(done) * key_size, v + size_t(done) * value_size,
                                 &n, &opts) == 0) {
            done += n;
            continue;
        }
        int err = errno;
        if (err == EINVAL || err == EOPNOTSUPP || err == 524 /* kernel ENOTSUPP */) {
            for (; done < count; ++done) {
                update(k + size_t(done) * key_size, v + size_t(done) * value_size);
            }
            return;
        }
        throwErrno("batch update map " + name_ + " at entry " + std::to_string(done + n), err);
    }
}

bool BpfMap::lookup(const void* key, void* value) const {
    if (bpf_map_lookup_elem(fd(), key, value) == 0) {
        return true;
    }
    if (errno == ENOENT) {
        return false;
    }
    throwErrno("lookup map " + name_, errno);
}

bool BpfMap::erase(const void* key) const {
    if (bpf_map_delete_elem(fd(), key) == 0) {
        return true;
    }
    if (errno == ENOENT) {
        return false;
    }
    throwErrno("delete from map " + name_, errno);
}

bool BpfMap::nextKey(const void* key, void* next) const {
    if (bpf_map_get_next_key(fd(), key, next) == 0) {
        return true;
    }
    if (errno == ENOENT) {
        return false;
    }
    throwErrno("iterate map " + name_, errno);
}

std::vector<uint8_t> BpfMap::lookupPerCpu(const void* key, uint32_t value_size) const {
    std::vector<uint8_t> out(size_t(possibleCpus()) * ((value_size + 7) & ~7u));
    if (bpf_map_lookup_elem(fd(), key, out.data()) != 0) {
        throwErrno("lookup per-CPU map " + name_, errno);
    }
    return out;
}

uint32_t BpfMap::countEntries(uint32_t key_size) const {
    std::vector<uint8_t> cur(key_size), next(key_size);
    uint32_t n = 0;
    const void* prev = nullptr;
    while (bpf_map_get_next_key(fd(), prev, next.data()) == 0) {
        ++n;
        cur.swap(next);
        prev = cur.data();
    }
    return n;
}

void BpfMap::pin(const std::string& path) const {
    if (bpf_obj_pin(fd(), path.c_str()) != 0) {
        throwErrno("pin map " + name_ + " at " + path, errno);
    }
}

uint32_t BpfMap::maxEntries() const {
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd(), &info, &len) != 0) {
        throwErrno("get info of map " + name_, errno);
    }
    return info.max_entries;
}

int possibleCpus() {
    static const int n = libbpf_num_possible_cpus();
    if (n <= 0) {
        throwErrno("count possible CPUs", n < 0 ? -n : EINVAL);
    }
    return n;
}

}  // namespace ztseg
