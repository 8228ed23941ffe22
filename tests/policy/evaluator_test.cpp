// The reference evaluator on small hand-written policies: one table per
// semantic corner of docs/design.md#policy-model. The differential test holds the kernel
// to this evaluator, so every rule of the semantics is pinned down here.
#include "policy/evaluator.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "policy/parser.hpp"

namespace ztseg::policy {
namespace {

constexpr Direction In = Direction::Ingress;
constexpr Direction Out = Direction::Egress;
constexpr uint8_t kTcp = ZTSEG_PROTO_TCP;
constexpr uint8_t kUdp = ZTSEG_PROTO_UDP;
constexpr uint8_t kSctp = ZTSEG_PROTO_SCTP;
constexpr uint8_t kIcmp = ZTSEG_PROTO_ICMP;
constexpr uint8_t kIcmp6 = ZTSEG_PROTO_ICMPV6;

// The cast shared by most tables. Unlabeled addresses: 203.0.113.0/24,
// 2001:db8:ffff::/48.
std::string inventory(const std::string& more_externals = "") {
    return R"(
workloads:
  - {name: web, labels: {app: web, tier: front}, addresses: ["10.0.0.1", "fd00::1"]}
  - {name: api, labels: {app: api, tier: back}, addresses: ["10.0.0.2", "fd00::2"]}
  - {name: db, labels: {app: db, tier: data, env: prod}, addresses: ["10.0.0.3", "fd00::3"]}
  - {name: dbdev, labels: {app: db, tier: data, env: dev}, addresses: ["10.0.0.4"]}
  - {name: lonely, labels: {app: lonely}, addresses: ["10.0.0.5"]}
hosts: ["10.0.0.254", "fd00::fe"]
externals:
  - {name: partner, cidrs: ["192.0.2.0/24"], labels: {zone: partner}}
  - {name: internet, cidrs: ["198.51.100.0/24", "2001:db8:1::/48"]}
)" + more_externals;
}
const std::string kInventory = inventory();

// One flow and what the evaluator must say about it.
struct Case {
    std::string local;  // labels, "app=db,env=prod,tier=data"
    std::string peer;   // an address, or "labels:app=web,tier=front"
    Direction dir;
    uint8_t proto;
    uint16_t port;
    bool pass;
    EvalReason reason;
    std::vector<uint32_t> rules = {};
    bool would_drop = false;
};

PolicySet parse(const std::string& yaml) {
    Diagnostics diags;
    return parsePolicies({{"test.yaml", yaml}}, diags);
}

void expectCases(const std::string& yaml, const std::vector<Case>& cases) {
    PolicySet ps = parse(yaml);
    Evaluator ev(ps);
    for (const Case& c : cases) {
        Peer peer = c.peer.rfind("labels:", 0) == 0 ? ev.peerOfLabels(parseLabels(c.peer.substr(7)))
                                                    : ev.peerOfAddress(IpPrefix::parse(c.peer));
        Evaluation e = ev.evaluate(parseLabels(c.local), peer, c.dir, c.proto, c.port);
        std::string what = c.local + (c.dir == In ? " <- " : " -> ") + c.peer + " proto " +
                           std::to_string(c.proto) + " port " + std::to_string(c.port) + " (peer " +
                           peer.name + ")";
        EXPECT_EQ(e.pass, c.pass) << what;
        EXPECT_EQ(evalReasonName(e.reason), evalReasonName(c.reason)) << what;
        EXPECT_EQ(e.rules, c.rules) << what;
        EXPECT_EQ(e.would_drop, c.would_drop) << what;
        if (c.rules.empty()) {
            EXPECT_EQ(e.rule, nullptr) << what;
        } else {
            ASSERT_NE(e.rule, nullptr) << what;
            EXPECT_EQ(e.rule->id, c.rules.front()) << what;  // the lowest id
        }
    }
}

const std::string kDb = "app=db,env=prod,tier=data";
const std::string kDbDev = "app=db,env=dev,tier=data";
const std::string kWeb = "app=web,tier=front";
const std::string kApi = "app=api,tier=back";
const std::string kLonely = "app=lonely";

// ---- peers: who an address or a label set is

TEST(EvaluatorPeers, AddressesResolveToTheirLongestDeclaredPrefix) {
    PolicySet ps = parse(kInventory + R"(
policies:
  - name: db
    selector: {matchLabels: {app: db}}
    ingress:
      - from: [{cidr: "198.51.100.128/25"}, {cidr: "10.0.0.0/8"}]
)");
    Evaluator ev(ps);
    auto kind = [&](const char* a) { return ev.peerOfAddress(IpPrefix::parse(a)).kind; };
    EXPECT_EQ(kind("10.0.0.1"), Peer::Kind::Workload);
    EXPECT_EQ(kind("fd00::2"), Peer::Kind::Workload);
    EXPECT_EQ(kind("192.0.2.77"), Peer::Kind::External);
    EXPECT_EQ(kind("198.51.100.1"), Peer::Kind::World);
    EXPECT_EQ(kind("198.51.100.200"), Peer::Kind::Cidr);  // the rule's /25 is longer
    EXPECT_EQ(kind("2001:db8:1::9"), Peer::Kind::World);
    EXPECT_EQ(kind("10.0.0.254"), Peer::Kind::Host);
    EXPECT_EQ(kind("fd00::fe"), Peer::Kind::Host);
    EXPECT_EQ(kind("10.7.7.7"), Peer::Kind::Cidr);  // inside the rule's 10.0.0.0/8
    EXPECT_EQ(kind("203.0.113.9"), Peer::Kind::Unlabeled);
    EXPECT_EQ(kind("2001:db8:ffff::9"), Peer::Kind::Unlabeled);
    EXPECT_EQ(kind("::ffff:10.0.0.1"), Peer::Kind::Unlabeled);  // IPv6 is not IPv4
    EXPECT_EQ(ev.peerOfAddress(IpPrefix::parse("10.0.0.1")).labels, parseLabels(kWeb));
    EXPECT_EQ(ev.peerOfLabels(parseLabels(kWeb)).kind, Peer::Kind::Workload);
    EXPECT_EQ(ev.peerOfLabels(parseLabels("zone=partner")).kind, Peer::Kind::External);
    EXPECT_EQ(ev.peerOfLabels(parseLabels("app=nobody")).kind, Peer::Kind::Unlabeled);
    // World gathers every unlabeled external's ranges.
    EXPECT_EQ(ev.peerOfAddress(IpPrefix::parse("198.51.100.1")).prefixes.size(), 2u);
}

// ---- wildcards

TEST(EvaluatorWildcards, EntityAnyAdmitsEveryLabeledPeerButNotUnlabeled) {
    expectCases(kInventory + R"(
policies:
  - name: db
    selector: {matchLabels: {app: db}}
    ingress:
      - from: [{entity: any}]
)",
                {
                    {kDb, "10.0.0.1", In, kTcp, 5432, true, EvalReason::Allowed, {1}},
                    {kDb, "192.0.2.7", In, kUdp, 53, true, EvalReason::Allowed, {1}},
                    {kDb, "10.0.0.254", In, kSctp, 9, true, EvalReason::Allowed, {1}},
                    {kDb, "198.51.100.1", In, kIcmp, 0, true, EvalReason::Allowed, {1}},
                    {kDb, "fd00::1", In, kIcmp6, 0, true, EvalReason::Allowed, {1}},
                    {kDb, "10.0.0.3", In, kTcp, 1, true, EvalReason::Allowed, {1}},  // itself
                    {kDb, "labels:app=web,tier=front", In, kTcp, 0, true, EvalReason::Allowed, {1}},
                    {kDb, "203.0.113.9", In, kTcp, 5432, false, EvalReason::Unlabeled},
                    {kDb, "2001:db8:ffff::9", In, kTcp, 5432, false, EvalReason::Unlabeled},
                });
}

