// Policy sources: the files a path names, their text checks and digest.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "policy/diagnostics.hpp"
#include "policy/parser.hpp"

namespace ztseg::policy {

// Policy files are UTF-8 text: false (with the exact location in `diags`) for
// invalid UTF-8 or a control character.
bool checkText(const SourceText& s, Diagnostics& diags);

// The policy files under a directory: every *.yaml and *.yml, recursively,
// sorted by path. Throws Error if the directory cannot be read.
std::vector<std::filesystem::path> policyFilesIn(const std::filesystem::path& dir);

// SHA-256 (hex) over the names and texts, in order: PolicySet::source_digest.
std::string sourceDigest(const std::vector<SourceText>& sources);

}  // namespace ztseg::policy
