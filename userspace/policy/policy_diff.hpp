// What applying a candidate policy would change against the one in force, in
// the terms operators write policy in (labels, workload names, policy names
// and file:line), and the guard that refuses a change removing too much
// enforcement at once (`ztsegctl diff`, `apply --dry-run`, the apply guard
// and the controller's rollout guard).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "policy/compiler.hpp"

namespace ztseg::policy {

// One compiled rule entry: "app=db <- app=web tcp/5432 allow" (ingress) or
// "app=web -> any udp/53 deny" (egress), and the source rules it comes from.
struct RuleChange {
    std::string entry;
    std::string policy;    // of the first source rule
    std::string location;  // "file:line" of the first source rule
};

struct WorkloadChange {
    std::string name;
    std::string what;  // "mode enforce -> audit", "labels app=db -> app=db,tier=2"
};

struct PolicyDiff {
    uint64_t active_generation = 0, candidate_generation = 0;
    std::vector<RuleChange> rules_added, rules_removed;
    std::vector<std::string> workloads_added, workloads_removed;  // "db (enforce)"
    std::vector<WorkloadChange> workloads_changed;
    std::vector<std::string> identities_added, identities_removed;  // "app=db (db)"
    size_t active_rules = 0, candidate_rules = 0;                   // distinct rule entries
    size_t active_enforced = 0, candidate_enforced = 0;             // workloads in enforce mode

    bool empty() const {
        return rules_added.empty() && rules_removed.empty() && workloads_added.empty() &&
               workloads_removed.empty() && workloads_changed.empty() && identities_added.empty() &&
               identities_removed.empty();
    }
};

// One compiled rule entry in label terms, e.g. "app=db <- app=web tcp/5432 allow".
std::string ruleEntryText(const CompiledPolicy& cp, const Rule& r);

// Rule entries are compared by what they decide (both ends' labels,
// direction, protocol, ports, action), not by rule id: moving a rule to
// another file or line is no change.
PolicyDiff diffPolicies(const CompiledPolicy& active, const CompiledPolicy& candidate);

// The apply guard's default: refuse a change that removes more than half of
// the active rule entries.
inline constexpr unsigned kDefaultMaxRemovalPercent = 50;

// Why applying would remove too much enforcement (nullopt: it would not):
// every workload in enforce mode leaves enforce mode (or the policy), or more
// than max_removal_percent of the active rule entries are removed.
std::optional<std::string> guardRefusal(const PolicyDiff& d,
                                        unsigned max_removal_percent = kDefaultMaxRemovalPercent);

}  // namespace ztseg::policy