TEST(EvaluatorWildcards, EmptySelectorMatchesWorkloadsAndLabeledExternalsOnly) {
    expectCases(kInventory + R"(
policies:
  - name: db
    selector: {matchLabels: {app: db}}
    ingress:
      - from: [{selector: {}}]
)",
                {
                    {kDb, "10.0.0.1", In, kTcp, 80, true, EvalReason::Allowed, {1}},
                    {kDb, "10.0.0.5", In, kTcp, 80, true, EvalReason::Allowed, {1}},
                    {kDb, "192.0.2.7", In, kTcp, 80, true, EvalReason::Allowed, {1}},
                    {kDb, "198.51.100.1", In, kTcp, 80, false, EvalReason::DefaultDeny},
                    {kDb, "10.0.0.254", In, kTcp, 80, false, EvalReason::DefaultDeny},
                    {kDb, "203.0.113.9", In, kTcp, 80, false, EvalReason::Unlabeled},
                });
}

TEST(EvaluatorWildcards, EmptyPolicySelectorManagesEveryWorkload) {
    expectCases(kInventory + R"(
policies:
  - name: all
    selector: {}
    ingress:
      - from: [{selector: {matchLabels: {app: web}}}]
)",
                {
                    {kLonely, "10.0.0.1", In, kTcp, 80, true, EvalReason::Allowed, {1}},
                    {kLonely, "10.0.0.2", In, kTcp, 80, false, EvalReason::DefaultDeny},
                    {kApi, "10.0.0.1", Out, kTcp, 80, false, EvalReason::DefaultDeny},
                });
}

