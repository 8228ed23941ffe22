// `ztsegctl fleet rules`: the hosts' per-rule hit counts as one list. Rules
// are matched across hosts by fingerprint (policy/rule_fingerprint.hpp), so a
// host still on an older generation adds to the same rule as long as the
// rule itself did not change.
#pragma once

#include <vector>

#include "agent.pb.h"

namespace ztseg::controller {

// Sums packets, bytes, admissions and refusals; the last hit is the latest
// on any host; "counting since" is the latest start of any host that counts
// the rule, so a rule is only called unused for a window every host counted.
// Policy, file:line and rule id come from the host with the highest
// generation. hosts() is the number of replies.
v1::RulesReply sumRuleHits(const std::vector<v1::RulesReply>& hosts);

}  // namespace ztseg::controller
