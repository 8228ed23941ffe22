// cgroup v2 facts the datapath and daemon need: where the unified hierarchy is
// mounted (detected, never assumed) and the id BPF uses for a cgroup.
#pragma once

#include <cstdint>
#include <string>

namespace ztseg {

// Mount point of the cgroup2 filesystem (e.g. /sys/fs/cgroup, or
// /sys/fs/cgroup/unified on hybrid hosts). Throws if none is mounted.
std::string cgroup2MountPoint();

// Cgroup id of a cgroup directory: what bpf_get_current_cgroup_id() returns.
uint64_t cgroupIdOf(const std::string& cgroup_path);

// This process's cgroup v2 directory (mount point + /proc/self/cgroup path).
std::string selfCgroupPath();

}  // namespace ztseg