TEST(EvaluatorWildcards, NoPortsAndProtocolAnyCoverEverything) {
    expectCases(kInventory + R"(
policies:
  - name: db
    selector: {matchLabels: {app: db}}
    ingress:
      - from: [{selector: {matchLabels: {app: web}}}]
      - from: [{selector: {matchLabels: {app: api}}}]
        ports: [{protocol: any}]
      - from: [{selector: {matchLabels: {app: lonely}}}]
        ports: [{port: 80}]
)",
                {
                    {kDb, "10.0.0.1", In, kTcp, 0, true, EvalReason::Allowed, {1}},
                    {kDb, "10.0.0.1", In, kUdp, 65535, true, EvalReason::Allowed, {1}},
                    {kDb, "10.0.0.1", In, kSctp, 7, true, EvalReason::Allowed, {1}},
                    {kDb, "10.0.0.1", In, kIcmp, 0, true, EvalReason::Allowed, {1}},
                    {kDb, "10.0.0.2", In, kTcp, 0, true, EvalReason::Allowed, {2}},
                    {kDb, "10.0.0.2", In, kUdp, 12345, true, EvalReason::Allowed, {2}},
                    {kDb, "fd00::2", In, kIcmp6, 0, true, EvalReason::Allowed, {2}},
                    // protocol any with a port: every protocol that has ports, on that port
                    {kDb, "10.0.0.5", In, kTcp, 80, true, EvalReason::Allowed, {3}},
                    {kDb, "10.0.0.5", In, kUdp, 80, true, EvalReason::Allowed, {3}},
                    {kDb, "10.0.0.5", In, kSctp, 80, true, EvalReason::Allowed, {3}},
                    {kDb, "10.0.0.5", In, kTcp, 81, false, EvalReason::DefaultDeny},
                    {kDb, "10.0.0.5", In, kIcmp, 0, false, EvalReason::DefaultDeny},
                });
}

// ---- ports

TEST(EvaluatorPorts, RangesIncludeBothEdgesAndNothingBeyond) {
    expectCases(kInventory + R"(
policies:
  - name: db
    selector: {matchLabels: {app: db}}
    ingress:
      - from: [{entity: any}]
        ports: [{port: "8000-8100", protocol: tcp}, {port: 5432, protocol: tcp}]
      - from: [{entity: any}]
        ports: [{port: "1-65535", protocol: udp}]
      - from: [{entity: any}]
        ports: [{port: 65535, protocol: sctp}]
)",
                {
                    {kDb, "10.0.0.1", In, kTcp, 7999, false, EvalReason::DefaultDeny},
                    {kDb, "10.0.0.1", In, kTcp, 8000, true, EvalReason::Allowed, {1}},
                    {kDb, "10.0.0.1", In, kTcp, 8050, true, EvalReason::Allowed, {1}},
                    {kDb, "10.0.0.1", In, kTcp, 8100, true, EvalReason::Allowed, {1}},
                    {kDb, "10.0.0.1", In, kTcp, 8101, false, EvalReason::DefaultDeny},
                    {kDb, "10.0.0.1", In, kTcp, 5431, false, EvalReason::DefaultDeny},
                    {kDb, "10.0.0.1", In, kTcp, 5432, true, EvalReason::Allowed, {1}},
                    {kDb, "10.0.0.1", In, kTcp, 5433, false, EvalReason::DefaultDeny},
                    {kDb, "10.0.0.1", In, kUdp, 8000, true, EvalReason::Allowed, {2}},
                    {kDb, "10.0.0.1", In, kSctp, 8000, false, EvalReason::DefaultDeny},
                    // "1-65535" is not "any": it leaves out port 0
                    {kDb, "10.0.0.1", In, kUdp, 1, true, EvalReason::Allowed, {2}},
                    {kDb, "10.0.0.1", In, kUdp, 65535, true, EvalReason::Allowed, {2}},
                    {kDb, "10.0.0.1", In, kUdp, 0, false, EvalReason::DefaultDeny},
                    {kDb, "10.0.0.1", In, kSctp, 65535, true, EvalReason::Allowed, {3}},
                    {kDb, "10.0.0.1", In, kSctp, 65534, false, EvalReason::DefaultDeny},
                });
}

