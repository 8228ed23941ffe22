// ztseg_xdp_l3: XDP for devices without an Ethernet header (tun in IFF_TUN
// mode, ipip, sit, ip6tnl, gre, raw IP). Frames start at the IP header and the
// version nibble names the family; everything after parsing is ztseg_xdp's
// own body, so each verdict must be the one ztseg_xdp gives the same packet
// behind an Ethernet header. What cannot be an IP packet is `malformed`.
#include <vector>

#include "bpf/scenario.hpp"

namespace ztseg::test {
namespace {

// As XdpVerdict: web is this process's workload, db enforced, aud audited,
// ext labeled but unmanaged; stranger and router carry no identity.
class XdpL3 : public FamilyTest {
  protected:
    void SetUp() override {
        FamilyTest::SetUp();
        addHosts({{n_.web, kWeb}, {n_.db, kDb}, {n_.api, kApi}, {n_.aud, kAud}, {n_.ext, kExt}});
        addWorkload(kWeb, WorkloadMode::Enforce);
        gen().modes[kDb] = WorkloadMode::Enforce;
        gen().modes[kAud] = WorkloadMode::Audit;
        addRule({kDb, kWeb, Direction::Ingress, ZTSEG_PROTO_TCP, {5432, 5432}, Action::Allow, 7});
        addRule({kWeb, kDb, Direction::Egress, ZTSEG_PROTO_TCP, {5432, 5432}, Action::Allow, 8});
        applyGen();
    }
};

// The finding: an unlabeled SYN to a service of the host itself.
TEST_P(XdpL3, UnlabeledSynToHostServiceDropped) {
    expectXdpL3(pkt(n_.stranger, n_.router).tcp(40000, 22).buildL3(), kXdpDrop,
                ZTSEG_REASON_DROP_UNLABELED);
    auto e = onlyEvent(ZTSEG_REASON_DROP_UNLABELED, kUnlabeled, 0);
    EXPECT_EQ(e.hook, ZTSEG_HOOK_XDP);
    EXPECT_EQ(e.family, n_.v6 ? 6 : 4);
    EXPECT_EQ(e.dport, 22);
}

TEST_P(XdpL3, LabeledSourceToHostPassesToStack) {
    expectXdpL3(pkt(n_.web, n_.router).tcp(40000, 22).buildL3(), kXdpPass,
                ZTSEG_REASON_PASS_TO_STACK);
    EXPECT_TRUE(takeEvents().empty());
}

TEST_P(XdpL3, EnforcedWorkloadJudgedByPolicy) {
    expectXdpL3(pkt(n_.web, n_.db).tcp(40000, 5432).buildL3(), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    expectXdpL3(pkt(n_.web, n_.db).tcp(40000, 5433).buildL3(), kXdpDrop,
                ZTSEG_REASON_DROP_DEFAULT_DENY);
    EXPECT_EQ(onlyEvent(ZTSEG_REASON_DROP_DEFAULT_DENY, kWeb, kDb).dport, 5433);
    expectXdpL3(pkt(n_.stranger, n_.db).udp(4000, 53).buildL3(), kXdpDrop,
                ZTSEG_REASON_DROP_UNLABELED);
}

TEST_P(XdpL3, TrackedReplyPasses) {
    ASSERT_EQ(runCgroupEgress(pkt(n_.web, n_.db).tcp(40000, 5432).build()).retval, kSkbPass);
    expectXdpL3(pkt(n_.db, n_.web).tcp(5432, 40000, kTcpSyn | kTcpAck).buildL3(), kXdpPass,
                ZTSEG_REASON_ALLOW_CONNTRACK);
}

TEST_P(XdpL3, PathMtuErrorFromUnlabeledRouterPassesOthersDropped) {
    auto out = pkt(n_.web, n_.db).tcp(40000, 5432);
    ASSERT_EQ(runCgroupEgress(out.build()).retval, kSkbPass);
    auto mtu = pkt(n_.router, n_.web).icmpError(n_.v6 ? 2 : 3, n_.v6 ? 0 : 4, out.icmpQuote());
    expectXdpL3(mtu.buildL3(), kXdpPass, ZTSEG_REASON_ALLOW_RELATED);
    auto err = pkt(n_.router, n_.web).icmpError(n_.v6 ? 1 : 3, n_.v6 ? 3 : 1, out.icmpQuote());
    expectXdpL3(err.buildL3(), kXdpDrop, ZTSEG_REASON_DROP_UNLABELED);
}

TEST_P(XdpL3, FragmentsFollowTheirFirst) {
    auto first = pkt(n_.web, n_.db).fragment(77, 0, true).tcp(40000, 5432).payload(16);
    auto later = pkt(n_.web, n_.db).fragment(77, 40, false).tcp(40000, 5432).payload(16);
    expectXdpL3(first.buildL3(), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    expectXdpL3(later.buildL3(), kXdpPass, ZTSEG_REASON_PASS_TO_STACK);
    auto orphan = pkt(n_.web, n_.db).fragment(78, 40, false).tcp(40000, 5432).payload(16);
    expectXdpL3(orphan.buildL3(), kXdpDrop, ZTSEG_REASON_DROP_FRAGMENT);
}

// One body, two entry points: the same packet gets the same verdict and
// reason from ztseg_xdp (behind Ethernet) and ztseg_xdp_l3 (IP first).
TEST_P(XdpL3, SameVerdictAsTheEthernetProgram) {
    std::vector<PacketBuilder> packets = {
        pkt(n_.stranger, n_.router).tcp(40000, 22),
        pkt(n_.web, n_.router).udp(4000, 53),
        pkt(n_.web, n_.db).tcp(40000, 5432),
        pkt(n_.web, n_.db).tcp(40000, 5433),
        pkt(n_.api, n_.db).tcp(40000, 5432),
        pkt(n_.stranger, n_.aud).tcp(40000, 22),
        pkt(n_.web, n_.db).icmpEcho(9),
        pkt(n_.ext, n_.db).sctp(40000, 5432),
        pkt(n_.stranger, n_.ext).protocol(47),
        pkt(n_.db, n_.web).tcp(5432, 40000, kTcpAck),
    };
    for (const auto& p : packets) {
        snapshotCounters();
        uint32_t eth = runXdp(p.build()).retval;
        std::string eth_reason = moved(ZTSEG_HOOK_XDP);
        snapshotCounters();
        uint32_t l3 = runXdpL3(p.buildL3()).retval;
        EXPECT_EQ(l3, eth);
        EXPECT_EQ(moved(ZTSEG_HOOK_XDP), eth_reason);
    }
}

// Why the datapath never attaches ztseg_xdp to such a device: it reads the
// IP header as MAC addresses and an EtherType, and lets the packet through.
TEST_P(XdpL3, EthernetProgramMisreadsIpFirstPackets) {
    expectXdp(pkt(n_.stranger, n_.router).tcp(40000, 22).buildL3(), kXdpPass,
              ZTSEG_REASON_PASS_NOT_SUBJECT);
}

INSTANTIATE_TEST_SUITE_P(Families, XdpL3, ::testing::Values(Family::V4, Family::V6), familyName);

// ---- malformed: fail closed, as at ztseg_xdp (tests/bpf/malformed_test.cpp)

class MalformedL3 : public DatapathTest {
  protected:
    void SetUp() override {
        DatapathTest::SetUp();
        addIdentity("10.1.0.10/32", kWeb);
        addIdentity("fd00:1::10/128", kWeb);
        applyGen();
    }
    static PacketBuilder v4() { return PacketBuilder::ipv4("10.1.0.10", "10.1.0.20"); }
    static PacketBuilder v6() { return PacketBuilder::ipv6("fd00:1::10", "fd00:1::20"); }

    // Dropped `malformed` once, with one dropped/malformed event.
    void expectMalformed(const std::vector<uint8_t>& p) {
        expectXdpL3(p, kXdpDrop, ZTSEG_REASON_DROP_MALFORMED);
        auto e = onlyEvent();
        EXPECT_EQ(e.verdict, ZTSEG_VERDICT_DROPPED);
        EXPECT_EQ(e.reason, ZTSEG_REASON_DROP_MALFORMED);
        EXPECT_EQ(e.hook, ZTSEG_HOOK_XDP);
    }
    // The packet cut to `len` bytes, its IP length field agreeing.
    static std::vector<uint8_t> trunc(std::vector<uint8_t> p, size_t len) {
        p.resize(len);
        bool v6 = (p[0] >> 4) == 6;
        size_t n = v6 ? len - 40 : len;
        p[v6 ? 4 : 2] = uint8_t(n >> 8);
        p[v6 ? 5 : 3] = uint8_t(n);
        return p;
    }
};

// (BPF_PROG_TEST_RUN refuses frames shorter than 14 bytes; a tun device in
// IFF_NO_PI mode refuses packets that are not IPv4 or IPv6 itself.)
TEST_F(MalformedL3, TruncatedIpv4Header) {
    auto p = v4().tcp(40000, 5432).buildL3();
    p.resize(19);
    expectMalformed(p);
}

TEST_F(MalformedL3, TruncatedIpv6Header) {
    auto p = v6().tcp(40000, 5432).buildL3();
    p.resize(39);
    expectMalformed(p);
}

TEST_F(MalformedL3, Ipv4IhlBelowFive) {
    auto p = v4().tcp(40000, 5432).buildL3();
    p[0] = 0x44;
    expectMalformed(p);
}

TEST_F(MalformedL3, Ipv4TotalLengthBeyondPacket) {
    auto p = v4().tcp(40000, 5432).buildL3();
    p[3] += 1;
    expectMalformed(p);
}

TEST_F(MalformedL3, Ipv4ZeroTotalLength) {
    auto p = v4().tcp(40000, 5432).buildL3();
    p[2] = p[3] = 0;
    expectMalformed(p);
}

TEST_F(MalformedL3, Ipv6PayloadLengthBeyondPacket) {
    auto p = v6().tcp(40000, 5432).buildL3();
    p[5] += 1;
    expectMalformed(p);
}

TEST_F(MalformedL3, TruncatedTcpHeader) {
    expectMalformed(trunc(v4().tcp(40000, 5432).buildL3(), 20 + 19));
    expectMalformed(trunc(v6().tcp(40000, 5432).buildL3(), 40 + 19));
}

TEST_F(MalformedL3, TruncatedUdpHeader) {
    expectMalformed(trunc(v4().udp(40000, 53).buildL3(), 20 + 7));
    expectMalformed(trunc(v6().udp(40000, 53).buildL3(), 40 + 7));
}

TEST_F(MalformedL3, TcpDataOffsetBeyondSegment) {
    auto p = v4().tcp(40000, 5432).buildL3();
    p[20 + 12] = 0xf0;
    expectMalformed(p);
}

// Every version nibble but 4 and 6: an L3 device carries nothing else to XDP.
TEST_F(MalformedL3, NonIpVersionNibbleDropped) {
    auto base = v4().tcp(40000, 5432).buildL3();
    for (uint8_t version : {0, 1, 2, 3, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15}) {
        auto p = base;
        p[0] = uint8_t((version << 4) | 5);
        SCOPED_TRACE("version " + std::to_string(version));
        expectMalformed(p);
    }
}

// An Ethernet frame (first byte: a MAC address) on an IP-first device.
TEST_F(MalformedL3, EthernetFrameDropped) {
    expectMalformed(v4().tcp(40000, 5432).build());
    expectMalformed(PacketBuilder::arpRequest("10.1.0.10", "10.1.0.20"));
}

TEST_F(MalformedL3, AllZeroPacketDropped) {
    expectMalformed(std::vector<uint8_t>(40, 0));
}

TEST_F(MalformedL3, WellFormedPacketsStillParse) {
    expectXdpL3(v4().tcp(40000, 22).buildL3(), kXdpPass, ZTSEG_REASON_PASS_TO_STACK);
    expectXdpL3(v6().ipv6ExtHeader(0, 8).ipv6ExtHeader(60, 16).udp(40000, 53).buildL3(), kXdpPass,
                ZTSEG_REASON_PASS_TO_STACK);
    expectXdpL3(v6().icmp(135, 0).buildL3(), kXdpPass, ZTSEG_REASON_PASS_NOT_SUBJECT);  // ND
}

}  // namespace
}  // namespace ztseg::test
