// What a pinned datapath enforces, read without its owner: for `ztsegctl
// status` while ztsegd is stopped (enforcement outlives it). Read-only by
// construction: maps are opened with BPF_F_RDONLY, links and programs only
// have their info read; nothing is created, attached, detached or written.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "datapath/datapath.hpp"
#include "model/types.hpp"

namespace ztseg {

// A workload cgroup in the active generation's endpoint map.
struct PinnedEndpoint {
    uint64_t cgroup_id = 0;
    IdentityId identity = kUnlabeled;
    WorkloadMode mode = WorkloadMode::Unmanaged;
    bool raw_sockets = false;
    std::string cgroup_path;  // absolute; "" if no cgroup has this id any more
};

// A cgroup with ztseg's per-cgroup hooks linked (links/cg-<id>-<hook>).
struct PinnedCgroupHooks {
    uint64_t cgroup_id = 0;
    std::string cgroup_path;         // absolute; "" if the cgroup is gone
    std::vector<std::string> hooks;  // "ingress", "egress", "connect4", ...
};

struct PinnedDatapath {
    std::string pin_dir;
    uint64_t active_generation = 0;  // 0: no policy loaded (only unlabeled drops at XDP)
    uint64_t previous_generation = 0;
    std::vector<XdpAttachment> xdp;
    std::vector<PinnedCgroupHooks> cgroups;  // by cgroup id
    std::vector<PinnedEndpoint> endpoints;   // by cgroup id
    RawGuardKind raw_guard = RawGuardKind::None;
    std::string raw_guard_mode;  // rawGuardModeText(); "" when None
};

// nullopt if nothing is pinned at pin_dir (Datapath::isPinned). Throws Error
// if the pins cannot be read (not root) or were pinned by another ABI.
std::optional<PinnedDatapath> inspectPinned(const std::string& pin_dir);

}  // namespace ztseg
