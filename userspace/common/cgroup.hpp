// cgroup v2 facts the datapath and daemon need: where the unified hierarchy is
// mounted (detected, never assumed) and the id BPF uses for a cgroup.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace ztseg {

// Mount point of the cgroup2 filesystem (e.g. /sys/fs/cgroup, or
// /sys/fs/cgroup/unified on hybrid hosts). Throws if none is mounted.
std::string cgroup2MountPoint();

// Mount point of the first mounted filesystem of this type ("tracefs",
// "bpf", ...) in /proc/self/mountinfo, "" if there is none.
std::string mountPointOfType(const std::string& fstype);

// Cgroup id of a cgroup directory: what bpf_get_current_cgroup_id() returns.
uint64_t cgroupIdOf(const std::string& cgroup_path);

// The cgroup directory (absolute path) with this id, or nullopt when no such
// cgroup exists (any more). Needs CAP_DAC_READ_SEARCH (open_by_handle_at).
std::optional<std::string> cgroupPathOfId(uint64_t id);

// Depth of a cgroup below the cgroup2 root (the root is level 0), as
// bpf_skb_ancestor_cgroup_id() counts levels; nullopt if it does not exist.
std::optional<int> cgroupLevelOfId(uint64_t id);

// This process's cgroup v2 directory (mount point + /proc/self/cgroup path).
std::string selfCgroupPath();

}  // namespace ztseg
