// Checks that need every document of a policy set: unique names, one owner
// per address prefix, externals that would share a workload's identity.
#pragma once

#include "policy/diagnostics.hpp"
#include "policy/model.hpp"

namespace ztseg::policy {

void validatePolicySet(PolicySet& ps, Diagnostics& diags);

}  // namespace ztseg::policy
