// Synthetic but realistic policy for benchmarks: one service per workload,
// each with its own policy allowing a few callers, its team, the host's
// monitoring, and egress to its database, DNS and a denied metadata
// endpoint. As operators keep them: the inventory in one file, the policies
// in files of 100 services.
#pragma once

#include <string>
#include <vector>

#include "policy/parser.hpp"

namespace ztseg::bench {

inline constexpr int kRulesPerPolicy = 10;  // 7 ingress, 3 egress (one of them a deny)
inline constexpr int kTeamSize = 10;
inline constexpr int kPoliciesPerFile = 100;

// `rules` rules: rules / 10 workloads, each with one policy.
std::vector<policy::SourceText> syntheticPolicy(int rules);

// The same policy with one rule changed: svc-0's team port 9090 -> `port`.
std::vector<policy::SourceText> withOneRuleChanged(std::vector<policy::SourceText> files, int port);

}  // namespace ztseg::bench
