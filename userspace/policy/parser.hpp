// YAML policy files -> PolicySet. Every problem is reported with
// file:line:column and what was expected; any error means no PolicySet.
// Schema: policies/README.md.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "model/names.hpp"
#include "policy/diagnostics.hpp"
#include "policy/model.hpp"

namespace ztseg::policy {

struct SourceText {
    std::string name;  // as it appears in locations (relative path)
    std::string text;
};

// Parses and validates the given documents. Throws PolicyError if any has an
// error; warnings (e.g. a selector that matches nothing) land in `diags`.
PolicySet parsePolicies(std::vector<SourceText> sources, Diagnostics& diags);

// Reads files and directories (every *.yaml / *.yml inside, recursively),
// named relative to the directory they were found in, then parsePolicies().
PolicySet loadPolicies(const std::vector<std::string>& paths, Diagnostics& diags);
// The texts loadPolicies() parses, named as in its locations.
std::vector<SourceText> readPolicySources(const std::vector<std::string>& paths);

// Protocol names used in policy text and output (model/names.hpp).
using ztseg::protocolName;

}  // namespace ztseg::policy
