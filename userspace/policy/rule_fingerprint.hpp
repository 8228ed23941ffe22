// A rule's identity across generations: what per-rule hit counters follow.
// It is the rule's meaning, not its place: the policy's name and selector,
// the rule's direction, action, peers (with excepts) and ports, in the order
// written, plus how many identical rules precede it in the same policy. A rule
// that moves to another line or file keeps its fingerprint (and counts); a
// rule whose content changes, or whose policy is renamed or re-targeted,
// gets a new one and starts counting afresh. Descriptions do not count.
#pragma once

#include <cstdint>

#include "policy/model.hpp"

namespace ztseg::policy {

// The first 64 bits of SHA-256 over the canonical text; never 0, and the top
// bit is clear (set marks fingerprints the datapath makes up itself).
// `occurrence`: identical rules of this policy before this one.
uint64_t ruleFingerprint(const PolicySpec& policy, const RuleSpec& rule, unsigned occurrence);

}  // namespace ztseg::policy