TEST(EvaluatorPorts, IcmpIgnoresThePortItIsGiven) {
    expectCases(kInventory + R"(
policies:
  - name: db
    selector: {matchLabels: {app: db}}
    ingress:
      - from: [{entity: any}]
        ports: [{protocol: icmp}]
      - from: [{selector: {matchLabels: {app: api}}}]
        ports: [{protocol: icmpv6}]
)",
                {
                    {kDb, "10.0.0.1", In, kIcmp, 0, true, EvalReason::Allowed, {1}},
                    {kDb, "10.0.0.1", In, kIcmp, 4711, true, EvalReason::Allowed, {1}},
                    {kDb, "fd00::1", In, kIcmp6, 0, false, EvalReason::DefaultDeny},  // v4 only
                    {kDb, "fd00::2", In, kIcmp6, 9, true, EvalReason::Allowed, {2}},
                    {kDb, "10.0.0.1", In, kTcp, 0, false, EvalReason::DefaultDeny},
                });
}

// ---- deny beats allow

TEST(EvaluatorDeny, DenyBeatsAllowWhateverTheOrder) {
    expectCases(kInventory + R"(
policies:
  - name: allow-first
    selector: {matchLabels: {app: db, env: prod}}
    ingress:
      - from: [{selector: {matchLabels: {tier: front}}}]
        ports: [{protocol: tcp}]
      - action: deny
        from: [{selector: {matchLabels: {app: web}}}]
        ports: [{port: 22, protocol: tcp}]
  - name: deny-first
    selector: {matchLabels: {app: db, env: dev}}
    ingress:
      - action: deny
        from: [{selector: {matchLabels: {app: web}}}]
        ports: [{port: 22, protocol: tcp}]
      - from: [{selector: {matchLabels: {tier: front}}}]
        ports: [{protocol: tcp}]
)",
                {
                    {kDb, "10.0.0.1", In, kTcp, 22, false, EvalReason::PolicyDeny, {2}},
                    {kDb, "10.0.0.1", In, kTcp, 80, true, EvalReason::Allowed, {1}},
                    {kDbDev, "10.0.0.1", In, kTcp, 22, false, EvalReason::PolicyDeny, {3}},
                    {kDbDev, "10.0.0.1", In, kTcp, 80, true, EvalReason::Allowed, {4}},
                    {kDbDev, "10.0.0.1", In, kUdp, 22, false, EvalReason::DefaultDeny},
                });
}

TEST(EvaluatorDeny, EveryMatchingRuleOfTheDecidingActionIsReported) {
    expectCases(kInventory + R"(
policies:
  - name: one
    selector: {matchLabels: {app: db}}
    ingress:
      - from: [{entity: any}]
        ports: [{port: "5000-6000", protocol: tcp}]
      - action: deny
        from: [{cidr: "192.0.2.0/24"}]
  - name: two
    selector: {matchLabels: {tier: data}}
    ingress:
      - from: [{selector: {matchLabels: {app: web}}}]
      - action: deny
        from: [{selector: {matchLabels: {zone: partner}}}]
        ports: [{port: 5432, protocol: tcp}]
)",
                {
                    {kDb, "10.0.0.1", In, kTcp, 5432, true, EvalReason::Allowed, {1, 3}},
                    {kDb, "10.0.0.1", In, kTcp, 80, true, EvalReason::Allowed, {3}},
                    {kDb, "10.0.0.2", In, kTcp, 5432, true, EvalReason::Allowed, {1}},
                    {kDb, "192.0.2.9", In, kTcp, 5432, false, EvalReason::PolicyDeny, {2, 4}},
                    {kDb, "192.0.2.9", In, kTcp, 5433, false, EvalReason::PolicyDeny, {2}},
                });
}

