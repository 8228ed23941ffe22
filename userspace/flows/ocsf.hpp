// FlowRecord -> OCSF 1.3.0 Network Activity (class 4001) event, the flow JSON
// contract (docs/design.md#flow-events). ztseg-specific fields live under unmapped.ztseg.
// toOcsf() builds the document (the reference the shape tests check);
// toOcsfLine()/appendOcsfLine() write the same bytes as toOcsf(r).dump()
// directly (flows/ocsf_line.hpp), which is what the flow log uses.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "flows/flow_record.hpp"
#include "flows/text_buffer.hpp"

namespace ztseg::flows {

inline constexpr const char* kOcsfVersion = "1.3.0";
inline constexpr int kOcsfClassUid = 4001;
inline constexpr int kOcsfCategoryUid = 4;

nlohmann::json toOcsf(const FlowRecord& r);
// One JSON object on one line, no trailing newline; invalid UTF-8 in names is
// replaced by U+FFFD.
std::string toOcsfLine(const FlowRecord& r);
void appendOcsfLine(const FlowRecord& r, std::string& out);
void appendOcsfLine(const FlowRecord& r, TextBuffer& out);

}  // namespace ztseg::flows
