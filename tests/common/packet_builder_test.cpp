// Parses PacketBuilder output back with the libc header structs and checks every field, length
// and checksum against an independent implementation.
#include "common/packet_builder.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <net/ethernet.h>
#include <netinet/icmp6.h>
#include <netinet/if_ether.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/ip_icmp.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>

#include <cstring>
#include <random>
#include <stdexcept>

namespace ztseg::test {
namespace {

constexpr size_t kEth = 14;

using Bytes = std::vector<uint8_t>;

// memcpy-based read: packet offsets are not aligned for the libc structs.
template <class T>
T at(const Bytes& b, size_t off) {
    if (off + sizeof(T) > b.size()) {
        throw std::out_of_range("read past end of packet");
    }
    T t;
    std::memcpy(&t, b.data() + off, sizeof(T));
    return t;
}

uint16_t be16(const Bytes& b, size_t off) {
    return ntohs(at<uint16_t>(b, off));
}

// Deliberately different from the production code: word-by-word via ntohs, end-around carry
// folded once at the end.
uint16_t naiveChecksum(const Bytes& data) {
    uint64_t sum = 0;
    for (size_t i = 0; i < data.size(); i += 2) {
        uint16_t word = 0;
        std::memcpy(&word, data.data() + i, std::min<size_t>(2, data.size() - i));
        sum += ntohs(word);
    }
    while (sum > 0xffff) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return static_cast<uint16_t>(~sum & 0xffff);
}

Bytes slice(const Bytes& b, size_t off, size_t len = SIZE_MAX) {
    len = std::min(len, b.size() - off);
    return Bytes(b.begin() + off, b.begin() + off + len);
}

Bytes pseudo4(const iphdr& ip, size_t l4_len) {
    Bytes p(12);
    std::memcpy(&p[0], &ip.saddr, 4);
    std::memcpy(&p[4], &ip.daddr, 4);
    p[9] = ip.protocol;
    p[10] = l4_len >> 8;
    p[11] = l4_len & 0xff;
    return p;
}

Bytes pseudo6(const ip6_hdr& ip, uint8_t next, size_t l4_len) {
    Bytes p(40);
    std::memcpy(&p[0], &ip.ip6_src, 16);
    std::memcpy(&p[16], &ip.ip6_dst, 16);
    p[34] = l4_len >> 8;
    p[35] = l4_len & 0xff;
    p[39] = next;
    return p;
}

// True if the checksum stored in l4 (at csum_off) is what the naive implementation computes over
// pseudo+l4 with the field zeroed, and the whole thing sums to zero.
void expectL4Checksum(const Bytes& pseudo, Bytes l4, size_t csum_off) {
    Bytes all = pseudo;
    all.insert(all.end(), l4.begin(), l4.end());
    EXPECT_EQ(naiveChecksum(all), 0) << "checksum does not verify";
    uint16_t stored = be16(l4, csum_off);
    l4[csum_off] = l4[csum_off + 1] = 0;
    all = pseudo;
    all.insert(all.end(), l4.begin(), l4.end());
    EXPECT_EQ(naiveChecksum(all), stored);
}

in_addr v4(const char* s) {
    in_addr a{};
    EXPECT_EQ(inet_pton(AF_INET, s, &a), 1);
    return a;
}

in6_addr v6(const char* s) {
    in6_addr a{};
    EXPECT_EQ(inet_pton(AF_INET6, s, &a), 1);
    return a;
}

void expectEth(const Bytes& pkt, uint16_t ethertype) {
    auto eth = at<ether_header>(pkt, 0);
    EXPECT_EQ(0, std::memcmp(eth.ether_dhost, kEthDstMac.data(), 6));
    EXPECT_EQ(0, std::memcmp(eth.ether_shost, kEthSrcMac.data(), 6));
    EXPECT_EQ(ntohs(eth.ether_type), ethertype);
}

iphdr expectIpv4(const Bytes& pkt, size_t off, uint8_t proto, size_t l4_len) {
    auto ip = at<iphdr>(pkt, off);
    EXPECT_EQ(ip.version, 4);
    EXPECT_EQ(ip.ihl, 5);
    EXPECT_EQ(ntohs(ip.tot_len), 20 + l4_len);
    EXPECT_EQ(pkt.size() - off, 20 + l4_len);
    EXPECT_EQ(ip.protocol, proto);
    EXPECT_EQ(naiveChecksum(slice(pkt, off, 20)), 0) << "IPv4 header checksum";
    return ip;
}

TEST(InternetChecksum, Rfc1071Example) {
    // RFC 1071 section 3: the sum of these words is 0xddf2, so the checksum is 0x220d.
    Bytes data{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    EXPECT_EQ(internetChecksum(data), 0x220d);
}

TEST(InternetChecksum, MatchesNaiveOnRandomData) {
    std::mt19937 rng(42);
    for (size_t len = 0; len < 200; ++len) {
        Bytes data(len);
        for (auto& b : data) {
            b = static_cast<uint8_t>(rng());
        }
        EXPECT_EQ(internetChecksum(data), naiveChecksum(data)) << "len " << len;
    }
}

TEST(Crc32c, KnownVector) {
    const char* s = "123456789";
    EXPECT_EQ(crc32c(std::span(reinterpret_cast<const uint8_t*>(s), 9)), 0xE3069283u);
}

TEST(PacketBuilder, Ipv4TcpSyn) {
    Bytes pkt = PacketBuilder::ipv4("10.0.0.1", "10.0.0.2").tcp(40000, 443).build();
    expectEth(pkt, ETHERTYPE_IP);
    iphdr ip = expectIpv4(pkt, kEth, IPPROTO_TCP, 20);
    EXPECT_EQ(ip.saddr, v4("10.0.0.1").s_addr);
    EXPECT_EQ(ip.daddr, v4("10.0.0.2").s_addr);
    EXPECT_EQ(ip.ttl, 64);
    EXPECT_EQ(ntohs(ip.frag_off), 0);

    auto tcp = at<tcphdr>(pkt, kEth + 20);
    EXPECT_EQ(ntohs(tcp.source), 40000);
    EXPECT_EQ(ntohs(tcp.dest), 443);
    EXPECT_EQ(tcp.doff, 5);
    EXPECT_EQ(tcp.th_flags, TH_SYN);
    EXPECT_EQ(ntohs(tcp.window), 65535);
    expectL4Checksum(pseudo4(ip, 20), slice(pkt, kEth + 20), 16);
}

TEST(PacketBuilder, Ipv4TcpFlagsAndPayload) {
    Bytes pkt = PacketBuilder::ipv4("192.0.2.1", "192.0.2.2")
                    .tcp(1, 2, kTcpPsh | kTcpAck)
                    .payload(7)
                    .ttl(3)
                    .build();
    iphdr ip = expectIpv4(pkt, kEth, IPPROTO_TCP, 27);
    EXPECT_EQ(ip.ttl, 3);
    auto tcp = at<tcphdr>(pkt, kEth + 20);
    EXPECT_EQ(tcp.th_flags, TH_PUSH | TH_ACK);
    expectL4Checksum(pseudo4(ip, 27), slice(pkt, kEth + 20), 16);
}

TEST(PacketBuilder, Ipv4UdpOddPayload) {
    Bytes pkt = PacketBuilder::ipv4("10.1.2.3", "10.4.5.6").udp(5353, 53).payload(11).build();
    iphdr ip = expectIpv4(pkt, kEth, IPPROTO_UDP, 19);
    auto udp = at<udphdr>(pkt, kEth + 20);
    EXPECT_EQ(ntohs(udp.source), 5353);
    EXPECT_EQ(ntohs(udp.dest), 53);
    EXPECT_EQ(ntohs(udp.len), 19);
    EXPECT_NE(udp.check, 0);
    expectL4Checksum(pseudo4(ip, 19), slice(pkt, kEth + 20), 6);
}

TEST(PacketBuilder, Ipv4IcmpEcho) {
    for (bool reply : {false, true}) {
        Bytes pkt = PacketBuilder::ipv4("10.0.0.1", "10.0.0.2").icmpEcho(0xbeef, reply).build();
        expectIpv4(pkt, kEth, IPPROTO_ICMP, 8);
        auto icmp = at<icmphdr>(pkt, kEth + 20);
        EXPECT_EQ(icmp.type, reply ? ICMP_ECHOREPLY : ICMP_ECHO);
        EXPECT_EQ(icmp.code, 0);
        EXPECT_EQ(ntohs(icmp.un.echo.id), 0xbeef);
        EXPECT_EQ(ntohs(icmp.un.echo.sequence), 1);
        expectL4Checksum({}, slice(pkt, kEth + 20), 2);  // ICMPv4: no pseudo header
    }
}

TEST(PacketBuilder, Ipv4IcmpErrorQuotesInnerPacket) {
    auto inner = PacketBuilder::ipv4("10.0.0.2", "10.0.0.9").tcp(1234, 80);
    Bytes quote = inner.icmpQuote();
    ASSERT_EQ(quote.size(), 28u);
    EXPECT_EQ(quote, slice(inner.buildL3(), 0, 28));

    Bytes pkt = PacketBuilder::ipv4("10.0.0.9", "10.0.0.2")
                    .icmpError(ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, quote)
                    .build();
    expectIpv4(pkt, kEth, IPPROTO_ICMP, 8 + 28);
    auto icmp = at<icmphdr>(pkt, kEth + 20);
    EXPECT_EQ(icmp.type, ICMP_DEST_UNREACH);
    EXPECT_EQ(icmp.code, ICMP_PORT_UNREACH);
    EXPECT_EQ(slice(pkt, kEth + 28), quote);
    expectL4Checksum({}, slice(pkt, kEth + 20), 2);
    EXPECT_EQ(be16(pkt, kEth + 28 + 20), 1234);  // quoted TCP ports
    EXPECT_EQ(be16(pkt, kEth + 28 + 22), 80);
}

TEST(PacketBuilder, Ipv4RawProtocol) {
    Bytes pkt = PacketBuilder::ipv4("10.0.0.1", "10.0.0.2").protocol(47).payload(4).build();
    expectIpv4(pkt, kEth, 47, 4);
    Bytes bare = PacketBuilder::ipv4("10.0.0.1", "10.0.0.2").buildL3();
    expectIpv4(bare, 0, 255, 0);
}

TEST(PacketBuilder, Ipv4FirstFragmentHasL4Header) {
    Bytes pkt = PacketBuilder::ipv4("10.0.0.1", "10.0.0.2")
                    .udp(1000, 2000)
                    .payload(16)
                    .fragment(0x1234, 0, true)
                    .build();
    iphdr ip = expectIpv4(pkt, kEth, IPPROTO_UDP, 24);
    EXPECT_EQ(ntohs(ip.id), 0x1234);
    EXPECT_EQ(ntohs(ip.frag_off), IP_MF);
    auto udp = at<udphdr>(pkt, kEth + 20);
    EXPECT_EQ(ntohs(udp.dest), 2000);
    EXPECT_EQ(ntohs(udp.len), 24);
    expectL4Checksum(pseudo4(ip, 24), slice(pkt, kEth + 20), 6);
}

TEST(PacketBuilder, Ipv4LaterFragmentHasOnlyPayload) {
    Bytes pkt = PacketBuilder::ipv4("10.0.0.1", "10.0.0.2")
                    .tcp(1000, 2000)
                    .payload(16)
                    .fragment(0x1234, 24, false)
                    .build();
    iphdr ip = expectIpv4(pkt, kEth, IPPROTO_TCP, 16);
    EXPECT_EQ(ntohs(ip.id), 0x1234);
    EXPECT_EQ(ntohs(ip.frag_off), 3);  // 24 bytes in 8-byte units, MF clear
    EXPECT_EQ(slice(pkt, kEth + 20), Bytes(16, 0));

    Bytes mid = PacketBuilder::ipv4("10.0.0.1", "10.0.0.2").udp(1, 2).fragment(7, 8, true).build();
    EXPECT_EQ(ntohs(at<iphdr>(mid, kEth).frag_off), IP_MF | 1);
}

ip6_hdr expectIpv6(const Bytes& pkt, size_t off, uint8_t next, size_t payload_len) {
    auto ip = at<ip6_hdr>(pkt, off);
    EXPECT_EQ(ntohl(ip.ip6_flow) >> 28, 6u);
    EXPECT_EQ(ntohs(ip.ip6_plen), payload_len);
    EXPECT_EQ(pkt.size() - off, 40 + payload_len);
    EXPECT_EQ(ip.ip6_nxt, next);
    return ip;
}

TEST(PacketBuilder, Ipv6TcpAckPayload) {
    Bytes pkt = PacketBuilder::ipv6("fd00::1", "fd00::2").tcp(5555, 22, kTcpAck).payload(5).build();
    expectEth(pkt, ETHERTYPE_IPV6);
    ip6_hdr ip = expectIpv6(pkt, kEth, IPPROTO_TCP, 25);
    in6_addr src = v6("fd00::1"), dst = v6("fd00::2");
    EXPECT_EQ(0, std::memcmp(&ip.ip6_src, &src, 16));
    EXPECT_EQ(0, std::memcmp(&ip.ip6_dst, &dst, 16));
    EXPECT_EQ(ip.ip6_hlim, 64);
    auto tcp = at<tcphdr>(pkt, kEth + 40);
    EXPECT_EQ(ntohs(tcp.source), 5555);
    EXPECT_EQ(ntohs(tcp.dest), 22);
    EXPECT_EQ(tcp.doff, 5);
    EXPECT_EQ(tcp.th_flags, TH_ACK);
    EXPECT_EQ(ntohs(tcp.window), 65535);
    expectL4Checksum(pseudo6(ip, IPPROTO_TCP, 25), slice(pkt, kEth + 40), 16);
}

TEST(PacketBuilder, Ipv6Udp) {
    Bytes pkt =
        PacketBuilder::ipv6("2001:db8::1", "2001:db8::2").udp(1, 2).payload(3).ttl(9).build();
    ip6_hdr ip = expectIpv6(pkt, kEth, IPPROTO_UDP, 11);
    EXPECT_EQ(ip.ip6_hlim, 9);
    EXPECT_EQ(ntohs(at<udphdr>(pkt, kEth + 40).len), 11);
    expectL4Checksum(pseudo6(ip, IPPROTO_UDP, 11), slice(pkt, kEth + 40), 6);
}

TEST(PacketBuilder, Ipv6IcmpEchoAndNd) {
    for (bool reply : {false, true}) {
        Bytes pkt = PacketBuilder::ipv6("fd00::1", "fd00::2").icmpEcho(77, reply).build();
        ip6_hdr ip = expectIpv6(pkt, kEth, IPPROTO_ICMPV6, 8);
        auto icmp = at<icmp6_hdr>(pkt, kEth + 40);
        EXPECT_EQ(icmp.icmp6_type, reply ? ICMP6_ECHO_REPLY : ICMP6_ECHO_REQUEST);
        EXPECT_EQ(ntohs(icmp.icmp6_id), 77);
        EXPECT_EQ(ntohs(icmp.icmp6_seq), 1);
        expectL4Checksum(pseudo6(ip, IPPROTO_ICMPV6, 8), slice(pkt, kEth + 40), 2);
    }
    Bytes ns =
        PacketBuilder::ipv6("fd00::1", "ff02::1:ff00:2").icmp(ND_NEIGHBOR_SOLICIT, 0).build();
    ip6_hdr ip = expectIpv6(ns, kEth, IPPROTO_ICMPV6, 8);
    EXPECT_EQ(at<icmp6_hdr>(ns, kEth + 40).icmp6_type, ND_NEIGHBOR_SOLICIT);
    expectL4Checksum(pseudo6(ip, IPPROTO_ICMPV6, 8), slice(ns, kEth + 40), 2);
}

TEST(PacketBuilder, Ipv6IcmpError) {
    Bytes quote = PacketBuilder::ipv6("fd00::2", "fd00::9").udp(3, 4).payload(100).icmpQuote();
    ASSERT_EQ(quote.size(), 48u);
    Bytes pkt = PacketBuilder::ipv6("fd00::9", "fd00::2").icmpError(1, 4, quote).build();
    ip6_hdr ip = expectIpv6(pkt, kEth, IPPROTO_ICMPV6, 8 + 48);
    EXPECT_EQ(slice(pkt, kEth + 48), quote);
    expectL4Checksum(pseudo6(ip, IPPROTO_ICMPV6, 56), slice(pkt, kEth + 40), 2);
}

// Walks a hop-by-hop / destination options area: the TLVs must exactly fill it, every option must
// be skippable (action bits 00), and no run of padding may exceed 7 bytes (Linux drops those).
void expectValidOptions(const Bytes& pkt, size_t off, size_t len) {
    size_t end = off + len;
    size_t pad_run = 0, options = 0;
    for (off += 2; off < end;) {
        uint8_t type = pkt[off];
        size_t opt_len = type == 0 ? 1 : 2 + pkt.at(off + 1);
        EXPECT_EQ(type >> 6, 0) << "option " << int(type) << " is not skippable";
        pad_run = type <= 1 ? pad_run + opt_len : 0;
        options += type > 1;
        EXPECT_LE(pad_run, 7u);
        off += opt_len;
    }
    EXPECT_EQ(off, end);
    EXPECT_LE(options, 8u);  // net.ipv6.max_{hbh,dst}_opts_number default
}

TEST(PacketBuilder, Ipv6ExtensionHeaderChain) {
    Bytes pkt = PacketBuilder::ipv6("fd00::1", "fd00::2")
                    .ipv6ExtHeader(IPPROTO_HOPOPTS, 8)
                    .ipv6ExtHeader(IPPROTO_ROUTING, 16)
                    .ipv6ExtHeader(IPPROTO_DSTOPTS, 24)
                    .udp(10, 20)
                    .payload(4)
                    .build();
    ip6_hdr ip = expectIpv6(pkt, kEth, IPPROTO_HOPOPTS, 48 + 12);

    size_t off = kEth + 40;
    auto hbh = at<ip6_hbh>(pkt, off);
    EXPECT_EQ(hbh.ip6h_nxt, IPPROTO_ROUTING);
    EXPECT_EQ(hbh.ip6h_len, 0);
    expectValidOptions(pkt, off, 8);
    off += 8;
    auto rt = at<ip6_rthdr>(pkt, off);
    EXPECT_EQ(rt.ip6r_nxt, IPPROTO_DSTOPTS);
    EXPECT_EQ(rt.ip6r_len, 1);
    EXPECT_EQ(rt.ip6r_segleft, 0);
    off += 16;
    auto dst = at<ip6_dest>(pkt, off);
    EXPECT_EQ(dst.ip6d_nxt, IPPROTO_UDP);
    EXPECT_EQ(dst.ip6d_len, 2);
    expectValidOptions(pkt, off, 24);
    off += 24;
    EXPECT_EQ(ntohs(at<udphdr>(pkt, off).len), 12);
    // Upper-layer checksum uses the final next header and the L4 length, not the payload length.
    expectL4Checksum(pseudo6(ip, IPPROTO_UDP, 12), slice(pkt, off), 6);
}

TEST(PacketBuilder, Ipv6LargeOptionHeader) {
    Bytes pkt = PacketBuilder::ipv6("fd00::1", "fd00::2").ipv6ExtHeader(0, 2048).build();
    expectIpv6(pkt, kEth, IPPROTO_HOPOPTS, 2048);
    EXPECT_EQ(pkt[kEth + 40], 59);  // default: no next header
    EXPECT_EQ(pkt[kEth + 41], 255);
    expectValidOptions(pkt, kEth + 40, 2048);
}

TEST(PacketBuilder, Ipv6Fragments) {
    Bytes first = PacketBuilder::ipv6("fd00::1", "fd00::2")
                      .ipv6ExtHeader(IPPROTO_HOPOPTS, 8)
                      .fragment(0xdeadbeef, 0, true)
                      .tcp(1, 2)
                      .build();
    ip6_hdr ip = expectIpv6(first, kEth, IPPROTO_HOPOPTS, 8 + 8 + 20);
    EXPECT_EQ(at<ip6_hbh>(first, kEth + 40).ip6h_nxt, IPPROTO_FRAGMENT);
    auto frag = at<ip6_frag>(first, kEth + 48);
    EXPECT_EQ(frag.ip6f_nxt, IPPROTO_TCP);
    EXPECT_EQ(frag.ip6f_offlg, IP6F_MORE_FRAG);
    EXPECT_EQ(ntohl(frag.ip6f_ident), 0xdeadbeef);
    EXPECT_EQ(ntohs(at<tcphdr>(first, kEth + 56).dest), 2);
    expectL4Checksum(pseudo6(ip, IPPROTO_TCP, 20), slice(first, kEth + 56), 16);

    Bytes later = PacketBuilder::ipv6("fd00::1", "fd00::2")
                      .fragment(0xdeadbeef, 1456, false)
                      .tcp(1, 2)
                      .payload(10)
                      .build();
    expectIpv6(later, kEth, IPPROTO_FRAGMENT, 8 + 10);
    frag = at<ip6_frag>(later, kEth + 40);
    EXPECT_EQ(frag.ip6f_nxt, IPPROTO_TCP);
    EXPECT_EQ(ntohs(frag.ip6f_offlg & IP6F_OFF_MASK), 1456);
    EXPECT_EQ(frag.ip6f_offlg & IP6F_MORE_FRAG, 0);
    EXPECT_EQ(slice(later, kEth + 48), Bytes(10, 0));
}

TEST(PacketBuilder, Sctp) {
    Bytes pkt = PacketBuilder::ipv4("10.0.0.1", "10.0.0.2").sctp(3868, 3869).payload(4).build();
    expectIpv4(pkt, kEth, IPPROTO_SCTP, 16);
    Bytes sctp = slice(pkt, kEth + 20);
    EXPECT_EQ(be16(sctp, 0), 3868);
    EXPECT_EQ(be16(sctp, 2), 3869);
    uint32_t stored = sctp[8] | (sctp[9] << 8) | (sctp[10] << 16) | (uint32_t{sctp[11]} << 24);
    std::fill(sctp.begin() + 8, sctp.begin() + 12, 0);
    EXPECT_EQ(stored, crc32c(sctp));
}

TEST(PacketBuilder, Vlan) {
    auto b = PacketBuilder::ipv6("fd00::1", "fd00::2").udp(1, 2).vlan(100);
    Bytes pkt = b.build();
    EXPECT_EQ(be16(pkt, 12), ETHERTYPE_VLAN);
    EXPECT_EQ(be16(pkt, 14) & 0xfff, 100);
    EXPECT_EQ(be16(pkt, 16), ETHERTYPE_IPV6);
    EXPECT_EQ(slice(pkt, 18), b.buildL3());
    expectIpv6(pkt, 18, IPPROTO_UDP, 8);

    Bytes v4pkt = PacketBuilder::ipv4("10.0.0.1", "10.0.0.2").vlan(4095).tcp(1, 2).build();
    EXPECT_EQ(be16(v4pkt, 14), 4095);
    EXPECT_EQ(be16(v4pkt, 16), ETHERTYPE_IP);
    expectIpv4(v4pkt, 18, IPPROTO_TCP, 20);
}

TEST(PacketBuilder, BuildL3IsBuildWithoutEthernet) {
    auto b = PacketBuilder::ipv4("10.0.0.1", "10.0.0.2").udp(1, 2).payload(9);
    EXPECT_EQ(slice(b.build(), kEth), b.buildL3());
}

TEST(PacketBuilder, ArpRequest) {
    Bytes pkt = PacketBuilder::arpRequest("10.0.0.1", "10.0.0.2");
    ASSERT_EQ(pkt.size(), kEth + sizeof(ether_arp));
    auto eth = at<ether_header>(pkt, 0);
    EXPECT_EQ(ntohs(eth.ether_type), ETHERTYPE_ARP);
    EXPECT_EQ(Bytes(eth.ether_dhost, eth.ether_dhost + 6), Bytes(6, 0xff));
    auto arp = at<ether_arp>(pkt, kEth);
    EXPECT_EQ(ntohs(arp.arp_hrd), ARPHRD_ETHER);
    EXPECT_EQ(ntohs(arp.arp_pro), ETHERTYPE_IP);
    EXPECT_EQ(arp.arp_hln, 6);
    EXPECT_EQ(arp.arp_pln, 4);
    EXPECT_EQ(ntohs(arp.arp_op), ARPOP_REQUEST);
    EXPECT_EQ(0, std::memcmp(arp.arp_sha, kEthSrcMac.data(), 6));
    in_addr spa = v4("10.0.0.1"), tpa = v4("10.0.0.2");
    EXPECT_EQ(0, std::memcmp(arp.arp_spa, &spa, 4));
    EXPECT_EQ(Bytes(arp.arp_tha, arp.arp_tha + 6), Bytes(6, 0));
    EXPECT_EQ(0, std::memcmp(arp.arp_tpa, &tpa, 4));
}

TEST(PacketBuilder, RejectsBadInput) {
    EXPECT_THROW(PacketBuilder::ipv4("10.0.0.256", "10.0.0.1"), std::runtime_error);
    EXPECT_THROW(PacketBuilder::ipv4("fd00::1", "10.0.0.1"), std::runtime_error);
    EXPECT_THROW(PacketBuilder::ipv6("10.0.0.1", "fd00::1"), std::runtime_error);
    EXPECT_THROW(PacketBuilder::arpRequest("x", "10.0.0.1"), std::runtime_error);
    auto b4 = PacketBuilder::ipv4("10.0.0.1", "10.0.0.2");
    EXPECT_THROW(b4.ipv6ExtHeader(0, 8), std::runtime_error);
    EXPECT_THROW(b4.fragment(1, 12, false), std::runtime_error);
    EXPECT_THROW(b4.vlan(4096), std::runtime_error);
    auto b6 = PacketBuilder::ipv6("fd00::1", "fd00::2");
    EXPECT_THROW(b6.ipv6ExtHeader(0, 12), std::runtime_error);
    EXPECT_THROW(b6.ipv6ExtHeader(44, 8), std::runtime_error);
    EXPECT_THROW(b6.ipv6ExtHeader(60, 2056), std::runtime_error);
    EXPECT_THROW(b6.payload(70000).buildL3(), std::runtime_error);
}

}  // namespace
}  // namespace ztseg::test
