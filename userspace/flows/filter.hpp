// Flow filters that mirror `hubble observe`: several values of one kind are
// alternatives (OR), different kinds must all hold (AND); an empty filter
// matches every flow.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "flows/flow_record.hpp"
#include "model/ip_prefix.hpp"
#include "model/types.hpp"
#include "policy/labels.hpp"

namespace ztseg::flows {

struct FlowFilter {
    std::set<std::string> verdicts;             // "allowed", "dropped", "would-drop"
    std::vector<policy::Selector> from_labels;  // the source's labels must match one
    std::vector<policy::Selector> to_labels;    // the destination's labels must match one
    std::vector<IpPrefix> from_ip;              // the source address is inside one
    std::vector<IpPrefix> to_ip;                // the destination address is inside one
    std::set<uint16_t> ports;                   // destination port
    std::set<std::string> protocols;            // "tcp", "udp", "icmp", "icmpv6", "sctp"
    std::optional<Direction> direction;

    bool matches(const FlowRecord& r) const;
    bool empty() const;

    // hubble-style options: {"--verdict", "dropped", "--to-ip=10.0.0.0/8", ...}.
    // Options: --verdict, --from-label, --to-label, --from-ip, --to-ip, --port,
    // --protocol, --direction (also --traffic-direction). Throws Error on an
    // unknown option, a missing value or a bad value.
    static FlowFilter parse(const std::vector<std::string>& args);

    // One value each; every one throws Error naming the option and the text.
    static std::string parseVerdict(std::string_view text);        // also "forwarded", "audit"
    static policy::Selector parseSelector(std::string_view text);  // "app=db,env=prod"
    static IpPrefix parseCidr(std::string_view text);              // "10.0.0.0/8", "fd00::1"
    static uint16_t parsePort(std::string_view text);              // 1..65535
    static std::string parseProtocol(std::string_view text);       // name or IANA number
    static Direction parseDirection(std::string_view text);        // ingress/egress
};

}  // namespace ztseg::flows
