// What this binary is: the project version and the commit it was built from
// (--version, ztseg_build_info, status, fleet status, OCSF metadata).
#pragma once

#include <string>

namespace ztseg {

const char* buildVersion();  // "0.1.0"
const char* buildCommit();   // "1a2b3c4d5e6f", "+-dirty" if built with local changes, or "unknown"
// "<program> 0.1.0 (commit 1a2b3c4d5e6f)"
std::string versionLine(const std::string& program);

}  // namespace ztseg
