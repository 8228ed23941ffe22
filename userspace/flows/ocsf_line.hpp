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
#include "model/types.hpp"

namespace ztseg::flows {

// How a flow maps onto OCSF 1.3.0 Network Activity: the one table both
// writers (toOcsf and appendOcsfLine) use; docs/design.md#flow-events shows it.
enum class OcsfVerdict : uint8_t { Allowed, WouldDrop, Dropped };

// "dropped", "would-drop"; anything else counts as allowed.
constexpr OcsfVerdict ocsfVerdict(std::string_view verdict) {
    return verdict == "dropped"      ? OcsfVerdict::Dropped
           : verdict == "would-drop" ? OcsfVerdict::WouldDrop
                                     : OcsfVerdict::Allowed;
}

struct OcsfClassification {
    int activity_id;
    std::string_view activity;  // activity_name; type_name is "Network Activity: " + this
    int action_id;
    std::string_view action;
    int disposition_id;
    std::string_view disposition;
    int severity_id;
    std::string_view severity;
    int status_id;
    std::string_view status;
};

// established: traffic of a tracked connection (allow-conntrack, allow-related).
// Allowed: Open (or Traffic), action Allowed, disposition Allowed, Informational.
// Would-drop (audit): the same activity and action (the packet went through),
// disposition Detected, severity Low. Dropped: Refuse, Denied, Blocked, Medium.
constexpr OcsfClassification ocsfClassification(OcsfVerdict v, bool established) {
    const int id = established ? 6 : 1;
    const std::string_view activity = established ? "Traffic" : "Open";
    switch (v) {
        case OcsfVerdict::Dropped:
            return {5, "Refuse", 2, "Denied", 2, "Blocked", 3, "Medium", 2, "Failure"};
        case OcsfVerdict::WouldDrop:
            return {id, activity, 1, "Allowed", 15, "Detected", 2, "Low", 1, "Success"};
        case OcsfVerdict::Allowed:
            break;
    }
    return {id, activity, 1, "Allowed", 1, "Allowed", 1, "Informational", 1, "Success"};
}

struct OcsfDirection {
    int id;
    std::string_view name;
};

// connection_info.direction: Lateral when both ends are inventory workloads,
// otherwise Inbound/Outbound as ztseg saw it (kept in unmapped.ztseg.direction).
constexpr OcsfDirection ocsfDirection(bool inbound, bool lateral) {
    if (lateral) {
        return {3, "Lateral"};
    }
    return inbound ? OcsfDirection{1, "Inbound"} : OcsfDirection{2, "Outbound"};
}

// An address OCSF carries: not empty, not the unspecified 0.0.0.0 or ::.
constexpr bool ocsfKnownIp(std::string_view ip) {
    return !ip.empty() && ip != "0.0.0.0" && ip != "::";
}

// An endpoint's `name`: inventory names only (workloads, externals), never a
// reserved identity's name ("unlabeled", "world"), which its uid says.
constexpr bool ocsfNamed(IdentityId identity, std::string_view name) {
    return !name.empty() && !isReservedIdentity(identity);
}

struct OcsfLineParts {
    struct Endpoint {
        std::string_view ip;  // escaped; unknown (ocsfKnownIp): no ip field
        uint16_t port = 0;    // 0: no port field
        uint32_t identity = 0;
        std::string_view name;         // escaped; no name field unless ocsfNamed
        std::string_view labels_json;  // a whole JSON object, e.g. {"app":"web"}
        bool workload = false;         // an inventory workload's identity
    };

    int64_t time_ms = 0;
    std::string_view host;           // escaped
    std::string_view verdict;        // escaped, e.g. dropped
    std::string_view reason;         // escaped
    std::string_view hook;           // escaped
    std::string_view protocol_name;  // escaped
    OcsfVerdict verdict_kind = OcsfVerdict::Allowed;
    bool established = false;  // reason allow-conntrack / allow-related
    bool inbound = true;       // ztseg's direction: ingress (true) or egress
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
    bool proven = false;   // FlowRecord::proven; "proven":true only then
    bool summary = false;  // FlowRecord::summary; the two fields below only then
    int64_t window_start_ms = 0;
    uint32_t distinct_dst_ports = 0;
    uint8_t icmp_type = 0;
    uint8_t icmp_code = 0;
};

// unmapped.ztseg.summary.ports_estimated_by: how distinct_dst_ports is counted.
inline constexpr const char* kSummaryPortsMethod = "linear-counting-256";

// Appends one OCSF line (no newline) to `out`.
void appendOcsfLine(const OcsfLineParts& p, TextBuffer& out);

}  // namespace ztseg::flows
