// The field check every ztseg YAML schema shares (policies, ztsegd.yaml,
// controller.yaml): unknown and repeated fields of a mapping are errors, so a
// typo never silently drops a rule or a setting, and a repeated key never
// picks a winner behind the user's back.
#pragma once

#include <functional>
#include <set>
#include <string>

#include "common/yaml_doc.hpp"

namespace ztseg::yaml {

using FieldReport = std::function<void(const Node& key, const std::string& message)>;

// Reports every repeated and every unknown key of mapping `n` (`what` names
// it in messages; `file` locates a repeated key's first occurrence). Returns
// the keys that may be read: known, first occurrences.
std::set<std::string> checkFields(const Node& n, const std::string& what,
                                  const std::set<std::string>& allowed, const std::string& file,
                                  const FieldReport& report);

}  // namespace ztseg::yaml
