// docs/design.md#policy-model at the XDP hook, every row for IPv4 and IPv6: what XDP can
// judge from the wire (destination workload's policy, unlabeled sources,
// conntrack replies, related ICMP errors) and what it defers to the stack.
#include <vector>

#include "bpf/scenario.hpp"

namespace ztseg::test {
namespace {

// web is this process's workload (cgroup endpoint), db an enforced workload,
// aud an audited one, ext labeled but unmanaged.
class XdpVerdict : public FamilyTest {
  protected:
    void SetUp() override {
        FamilyTest::SetUp();
        addHosts({{n_.web, kWeb}, {n_.db, kDb}, {n_.api, kApi}, {n_.aud, kAud}, {n_.ext, kExt}});
        addWorkload(kWeb, WorkloadMode::Enforce);
        gen().modes[kDb] = WorkloadMode::Enforce;
        gen().modes[kAud] = WorkloadMode::Audit;
    }

    void apply(const std::vector<Rule>& rules) {
        addRules(rules);
        applyGen();
    }

    // The two most common verdicts: passed by an allow rule, dropped for want of one.
    void expectAllowed(const std::vector<uint8_t>& f) {
        expectXdp(f, kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    }
    void expectDefaultDenied(const std::vector<uint8_t>& f) {
        expectXdp(f, kXdpDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
    }
};

constexpr Rule kDbFromWeb5432{
    kDb, kWeb, Direction::Ingress, ZTSEG_PROTO_TCP, {5432, 5432}, Action::Allow, 7};
constexpr Rule kWebToDb5432{kWeb,          kDb, Direction::Egress, ZTSEG_PROTO_TCP, {5432, 5432},
                            Action::Allow, 8};
constexpr Rule kDbFromWeb1000To1999{
    kDb, kWeb, Direction::Ingress, ZTSEG_PROTO_TCP, {1000, 1999}, Action::Allow, 40};

TEST_P(XdpVerdict, UnlabeledSourceDropped) {
    apply({kDbFromWeb5432});
    expectXdp(pkt(n_.stranger, n_.db).tcp(40000, 5432).build(), kXdpDrop,
              ZTSEG_REASON_DROP_UNLABELED);
    auto e = onlyEvent(ZTSEG_REASON_DROP_UNLABELED, kUnlabeled, kDb);
    EXPECT_EQ(e.verdict, ZTSEG_VERDICT_DROPPED);
    EXPECT_EQ(e.hook, ZTSEG_HOOK_XDP);
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
    expectAllowed(pkt(n_.web, n_.db).tcp(40000, 5432).build());
    EXPECT_TRUE(takeEvents().empty());
    EXPECT_EQ(dp().conntrackEntries(), 0u);  // XDP judges, only cgroup_skb tracks
}

TEST_P(XdpVerdict, WrongPortDefaultDenied) {
    apply({kDbFromWeb5432});
    expectDefaultDenied(pkt(n_.web, n_.db).tcp(40000, 5433).build());
    auto e = onlyEvent();
    EXPECT_EQ(e.verdict, ZTSEG_VERDICT_DROPPED);
    EXPECT_EQ(e.reason, ZTSEG_REASON_DROP_DEFAULT_DENY);
    EXPECT_EQ(e.rule_id, 0u);
    EXPECT_EQ(e.dport, 5433);
}

TEST_P(XdpVerdict, EgressRuleDoesNotAdmitIngress) {
    apply({{kDb, kWeb, Direction::Egress, ZTSEG_PROTO_TCP, {5432, 5432}, Action::Allow, 9}});
    expectDefaultDenied(pkt(n_.web, n_.db).tcp(40000, 5432).build());
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
    expectDefaultDenied(pkt(n_.db, n_.web).tcp(5432, 40000, kTcpSyn | kTcpAck).build());
}

TEST_P(XdpVerdict, NarrowDenyBeatsBroadAllow) {
    apply({{kDb, kAnyIdentity, Direction::Ingress, ZTSEG_PROTO_TCP, {}, Action::Allow, 10},
           {kDb, kWeb, Direction::Ingress, ZTSEG_PROTO_TCP, {5432, 5432}, Action::Deny, 11}});
    expectXdp(pkt(n_.web, n_.db).tcp(40000, 5432).build(), kXdpDrop, ZTSEG_REASON_DROP_POLICY_DENY);
    auto e = onlyEvent();
    EXPECT_EQ(e.reason, ZTSEG_REASON_DROP_POLICY_DENY);
    EXPECT_EQ(e.rule_id, 11u);
    // the deny is narrow: the broad allow still admits the neighbouring port
    expectAllowed(pkt(n_.web, n_.db).tcp(40000, 5433).build());
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
    expectAllowed(pkt(n_.web, n_.db).icmpEcho(4321).build());
}

TEST_P(XdpVerdict, IcmpRulePortRangeIgnored) {
    apply({{kDb, kWeb, Direction::Ingress, icmpProto(), {7, 7}, Action::Allow, 31}});
    expectAllowed(pkt(n_.web, n_.db).icmpEcho(4321).build());
}

TEST_P(XdpVerdict, IcmpEchoWithoutIcmpRuleDefaultDenied) {
    apply({kDbFromWeb5432});
    expectDefaultDenied(pkt(n_.web, n_.db).icmpEcho(5432).build());
}

TEST_P(XdpVerdict, IcmpErrorAboutTrackedFlowPassesRelated) {
    apply({kWebToDb5432});
    auto out = pkt(n_.web, n_.db).tcp(40000, 5432);
    ASSERT_EQ(runCgroupEgress(out.build()).retval, kSkbPass);
    // path MTU from a router without identity: related errors pass before the unlabeled check
    expectXdp(pathMtu(n_.router, n_.web, out), kXdpPass, ZTSEG_REASON_ALLOW_RELATED);
}

// After a generation change the tracked flow is re-judged on its next packet;
// a related ICMP error (from a router without identity) must not make XDP
// forget a connection the new generation still allows.
TEST_P(XdpVerdict, IcmpErrorAfterGenerationChangeKeepsAllowedConnection) {
    apply({kWebToDb5432});
    auto out = pkt(n_.web, n_.db).tcp(40000, 5432);
    ASSERT_EQ(runCgroupEgress(out.build()).retval, kSkbPass);
    applyGen();  // generation 2, same rules
    expectXdp(pathMtu(n_.router, n_.web, out), kXdpPass, ZTSEG_REASON_ALLOW_RELATED);
    expectXdp(pkt(n_.db, n_.web).tcp(5432, 40000, kTcpSyn | kTcpAck).build(), kXdpPass,
              ZTSEG_REASON_ALLOW_CONNTRACK);
}

TEST_P(XdpVerdict, UnrelatedIcmpErrorJudgedByPolicy) {
    apply({kWebToDb5432});
    // same quote, but the flow was never tracked: a plain ICMP packet from api, no ICMP rule
    auto out = pkt(n_.web, n_.db).tcp(40000, 5432);
    expectDefaultDenied(unreachable(n_.api, n_.web, out));
    EXPECT_EQ(onlyEvent().proto, icmpProto());
}

TEST_P(XdpVerdict, PortRangeFirstPortAllowed) {
    apply({kDbFromWeb1000To1999});
    expectAllowed(pkt(n_.web, n_.db).tcp(40000, 1000).build());
}

TEST_P(XdpVerdict, PortRangeLastPortAllowed) {
    apply({kDbFromWeb1000To1999});
    expectAllowed(pkt(n_.web, n_.db).tcp(40000, 1999).build());
}

TEST_P(XdpVerdict, PortsJustOutsideRangeDefaultDenied) {
    apply({kDbFromWeb1000To1999});
    expectDefaultDenied(pkt(n_.web, n_.db).tcp(40000, 999).build());
    expectDefaultDenied(pkt(n_.web, n_.db).tcp(40000, 2000).build());
}

TEST_P(XdpVerdict, AnyProtocolRuleAdmitsEveryProtocolOnItsPort) {
    apply({{kDb, kWeb, Direction::Ingress, kAnyProtocol, {8080, 8080}, Action::Allow, 50}});
    expectAllowed(pkt(n_.web, n_.db).tcp(40000, 8080).build());
    expectAllowed(pkt(n_.web, n_.db).udp(40000, 8080).build());
    expectAllowed(pkt(n_.web, n_.db).sctp(40000, 8080).build());
    expectDefaultDenied(pkt(n_.web, n_.db).udp(40000, 8081).build());
}

TEST_P(XdpVerdict, AnyProtocolAnyPortRuleAdmitsIcmpAndRawProtocols) {
    apply({{kDb, kWeb, Direction::Ingress, kAnyProtocol, {}, Action::Allow, 51}});
    expectAllowed(pkt(n_.web, n_.db).icmpEcho(1).build());
    expectAllowed(pkt(n_.web, n_.db).protocol(47).build());
    // another peer is still not admitted
    expectDefaultDenied(pkt(n_.api, n_.db).protocol(47).build());
}

TEST_P(XdpVerdict, AnyPeerRuleAdmitsLabeledPeersOnly) {
    apply({{kDb, kAnyIdentity, Direction::Ingress, ZTSEG_PROTO_TCP, {80, 80}, Action::Allow, 60}});
    expectAllowed(pkt(n_.web, n_.db).tcp(40000, 80).build());
    expectAllowed(pkt(n_.api, n_.db).tcp(40000, 80).build());
    expectXdp(pkt(n_.stranger, n_.db).tcp(40000, 80).build(), kXdpDrop,
              ZTSEG_REASON_DROP_UNLABELED);
}

TEST_P(XdpVerdict, PeerSpecificRuleDoesNotAdmitOtherPeers) {
    apply({kDbFromWeb5432});
    expectDefaultDenied(pkt(n_.api, n_.db).tcp(40000, 5432).build());
}

TEST_P(XdpVerdict, SctpPortsJudged) {
    apply({{kDb, kWeb, Direction::Ingress, ZTSEG_PROTO_SCTP, {3868, 3868}, Action::Allow, 70}});
    expectAllowed(pkt(n_.web, n_.db).sctp(40000, 3868).build());
    expectDefaultDenied(pkt(n_.web, n_.db).sctp(40000, 3869).build());
    expectDefaultDenied(pkt(n_.web, n_.db).tcp(40000, 3868).build());
}

TEST_P(XdpVerdict, UdpPortsJudged) {
    apply({{kDb, kWeb, Direction::Ingress, ZTSEG_PROTO_UDP, {53, 53}, Action::Allow, 71}});
    expectAllowed(pkt(n_.web, n_.db).udp(40000, 53).build());
    expectDefaultDenied(pkt(n_.web, n_.db).tcp(40000, 53).build());
}

TEST_P(XdpVerdict, VlanTaggedFrameParsedToPorts) {
    apply({kDbFromWeb5432});
    expectAllowed(pkt(n_.web, n_.db).vlan(100).tcp(40000, 5432).build());
    expectDefaultDenied(pkt(n_.web, n_.db).vlan(100).tcp(40000, 5433).build());
}

TEST_P(XdpVerdict, QinQDoubleTaggedFrameParsedToPorts) {
    apply({kDbFromWeb5432});
    // 802.1ad outer tag in front of the builder's 802.1Q tag
    auto f = pkt(n_.web, n_.db).vlan(100).tcp(40000, 5432).build();
    const std::vector<uint8_t> outer{0x88, 0xa8, 0x00, 0xc8};
    f.insert(f.begin() + 12, outer.begin(), outer.end());
    expectAllowed(f);
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
