// Flow files as ztsegctl's flows --file, whatif and suggest read them
// (explain --flow-file stays strict: --pick numbers events): a bad line is skipped and named on
// stderr, a partial last line (a file still being written) is skipped with a warning;
// --strict makes the first bad line an error (exit 3), as a CI gate wants.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "flows/ocsf_reader.hpp"

namespace ztseg::cli {

std::vector<flows::FlowRecord> readFlowFiles(const std::vector<std::string>& files, bool strict);
void forEachFlowInFiles(
    const std::vector<std::string>& files, bool strict,
    const std::function<void(const flows::FlowRecord&, const std::string&)>& fn);

inline constexpr const char* kStrictFlowsHelp =
    "a bad line in a flow file is an error (default: skipped, counted and named on stderr)";

}  // namespace ztseg::cli
