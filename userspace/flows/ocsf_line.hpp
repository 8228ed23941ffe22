// The OCSF flow line written straight into a reusable buffer: the same bytes
// as toOcsf(r).dump() (keys in the order nlohmann's std::map gives them),
// with no JSON document built and no allocation once the buffer has grown.
// Callers hand over every string already JSON-escaped (appendJsonEscaped),
// so text that repeats across events (names, labels, rules) is escaped once.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "flows/text_buffer.hpp"

namespace ztseg::flows {

struct OcsfLineParts {
    struct Endpoint {
        std::string_view ip;  // escaped
        uint16_t port = 0;
        uint32_t identity = 0;
        std::string_view name;         // escaped; empty: no hostname/name fields
        std::string_view labels_json;  // a whole JSON object, e.g. {"app":"web"}
    };

    int64_t time_ms = 0;
    std::string_view host;           // escaped
    std::string_view verdict;        // escaped, e.g. dropped
    std::string_view reason;         // escaped
    std::string_view hook;           // escaped
    std::string_view protocol_name;  // escaped
    bool dropped = false;            // verdict "dropped"
    bool audit = false;              // verdict "would-drop"
    bool established = false;        // reason allow-conntrack / allow-related
    bool inbound = true;
    int family = 4;
    uint8_t protocol = 0;
    Endpoint src, dst;
    uint32_t rule_id = 0;               // 0: no firewall_rule object
    std::string_view rule_policy;       // escaped; empty: omitted
    std::string_view rule_location;     // escaped; empty: omitted
    std::string_view rule_description;  // escaped; empty: omitted
    std::string_view workload;          // escaped; empty: omitted
    uint64_t cgroup_id = 0;
    uint64_t generation = 0;
    uint32_t ifindex = 0;
    uint64_t packets = 0;
    uint64_t bytes = 0;
    uint32_t suppressed = 0;
    uint8_t icmp_type = 0;
    uint8_t icmp_code = 0;
};

// Appends one OCSF line (no newline) to `out`.
void appendOcsfLine(const OcsfLineParts& p, TextBuffer& out);

}  // namespace ztseg::flows
