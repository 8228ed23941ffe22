// The enforcement boundary at the packet level: new flows cannot evict
// assured connections, unlabeled peers never get conntrack state, protocols
// with ports are judged by port rules and protocols without ports never match
// one.
#include <chrono>
#include <string>

#include "bpf/scenario.hpp"

namespace ztseg::test {
namespace {

constexpr uint32_t kNewCapacity = 256;

class Boundary : public FamilyTest {
  protected:
    void customize(DatapathOptions& o) override {
        o.conntrack_capacity = 1024;
        o.conntrack_new_capacity = kNewCapacity;
    }
    void SetUp() override {
        FamilyTest::SetUp();
        addHosts({{n_.web, kWeb}, {n_.db, kDb}, {n_.api, kApi}});
    }
    void setup(WorkloadMode mode, const std::vector<Rule>& rules) {
        addWorkload(kWeb, mode);
        addRules(rules);
        applyGen();
    }
    // web -> db:5432, the whole handshake as web's hooks see it.
    void handshake(uint16_t sport) {
        ASSERT_EQ(runCgroupEgress(pkt(n_.web, n_.db).tcp(sport, 5432).build()).retval, kSkbPass);
        ASSERT_EQ(
            runCgroupIngress(
                pkt(n_.db, n_.web).tcp(5432, sport, kTcpSyn | kTcpAck).seqAck(7000, 2).build())
                .retval,
            kSkbPass);
        ASSERT_EQ(
            runCgroupEgress(pkt(n_.web, n_.db).tcp(sport, 5432, kTcpAck).seqAck(2, 7001).build())
                .retval,
            kSkbPass);
    }
};

constexpr Rule kWebToDb{kWeb,          kDb, Direction::Egress, ZTSEG_PROTO_TCP, {5432, 5432},
                        Action::Allow, 1};
constexpr Rule kWebFromApiAny{kWeb, kApi, Direction::Ingress, kAnyProtocol, {}, Action::Allow, 2};

TEST_P(Boundary, HandshakeAssuresTheConnection) {
    setup(WorkloadMode::Enforce, {kWebToDb});
    handshake(40000);
    ConntrackUsage u = dp().conntrackUsage();
    EXPECT_EQ(u.assured, 1u);
    EXPECT_EQ(u.fresh, 0u);
    EXPECT_EQ(u.assured_total, 1u);
}

// A blind spoofer cannot guess the reply's sequence number: an ACK that does
// not acknowledge it leaves the flow unassured.
TEST_P(Boundary, AckNotCoveringTheReplyDoesNotAssure) {
    setup(WorkloadMode::Enforce, {kWebFromApiAny});
    auto syn = pkt(n_.api, n_.web).tcp(40000, 8080);
    ASSERT_EQ(runCgroupIngress(syn.build()).retval, kSkbPass);
    ASSERT_EQ(runCgroupEgress(
                  pkt(n_.web, n_.api).tcp(8080, 40000, kTcpSyn | kTcpAck).seqAck(123456, 2).build())
                  .retval,
              kSkbPass);
    // the spoofer's guess
    ASSERT_EQ(
        runCgroupIngress(pkt(n_.api, n_.web).tcp(40000, 8080, kTcpAck).seqAck(2, 999999999).build())
            .retval,
        kSkbPass);
    EXPECT_EQ(dp().conntrackUsage().assured, 0u);
    // the real peer's ACK
    ASSERT_EQ(
        runCgroupIngress(pkt(n_.api, n_.web).tcp(40000, 8080, kTcpAck).seqAck(2, 123457).build())
            .retval,
        kSkbPass);
    EXPECT_EQ(dp().conntrackUsage().assured, 1u);
}

// Finding 5: 3000 SYNs at capacity 1024 evicted an idle allowed connection.
// Now new flows only ever evict new flows.
TEST_P(Boundary, FloodOfNewFlowsNeverEvictsAnAssuredConnection) {
    setup(WorkloadMode::Enforce, {kWebToDb, kWebFromApiAny});
    handshake(40000);
    const uint32_t flood = 12 * kNewCapacity;
    auto t0 = std::chrono::steady_clock::now();
    for (uint32_t i = 0; i < flood; ++i) {
        auto syn = pkt(n_.api, n_.web).tcp(uint16_t(1024 + i % 60000), uint16_t(8000 + i / 60000));
        ASSERT_EQ(runCgroupIngress(syn.build()).retval, kSkbPass);
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ConntrackUsage u = dp().conntrackUsage();
    EXPECT_EQ(u.assured, 1u);
    EXPECT_LE(u.fresh, kNewCapacity);
    EXPECT_GE(u.created, flood);
    // the idle connection's next packets, both ways, are still its own
    expectIn(pkt(n_.db, n_.web).tcp(5432, 40000, kTcpAck).seqAck(7001, 2).build(), kSkbPass,
             ZTSEG_REASON_ALLOW_CONNTRACK);
    expectOut(pkt(n_.web, n_.db).tcp(40000, 5432, kTcpAck).seqAck(2, 7001).build(), kSkbPass,
              ZTSEG_REASON_ALLOW_CONNTRACK);
    RecordProperty("new_flows_per_second", std::to_string(int64_t(flood / secs)));
}

// Finding 5: unlabeled flows to an audit-mode workload created conntrack state.
TEST_P(Boundary, UnlabeledPeerOfAuditedWorkloadGetsNoConntrackState) {
    setup(WorkloadMode::Audit, {});
    for (uint16_t port = 1000; port < 1100; ++port) {
        expectIn(pkt(n_.stranger, n_.web).tcp(port, 22).build(), kSkbPass, ZTSEG_REASON_AUDIT);
    }
    EXPECT_EQ(dp().conntrackEntries(), 0u);
    EXPECT_EQ(dp().conntrackUsage().untracked, 100u);
    // a labeled peer's would-drop flow is still tracked (its replies pass silently)
    expectIn(pkt(n_.api, n_.web).tcp(40000, 22).build(), kSkbPass, ZTSEG_REASON_AUDIT);
    EXPECT_EQ(dp().conntrackEntries(), 1u);
}

// Finding 9: UDP-Lite and DCCP were judged as if they had no ports.
TEST_P(Boundary, UdpLiteAndDccpAreJudgedByTheirPorts) {
    setup(WorkloadMode::Enforce,
          {{kWeb, kApi, Direction::Ingress, kAnyProtocol, {}, Action::Allow, 3},
           {kWeb, kApi, Direction::Ingress, kAnyProtocol, {5000, 5000}, Action::Deny, 4}});
    for (uint8_t proto : {uint8_t(ZTSEG_PROTO_UDPLITE), uint8_t(ZTSEG_PROTO_DCCP)}) {
        expectIn(pkt(n_.api, n_.web).portedProtocol(proto, 40000, 5000).build(), kSkbDrop,
                 ZTSEG_REASON_DROP_POLICY_DENY);
        expectIn(pkt(n_.api, n_.web).portedProtocol(proto, 40000, 5001).build(), kSkbPass,
                 ZTSEG_REASON_ALLOW_POLICY);
    }
}

// A protocol without ports never matches a port rule, allow or deny.
TEST_P(Boundary, ProtocolWithoutPortsNeverMatchesAPortRule) {
    setup(WorkloadMode::Enforce,
          {{kWeb, kApi, Direction::Ingress, kAnyProtocol, {0, 1023}, Action::Allow, 5},
           {kWeb, kDb, Direction::Ingress, kAnyProtocol, {}, Action::Allow, 6},
           {kWeb, kDb, Direction::Ingress, kAnyProtocol, {0, 1023}, Action::Deny, 7}});
    expectIn(pkt(n_.api, n_.web).protocol(47).build(), kSkbDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
    expectIn(pkt(n_.db, n_.web).protocol(47).build(), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    // the port rules still hold for protocols with ports
    expectIn(pkt(n_.api, n_.web).udp(40000, 53).build(), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    expectIn(pkt(n_.db, n_.web).udp(40000, 53).build(), kSkbDrop, ZTSEG_REASON_DROP_POLICY_DENY);
}

INSTANTIATE_TEST_SUITE_P(Families, Boundary, ::testing::Values(Family::V4, Family::V6), familyName);

}  // namespace
}  // namespace ztseg::test
