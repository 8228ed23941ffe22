// Fail closed: truncated or invalid headers are dropped as `malformed` (never
// passed), valid IPv6 extension chains are walked to the ports, and IP
// fragments follow docs/design.md#policy-model (first judged by ports, the rest follow it
// at XDP, non-first fragments refused at cgroup_skb).
#include <bpf/bpf.h>

#include <cerrno>
#include <string>
#include <vector>

#include "bpf/scenario.hpp"
#include "model/names.hpp"

namespace ztseg::test {
namespace {

constexpr size_t kEth = 14;

// web (this process's workload) talks to db on tcp/5432 and udp/53; XDP sees
// web -> db as ingress into db, cgroup egress as web's egress.
class Malformed : public DatapathTest {
  protected:
    void SetUp() override {
        DatapathTest::SetUp();
        for (const char* p : {"10.1.0.10/32", "fd00:1::10/128"}) {
            addIdentity(p, kWeb);
        }
        for (const char* p : {"10.1.0.20/32", "fd00:1::20/128"}) {
            addIdentity(p, kDb);
        }
        addWorkload(kWeb, WorkloadMode::Enforce);
        gen().modes[kDb] = WorkloadMode::Enforce;
        for (uint8_t proto : {ZTSEG_PROTO_TCP, ZTSEG_PROTO_UDP}) {
            uint16_t port = proto == ZTSEG_PROTO_TCP ? 5432 : 53;
            addRule({kDb, kWeb, Direction::Ingress, proto, {port, port}, Action::Allow, 1});
            addRule({kWeb, kDb, Direction::Egress, proto, {port, port}, Action::Allow, 2});
        }
        applyGen();
    }

    static PacketBuilder v4() { return PacketBuilder::ipv4("10.1.0.10", "10.1.0.20"); }
    static PacketBuilder v6() { return PacketBuilder::ipv6("fd00:1::10", "fd00:1::20"); }

    // Cut the frame to `l3_len` bytes of L3 and make the IP length field agree,
    // so only the truncated header (not the length check) can refuse it.
    static std::vector<uint8_t> truncL3(std::vector<uint8_t> f, size_t l3_len) {
        f.resize(kEth + l3_len);
        bool is_v6 = f[12] == 0x86 && f[13] == 0xdd;
        size_t len = is_v6 ? l3_len - 40 : l3_len;
        size_t off = kEth + (is_v6 ? 4 : 2);
        f[off] = uint8_t(len >> 8);
        f[off + 1] = uint8_t(len);
        return f;
    }

    // web:40000 -> db:`dport` with 16 bytes of payload, as the fragment of
    // datagram `id` at `offset` (only the first, at 0, carries the TCP header).
    static std::vector<uint8_t> tcpFragment(PacketBuilder ip, uint32_t id, uint16_t offset,
                                            bool more, uint16_t dport) {
        return ip.fragment(id, offset, more).tcp(40000, dport).payload(16).build();
    }

    // Dropped as malformed exactly once per hook, one `dropped/malformed` event each.
    void expectMalformedAtXdp(const std::vector<uint8_t>& f) { expectMalformed(f, false); }
    void expectMalformed(const std::vector<uint8_t>& f, bool cgroup = true) {
        expectAt(ZTSEG_HOOK_XDP, f, kXdpDrop, ZTSEG_REASON_DROP_MALFORMED);
        size_t hooks = 1;
        if (cgroup) {
            expectAt(ZTSEG_HOOK_CGROUP_INGRESS, f, kSkbDrop, ZTSEG_REASON_DROP_MALFORMED);
            expectAt(ZTSEG_HOOK_CGROUP_EGRESS, f, kSkbDrop, ZTSEG_REASON_DROP_MALFORMED);
            hooks = 3;
        }
        auto ev = takeEvents();
        ASSERT_EQ(ev.size(), hooks);
        for (const auto& e : ev) {
            EXPECT_EQ(e.verdict, ZTSEG_VERDICT_DROPPED);
            EXPECT_EQ(e.reason, ZTSEG_REASON_DROP_MALFORMED);
        }
    }

