// The parsed policy: what operators wrote, with where they wrote it. The
// compiler turns it into identities and rules; the reference evaluator judges
// flows against it directly (never against compiled maps).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "model/ip_prefix.hpp"
#include "model/types.hpp"
#include "policy/labels.hpp"

namespace ztseg::policy {

struct SourceLocation {
    std::string file;
    int line = 0;  // 1-based
    int column = 0;
    std::string str() const;  // "file:line:column"
};

struct WorkloadSpec {
    std::string name;
    LabelSet labels;
    std::string cgroup;        // cgroup v2 path pattern (glob), relative to the cgroup2 root
    std::string systemd_unit;  // or a systemd unit name
    std::vector<IpPrefix> addresses;
    SourceLocation loc;
};

// Address ranges outside the workload inventory that policy may name.
struct ExternalSpec {
    std::string name;
    std::vector<IpPrefix> cidrs;
    LabelSet labels;  // empty: the reserved "world" identity
    SourceLocation loc;
};

struct PeerSpec {
    enum class Kind { Selector, Cidr, Any, Host, World };
    Kind kind = Kind::Any;
    Selector selector;             // Kind::Selector: workloads and externals by label
    IpPrefix cidr;                 // Kind::Cidr
    std::vector<IpPrefix> except;  // Kind::Cidr
    SourceLocation loc;
    std::string str() const;
};

struct PortSpec {
    uint8_t protocol = ZTSEG_PROTO_ANY;  // IANA number, 0 = any
    PortRange ports;                     // any for ICMP
    SourceLocation loc;
    std::string str() const;  // "5432/tcp", "8000-8100/udp", "icmp", "any"
};

struct RuleSpec {
    uint32_t id = 0;  // assigned in source order (files sorted by path), from 1
    std::string policy;
    Direction direction = Direction::Ingress;
    Action action = Action::Allow;
    std::vector<PeerSpec> peers;
    std::vector<PortSpec> ports;  // empty: any protocol, any port
    std::string description;
    SourceLocation loc;
};

// What a policy applies to: workloads by label, or the host itself (every
// process of the host network namespace outside a workload cgroup).
enum class PolicySubject { Workloads, Host };

struct PolicySpec {
    std::string name;
    PolicySubject subject = PolicySubject::Workloads;
    Selector selector;  // Workloads: the local workloads it applies to
    WorkloadMode mode = WorkloadMode::Enforce;
    // `raw_sockets: allow` lets the selected workloads open raw IP, AF_PACKET
    // and AF_XDP sockets; refused by default. nullopt: not written (deny).
    std::optional<bool> raw_sockets;
    std::vector<RuleSpec> rules;
    SourceLocation loc;
};

struct PolicySet {
    std::vector<WorkloadSpec> workloads;
    std::vector<ExternalSpec> externals;
    std::vector<IpPrefix> hosts;                 // addresses of the reserved "host" identity
    std::vector<SourceLocation> host_locations;  // where each of `hosts` was written
    std::vector<PolicySpec> policies;
    std::vector<std::string> files;  // inputs, sorted
    std::string source_digest;       // SHA-256 hex over the inputs (path + content)
};

// Some policy selects the host itself (`entity: host`): the host is then a
// subject, judged as a local side.
inline bool selectsHost(const PolicySet& ps) {
    for (const PolicySpec& p : ps.policies) {
        if (p.subject == PolicySubject::Host) {
            return true;
        }
    }
    return false;
}

}  // namespace ztseg::policy