// ---- audit mode

TEST(EvaluatorAudit, WouldDropPassesAndSaysWhy) {
    expectCases(kInventory + R"(
policies:
  - name: db
    selector: {matchLabels: {app: db}}
    mode: audit
    ingress:
      - from: [{selector: {matchLabels: {app: web}}}]
        ports: [{port: 80, protocol: tcp}]
      - action: deny
        from: [{selector: {matchLabels: {app: api}}}]
)",
                {
                    {kDb, "10.0.0.1", In, kTcp, 80, true, EvalReason::Allowed, {1}, false},
                    {kDb, "10.0.0.1", In, kTcp, 81, true, EvalReason::DefaultDeny, {}, true},
                    {kDb, "10.0.0.2", In, kTcp, 80, true, EvalReason::PolicyDeny, {2}, true},
                    {kDb, "203.0.113.9", In, kTcp, 80, true, EvalReason::Unlabeled, {}, true},
                    {kDb, "10.0.0.1", Out, kTcp, 80, true, EvalReason::DefaultDeny, {}, true},
                });
}

TEST(EvaluatorAudit, OneAuditPolicyPutsTheWorkloadInAudit) {
    expectCases(kInventory + R"(
policies:
  - name: enforce
    selector: {matchLabels: {app: db}}
    ingress:
      - from: [{selector: {matchLabels: {app: web}}}]
  - name: audit
    selector: {matchLabels: {env: prod}}
    mode: audit
)",
                {
                    {kDb, "10.0.0.2", In, kTcp, 80, true, EvalReason::DefaultDeny, {}, true},
                    {kDbDev, "10.0.0.2", In, kTcp, 80, false, EvalReason::DefaultDeny},
                    {kDbDev, "10.0.0.1", In, kTcp, 80, true, EvalReason::Allowed, {1}},
                });
}

// ---- reserved identities

TEST(EvaluatorReserved, HostAndWorldEntities) {
    expectCases(kInventory + R"(
policies:
  - name: db
    selector: {matchLabels: {app: db}}
    ingress:
      - from: [{entity: host}]
    egress:
      - to: [{entity: world}]
      - to: [{cidr: "172.16.0.0/12"}]
        ports: [{port: 1, protocol: udp}]
)",
                {
                    {kDb, "10.0.0.254", In, kTcp, 22, true, EvalReason::Allowed, {1}},
                    {kDb, "fd00::fe", In, kTcp, 22, true, EvalReason::Allowed, {1}},
                    {kDb, "10.0.0.1", In, kTcp, 22, false, EvalReason::DefaultDeny},
                    {kDb, "198.51.100.1", In, kTcp, 22, false, EvalReason::DefaultDeny},
                    // world: unlabeled externals, labeled externals and CIDRs named in rules
                    {kDb, "198.51.100.1", Out, kTcp, 443, true, EvalReason::Allowed, {2}},
                    {kDb, "2001:db8:1::1", Out, kTcp, 443, true, EvalReason::Allowed, {2}},
                    {kDb, "192.0.2.1", Out, kTcp, 443, true, EvalReason::Allowed, {2}},
                    {kDb, "172.16.3.4", Out, kUdp, 1, true, EvalReason::Allowed, {2, 3}},
                    {kDb, "10.0.0.1", Out, kTcp, 443, false, EvalReason::DefaultDeny},
                    {kDb, "10.0.0.254", Out, kTcp, 443, false, EvalReason::DefaultDeny},
                    {kDb, "203.0.113.9", Out, kTcp, 443, false, EvalReason::Unlabeled},
                });
}

// ---- CIDR peers

