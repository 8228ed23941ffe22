// DESIGN section 3 at the XDP hook, every row for IPv4 and IPv6: what XDP can
// judge from the wire (destination workload's policy, unlabeled sources,
// conntrack replies, related ICMP errors) and what it defers to the stack.
#include <arpa/inet.h>

#include <string>
#include <vector>

#include "bpf/datapath_fixture.hpp"
#include "common/packet_builder.hpp"
#include "datapath/names.hpp"

namespace ztseg::test {
namespace {

constexpr IdentityId kWeb = 300, kDb = 301, kApi = 302, kAud = 303, kExt = 304;

enum class Family { V4, V6 };

// Addresses of one family. web is this process's workload (cgroup endpoint),
// db an enforced workload, aud an audited one, ext labeled but unmanaged,
// stranger and router carry no identity.
struct Net {
    bool v6;
    std::string web, db, api, aud, ext, stranger, router;
};

Net netFor(Family f) {
    if (f == Family::V4) {
        return {false,       "10.1.0.10", "10.1.0.20", "10.1.0.30",
                "10.1.0.40", "10.1.0.50", "10.9.9.9",  "10.1.0.1"};
    }
    return {true,         "fd00:1::10", "fd00:1::20", "fd00:1::30",
            "fd00:1::40", "fd00:1::50", "fd00:9::9",  "fd00:1::1"};
}

class XdpVerdict : public DatapathTest, public ::testing::WithParamInterface<Family> {
  protected:
    void SetUp() override {
        DatapathTest::SetUp();
        n_ = netFor(GetParam());
        addIdentity(host(n_.web), kWeb);
        addIdentity(host(n_.db), kDb);
        addIdentity(host(n_.api), kApi);
        addIdentity(host(n_.aud), kAud);
        addIdentity(host(n_.ext), kExt);
        addWorkload(kWeb, WorkloadMode::Enforce);
        gen().modes[kDb] = WorkloadMode::Enforce;
        gen().modes[kAud] = WorkloadMode::Audit;
    }

    void apply(std::vector<Rule> rules) {
        for (const Rule& r : rules) {
            addRule(r);
        }
        applyGen();
    }

    std::string host(const std::string& a) const { return a + (n_.v6 ? "/128" : "/32"); }
    PacketBuilder pkt(const std::string& s, const std::string& d) const {
        return n_.v6 ? PacketBuilder::ipv6(s, d) : PacketBuilder::ipv4(s, d);
    }
    uint8_t icmpProto() const { return n_.v6 ? ZTSEG_PROTO_ICMPV6 : ZTSEG_PROTO_ICMP; }
    // Destination unreachable (v4 3/1 host, v6 1/3 address) from src to dst quoting `about`.
    std::vector<uint8_t> unreachable(const std::string& s, const std::string& d,
                                     const PacketBuilder& about) const {
        return pkt(s, d).icmpError(n_.v6 ? 1 : 3, n_.v6 ? 3 : 1, about.icmpQuote()).build();
    }

    // "default-deny=1 ..." for failure messages.
    std::string moved(uint32_t hook) {
        std::string s;
        for (uint32_t r = 0; r < ZTSEG_REASON_MAX; ++r) {
            if (uint64_t c = counted(hook, r)) {
                s += std::string(reasonName(r)) + "=" + std::to_string(c) + " ";
            }
        }
        return s.empty() ? "nothing" : s;
    }

    uint64_t countedAll(uint32_t hook) {
        uint64_t sum = 0;
        for (uint32_t r = 0; r < ZTSEG_REASON_MAX; ++r) {
            sum += counted(hook, r);
        }
        return sum;
    }

    // Exactly one XDP verdict, under `reason`.
    void expectXdp(const std::vector<uint8_t>& frame, uint32_t retval, uint32_t reason) {
        snapshotCounters();
        EXPECT_EQ(runXdp(frame).retval, retval);
        EXPECT_EQ(counted(ZTSEG_HOOK_XDP, reason), 1u)
            << "expected " << reasonName(reason) << ", counted " << moved(ZTSEG_HOOK_XDP);
        EXPECT_EQ(countedAll(ZTSEG_HOOK_XDP), 1u);
    }

