// Per-rule hit counts as the API reports them (`ztsegctl rules`) and as
// metrics aggregate them per policy.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "agent.pb.h"
#include "agent/enforcement.hpp"
#include "agent/metrics.hpp"

namespace ztseg::agent {

// Every rule of the policy in force, by rule id, with its counts (rules the
// kernel does not count say counted=false).
v1::RulesReply rulesReply(const RuleHitsSnapshot& snap, const std::string& host);

// The metrics' view of the counts: totals by policy name (bounded by the
// number of policies), and per rule only when `per_rule`.
void addRuleHits(const v1::RulesReply& rules, bool per_rule, MetricsSnapshot& m);

}  // namespace ztseg::agent
