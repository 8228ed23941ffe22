// One YAML document of a policy file -> its workloads, externals, hosts and
// policies, appended to a PolicySet; every problem is reported with its
// location. Internal to the policy front end (parser.cpp).
#pragma once

#include <string>

#include "common/yaml_doc.hpp"
#include "policy/diagnostics.hpp"
#include "policy/model.hpp"

namespace ztseg::policy {

void readPolicyDocument(const std::string& file, const yaml::Node& doc, Diagnostics& diags,
                        PolicySet& into);

}  // namespace ztseg::policy
