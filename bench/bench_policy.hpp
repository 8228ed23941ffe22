// One abstract rule set, rendered for every filter the benchmarks compare, so
// that ztseg, iptables, nftables and xdp-filter enforce "the same policy":
//
//   N allow rules: source i (one /32, its own identity) -> server, TCP ports
//   kPortFirst..kPortLast; everything else from a labeled source: default deny;
//   any other source: unlabeled, dropped.
//
// Addresses (all inside 10.96.0.0/11, used only inside the benchmark's own
// network namespaces): sources 10.96.0.1 + i, unlabeled 10.126.x.y, server
// 10.127.255.1; IPv6 mirrors them under fd00:96::/32 for the per-packet rows.
// xdp-filter cannot express (source, port) pairs; see xdpFilterSources().
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/types.hpp"

namespace ztseg::bench {

inline constexpr uint16_t kPortFirst = 5200;  // the allowed TCP port range (one 8-port prefix)
inline constexpr uint16_t kPortLast = 5207;
inline constexpr uint16_t kBulkPort = 5201;   // iperf3
inline constexpr uint16_t kConnPort = 5202;   // connection-rate server
inline constexpr uint16_t kEchoPort = 5203;   // latency probe server
inline constexpr uint16_t kFloodPort = 5204;  // UDP: no rule allows UDP
inline constexpr uint16_t kDeniedPort = 22;   // labeled source, port outside every rule
inline constexpr IdentityId kServerId = 300;  // the enforced workload
inline constexpr IdentityId kFirstPeerId = 1000;
inline constexpr int kSubnetLength = 11;  // 10.96.0.0/11, on-link on both veth ends

struct BenchPolicy {
    uint32_t rules = 10;
    // Extra identity prefixes beyond the rules' own sources: more addresses of
    // the same identities (a deployment's many pods), from 10.0.0.0/10.
    uint32_t extra_prefixes = 0;

    std::string sourceV4(uint32_t i) const;  // source of rule i
    std::string sourceV6(uint32_t i) const;
    static std::string serverV4();
    static std::string serverV6();
    static std::string unlabeledV4(uint32_t i);
    static std::string unlabeledV6(uint32_t i);
    // `count` rule sources around the middle of the rule list: the average
    // position for a linear filter (iptables), irrelevant for hashed ones.
    std::vector<uint32_t> measuredSources(uint32_t count) const;

    // ztseg: identities (v4 for every rule, v6 for the first `v6_sources` and
    // the measured ones), the server as an enforced workload in cgroup
    // `server_cgroup_id`, one allow rule per source.
    Generation toGeneration(uint64_t number, uint64_t server_cgroup_id,
                            uint32_t v6_sources = 0) const;
    // iptables-restore input for the filter table: INPUT jumps to a chain of N
    // ACCEPT rules and a final DROP. conntrack_first: an ESTABLISHED,RELATED
    // accept in front (the stateful idiom); without it every packet walks the chain.
    std::string toIptables(bool conntrack_first) const;
    // nft -f input: table inet `table` with a set of labeled sources (unlabeled
    // dropped at prerouting priority raw, before conntrack) and a concatenated
    // interval set (source . port) for the allow rules, behind ct established.
    std::string toNftables(const std::string& table) const;
    // xdp-filter (deny mode = default drop) has one exact-address allowlist per
    // family, OR-ed with a port allowlist: it can admit the rule sources, not
    // pair them with ports. Returns the IPv4 sources as they are allowed.
    std::vector<std::string> xdpFilterSourcesV4() const;
    // The policy language form: one workload per source plus the server with
    // cgroup `server_cgroup` (relative to the cgroup root), one ingress rule each.
    std::string toPolicyYaml(const std::string& server_cgroup) const;
};

}  // namespace ztseg::bench
