#include "agent/cgroup_preclassify.hpp"

#include <spdlog/spdlog.h>

#include "common/cgroup.hpp"
#include "common/error.hpp"

namespace ztseg::agent {
namespace {

bool isGlob(const std::string& s) {
    return s.find_first_of("*?[") != std::string::npos;
}

void claim(std::map<std::string, WorkloadClass>& where, const std::string& key,
           const WorkloadClass& c) {
    auto [it, fresh] = where.emplace(key, c);
    if (!fresh && it->second != c) {
        it->second = WorkloadClass{};  // ambiguous: quarantined until ztsegd decides
    }
}

}  // namespace

PreclassifyPlan planPreclassifier(const std::vector<WorkloadPattern>& patterns,
                                  const std::map<std::string, WorkloadClass>& classes) {
    PreclassifyPlan plan;
    for (const WorkloadPattern& p : patterns) {
        auto c = classes.find(p.workload);
        if (c == classes.end()) {
            continue;
        }
        if (!p.systemd_unit.empty()) {
            if (isGlob(p.systemd_unit)) {
                plan.unguarded.push_back(p.systemd_unit);
            } else {
                claim(plan.names, p.systemd_unit, c->second);
            }
        }
        if (p.cgroup_glob.empty()) {
            continue;
        }
        std::string glob = p.cgroup_glob;
        while (!glob.empty() && glob.back() == '/') {
            glob.pop_back();
        }
        auto slash = glob.rfind('/');
        std::string leaf = slash == std::string::npos ? glob : glob.substr(slash + 1);
        std::string parent = slash == std::string::npos ? "" : glob.substr(0, slash);
        while (!parent.empty() && parent.front() == '/') {
            parent.erase(0, 1);
        }
        if (!isGlob(leaf) && !leaf.empty()) {
            claim(plan.names, leaf, c->second);
        } else if (!isGlob(parent)) {
            std::string prefix = leaf.substr(0, leaf.find_first_of("*?["));
            prefix = prefix.substr(0, ZTSEG_CG_PREFIX_LEN - 1);
            auto [it, fresh] =
                plan.guards.emplace(parent, PreclassifyPlan::Guard{c->second, prefix});
            if (!fresh) {
                // two globs under one parent: the common start, quarantined if they differ
                std::string& have = it->second.prefix;
                size_t n = 0;
                while (n < have.size() && n < prefix.size() && have[n] == prefix[n]) {
                    ++n;
                }
                have.resize(n);
                if (it->second.workload != c->second) {
                    it->second.workload = WorkloadClass{};
                }
            }
        } else {
            plan.unguarded.push_back(p.cgroup_glob);
        }
    }
    return plan;
}

void installPreclassifier(Datapath& dp, const CgroupWatcher& watcher,
                          const std::vector<WorkloadPattern>& patterns,
                          const std::map<std::string, WorkloadClass>& classes) {
    PreclassifyPlan plan = planPreclassifier(patterns, classes);
    CgroupPreclassifier pre;
    for (auto& [name, c] : plan.names) {
        if (name.size() >= ZTSEG_CG_NAME_LEN) {
            spdlog::warn("cgroup name '{}' is too long to be pre-classified at creation", name);
            continue;
        }
        pre.names[name] = c;
    }
    for (const auto& [parent, g] : plan.guards) {
        std::string abs = watcher.base() + (parent.empty() ? "" : "/" + parent);
        try {
            pre.guards[cgroupIdOf(abs)] = {g.workload, g.prefix};
        } catch (const Error&) {
            spdlog::warn(
                "cgroup directory {} does not exist: cgroups created in it later are judged "
                "only once ztsegd sees them",
                abs);
            continue;
        }
        if (g.prefix.empty()) {
            spdlog::warn(
                "every new cgroup in {} is judged as a workload until ztsegd has classified it "
                "(while ztsegd is down, a service restarted there gets that workload's policy); "
                "prefer a pattern with a literal name start",
                abs);
        }
    }
    for (const std::string& u : plan.unguarded) {
        spdlog::warn(
            "workload pattern '{}' cannot be classified at cgroup creation (glob in a parent "
            "directory): such cgroups are judged once ztsegd sees them",
            u);
    }
    dp.setCgroupPreclassifier(pre);
}

size_t settlePending(Datapath& dp, const CgroupWatcher& watcher,
                     const std::map<uint64_t, CgroupMatch>& classified) {
    size_t settled = 0;
    for (const PendingCgroup& p : dp.pendingCgroups()) {
        std::optional<std::string> path;
        try {
            path = cgroupPathOfId(p.cgroup_id);
        } catch (const Error& e) {
            spdlog::warn("pending cgroup {}: {}", p.cgroup_id, e.what());
            continue;
        }
        if (path && !classified.count(p.cgroup_id)) {
            const std::string& base = watcher.base();
            std::string rel = path->size() > base.size() + 1 && path->rfind(base + "/", 0) == 0
                                  ? path->substr(base.size() + 1)
                                  : std::string();
            if (!rel.empty() && !watcher.workloadOf(rel).empty()) {
                continue;  // a workload whose endpoint is on its way: stay judged meanwhile
            }
        }
        dp.clearPending(p.cgroup_id);
        ++settled;
    }
    return settled;
}

}  // namespace ztseg::agent
