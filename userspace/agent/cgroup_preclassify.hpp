// What the kernel can know about a new cgroup at mkdir(2), before ztsegd has
// seen it: the workload its name says (a pattern's literal last component, a
// systemd unit name) or its parent says (a directory whose children a glob
// pattern matches). Pure planning; the daemon turns guard paths into cgroup
// ids and hands the result to Datapath::setCgroupPreclassifier.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "agent/cgroup_watcher.hpp"
#include "datapath/datapath.hpp"

namespace ztseg::agent {

struct PreclassifyPlan {
    std::map<std::string, WorkloadClass> names;
    struct Guard {
        WorkloadClass workload;
        std::string prefix;  // the glob's literal start ("web-" of "web-*")
    };
    std::map<std::string, Guard> guards;  // parent path relative to the cgroup2 mount
    // Patterns the kernel cannot pre-classify: a cgroup matching them is judged
    // only once ztsegd has seen it.
    std::vector<std::string> unguarded;
};

// classes: each workload's identity and mode. Two workloads that claim one
// name or one guarded parent are quarantined (identity 0) until classified.
PreclassifyPlan planPreclassifier(const std::vector<WorkloadPattern>& patterns,
                                  const std::map<std::string, WorkloadClass>& classes);

// Plans and hands the kernel the pre-classification (guard paths resolved to
// the cgroup ids they have now; warnings for what cannot be pre-classified).
void installPreclassifier(Datapath& dp, const CgroupWatcher& watcher,
                          const std::vector<WorkloadPattern>& patterns,
                          const std::map<std::string, WorkloadClass>& classes);

// Forgets the pending entries of cgroups ztsegd has now classified: gone,
// a workload already in `classified`, or no workload (then the nearest
// enclosing workload, if any, judges it). A pending workload cgroup whose
// endpoint is not written yet stays pending. Returns how many were settled.
size_t settlePending(Datapath& dp, const CgroupWatcher& watcher,
                     const std::map<uint64_t, CgroupMatch>& classified);

}  // namespace ztseg::agent
