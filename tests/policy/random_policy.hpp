// Seeded random policies and flows for the differential test: PolicySet values
// built directly from the model structs (no YAML), always ones the parser would
// accept (unique names, distinct declared prefixes, 'except' inside its 'cidr',
// externals' labels never a workload's, ICMP without ports), and flows that hit
// the interesting places of such a policy (declared addresses, CIDR and except
// edges, port range edges ±1).
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "policy/model.hpp"

namespace ztseg::policy::test {

// Knobs of the generator; the defaults are what the differential test uses.
struct RandomPolicyOptions {
    int min_workloads = 3;
    int max_workloads = 8;
    int max_externals = 3;
    int min_policies = 1;
    int max_policies = 6;
    int max_rules_per_policy = 5;
    double host_policy_chance = 0.15;  // a policy is `entity: host`
};

// A random valid PolicySet. Rule ids are 1..n in source order (per policy the
// ingress rules first, then the egress rules, as the parser numbers them).
PolicySet randomPolicySet(std::mt19937_64& rng, const RandomPolicyOptions& opts = {});

// The same PolicySet as policy YAML text (every scalar quoted): for failure
// messages, and to prove the generator stays inside what the parser accepts.
std::string toYaml(const PolicySet& ps);

// One new flow of a local workload.
struct RandomFlow {
    size_t local = 0;             // index into PolicySet::workloads (unless host_local)
    bool host_local = false;      // the local side is the host itself
    IpPrefix local_address;       // host prefix; one of the local's addresses when it has any
    bool local_declared = false;  // local_address is one of the local's declared addresses
    IpPrefix peer_address;        // host prefix, same family as local_address
    std::string peer_origin;      // where the peer address was drawn from, for messages
    Direction direction = Direction::Ingress;
    uint8_t protocol = ZTSEG_PROTO_TCP;  // tcp, udp, sctp, icmp (v4) or icmpv6 (v6)
    uint16_t sport = 0;                  // client port; ICMP: echo identifier
    uint16_t port = 0;                   // destination (service) port; 0 for ICMP
    std::string str(const PolicySet& ps) const;
};

RandomFlow randomFlow(std::mt19937_64& rng, const PolicySet& ps);

// A host prefix for a random address inside `p`.
IpPrefix randomAddressIn(std::mt19937_64& rng, const IpPrefix& p);

}  // namespace ztseg::policy::test
