// Flow filters that mirror `hubble observe`: several values of one kind are
// alternatives (OR), different kinds must all hold (AND); an empty filter
// matches every flow. A FlowSelection adds `--not`: each negated filter
// removes the flows it matches.
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
    std::vector<policy::Selector> labels;       // either side's labels match one
    std::vector<IpPrefix> from_ip;              // the source address is inside one
    std::vector<IpPrefix> to_ip;                // the destination address is inside one
    std::vector<IpPrefix> ips;                  // either address is inside one
    std::set<uint16_t> from_ports;              // source port
    std::set<uint16_t> to_ports;                // destination port
    std::set<uint16_t> ports;                   // either port
    std::set<std::string> protocols;            // "tcp", "udp", "icmp", "icmpv6", "sctp"
    std::optional<Direction> direction;
    std::set<IdentityId> from_identities, to_identities;
    std::set<std::string> from_names, to_names;  // workload / external names
    std::set<std::string> nodes;                 // the host that observed the flow

    bool matches(const FlowRecord& r) const;
    bool empty() const;

    // Adds one option's value ("--port", "80"). Returns false if `option` is
    // not a filter option; throws Error naming the option on a bad value.
    // Options: --verdict, --from, --to (labels, address/CIDR, identity number
    // or name), --from-label, --to-label, --label, --from-ip, --to-ip, --ip,
    // --from-port, --to-port, --port, --protocol, --direction (also
    // --traffic-direction), --node.
    bool add(std::string_view option, std::string_view value);

    // hubble-style options: {"--verdict", "dropped", "--to-ip=10.0.0.0/8", ...}.
    // Throws Error on an unknown option, a missing value or a bad value.
    static FlowFilter parse(const std::vector<std::string>& args);

    // One value each; every one throws Error naming the option and the text.
    static std::string parseVerdict(std::string_view text);  // also "forwarded", "audit"
    // "app=db,env=prod"; a key alone ("app", "app=db,tier") asks only that the key exists.
    static policy::Selector parseSelector(std::string_view text);
    static IpPrefix parseCidr(std::string_view text);         // "10.0.0.0/8", "fd00::1"
    static uint16_t parsePort(std::string_view text);         // 1..65535
    static std::string parseProtocol(std::string_view text);  // name or IANA number
    static Direction parseDirection(std::string_view text);   // ingress/egress
};

// The selector back as text parseSelector reads ("app=db,tier").
std::string selectorText(const policy::Selector& s);

// A filter plus `--not` terms: a flow is selected when `include` matches it
// and no term of `exclude` does. `--not` negates the one filter option that
// follows it, so `--not --verdict allowed --not --ip 10.0.0.9` removes the
// allowed flows and the flows of 10.0.0.9.
struct FlowSelection {
    FlowFilter include;
    std::vector<FlowFilter> exclude;

    bool matches(const FlowRecord& r) const;
    bool empty() const { return include.empty() && exclude.empty(); }

    // As FlowFilter::parse, plus "--not" before any filter option. Throws
    // Error for a "--not" that no filter option follows.
    static FlowSelection parse(const std::vector<std::string>& args);
};

}  // namespace ztseg::flows