    // For frames shorter than their IP header, BPF_PROG_TEST_RUN itself refuses
    // cgroup_skb programs (EINVAL) before they run: only XDP can be asserted.
    void expectMalformedAtXdpRefusedForCgroup(const std::vector<uint8_t>& f) {
        EXPECT_EQ(testRunErrno("ztseg_cg_ingress", f), EINVAL);
        EXPECT_EQ(testRunErrno("ztseg_cg_egress", f), EINVAL);
        expectMalformedAtXdp(f);
    }

    // BPF_PROG_TEST_RUN's own answer for a frame: 0 or errno.
    int testRunErrno(const char* prog, const std::vector<uint8_t>& f) {
        std::vector<uint8_t> in(f);
        in.resize(f.size() + 1);  // a valid pointer even for a zero-length frame
        std::vector<uint8_t> out(f.size() + 256);
        LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in.data(), .data_out = out.data(),
                    .data_size_in = uint32_t(f.size()), .data_size_out = uint32_t(out.size()));
        return bpf_prog_test_run_opts(dp().programFd(prog), &o) == 0 ? 0 : errno;
    }
    void expectRejectedByTestRun(const std::vector<uint8_t>& f) {
        for (const char* prog : {"ztseg_xdp", "ztseg_cg_ingress", "ztseg_cg_egress"}) {
            EXPECT_EQ(testRunErrno(prog, f), EINVAL) << prog;
        }
        for (uint32_t hook :
             {ZTSEG_HOOK_XDP, ZTSEG_HOOK_CGROUP_INGRESS, ZTSEG_HOOK_CGROUP_EGRESS}) {
            EXPECT_EQ(countedAll(hook), 0u) << hookName(hook);
        }
    }
};

// ---- shorter than Ethernet: the kernel refuses these before any program runs
// (test_run requires ETH_HLEN bytes), so only the refusal and the untouched
// counters can be asserted. A NIC never delivers such a frame either.

TEST_F(Malformed, ZeroLengthFrameNeverReachesPrograms) {
    expectRejectedByTestRun({});
}

TEST_F(Malformed, OneByteFrameNeverReachesPrograms) {
    expectRejectedByTestRun({0x02});
}

TEST_F(Malformed, TruncatedEthernetHeaderNeverReachesPrograms) {
    auto f = v4().tcp(40000, 5432).build();
    f.resize(kEth - 1);
    expectRejectedByTestRun(f);
}

// ---- L2

TEST_F(Malformed, EthernetHeaderWithoutIpv4Header) {
    auto f = v4().tcp(40000, 5432).build();
    f.resize(kEth);
    expectMalformedAtXdpRefusedForCgroup(f);
}

// cgroup_skb never sees VLAN tags (the stack strips them), so XDP only.
TEST_F(Malformed, TruncatedVlanTagDroppedAtXdp) {
    auto f = v4().vlan(7).tcp(40000, 5432).build();
    f.resize(kEth + 2);  // TPID + TCI, no inner ethertype
    expectMalformedAtXdp(f);
}

TEST_F(Malformed, ThreeVlanTagsRefusedAtXdp) {
    auto f = v4().vlan(7).tcp(40000, 5432).build();
    const std::vector<uint8_t> tags{0x88, 0xa8, 0x00, 0x01, 0x81, 0x00, 0x00, 0x02};
    f.insert(f.begin() + 12, tags.begin(), tags.end());
    expectMalformedAtXdp(f);
}

// ---- IPv4 header

TEST_F(Malformed, TruncatedIpv4Header) {
    auto f = v4().tcp(40000, 5432).build();
    f.resize(kEth + 19);
    expectMalformedAtXdpRefusedForCgroup(f);
}

TEST_F(Malformed, Ipv4IhlBelowFive) {
    auto f = v4().tcp(40000, 5432).build();
    f[kEth] = 0x44;
    expectMalformed(f);
}

TEST_F(Malformed, Ipv4TotalLengthBeyondFrame) {
    auto f = v4().tcp(40000, 5432).build();
    f[kEth + 3] += 1;  // 41 bytes claimed, 40 present
    expectMalformed(f);
}

TEST_F(Malformed, Ipv4TotalLengthBelowHeaderLength) {
    auto f = v4().tcp(40000, 5432).build();
    f[kEth + 2] = 0;
    f[kEth + 3] = 19;
    expectMalformed(f);
}

// tot_len 0 is legal for GSO super-packets at cgroup_skb, never on the wire.
TEST_F(Malformed, Ipv4ZeroTotalLengthDroppedAtXdpAcceptedAtCgroup) {
    auto f = v4().tcp(40000, 5432).build();
    f[kEth + 2] = f[kEth + 3] = 0;
    expectXdp(f, kXdpDrop, ZTSEG_REASON_DROP_MALFORMED);
    expectOut(f, kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
}

TEST_F(Malformed, Ipv4HeaderOptionsSkippedToPorts) {
    auto f = v4().tcp(40000, 5432).build();
    const std::vector<uint8_t> nops{0x01, 0x01, 0x01, 0x00};  // NOP NOP NOP EOL
    f.insert(f.begin() + kEth + 20, nops.begin(), nops.end());
    f[kEth] = 0x46;
    f[kEth + 3] += 4;
    expectXdp(f, kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    expectOut(f, kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
}

TEST_F(Malformed, Ipv4FrameWithEthernetPaddingParsed) {
    auto f = v4().udp(40000, 53).build();  // 42 bytes: a NIC pads it to 60
    f.resize(60, 0);
    expectXdp(f, kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
}

TEST_F(Malformed, Ipv4DontFragmentFlagIsNotAFragment) {
    auto f = v4().tcp(40000, 5432).build();
    f[kEth + 6] = 0x40;  // DF
    expectXdp(f, kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    auto later = tcpFragment(v4(), 0, 40, false, 5432);
    expectXdp(later, kXdpDrop, ZTSEG_REASON_DROP_FRAGMENT);  // nothing was remembered
}

TEST_F(Malformed, Ipv6VersionUnderIpv4Ethertype) {
    auto f = v4().tcp(40000, 5432).build();
    f[kEth] = 0x65;
    expectMalformed(f);
}

TEST_F(Malformed, Ipv4VersionUnderIpv6Ethertype) {
    auto f = v6().tcp(40000, 5432).build();
    f[kEth] = 0x40;
    expectMalformed(f);
}

// ---- L4 headers

TEST_F(Malformed, TruncatedTcpHeader) {
    expectMalformed(truncL3(v4().tcp(40000, 5432).build(), 20 + 19));
}

TEST_F(Malformed, TruncatedTcpHeaderIpv6) {
    expectMalformed(truncL3(v6().tcp(40000, 5432).build(), 40 + 19));
}

TEST_F(Malformed, TcpDataOffsetBelowFive) {
    auto f = v4().tcp(40000, 5432).build();
    f[kEth + 20 + 12] = 0x40;
    expectMalformed(f);
}

// The TCP header claims 60 bytes (options) but the segment ends after 20:
// a truncated header, which docs/design.md#policy-model says is dropped, never passed.
TEST_F(Malformed, TcpDataOffsetBeyondSegment) {
    auto f = v4().tcp(40000, 5432).build();
    f[kEth + 20 + 12] = 0xf0;
    expectMalformed(f);
}

TEST_F(Malformed, TruncatedUdpHeader) {
    expectMalformed(truncL3(v4().udp(40000, 53).build(), 20 + 7));
}

TEST_F(Malformed, TruncatedUdpHeaderIpv6) {
    expectMalformed(truncL3(v6().udp(40000, 53).build(), 40 + 7));
}

TEST_F(Malformed, TruncatedSctpCommonHeader) {
    expectMalformed(truncL3(v4().sctp(40000, 3868).build(), 20 + 11));
}

TEST_F(Malformed, TruncatedIcmpHeader) {
    expectMalformed(truncL3(v4().icmpEcho(1).build(), 20 + 7));
}

TEST_F(Malformed, TruncatedIcmpv6Header) {
    expectMalformed(truncL3(v6().icmpEcho(1).build(), 40 + 7));
}

TEST_F(Malformed, Icmpv6InIpv4) {
    auto f = v4().icmpEcho(1).build();
    f[kEth + 9] = ZTSEG_PROTO_ICMPV6;
    expectMalformed(f);
}

TEST_F(Malformed, IcmpInIpv6) {
    auto f = v6().icmpEcho(1).build();
    f[kEth + 6] = ZTSEG_PROTO_ICMP;
    expectMalformed(f);
}

// ---- ICMP errors: the quoted packet must be complete enough to match a flow

TEST_F(Malformed, IcmpErrorWithTruncatedQuotedIpHeader) {
    auto quote = v4().tcp(5432, 40000).icmpQuote();
    quote.resize(10);
    expectMalformed(v4().icmpError(3, 1, quote).build());
}

TEST_F(Malformed, IcmpErrorQuoteWithoutPorts) {
    auto quote = v4().tcp(5432, 40000).icmpQuote();
    quote.resize(20 + 3);
    expectMalformed(v4().icmpError(3, 1, quote).build());
}

TEST_F(Malformed, IcmpErrorQuotingWrongIpVersion) {
    auto quote = v6().tcp(5432, 40000).icmpQuote();
    expectMalformed(v4().icmpError(3, 1, quote).build());
}

TEST_F(Malformed, Icmpv6ErrorWithTruncatedQuotedIpHeader) {
    auto quote = v6().tcp(5432, 40000).icmpQuote();
    quote.resize(39);
    expectMalformed(v6().icmpError(1, 3, quote).build());
}

// ---- IPv6 header and extension headers

TEST_F(Malformed, TruncatedIpv6Header) {
    auto f = v6().tcp(40000, 5432).build();
    f.resize(kEth + 39);
    expectMalformedAtXdpRefusedForCgroup(f);
}

TEST_F(Malformed, Ipv6PayloadLengthBeyondFrame) {
    auto f = v6().tcp(40000, 5432).build();
    f[kEth + 5] += 1;
    expectMalformed(f);
}

TEST_F(Malformed, Ipv6HopByHopParsedToPorts) {
    expectXdp(v6().ipv6ExtHeader(0, 8).tcp(40000, 5432).build(), kXdpPass,
              ZTSEG_REASON_ALLOW_POLICY);
    expectXdp(v6().ipv6ExtHeader(0, 8).tcp(40000, 5433).build(), kXdpDrop,
              ZTSEG_REASON_DROP_DEFAULT_DENY);
    expectOut(v6().ipv6ExtHeader(0, 8).tcp(40000, 5432).build(), kSkbPass,
              ZTSEG_REASON_ALLOW_POLICY);
}

TEST_F(Malformed, Ipv6HopByHopAndDestOptsParsedToPorts) {
    auto b = v6().ipv6ExtHeader(0, 16).ipv6ExtHeader(60, 24);
    expectXdp(b.udp(40000, 53).build(), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    expectXdp(b.udp(40000, 54).build(), kXdpDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
    expectOut(b.udp(40000, 53).build(), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
}

TEST_F(Malformed, Ipv6HopByHopRoutingDestOptsParsedToPorts) {
    auto b = v6().ipv6ExtHeader(0, 8).ipv6ExtHeader(43, 24).ipv6ExtHeader(60, 8);
    expectXdp(b.tcp(40000, 5432).build(), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    expectXdp(b.tcp(40000, 5433).build(), kXdpDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
    expectOut(b.tcp(40000, 5432).build(), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    expectOut(b.tcp(40000, 5433).build(), kSkbDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_F(Malformed, Ipv6EightExtensionHeadersParsedToPorts) {
    auto b = v6();
    for (int i = 0; i < 8; ++i) {
        b.ipv6ExtHeader(60, 8);
    }
    expectXdp(b.tcp(40000, 5432).build(), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    expectXdp(b.tcp(40000, 5433).build(), kXdpDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_F(Malformed, Ipv6NineExtensionHeadersRefused) {
    auto b = v6();
    for (int i = 0; i < 9; ++i) {
        b.ipv6ExtHeader(60, 8);
    }
    expectMalformed(b.tcp(40000, 5432).build());
}

TEST_F(Malformed, TruncatedIpv6ExtensionHeader) {
    expectMalformed(truncL3(v6().ipv6ExtHeader(0, 8).tcp(40000, 5432).build(), 40 + 4));
}

TEST_F(Malformed, Ipv6ExtensionHeaderLengthBeyondPacket) {
    auto f = v6().ipv6ExtHeader(60, 8).tcp(40000, 5432).build();
    f[kEth + 40 + 1] = 10;  // claims 88 bytes; 8 + 20 are there
    expectMalformed(f);
}

// ---- fragments at XDP: first judged by ports, the rest follow it

TEST_F(Malformed, Ipv4FirstFragmentJudgedByPorts) {
    expectXdp(tcpFragment(v4(), 11, 0, true, 5432), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    expectXdp(tcpFragment(v4(), 12, 0, true, 5433), kXdpDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_F(Malformed, Ipv4LaterFragmentFollowsAdmittedFirst) {
    expectXdp(tcpFragment(v4(), 11, 0, true, 5432), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    expectXdp(tcpFragment(v4(), 11, 40, true, 5432), kXdpPass, ZTSEG_REASON_PASS_TO_STACK);
    expectXdp(tcpFragment(v4(), 11, 56, false, 5432), kXdpPass, ZTSEG_REASON_PASS_TO_STACK);
}

TEST_F(Malformed, Ipv4LaterFragmentWithoutFirstDropped) {
    expectXdp(tcpFragment(v4(), 13, 40, false, 5432), kXdpDrop, ZTSEG_REASON_DROP_FRAGMENT);
    auto ev = takeEvents();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].reason, ZTSEG_REASON_DROP_FRAGMENT);
}

TEST_F(Malformed, Ipv4LaterFragmentAfterDeniedFirstDropped) {
    expectXdp(tcpFragment(v4(), 14, 0, true, 5433), kXdpDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
    expectXdp(tcpFragment(v4(), 14, 40, false, 5433), kXdpDrop, ZTSEG_REASON_DROP_FRAGMENT);
}

TEST_F(Malformed, Ipv4LaterFragmentOfAnotherDatagramDropped) {
    expectXdp(tcpFragment(v4(), 15, 0, true, 5432), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    expectXdp(tcpFragment(v4(), 16, 40, false, 5432), kXdpDrop, ZTSEG_REASON_DROP_FRAGMENT);
}

TEST_F(Malformed, Ipv6FirstFragmentJudgedByPorts) {
    expectXdp(tcpFragment(v6(), 21, 0, true, 5432), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    expectXdp(tcpFragment(v6(), 22, 0, true, 5433), kXdpDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_F(Malformed, Ipv6LaterFragmentFollowsAdmittedFirst) {
    expectXdp(tcpFragment(v6(), 21, 0, true, 5432), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    expectXdp(tcpFragment(v6(), 21, 40, false, 5432), kXdpPass, ZTSEG_REASON_PASS_TO_STACK);
}

TEST_F(Malformed, Ipv6LaterFragmentWithoutFirstDropped) {
    expectXdp(tcpFragment(v6(), 23, 40, false, 5432), kXdpDrop, ZTSEG_REASON_DROP_FRAGMENT);
}

TEST_F(Malformed, Ipv6LaterFragmentAfterDeniedFirstDropped) {
    expectXdp(tcpFragment(v6(), 24, 0, true, 5433), kXdpDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
    expectXdp(tcpFragment(v6(), 24, 40, false, 5433), kXdpDrop, ZTSEG_REASON_DROP_FRAGMENT);
}

TEST_F(Malformed, Ipv6FragmentAfterHopByHopParsed) {
    auto first = v6().ipv6ExtHeader(0, 8).fragment(25, 0, true).tcp(40000, 5432).payload(16);
    expectXdp(first.build(), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    auto later = v6().ipv6ExtHeader(0, 8).fragment(25, 40, false).tcp(40000, 5432).payload(16);
    expectXdp(later.build(), kXdpPass, ZTSEG_REASON_PASS_TO_STACK);
}

// ---- fragments at cgroup_skb: the stack reassembles first, so any non-first
// fragment reaching these hooks is refused, admitted first or not.

TEST_F(Malformed, CgroupRefusesLaterFragmentEvenAfterAdmittedFirst) {
    expectOut(tcpFragment(v4(), 31, 0, true, 5432), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    expectOut(tcpFragment(v4(), 31, 40, false, 5432), kSkbDrop, ZTSEG_REASON_DROP_FRAGMENT);
    expectIn(tcpFragment(v6(), 32, 40, false, 5432), kSkbDrop, ZTSEG_REASON_DROP_FRAGMENT);
}

TEST_F(Malformed, FirstFragmentWithTruncatedTcpHeader) {
    auto f = v4().fragment(33, 0, true).tcp(40000, 5432).build();
    expectMalformed(truncL3(f, 20 + 8));
}

}  // namespace
}  // namespace ztseg::test
