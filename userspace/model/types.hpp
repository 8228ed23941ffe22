// Domain types the datapath speaks: identities, workloads, rules. Callers never
// see map keys; Datapath translates (Katran-style ownership).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "abi.h"
#include "model/ip_prefix.hpp"

namespace ztseg {

using IdentityId = uint32_t;
inline constexpr IdentityId kUnlabeled = ZTSEG_ID_UNLABELED;
inline constexpr IdentityId kHostIdentity = ZTSEG_ID_HOST;
inline constexpr IdentityId kWorldIdentity = ZTSEG_ID_WORLD;
inline constexpr IdentityId kAnyIdentity = ZTSEG_ID_ANY;  // rule peer wildcard

// Ids below ZTSEG_ID_USER_MIN are reserved (unlabeled, host, world, ...): the
// datapath's own, never an inventory workload's or external's.
constexpr bool isReservedIdentity(IdentityId id) {
    return id < ZTSEG_ID_USER_MIN;
}

enum class Direction : uint8_t { Ingress = ZTSEG_DIR_INGRESS, Egress = ZTSEG_DIR_EGRESS };
enum class Action : uint8_t { Allow = ZTSEG_ACTION_ALLOW, Deny = ZTSEG_ACTION_DENY };

// How a workload identity is enforced on its local side.
enum class WorkloadMode : uint8_t { Unmanaged = 0, Enforce, Audit };

inline constexpr uint8_t kAnyProtocol = ZTSEG_PROTO_ANY;

// Protocols whose first four L4 bytes are ports (bpf/include/parse.h
// ztseg_has_ports): TCP, UDP, UDP-Lite, SCTP, DCCP.
constexpr bool protocolHasPorts(uint8_t p) {
    return p == ZTSEG_PROTO_TCP || p == ZTSEG_PROTO_UDP || p == ZTSEG_PROTO_UDPLITE ||
           p == ZTSEG_PROTO_SCTP || p == ZTSEG_PROTO_DCCP;
}

struct PortRange {
    uint16_t first = 0;
    uint16_t last = 65535;
    bool isAny() const { return first == 0 && last == 65535; }
    bool operator==(const PortRange&) const = default;
};

// One compiled rule with identities resolved: "local may talk to peer".
struct Rule {
    IdentityId local = 0;
    IdentityId peer = kAnyIdentity;
    Direction direction = Direction::Ingress;
    uint8_t protocol = kAnyProtocol;  // IANA number, 0 = any
    PortRange ports;                  // ignored (any) for ICMP/ICMPv6
    Action action = Action::Allow;
    uint32_t rule_id = 0;  // points back to the source rule (file:line) in the bundle
    bool operator==(const Rule&) const = default;
};

// Addresses (host, subnet, external range) that carry an identity.
struct IdentityPrefix {
    IpPrefix prefix;
    IdentityId identity = kUnlabeled;
    bool operator==(const IdentityPrefix&) const = default;
};

// A local workload: a cgroup v2 whose sockets are judged as `identity`.
struct Endpoint {
    uint64_t cgroup_id = 0;
    IdentityId identity = kUnlabeled;
};

struct RuleFingerprint {
    uint32_t rule_id = 0;
    uint64_t fingerprint = 0;
    bool operator==(const RuleFingerprint&) const = default;
};

// Everything that becomes visible in one atomic step.
struct Generation {
    uint64_t number = 0;
    std::vector<IdentityPrefix> identities;
    std::map<IdentityId, WorkloadMode> modes;  // managed workload identities
    // Managed workload identities a policy lets open raw IP, AF_PACKET and
    // AF_XDP sockets (ZTSEG_IDF_RAW_SOCKETS); every other one is refused them.
    std::set<IdentityId> raw_sockets;
    std::vector<Endpoint> endpoints;
    std::vector<Rule> rules;
    // The fingerprint of each rule id's source rule (policy and content, not
    // position), sorted by rule id: per-rule hit counters follow it from
    // generation to generation. Fingerprint 0: counted for this generation
    // only. Empty: every rule counts for this generation only; otherwise a
    // rule id missing here is not counted.
    std::vector<RuleFingerprint> rule_fingerprints;
};

}  // namespace ztseg