    ztseg_flow_event onlyEvent() {
        auto ev = takeEvents();
        EXPECT_EQ(ev.size(), 1u);
        return ev.empty() ? ztseg_flow_event{} : ev.front();
    }

    Net n_;
};

std::string familyName(const ::testing::TestParamInfo<Family>& i) {
    return i.param == Family::V4 ? "IPv4" : "IPv6";
}

constexpr Rule kDbFromWeb5432{
    kDb, kWeb, Direction::Ingress, ZTSEG_PROTO_TCP, {5432, 5432}, Action::Allow, 7};
constexpr Rule kWebToDb5432{kWeb,          kDb, Direction::Egress, ZTSEG_PROTO_TCP, {5432, 5432},
                            Action::Allow, 8};

TEST_P(XdpVerdict, UnlabeledSourceDropped) {
    apply({kDbFromWeb5432});
    expectXdp(pkt(n_.stranger, n_.db).tcp(40000, 5432).build(), kXdpDrop,
              ZTSEG_REASON_DROP_UNLABELED);
    auto e = onlyEvent();
    EXPECT_EQ(e.verdict, ZTSEG_VERDICT_DROPPED);
    EXPECT_EQ(e.reason, ZTSEG_REASON_DROP_UNLABELED);
    EXPECT_EQ(e.hook, ZTSEG_HOOK_XDP);
    EXPECT_EQ(e.src_identity, kUnlabeled);
    EXPECT_EQ(e.dst_identity, kDb);
    EXPECT_EQ(e.rule_id, 0u);
}

TEST_P(XdpVerdict, UnlabeledSourceToUnmanagedDestinationDropped) {
    apply({});
    expectXdp(pkt(n_.stranger, n_.ext).udp(5000, 53).build(), kXdpDrop,
              ZTSEG_REASON_DROP_UNLABELED);
    EXPECT_EQ(onlyEvent().reason, ZTSEG_REASON_DROP_UNLABELED);
}

TEST_P(XdpVerdict, AllowedFlowPassesWithoutEventOrConntrack) {
    apply({kDbFromWeb5432});
    expectXdp(pkt(n_.web, n_.db).tcp(40000, 5432).build(), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    EXPECT_TRUE(takeEvents().empty());
    EXPECT_EQ(dp().conntrackEntries(), 0u);  // XDP judges, only cgroup_skb tracks
}

TEST_P(XdpVerdict, WrongPortDefaultDenied) {
    apply({kDbFromWeb5432});
    expectXdp(pkt(n_.web, n_.db).tcp(40000, 5433).build(), kXdpDrop,
              ZTSEG_REASON_DROP_DEFAULT_DENY);
    auto e = onlyEvent();
    EXPECT_EQ(e.verdict, ZTSEG_VERDICT_DROPPED);
    EXPECT_EQ(e.reason, ZTSEG_REASON_DROP_DEFAULT_DENY);
    EXPECT_EQ(e.rule_id, 0u);
    EXPECT_EQ(e.dport, 5433);
}

TEST_P(XdpVerdict, EgressRuleDoesNotAdmitIngress) {
    apply({{kDb, kWeb, Direction::Egress, ZTSEG_PROTO_TCP, {5432, 5432}, Action::Allow, 9}});
    expectXdp(pkt(n_.web, n_.db).tcp(40000, 5432).build(), kXdpDrop,
              ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_P(XdpVerdict, TrackedReplyPasses) {
    apply({kWebToDb5432});
    ASSERT_EQ(runCgroupEgress(pkt(n_.web, n_.db).tcp(40000, 5432).build()).retval, kSkbPass);
    ASSERT_EQ(counted(ZTSEG_HOOK_CGROUP_EGRESS, ZTSEG_REASON_ALLOW_POLICY), 1u);
    expectXdp(pkt(n_.db, n_.web).tcp(5432, 40000, kTcpSyn | kTcpAck).build(), kXdpPass,
              ZTSEG_REASON_ALLOW_CONNTRACK);
}

TEST_P(XdpVerdict, UntrackedReplyDefaultDenied) {
    apply({kWebToDb5432});
    expectXdp(pkt(n_.db, n_.web).tcp(5432, 40000, kTcpSyn | kTcpAck).build(), kXdpDrop,
              ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_P(XdpVerdict, NarrowDenyBeatsBroadAllow) {
    apply({{kDb, kAnyIdentity, Direction::Ingress, ZTSEG_PROTO_TCP, {}, Action::Allow, 10},
           {kDb, kWeb, Direction::Ingress, ZTSEG_PROTO_TCP, {5432, 5432}, Action::Deny, 11}});
    expectXdp(pkt(n_.web, n_.db).tcp(40000, 5432).build(), kXdpDrop, ZTSEG_REASON_DROP_POLICY_DENY);
    auto e = onlyEvent();
    EXPECT_EQ(e.reason, ZTSEG_REASON_DROP_POLICY_DENY);
    EXPECT_EQ(e.rule_id, 11u);
    // the deny is narrow: the broad allow still admits the neighbouring port
    expectXdp(pkt(n_.web, n_.db).tcp(40000, 5433).build(), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
}

TEST_P(XdpVerdict, BroadDenyBeatsNarrowAllow) {
    apply({{kDb, kWeb, Direction::Ingress, ZTSEG_PROTO_TCP, {5432, 5432}, Action::Allow, 20},
           {kDb, kAnyIdentity, Direction::Ingress, kAnyProtocol, {}, Action::Deny, 21}});
    expectXdp(pkt(n_.web, n_.db).tcp(40000, 5432).build(), kXdpDrop, ZTSEG_REASON_DROP_POLICY_DENY);
    EXPECT_EQ(onlyEvent().rule_id, 21u);
}

TEST_P(XdpVerdict, AuditDestinationDeferredToStack) {
    apply({});
    // would be dropped as unlabeled for an enforced destination
    expectXdp(pkt(n_.stranger, n_.aud).tcp(40000, 22).build(), kXdpPass,
              ZTSEG_REASON_PASS_TO_STACK);
    EXPECT_TRUE(takeEvents().empty());
}

TEST_P(XdpVerdict, UnmanagedDestinationLabeledSourcePasses) {
    apply({});
    expectXdp(pkt(n_.web, n_.ext).tcp(40000, 22).build(), kXdpPass, ZTSEG_REASON_PASS_TO_STACK);
}

TEST_P(XdpVerdict, IcmpEchoAllowedByIcmpRule) {
    apply({{kDb, kWeb, Direction::Ingress, icmpProto(), {}, Action::Allow, 30}});
    expectXdp(pkt(n_.web, n_.db).icmpEcho(4321).build(), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
}

TEST_P(XdpVerdict, IcmpRulePortRangeIgnored) {
    apply({{kDb, kWeb, Direction::Ingress, icmpProto(), {7, 7}, Action::Allow, 31}});
    expectXdp(pkt(n_.web, n_.db).icmpEcho(4321).build(), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
}

TEST_P(XdpVerdict, IcmpEchoWithoutIcmpRuleDefaultDenied) {
    apply({kDbFromWeb5432});
    expectXdp(pkt(n_.web, n_.db).icmpEcho(5432).build(), kXdpDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_P(XdpVerdict, IcmpErrorAboutTrackedFlowPassesRelated) {
    apply({kWebToDb5432});
    auto out = pkt(n_.web, n_.db).tcp(40000, 5432);
    ASSERT_EQ(runCgroupEgress(out.build()).retval, kSkbPass);
    // from a router without identity: related errors pass before the unlabeled check
    expectXdp(unreachable(n_.router, n_.web, out), kXdpPass, ZTSEG_REASON_ALLOW_RELATED);
}

// After a generation change the tracked flow is re-judged on its next packet;
// a related ICMP error (from a router without identity) must not make XDP
// forget a connection the new generation still allows.
TEST_P(XdpVerdict, IcmpErrorAfterGenerationChangeKeepsAllowedConnection) {
    apply({kWebToDb5432});
    auto out = pkt(n_.web, n_.db).tcp(40000, 5432);
    ASSERT_EQ(runCgroupEgress(out.build()).retval, kSkbPass);
    applyGen();  // generation 2, same rules
    expectXdp(unreachable(n_.router, n_.web, out), kXdpPass, ZTSEG_REASON_ALLOW_RELATED);
    expectXdp(pkt(n_.db, n_.web).tcp(5432, 40000, kTcpSyn | kTcpAck).build(), kXdpPass,
              ZTSEG_REASON_ALLOW_CONNTRACK);
}

TEST_P(XdpVerdict, UnrelatedIcmpErrorJudgedByPolicy) {
    apply({kWebToDb5432});
    // same quote, but the flow was never tracked: a plain ICMP packet from api, no ICMP rule
    auto out = pkt(n_.web, n_.db).tcp(40000, 5432);
    expectXdp(unreachable(n_.api, n_.web, out), kXdpDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
    EXPECT_EQ(onlyEvent().proto, icmpProto());
}

TEST_P(XdpVerdict, PortRangeFirstPortAllowed) {
    apply({{kDb, kWeb, Direction::Ingress, ZTSEG_PROTO_TCP, {1000, 1999}, Action::Allow, 40}});
    expectXdp(pkt(n_.web, n_.db).tcp(40000, 1000).build(), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
}

TEST_P(XdpVerdict, PortRangeLastPortAllowed) {
    apply({{kDb, kWeb, Direction::Ingress, ZTSEG_PROTO_TCP, {1000, 1999}, Action::Allow, 40}});
    expectXdp(pkt(n_.web, n_.db).tcp(40000, 1999).build(), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
}

TEST_P(XdpVerdict, PortsJustOutsideRangeDefaultDenied) {
    apply({{kDb, kWeb, Direction::Ingress, ZTSEG_PROTO_TCP, {1000, 1999}, Action::Allow, 40}});
    expectXdp(pkt(n_.web, n_.db).tcp(40000, 999).build(), kXdpDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
    expectXdp(pkt(n_.web, n_.db).tcp(40000, 2000).build(), kXdpDrop,
              ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_P(XdpVerdict, AnyProtocolRuleAdmitsEveryProtocolOnItsPort) {
    apply({{kDb, kWeb, Direction::Ingress, kAnyProtocol, {8080, 8080}, Action::Allow, 50}});
    expectXdp(pkt(n_.web, n_.db).tcp(40000, 8080).build(), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    expectXdp(pkt(n_.web, n_.db).udp(40000, 8080).build(), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    expectXdp(pkt(n_.web, n_.db).sctp(40000, 8080).build(), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    expectXdp(pkt(n_.web, n_.db).udp(40000, 8081).build(), kXdpDrop,
              ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_P(XdpVerdict, AnyProtocolAnyPortRuleAdmitsIcmpAndRawProtocols) {
    apply({{kDb, kWeb, Direction::Ingress, kAnyProtocol, {}, Action::Allow, 51}});
    expectXdp(pkt(n_.web, n_.db).icmpEcho(1).build(), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    expectXdp(pkt(n_.web, n_.db).protocol(47).build(), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    // another peer is still not admitted
    expectXdp(pkt(n_.api, n_.db).protocol(47).build(), kXdpDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_P(XdpVerdict, AnyPeerRuleAdmitsLabeledPeersOnly) {
    apply({{kDb, kAnyIdentity, Direction::Ingress, ZTSEG_PROTO_TCP, {80, 80}, Action::Allow, 60}});
    expectXdp(pkt(n_.web, n_.db).tcp(40000, 80).build(), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    expectXdp(pkt(n_.api, n_.db).tcp(40000, 80).build(), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    expectXdp(pkt(n_.stranger, n_.db).tcp(40000, 80).build(), kXdpDrop,
              ZTSEG_REASON_DROP_UNLABELED);
}

TEST_P(XdpVerdict, PeerSpecificRuleDoesNotAdmitOtherPeers) {
    apply({kDbFromWeb5432});
    expectXdp(pkt(n_.api, n_.db).tcp(40000, 5432).build(), kXdpDrop,
              ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_P(XdpVerdict, SctpPortsJudged) {
    apply({{kDb, kWeb, Direction::Ingress, ZTSEG_PROTO_SCTP, {3868, 3868}, Action::Allow, 70}});
    expectXdp(pkt(n_.web, n_.db).sctp(40000, 3868).build(), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    expectXdp(pkt(n_.web, n_.db).sctp(40000, 3869).build(), kXdpDrop,
              ZTSEG_REASON_DROP_DEFAULT_DENY);
    expectXdp(pkt(n_.web, n_.db).tcp(40000, 3868).build(), kXdpDrop,
              ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_P(XdpVerdict, UdpPortsJudged) {
    apply({{kDb, kWeb, Direction::Ingress, ZTSEG_PROTO_UDP, {53, 53}, Action::Allow, 71}});
    expectXdp(pkt(n_.web, n_.db).udp(40000, 53).build(), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    expectXdp(pkt(n_.web, n_.db).tcp(40000, 53).build(), kXdpDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_P(XdpVerdict, VlanTaggedFrameParsedToPorts) {
    apply({kDbFromWeb5432});
    expectXdp(pkt(n_.web, n_.db).vlan(100).tcp(40000, 5432).build(), kXdpPass,
              ZTSEG_REASON_ALLOW_POLICY);
    expectXdp(pkt(n_.web, n_.db).vlan(100).tcp(40000, 5433).build(), kXdpDrop,
              ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_P(XdpVerdict, QinQDoubleTaggedFrameParsedToPorts) {
    apply({kDbFromWeb5432});
    // 802.1ad outer tag in front of the builder's 802.1Q tag
    auto f = pkt(n_.web, n_.db).vlan(100).tcp(40000, 5432).build();
    const std::vector<uint8_t> outer{0x88, 0xa8, 0x00, 0xc8};
    f.insert(f.begin() + 12, outer.begin(), outer.end());
    expectXdp(f, kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
}

INSTANTIATE_TEST_SUITE_P(Families, XdpVerdict, ::testing::Values(Family::V4, Family::V6),
                         familyName);

// Not subject to policy whatever the identities: ARP, ND/MLD, other non-IP.
class XdpNotSubject : public DatapathTest {
  protected:
    void SetUp() override {
        DatapathTest::SetUp();
        addIdentity("10.1.0.20/32", kDb);
        addIdentity("fd00:1::20/128", kDb);
        addWorkload(kDb, WorkloadMode::Enforce);
        applyGen();
    }
    void expectNotSubject(const std::vector<uint8_t>& frame) {
        EXPECT_EQ(runXdp(frame).retval, kXdpPass);
        EXPECT_EQ(counted(ZTSEG_HOOK_XDP, ZTSEG_REASON_PASS_NOT_SUBJECT), 1u);
        EXPECT_EQ(counted(ZTSEG_HOOK_XDP, ZTSEG_REASON_DROP_UNLABELED), 0u);
        EXPECT_TRUE(takeEvents().empty());
    }
};

TEST_F(XdpNotSubject, ArpRequestPasses) {
    expectNotSubject(PacketBuilder::arpRequest("10.9.9.9", "10.1.0.20"));
}

TEST_F(XdpNotSubject, NeighbourSolicitationFromUnlabeledPasses) {
    expectNotSubject(PacketBuilder::ipv6("fd00:9::9", "fd00:1::20").ttl(255).icmp(135, 0).build());
}

TEST_F(XdpNotSubject, MldReportFromUnlabeledPasses) {
    expectNotSubject(PacketBuilder::ipv6("fd00:9::9", "fd00:1::20").icmp(143, 0).build());
}

TEST_F(XdpNotSubject, NonIpEthertypePasses) {
    auto f = PacketBuilder::arpRequest("10.9.9.9", "10.1.0.20");
    f[12] = 0x88;  // LLDP
    f[13] = 0xcc;
    expectNotSubject(f);
}

}  // namespace
}  // namespace ztseg::test
