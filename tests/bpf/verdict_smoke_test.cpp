// First end-to-end packet checks of docs/design.md#policy-model through the real programs.
#include "bpf/datapath_fixture.hpp"
#include "common/packet_builder.hpp"

namespace ztseg::test {
namespace {

constexpr IdentityId kWeb = 300, kDb = 301;

class VerdictSmoke : public DatapathTest {
  protected:
    void SetUp() override {
        DatapathTest::SetUp();
        addIdentity("10.1.0.10/32", kWeb);
        addIdentity("10.1.0.20/32", kDb);
        addWorkload(kDb, WorkloadMode::Enforce);
        addRule({kDb, kWeb, Direction::Ingress, ZTSEG_PROTO_TCP, {5432, 5432}, Action::Allow, 7});
        applyGen();
    }
};

TEST_F(VerdictSmoke, UnlabeledSourceDroppedAtXdp) {
    auto r = runXdp(PacketBuilder::ipv4("10.9.9.9", "10.1.0.20").tcp(1234, 5432).build());
    EXPECT_EQ(r.retval, kXdpDrop);
    EXPECT_EQ(counted(ZTSEG_HOOK_XDP, ZTSEG_REASON_DROP_UNLABELED), 1u);
    auto ev = takeEvents();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].verdict, ZTSEG_VERDICT_DROPPED);
    EXPECT_EQ(ev[0].reason, ZTSEG_REASON_DROP_UNLABELED);
}

TEST_F(VerdictSmoke, AllowedFlowPassesXdpAndCgroupAndReplyTracked) {
    auto syn = PacketBuilder::ipv4("10.1.0.10", "10.1.0.20").tcp(40000, 5432).build();
    EXPECT_EQ(runXdp(syn).retval, kXdpPass);
    EXPECT_EQ(runCgroupIngress(syn).retval, kSkbPass);
    EXPECT_EQ(counted(ZTSEG_HOOK_CGROUP_INGRESS, ZTSEG_REASON_ALLOW_POLICY), 1u);
    auto reply =
        PacketBuilder::ipv4("10.1.0.20", "10.1.0.10").tcp(5432, 40000, kTcpSyn | kTcpAck).build();
    EXPECT_EQ(runCgroupEgress(reply).retval, kSkbPass);
    EXPECT_EQ(counted(ZTSEG_HOOK_CGROUP_EGRESS, ZTSEG_REASON_ALLOW_CONNTRACK), 1u);
    auto ev = takeEvents();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].verdict, ZTSEG_VERDICT_ALLOWED);
    EXPECT_EQ(ev[0].rule_id, 7u);
}

TEST_F(VerdictSmoke, WrongPortDefaultDenied) {
    auto syn = PacketBuilder::ipv4("10.1.0.10", "10.1.0.20").tcp(40000, 22).build();
    EXPECT_EQ(runXdp(syn).retval, kXdpDrop);
    EXPECT_EQ(counted(ZTSEG_HOOK_XDP, ZTSEG_REASON_DROP_DEFAULT_DENY), 1u);
    EXPECT_EQ(runCgroupIngress(syn).retval, kSkbDrop);
    EXPECT_EQ(counted(ZTSEG_HOOK_CGROUP_INGRESS, ZTSEG_REASON_DROP_DEFAULT_DENY), 1u);
}

}  // namespace
}  // namespace ztseg::test