TEST(EvaluatorCidr, ExceptIsRefusedAndWorkloadsInsideAreNotSelected) {
    expectCases(inventory(R"(
  - {name: corp, cidrs: ["10.20.0.0/16"], labels: {zone: corp}}
  - {name: split, cidrs: ["10.30.0.0/16", "172.16.0.0/12"], labels: {zone: split}}
)") + R"(
policies:
  - name: web
    selector: {matchLabels: {app: web}}
    egress:
      - to: [{cidr: "10.0.0.0/8", except: ["10.9.0.0/16", "10.20.0.0/16"]}]
        ports: [{port: 443, protocol: tcp}]
      - to: [{cidr: "10.20.0.0/15"}]
        ports: [{port: 8443, protocol: tcp}]
)",
                {
                    {kWeb, "10.8.1.1", Out, kTcp, 443, true, EvalReason::Allowed, {1}},
                    {kWeb, "10.255.255.255", Out, kTcp, 443, true, EvalReason::Allowed, {1}},
                    {kWeb, "10.9.0.0", Out, kTcp, 443, false, EvalReason::DefaultDeny},
                    {kWeb, "10.9.255.255", Out, kTcp, 443, false, EvalReason::DefaultDeny},
                    {kWeb, "10.10.0.0", Out, kTcp, 443, true, EvalReason::Allowed, {1}},
                    // an external wholly inside the except is refused, inside a CIDR selected
                    {kWeb, "10.20.1.1", Out, kTcp, 443, false, EvalReason::DefaultDeny},
                    {kWeb, "10.20.1.1", Out, kTcp, 8443, true, EvalReason::Allowed, {2}},
                    // workloads and hosts inside the CIDR are not selected by it
                    {kWeb, "10.0.0.2", Out, kTcp, 443, false, EvalReason::DefaultDeny},
                    {kWeb, "10.0.0.254", Out, kTcp, 443, false, EvalReason::DefaultDeny},
                    // an external only partly inside is not selected
                    {kWeb, "10.30.0.1", Out, kTcp, 443, false, EvalReason::DefaultDeny},
                    {kWeb, "172.16.0.1", Out, kTcp, 443, false, EvalReason::DefaultDeny},
                    {kWeb, "11.0.0.1", Out, kTcp, 443, false, EvalReason::Unlabeled},
                });
}

TEST(EvaluatorCidr, CoveringEveryWorldRangeSelectsWorld) {
    expectCases(kInventory + R"(
policies:
  - name: web
    selector: {matchLabels: {app: web}}
    egress:
      - to: [{cidr: "0.0.0.0/0"}]
        ports: [{port: 1, protocol: tcp}]
      - to: [{cidr: "0.0.0.0/0"}, {cidr: "::/0"}]
        ports: [{port: 2, protocol: tcp}]
)",
                {
                    // world also has an IPv6 range: one IPv4 CIDR does not cover it
                    {kWeb, "198.51.100.1", Out, kTcp, 1, false, EvalReason::DefaultDeny},
                    {kWeb, "198.51.100.1", Out, kTcp, 2, false, EvalReason::DefaultDeny},
                    // the labeled external is wholly inside
                    {kWeb, "192.0.2.1", Out, kTcp, 1, true, EvalReason::Allowed, {1}},
                    // 0.0.0.0/0 is itself declared: every other IPv4 address is labeled by it
                    {kWeb, "203.0.113.9", Out, kTcp, 1, true, EvalReason::Allowed, {1}},
                    {kWeb, "2001:db8:ffff::9", Out, kTcp, 2, true, EvalReason::Allowed, {2}},
                    {kWeb, "2001:db8:ffff::9", Out, kTcp, 1, false, EvalReason::DefaultDeny},
                });
}

// ---- IPv6

