// FlowRecord -> OCSF 1.3.0 Network Activity (class 4001) event, the flow JSON
// contract (DESIGN section 8). ztseg-specific fields live under unmapped.ztseg.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "flows/flow_record.hpp"

namespace ztseg::flows {

inline constexpr const char* kOcsfVersion = "1.3.0";
inline constexpr int kOcsfClassUid = 4001;
inline constexpr int kOcsfCategoryUid = 4;

nlohmann::json toOcsf(const FlowRecord& r);
// One JSON object on one line, no trailing newline.
std::string toOcsfLine(const FlowRecord& r);

}  // namespace ztseg::flows
