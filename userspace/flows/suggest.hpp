// `ztsegctl suggest`: a least-privilege policy from observed flows. One
// policy per workload seen, with an ingress rule per (source, service) it
// received and an egress rule per (destination, service) it sent, so default
// deny on both ends still admits every observed flow. Peers are named by
// labels (the fewest that identify them), `entity: world|host` or a rule CIDR,
// never by address. Each rule carries its evidence as a comment.
#pragma once

#include <string>
#include <vector>

#include "flows/flow_record.hpp"
#include "policy/model.hpp"

namespace ztseg::flows {

struct SuggestOptions {
    std::string mode = "enforce";         // or "audit": the mode written on each policy
    bool policies_only = false;           // omit workloads/externals/hosts
    std::vector<std::string> flow_files;  // named in the header
};

struct Suggestion {
    std::string yaml;
    size_t events = 0;    // flow events read
    size_t evidence = 0;  // events that became rules (allowed / would-drop new flows)
    size_t policies = 0, rules = 0;
    std::vector<std::string> not_admitted;  // "3 events: 10.1.1.1 (unlabeled) -> app=db 5432/tcp"
    std::vector<size_t> admitted;           // indices of the events that became rules
};

// inventory: where workloads, externals and hosts come from (its policies are
// ignored); nullptr: rebuilt from the identities and addresses in the flows
// (inventoryFromFlows).
Suggestion suggestPolicy(const std::vector<FlowRecord>& flows, const policy::PolicySet* inventory,
                         const SuggestOptions& opts);

// Workloads (identities that were a local end somewhere), labeled externals,
// `world` and `host` with the addresses seen in the flows. Unlabeled and
// rule-CIDR identities add nothing.
policy::PolicySet inventoryFromFlows(const std::vector<FlowRecord>& flows);

}  // namespace ztseg::flows
