// The failsafe rules in force on this host: ztsegd.yaml's failsafe section
// plus the links the rest of the config names (docs/ztsegd.md#failsafe-rules).
#pragma once

#include <string>
#include <vector>

#include "agent/config.hpp"
#include "model/failsafe.hpp"

namespace ztseg::agent {

// Empty when failsafe.enabled is false. Names that are not IP literals
// (controller.address, etcd endpoints) are resolved now; one that does not
// resolve gives no rule and a line in `warnings`.
std::vector<FailsafeRule> failsafeRules(const AgentConfig& c, std::vector<std::string>* warnings);

}  // namespace ztseg::agent