TEST(EvaluatorIpv6, SelectorsCidrsAndIcmpv6) {
    expectCases(kInventory + R"(
policies:
  - name: db
    selector: {matchLabels: {app: db}}
    ingress:
      - from: [{selector: {matchLabels: {app: web}}}]
        ports: [{port: 5432, protocol: tcp}, {protocol: icmpv6}]
      - from: [{cidr: "2001:db8::/32", except: ["2001:db8:2::/48"]}]
        ports: [{port: 443, protocol: tcp}]
      - from: [{selector: {matchLabels: {app: api}}}]
        ports: [{protocol: icmp}]
)",
                {
                    {kDb, "fd00::1", In, kTcp, 5432, true, EvalReason::Allowed, {1}},
                    {kDb, "fd00::1", In, kIcmp6, 0, true, EvalReason::Allowed, {1}},
                    {kDb, "fd00::1", In, kTcp, 5433, false, EvalReason::DefaultDeny},
                    {kDb, "2001:db8:5::1", In, kTcp, 443, true, EvalReason::Allowed, {2}},
                    // world also has an IPv4 range, so this IPv6 CIDR does not select it
                    {kDb, "2001:db8:1::1", In, kTcp, 443, false, EvalReason::DefaultDeny},
                    {kDb, "2001:db8:2::1", In, kTcp, 443, false, EvalReason::DefaultDeny},
                    {kDb, "2001:db9::1", In, kTcp, 443, false, EvalReason::Unlabeled},
                    {kDb, "fd00::2", In, kIcmp6, 0, false, EvalReason::DefaultDeny},
                    {kDb, "fd00::9", In, kTcp, 5432, false, EvalReason::Unlabeled},
                });
}

// ---- unlabeled peers and unmanaged locals

TEST(EvaluatorUnlabeled, UnlabeledPeerIsDroppedWhateverTheRules) {
    expectCases(kInventory + R"(
policies:
  - name: db
    selector: {matchLabels: {app: db}}
    ingress:
      - from: [{entity: any}]
      - action: deny
        from: [{entity: any}]
        ports: [{port: 22, protocol: tcp}]
)",
                {
                    {kDb, "203.0.113.9", In, kTcp, 80, false, EvalReason::Unlabeled},
                    {kDb, "203.0.113.9", In, kTcp, 22, false, EvalReason::Unlabeled},
                    {kDb, "10.0.0.1", In, kTcp, 22, false, EvalReason::PolicyDeny, {2}},
                    {kDb, "labels:app=nobody", In, kTcp, 80, false, EvalReason::Unlabeled},
                });
}

TEST(EvaluatorUnmanaged, NoPolicySelectsTheLocal) {
    expectCases(kInventory + R"(
policies:
  - name: db
    selector: {matchLabels: {app: db}}
    ingress:
      - action: deny
        from: [{entity: any}]
)",
                {
                    {kLonely, "10.0.0.1", In, kTcp, 80, true, EvalReason::NotManaged},
                    {kLonely, "203.0.113.9", In, kTcp, 80, true, EvalReason::NotManaged},
                    {kLonely, "10.0.0.3", Out, kTcp, 80, true, EvalReason::NotManaged},
                    {kWeb, "10.0.0.3", Out, kUdp, 53, true, EvalReason::NotManaged},
                    {kDb, "10.0.0.1", In, kTcp, 80, false, EvalReason::PolicyDeny, {1}},
                });
}

// ---- label selectors

