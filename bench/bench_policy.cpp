#include "bench_policy.hpp"

#include <cstdio>
#include <sstream>

#include "common/error.hpp"

namespace ztseg::bench {

namespace {

constexpr uint32_t kSourceBase = (10u << 24) | (96u << 16);      // 10.96.0.0
constexpr uint32_t kUnlabeledBase = (10u << 24) | (126u << 16);  // 10.126.0.0
constexpr uint32_t kExtraBase = 10u << 24;                       // 10.0.0.0/10
constexpr uint32_t kMaxSources = (30u << 16) - 2;                // up to 10.125.255.255
constexpr uint32_t kMaxExtra = 1u << 22;

std::string v4Text(uint32_t a) {
    char buf[20];
    std::snprintf(buf, sizeof(buf), "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255,
                  a & 255);
    return buf;
}

std::string v6Text(const char* prefix, uint32_t i) {
    char buf[48];
    std::snprintf(buf, sizeof(buf), "%s%x:%x", prefix, i >> 16, i & 0xffff);
    return buf;
}

IpPrefix hostPrefix(const std::string& addr) {
    return IpPrefix::parse(addr);
}

}  // namespace

std::string BenchPolicy::sourceV4(uint32_t i) const {
    if (i >= kMaxSources) {
        throw Error("bench policy: rule source " + std::to_string(i) + " is outside 10.96.0.0/11");
    }
    return v4Text(kSourceBase + 1 + i);
}

std::string BenchPolicy::sourceV6(uint32_t i) const {
    return v6Text("fd00:96::1:", i);
}

std::string BenchPolicy::serverV4() {
    return "10.127.255.1";
}

std::string BenchPolicy::serverV6() {
    return "fd00:96::ff:1";
}

std::string BenchPolicy::unlabeledV4(uint32_t i) {
    return v4Text(kUnlabeledBase + 1 + i % 65000);
}

std::string BenchPolicy::unlabeledV6(uint32_t i) {
    return v6Text("fd00:96::2:", i);
}

std::vector<uint32_t> BenchPolicy::measuredSources(uint32_t count) const {
    std::vector<uint32_t> out;
    uint32_t first = rules / 2 >= count / 2 ? rules / 2 - count / 2 : 0;
    for (uint32_t i = 0; i < count && first + i < rules; ++i) {
        out.push_back(first + i);
    }
    return out;
}

Generation BenchPolicy::toGeneration(uint64_t number, uint64_t server_cgroup_id,
                                     uint32_t v6_sources) const {
    if (extra_prefixes > kMaxExtra) {
        throw Error("bench policy: at most " + std::to_string(kMaxExtra) + " extra prefixes");
    }
    Generation g;
    g.number = number;
    g.modes[kServerId] = WorkloadMode::Enforce;
    g.endpoints.push_back({server_cgroup_id, kServerId});
    g.identities.reserve(rules + extra_prefixes + v6_sources + 8);
    g.identities.push_back({hostPrefix(serverV4()), kServerId});
    g.identities.push_back({hostPrefix(serverV6()), kServerId});
    g.rules.reserve(rules);
    for (uint32_t i = 0; i < rules; ++i) {
        IdentityId peer = kFirstPeerId + i;
        g.identities.push_back({hostPrefix(sourceV4(i)), peer});
        g.rules.push_back({kServerId, peer, Direction::Ingress, ZTSEG_PROTO_TCP,
                           PortRange{kPortFirst, kPortLast}, Action::Allow, i + 1});
    }
    std::vector<uint32_t> v6 = measuredSources(8);
    for (uint32_t i = 0; i < v6_sources && i < rules; ++i) {
        v6.push_back(i);
    }
    for (uint32_t i : v6) {
        g.identities.push_back({hostPrefix(sourceV6(i)), kFirstPeerId + i});
    }
    for (uint32_t j = 0; j < extra_prefixes; ++j) {
        IpPrefix p;
        p.family = 4;
        p.length = 32;
        uint32_t a = kExtraBase + j;
        p.addr = {uint8_t(a >> 24), uint8_t(a >> 16), uint8_t(a >> 8), uint8_t(a)};
        g.identities.push_back({p, kFirstPeerId + j % rules});
    }
    return g;
}

std::string BenchPolicy::toIptables(bool conntrack_first) const {
    std::ostringstream o;
    o << "*filter\n:INPUT ACCEPT [0:0]\n:ZTBENCH - [0:0]\n-A INPUT -i lo -j ACCEPT\n";
    if (conntrack_first) {
        o << "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n";
    }
    o << "-A INPUT -j ZTBENCH\n";
    for (uint32_t i = 0; i < rules; ++i) {
        o << "-A ZTBENCH -s " << sourceV4(i) << "/32 -p tcp -m tcp --dport " << kPortFirst << ':'
          << kPortLast << " -j ACCEPT\n";
    }
    o << "-A ZTBENCH -j DROP\nCOMMIT\n";
    return o.str();
}

std::string BenchPolicy::toNftables(const std::string& table) const {
    std::ostringstream o;
    o << "table inet " << table << " {\n"
      << "  counter unlabeled_drops { }\n  counter default_drops { }\n"
      << "  set labeled {\n    type ipv4_addr\n    elements = { ";
    for (uint32_t i = 0; i < rules; ++i) {
        o << (i ? ", " : "") << sourceV4(i);
    }
    o << " }\n  }\n"
      << "  set allow_tcp {\n    type ipv4_addr . inet_service\n    flags interval\n"
      << "    elements = { ";
    for (uint32_t i = 0; i < rules; ++i) {
        o << (i ? ", " : "") << sourceV4(i) << " . " << kPortFirst << '-' << kPortLast;
    }
    o << " }\n  }\n"
      << "  chain pre {\n    type filter hook prerouting priority raw; policy accept;\n"
      << "    iif lo accept\n    meta nfproto ipv4 ip saddr != @labeled counter name "
         "unlabeled_drops drop\n  }\n"
      << "  chain input {\n    type filter hook input priority filter; policy accept;\n"
      << "    iif lo accept\n    ct state established,related accept\n"
      << "    ip saddr . tcp dport @allow_tcp accept\n"
      << "    counter name default_drops drop\n  }\n}\n";
    return o.str();
}

std::vector<std::string> BenchPolicy::xdpFilterSourcesV4() const {
    std::vector<std::string> out;
    out.reserve(rules);
    for (uint32_t i = 0; i < rules; ++i) {
        out.push_back(sourceV4(i));
    }
    return out;
}

std::string BenchPolicy::toPolicyYaml(const std::string& server_cgroup) const {
    std::ostringstream o;
    o << "workloads:\n  - name: server\n    labels: {app: server}\n    cgroup: \"" << server_cgroup
      << "\"\n    addresses: [\"" << serverV4() << "\", \"" << serverV6() << "\"]\n";
    for (uint32_t i = 0; i < rules; ++i) {
        o << "  - {name: peer-" << i << ", labels: {app: peer-" << i << "}, addresses: [\""
          << sourceV4(i) << "\"]}\n";
    }
    o << "policies:\n  - name: server\n    selector: {matchLabels: {app: server}}\n"
      << "    ingress:\n";
    for (uint32_t i = 0; i < rules; ++i) {
        o << "      - from: [{selector: {matchLabels: {app: peer-" << i << "}}}]\n"
          << "        ports: [{port: \"" << kPortFirst << '-' << kPortLast
          << "\", protocol: tcp}]\n";
    }
    return o.str();
}

}  // namespace ztseg::bench
