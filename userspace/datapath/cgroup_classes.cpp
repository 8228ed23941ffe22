// Datapath: which cgroups are workloads beyond the endpoint map: the levels
// the hooks walk, the kernel's pre-classification of new cgroups (names and
// guarded parents) and the pending cgroups it enters.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "common/cgroup.hpp"
#include "common/error.hpp"
#include "datapath/datapath.hpp"
#include "datapath/slot_content.hpp"

namespace ztseg {
namespace {

ztseg_identity_info infoOf(const WorkloadClass& c) {
    return {c.identity, identityFlags(c.mode)};
}

ztseg_cg_name_key nameKey(const std::string& name) {
    if (name.empty() || name.size() >= ZTSEG_CG_NAME_LEN) {
        throw Error("cgroup name '" + name + "' cannot be pre-classified: longer than " +
                    std::to_string(ZTSEG_CG_NAME_LEN - 1) + " bytes");
    }
    ztseg_cg_name_key k{};
    std::memcpy(k.name, name.data(), name.size());
    return k;
}

// Make a hash map hold exactly `want`: stale keys deleted first (room for new ones).
template <typename Key, typename Value>
void syncMap(const BpfMap& m, const std::vector<std::pair<Key, Value>>& want) {
    auto wanted = [&](const Key& k) {
        return std::any_of(want.begin(), want.end(), [&](const auto& w) {
            return std::memcmp(&w.first, &k, sizeof(Key)) == 0;
        });
    };
    std::vector<Key> stale;
    Key k{}, next{};
    const void* prev = nullptr;
    while (bpf_map_get_next_key(m.fd(), prev, &next) == 0) {
        k = next;
        prev = &k;
        if (!wanted(k)) {
            stale.push_back(k);
        }
    }
    for (const Key& key : stale) {
        m.erase(&key);
    }
    for (const auto& [key, value] : want) {
        m.update(&key, &value);
    }
}

}  // namespace

void Datapath::raiseWorkloadLevels(const std::vector<Endpoint>& eps) {
    uint32_t key = ZTSEG_CFG_WORKLOAD_LEVELS;
    uint64_t levels = 0;
    config_.lookup(&key, &levels);
    uint64_t want = levels;
    for (const Endpoint& ep : eps) {
        auto it = endpoint_levels_.find(ep.cgroup_id);
        if (it == endpoint_levels_.end()) {
            std::optional<int> level = cgroupLevelOfId(ep.cgroup_id);
            if (!level) {
                continue;  // gone already: nothing of it to judge
            }
            if (*level >= ZTSEG_CG_MAX_LEVEL) {
                throw Error("workload cgroup " + std::to_string(ep.cgroup_id) + " is " +
                            std::to_string(*level) + " levels deep; at most " +
                            std::to_string(ZTSEG_CG_MAX_LEVEL - 1) + " are judged");
            }
            it = endpoint_levels_.emplace(ep.cgroup_id, *level).first;
        }
        want |= uint64_t(1) << it->second;
    }
    // Only ever widened: a level no workload uses any more costs one lookup.
    if (want != levels) {
        writeConfig(ZTSEG_CFG_WORKLOAD_LEVELS, want);
    }
}

void Datapath::setCgroupPreclassifier(const CgroupPreclassifier& pre) {
    std::vector<std::pair<ztseg_cg_name_key, ztseg_identity_info>> names;
    for (const auto& [name, c] : pre.names) {
        names.emplace_back(nameKey(name), infoOf(c));
    }
    std::vector<std::pair<uint64_t, ztseg_cg_guard>> guards;
    for (const auto& [id, g] : pre.guards) {
        ztseg_cg_guard v{};
        v.info = infoOf(g.workload);
        std::memcpy(v.prefix, g.prefix.data(), std::min(g.prefix.size(), sizeof(v.prefix) - 1));
        guards.emplace_back(id, v);
    }
    syncMap(cg_names_, names);
    syncMap(cg_guards_, guards);
}

std::vector<PendingCgroup> Datapath::pendingCgroups() const {
    std::vector<PendingCgroup> out;
    uint64_t k = 0, next = 0;
    const void* prev = nullptr;
    while (bpf_map_get_next_key(cg_pending_.fd(), prev, &next) == 0) {
        k = next;
        prev = &k;
        ztseg_pending_cgroup v{};
        if (cg_pending_.lookup(&k, &v)) {
            out.push_back({k, v.info.identity, v.created_ns});
        }
    }
    return out;
}

void Datapath::clearPending(uint64_t cgroup_id) {
    cg_pending_.erase(&cgroup_id);
}

}  // namespace ztseg