TEST(EvaluatorSelectors, MatchExpressionOperators) {
    expectCases(kInventory + R"(
policies:
  - name: db
    selector: {matchExpressions: [{key: env, operator: In, values: [prod]}]}
    ingress:
      - from: [{selector: {matchExpressions: [{key: tier, operator: In, values: [front, back]}]}}]
        ports: [{port: 1, protocol: tcp}]
      - from: [{selector: {matchExpressions: [{key: tier, operator: NotIn, values: [front]}]}}]
        ports: [{port: 2, protocol: tcp}]
      - from: [{selector: {matchExpressions: [{key: env, operator: Exists}]}}]
        ports: [{port: 3, protocol: tcp}]
      - from: [{selector: {matchExpressions: [{key: tier, operator: DoesNotExist}]}}]
        ports: [{port: 4, protocol: tcp}]
      - from: [{selector: {matchLabels: {app: db},
                           matchExpressions: [{key: env, operator: NotIn, values: [prod]}]}}]
        ports: [{port: 5, protocol: tcp}]
)",
                {
                    // In
                    {kDb, "10.0.0.1", In, kTcp, 1, true, EvalReason::Allowed, {1}},
                    {kDb, "10.0.0.2", In, kTcp, 1, true, EvalReason::Allowed, {1}},
                    {kDb, "10.0.0.4", In, kTcp, 1, false, EvalReason::DefaultDeny},
                    {kDb, "10.0.0.5", In, kTcp, 1, false, EvalReason::DefaultDeny},
                    // NotIn: also matches when the key is missing
                    {kDb, "10.0.0.1", In, kTcp, 2, false, EvalReason::DefaultDeny},
                    {kDb, "10.0.0.2", In, kTcp, 2, true, EvalReason::Allowed, {2}},
                    {kDb, "10.0.0.5", In, kTcp, 2, true, EvalReason::Allowed, {2}},
                    {kDb, "192.0.2.7", In, kTcp, 2, true, EvalReason::Allowed, {2}},
                    // Exists
                    {kDb, "10.0.0.4", In, kTcp, 3, true, EvalReason::Allowed, {3}},
                    {kDb, "10.0.0.1", In, kTcp, 3, false, EvalReason::DefaultDeny},
                    // DoesNotExist: labeled peers without the key, never world
                    {kDb, "10.0.0.5", In, kTcp, 4, true, EvalReason::Allowed, {4}},
                    {kDb, "192.0.2.7", In, kTcp, 4, true, EvalReason::Allowed, {4}},
                    {kDb, "10.0.0.2", In, kTcp, 4, false, EvalReason::DefaultDeny},
                    {kDb, "198.51.100.1", In, kTcp, 4, false, EvalReason::DefaultDeny},
                    // matchLabels and matchExpressions together: all must hold
                    {kDb, "10.0.0.4", In, kTcp, 5, true, EvalReason::Allowed, {5}},
                    {kDb, "10.0.0.3", In, kTcp, 5, false, EvalReason::DefaultDeny},
                    // the policy's own selector: env In [prod] leaves dbdev unmanaged
                    {kDbDev, "10.0.0.9", In, kTcp, 1, true, EvalReason::NotManaged},
                });
}

// ---- directions

TEST(EvaluatorDirections, AnIngressRuleNeverAdmitsEgressAndViceVersa) {
    expectCases(kInventory + R"(
policies:
  - name: db
    selector: {matchLabels: {app: db}}
    ingress:
      - from: [{entity: any}]
    egress:
      - action: deny
        to: [{selector: {matchLabels: {app: api}}}]
      - to: [{selector: {matchLabels: {app: web}}}]
        ports: [{port: 80, protocol: tcp}]
)",
                {
                    {kDb, "10.0.0.1", In, kTcp, 80, true, EvalReason::Allowed, {1}},
                    {kDb, "10.0.0.2", In, kTcp, 80, true, EvalReason::Allowed, {1}},
                    {kDb, "10.0.0.1", Out, kTcp, 80, true, EvalReason::Allowed, {3}},
                    {kDb, "10.0.0.1", Out, kTcp, 81, false, EvalReason::DefaultDeny},
                    {kDb, "10.0.0.2", Out, kTcp, 80, false, EvalReason::PolicyDeny, {2}},
                    {kDb, "10.0.0.5", Out, kTcp, 80, false, EvalReason::DefaultDeny},
                    {kDb, "10.0.0.254", Out, kUdp, 53, false, EvalReason::DefaultDeny},
                    // web is not selected: neither direction is judged
                    {kWeb, "10.0.0.3", In, kTcp, 80, true, EvalReason::NotManaged},
                });
}

TEST(EvaluatorDirections, EgressOnlyPolicyStillDefaultDeniesIngress) {
    expectCases(kInventory + R"(
policies:
  - name: web
    selector: {matchLabels: {app: web}}
    egress:
      - to: [{entity: any}]
)",
                {
                    {kWeb, "10.0.0.3", Out, kTcp, 5432, true, EvalReason::Allowed, {1}},
                    {kWeb, "10.0.0.3", In, kTcp, 80, false, EvalReason::DefaultDeny},
                });
}

// ---- reason names are the datapath's

TEST(EvaluatorNames, ReasonNamesMatchTheDatapath) {
    EXPECT_EQ(evalReasonName(EvalReason::NotManaged), "no-endpoint");
    EXPECT_EQ(evalReasonName(EvalReason::Allowed), "allow-policy");
    EXPECT_EQ(evalReasonName(EvalReason::PolicyDeny), "policy-deny");
    EXPECT_EQ(evalReasonName(EvalReason::DefaultDeny), "default-deny");
    EXPECT_EQ(evalReasonName(EvalReason::Unlabeled), "unlabeled");
}

}  // namespace
}  // namespace ztseg::policy
