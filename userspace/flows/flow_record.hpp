// The enriched, transport-neutral flow: one datapath event with identities,
// labels, names and the deciding rule resolved. Sinks (JSON lines in the OCSF
// shape, gRPC, `ztsegctl flows`) and filters all work on this.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "model/types.hpp"
#include "policy/labels.hpp"

namespace ztseg::flows {

struct FlowEndpoint {
    // Text form, "10.0.0.1" / "fd00::1"; "0.0.0.0" / "::" when unknown (a
    // connect() refused before the socket had a source address). OCSF omits
    // an unknown address, and port 0.
    std::string ip;
    uint16_t port = 0;  // 0 for ICMP/ICMPv6, protocols without ports, or unknown
    IdentityId identity = kUnlabeled;
    policy::LabelSet labels;
    // Workload/external name(s) carrying the identity; for a reserved identity
    // its reserved name ("unlabeled", "world", ...); "" if unknown.
    std::string name;
    bool workload = false;  // the identity is an inventory workload's
};

struct FlowRecord {
    std::chrono::system_clock::time_point time{};
    std::string host;                          // the node that observed the flow
    std::string verdict;                       // "allowed", "dropped", "would-drop"
    std::string reason;                        // datapath reason name, e.g. "default-deny"
    std::string hook;                          // datapath hook name, e.g. "cgroup-ingress"
    Direction direction = Direction::Ingress;  // relative to the local workload
    int family = 4;                            // 4 or 6
    uint8_t protocol = 0;                      // IANA number
    std::string protocol_name;                 // "tcp", "udp", "icmp", ...
    FlowEndpoint src;
    FlowEndpoint dst;
    uint32_t rule_id = 0;          // 0: no rule decided (default deny, conntrack, ...)
    std::string policy;            // name of the policy the rule belongs to
    std::string rule_location;     // "file:line"
    std::string rule_description;  // the rule's description, if any
    std::string workload;          // local workload name, "" if unknown
    uint64_t cgroup_id = 0;        // 0 at XDP
    uint64_t generation = 0;       // policy generation that judged the flow
    uint32_t ifindex = 0;
    uint64_t packets = 0;
    uint64_t bytes = 0;
    uint32_t suppressed = 0;  // drop events of this flow suppressed before this one
    // The peer's identity was proven on the wire (its SYN's proof), not taken
    // from its address (docs/datapath.md#proven-identity).
    bool proven = false;
    // A summary (datapath event kind "summary"): not one packet but
    // `suppressed` drops of one source (src at ingress, dst at egress) to one
    // local workload beyond the source's event budget, from window_start to
    // time, on about distinct_dst_ports destination ports (summaryPorts()).
    bool summary = false;
    std::chrono::system_clock::time_point window_start{};
    uint32_t distinct_dst_ports = 0;
    uint8_t icmp_type = 0;
    uint8_t icmp_code = 0;
};

// Distinct destination ports of a summary from the bits set in its
// ZTSEG_SRCLIMIT_PORT_BITS-bit port bitmap, by linear counting:
// round(-m ln(1 - bits/m)), m = 256. Close to exact for a few dozen ports,
// within a few percent up to several hundred; a full bitmap (saturated)
// reports m ln m = 1420, "at least that many".
uint32_t summaryPorts(uint32_t bits_set);

}  // namespace ztseg::flows
