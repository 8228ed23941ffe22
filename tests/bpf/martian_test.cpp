// Loopback addresses arriving at XDP (which never runs on loopback) are forged:
// with net.ipv4.conf.*.route_localnet a packet to 127.0.0.1 from the wire
// reaches services bound to loopback. Both XDP programs drop them as `martian`
// (counted, with a flow event) before any identity lookup, so no identity,
// not even a `world` prefix covering every address, can let one through.
#include <vector>

#include "bpf/scenario.hpp"

namespace ztseg::test {
namespace {

class Martian : public FamilyTest {
  protected:
    void SetUp() override {
        FamilyTest::SetUp();
        addHosts({{n_.web, kWeb}, {n_.db, kDb}});
        // world: every other address is labeled, loopback included
        addIdentity(n_.v6 ? "::/0" : "0.0.0.0/0", kExt);
        addWorkload(kWeb, WorkloadMode::Enforce);
        gen().modes[kDb] = WorkloadMode::Enforce;
        addRule({kDb,
                 kAnyIdentity,
                 Direction::Ingress,
                 ZTSEG_PROTO_TCP,
                 {5432, 5432},
                 Action::Allow,
                 7});
    }

    // Dropped `martian` by ztseg_xdp and by ztseg_xdp_l3, one event each.
    void expectMartian(const PacketBuilder& p) {
        expectXdp(p.build(), kXdpDrop, ZTSEG_REASON_DROP_MARTIAN);
        expectEvent();
        expectXdpL3(p.buildL3(), kXdpDrop, ZTSEG_REASON_DROP_MARTIAN);
        expectEvent();
    }
    void expectEvent() {
        auto e = onlyEvent();
        EXPECT_EQ(e.verdict, ZTSEG_VERDICT_DROPPED);
        EXPECT_EQ(e.reason, ZTSEG_REASON_DROP_MARTIAN);
        EXPECT_EQ(e.hook, ZTSEG_HOOK_XDP);
        EXPECT_EQ(e.src_identity, kUnlabeled) << "no identity was looked up";
        EXPECT_EQ(e.dst_identity, kUnlabeled);
    }
    void expectPassed(const PacketBuilder& p, uint32_t reason) {
        expectXdp(p.build(), kXdpPass, reason);
        expectXdpL3(p.buildL3(), kXdpPass, reason);
    }
    std::string loopbackNet() const { return n_.v6 ? "::ffff:127.1.2.3" : "127.255.255.254"; }
};

TEST_P(Martian, LoopbackSourceToAdmittingWorkload) {
    applyGen();
    expectMartian(pkt(n_.loop, n_.db).tcp(40000, 5432));  // `world` would be admitted
}

TEST_P(Martian, LoopbackSourceToHost) {
    applyGen();
    expectMartian(pkt(n_.loop, n_.router).tcp(40000, 22));
}

TEST_P(Martian, LoopbackDestinationFromLabeledSource) {
    applyGen();
    expectMartian(pkt(n_.web, n_.loop).tcp(40000, 6379));
    expectMartian(pkt(n_.web, n_.loop).udp(40000, 53));
}

TEST_P(Martian, WholeLoopbackRange) {
    applyGen();
    expectMartian(pkt(loopbackNet(), n_.router).tcp(40000, 22));
    expectMartian(pkt(n_.web, loopbackNet()).icmpEcho(3));
}

TEST_P(Martian, FragmentsToo) {
    applyGen();
    expectMartian(pkt(n_.web, n_.loop).fragment(9, 0, true).tcp(40000, 22).payload(16));
    expectMartian(pkt(n_.web, n_.loop).fragment(9, 40, false).payload(16));
}

// Also before any policy is loaded, when everything else passes.
TEST_P(Martian, DroppedWithoutPolicy) {
    expectMartian(pkt(n_.loop, n_.router).tcp(40000, 22));
    expectPassed(pkt(n_.stranger, n_.router).tcp(40000, 22), ZTSEG_REASON_PASS_TO_STACK);
}

// ND and MLD are not subject to policy, but not from a loopback address.
TEST_P(Martian, NeighbourDiscoveryFromLoopback) {
    if (!n_.v6) {
        GTEST_SKIP() << "IPv6 only";
    }
    applyGen();
    expectMartian(pkt(n_.loop, "ff02::1:ff00:20").icmp(135, 0));
}

// The neighbours of the loopback range are ordinary addresses.
TEST_P(Martian, AddressesNextToLoopbackAreNotMartian) {
    applyGen();
    std::vector<std::string> near =
        n_.v6 ? std::vector<std::string>{"::2", "::ffff:128.0.0.1", "::127.0.0.1", "1::1"}
              : std::vector<std::string>{"126.255.255.255", "128.0.0.1", "0.0.0.1"};
    for (const auto& a : near) {
        SCOPED_TRACE(a);
        expectPassed(pkt(a, n_.router).tcp(40000, 22), ZTSEG_REASON_PASS_TO_STACK);
        expectPassed(pkt(n_.web, a).tcp(40000, 22), ZTSEG_REASON_PASS_TO_STACK);
    }
    EXPECT_TRUE(takeEvents().empty());
}

INSTANTIATE_TEST_SUITE_P(Families, Martian, ::testing::Values(Family::V4, Family::V6), familyName);

}  // namespace
}  // namespace ztseg::test
