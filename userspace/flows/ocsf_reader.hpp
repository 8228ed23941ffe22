// OCSF Network Activity lines (what ocsf.hpp writes: the flow file, the API's
// ocsf_json) back into FlowRecords, for `ztsegctl flows --file`, `explain`,
// `whatif` and `suggest`. Time has the file's millisecond precision.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "flows/flow_record.hpp"

namespace ztseg::flows {

// One line; throws Error saying which field is missing or malformed.
FlowRecord parseOcsfLine(std::string_view line);

// Every non-empty line of a flow file (or "-" for standard input). Throws
// Error "read flows FILE:LINE: ..." on the first bad line, naming the file.
std::vector<FlowRecord> readFlowFile(const std::string& path);
// The same, one event at a time, with the line it came from.
void forEachFlowLine(const std::string& path,
                     const std::function<void(const FlowRecord&, const std::string&)>& fn);

}  // namespace ztseg::flows
