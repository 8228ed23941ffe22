#include "common/packet_builder.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <stdexcept>

namespace ztseg::test {
namespace {

constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kProtoIcmpv6 = 58;
constexpr uint8_t kProtoSctp = 132;
constexpr uint8_t kExtHopByHop = 0;
constexpr uint8_t kExtRouting = 43;
constexpr uint8_t kExtFragment = 44;
constexpr uint8_t kExtDestOpts = 60;
constexpr uint8_t kOptExperimental = 0x1e;

void put16(std::vector<uint8_t>& v, uint16_t x) {
    v.push_back(x >> 8);
    v.push_back(x & 0xff);
}

void put32(std::vector<uint8_t>& v, uint32_t x) {
    put16(v, x >> 16);
    put16(v, x & 0xffff);
}

void set16(std::vector<uint8_t>& v, size_t off, uint16_t x) {
    v.at(off) = x >> 8;
    v.at(off + 1) = x & 0xff;
}

void append(std::vector<uint8_t>& v, std::span<const uint8_t> bytes) {
    // Not v.insert(): GCC 12 -O2 reports a false -Wstringop-overflow for it here.
    for (uint8_t b : bytes) {
        v.push_back(b);
    }
}

void parseAddr(int family, const std::string& text, std::array<uint8_t, 16>& out) {
    if (inet_pton(family, text.c_str(), out.data()) != 1) {
        throw std::runtime_error("PacketBuilder: invalid " +
                                 std::string(family == AF_INET ? "IPv4" : "IPv6") + " address '" +
                                 text + "'");
    }
}

// Fills an n-byte option area. Linux drops runs of more than 7 padding bytes (RFC 4942 2.1.9.5),
// so bulk space goes into skippable RFC 3692 experimental options (type 0x1e, action "skip").
void putOptions(std::vector<uint8_t>& v, size_t n) {
    while (n > 7) {
        size_t len = std::min<size_t>(n - 2, 255);
        v.push_back(kOptExperimental);
        v.push_back(static_cast<uint8_t>(len));
        v.insert(v.end(), len, 0);
        n -= len + 2;
    }
    if (n == 1) {
        v.push_back(0);  // Pad1
    } else if (n >= 2) {
        v.push_back(1);  // PadN
        v.push_back(static_cast<uint8_t>(n - 2));
        v.insert(v.end(), n - 2, 0);
    }
}

}  // namespace

uint16_t internetChecksum(std::span<const uint8_t> data) {
    uint64_t sum = 0;
    for (size_t i = 0; i + 1 < data.size(); i += 2) {
        sum += (data[i] << 8) | data[i + 1];
    }
    if (data.size() % 2) {
        sum += data.back() << 8;
    }
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return static_cast<uint16_t>(~sum);
}

uint32_t crc32c(std::span<const uint8_t> data) {
    uint32_t crc = ~0u;
    for (uint8_t b : data) {
        crc ^= b;
        for (int i = 0; i < 8; ++i) {
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
        }
    }
    return ~crc;
}

PacketBuilder::PacketBuilder(bool v6) : v6_(v6), proto_(v6 ? 59 : 255) {}

PacketBuilder PacketBuilder::ipv4(const std::string& src, const std::string& dst) {
    PacketBuilder b(false);
    parseAddr(AF_INET, src, b.src_);
    parseAddr(AF_INET, dst, b.dst_);
    return b;
}

PacketBuilder PacketBuilder::ipv6(const std::string& src, const std::string& dst) {
    PacketBuilder b(true);
    parseAddr(AF_INET6, src, b.src_);
    parseAddr(AF_INET6, dst, b.dst_);
    return b;
}

std::vector<uint8_t> PacketBuilder::arpRequest(const std::string& sender_ip,
                                               const std::string& target_ip) {
    std::array<uint8_t, 16> spa{}, tpa{};
    parseAddr(AF_INET, sender_ip, spa);
    parseAddr(AF_INET, target_ip, tpa);
    std::vector<uint8_t> f(6, 0xff);  // broadcast
    append(f, kEthSrcMac);
    put16(f, 0x0806);
    put16(f, 1);       // htype Ethernet
    put16(f, 0x0800);  // ptype IPv4
    f.push_back(6);
    f.push_back(4);
    put16(f, 1);  // request
    append(f, kEthSrcMac);
    append(f, std::span(spa).first(4));
    f.insert(f.end(), 6, 0);
    append(f, std::span(tpa).first(4));
    return f;
}

PacketBuilder& PacketBuilder::tcp(uint16_t sport, uint16_t dport, uint8_t flags) {
    l4_ = L4::kTcp;
    proto_ = kProtoTcp;
    sport_ = sport;
    dport_ = dport;
    tcp_flags_ = flags;
    return *this;
}

PacketBuilder& PacketBuilder::tcpOptions(std::vector<uint8_t> options) {
    if (options.size() % 4 || options.size() > 40) {
        throw std::runtime_error("TCP options: " + std::to_string(options.size()) +
                                 " bytes, not a multiple of 4 up to 40");
    }
    tcp_options_ = std::move(options);
    return *this;
}

PacketBuilder& PacketBuilder::seqAck(uint32_t seq, uint32_t ack) {
    tcp_seq_ = seq;
    tcp_ack_ = ack;
    return *this;
}

PacketBuilder& PacketBuilder::udp(uint16_t sport, uint16_t dport) {
    l4_ = L4::kUdp;
    proto_ = kProtoUdp;
    sport_ = sport;
    dport_ = dport;
    return *this;
}

PacketBuilder& PacketBuilder::sctp(uint16_t sport, uint16_t dport) {
    l4_ = L4::kSctp;
    proto_ = kProtoSctp;
    sport_ = sport;
    dport_ = dport;
    return *this;
}

PacketBuilder& PacketBuilder::icmpEcho(uint16_t id, bool reply) {
    uint8_t type = v6_ ? (reply ? 129 : 128) : (reply ? 0 : 8);
    icmp(type, 0);
    icmp_rest_ = (uint32_t{id} << 16) | 1;  // id, sequence 1
    return *this;
}

PacketBuilder& PacketBuilder::icmp(uint8_t type, uint8_t code) {
    l4_ = L4::kIcmp;
    proto_ = v6_ ? kProtoIcmpv6 : kProtoIcmp;
    icmp_type_ = type;
    icmp_code_ = code;
    icmp_rest_ = 0;
    icmp_body_.clear();
    return *this;
}

PacketBuilder& PacketBuilder::icmpError(uint8_t type, uint8_t code, std::vector<uint8_t> inner_l3) {
    icmp(type, code);
    icmp_body_ = std::move(inner_l3);
    return *this;
}

PacketBuilder& PacketBuilder::protocol(uint8_t ipproto) {
    l4_ = L4::kNone;
    proto_ = ipproto;
    return *this;
}

PacketBuilder& PacketBuilder::portedProtocol(uint8_t ipproto, uint16_t sport, uint16_t dport) {
    protocol(ipproto);
    raw_l4_.clear();
    put16(raw_l4_, sport);
    put16(raw_l4_, dport);
    raw_l4_.resize(16);
    return *this;
}

PacketBuilder& PacketBuilder::payload(size_t n) {
    payload_ = n;
    return *this;
}

PacketBuilder& PacketBuilder::ipv6ExtHeader(uint8_t type, size_t len_bytes) {
    if (!v6_) {
        throw std::runtime_error("PacketBuilder: ipv6ExtHeader on an IPv4 packet");
    }
    if (type != kExtHopByHop && type != kExtRouting && type != kExtDestOpts) {
        throw std::runtime_error("PacketBuilder: unsupported IPv6 extension header type " +
                                 std::to_string(type) + " (use fragment() for 44)");
    }
    if (len_bytes < 8 || len_bytes > 2048 || len_bytes % 8) {
        throw std::runtime_error("PacketBuilder: IPv6 extension header length " +
                                 std::to_string(len_bytes) +
                                 " is not a multiple of 8 in [8, 2048]");
    }
    ext_.push_back({.type = type, .len = len_bytes});
    return *this;
}

PacketBuilder& PacketBuilder::fragment(uint32_t id, uint16_t offset_bytes, bool more_fragments) {
    if (offset_bytes % 8) {
        throw std::runtime_error("PacketBuilder: fragment offset " + std::to_string(offset_bytes) +
                                 " is not a multiple of 8");
    }
    if (v6_) {
        ext_.push_back({.type = kExtFragment,
                        .len = 8,
                        .frag_id = id,
                        .frag_offset = offset_bytes,
                        .frag_more = more_fragments});
    } else {
        frag4_ = Ipv4Fragment{id, offset_bytes, more_fragments};
    }
    return *this;
}

PacketBuilder& PacketBuilder::vlan(uint16_t vid) {
    if (vid > 0xfff) {
        throw std::runtime_error("PacketBuilder: VLAN id " + std::to_string(vid) + " > 4095");
    }
    vlan_ = vid;
    return *this;
}

PacketBuilder& PacketBuilder::ttl(uint8_t ttl) {
    ttl_ = ttl;
    return *this;
}

bool PacketBuilder::isNonFirstFragment() const {
    if (!v6_) {
        return frag4_ && frag4_->offset > 0;
    }
    return std::any_of(ext_.begin(), ext_.end(),
                       [](const ExtHeader& e) { return e.type == kExtFragment && e.frag_offset; });
}

size_t PacketBuilder::l3HeaderLen() const {
    if (!v6_) {
        return 20;
    }
    size_t len = 40;
    for (const auto& e : ext_) {
        len += e.len;
    }
    return len;
}

std::vector<uint8_t> PacketBuilder::pseudoHeader(size_t l4_len) const {
    std::vector<uint8_t> p;
    size_t alen = v6_ ? 16 : 4;
    append(p, std::span(src_).first(alen));
    append(p, std::span(dst_).first(alen));
    if (v6_) {
        put32(p, static_cast<uint32_t>(l4_len));
        p.insert(p.end(), 3, 0);
        p.push_back(proto_);
    } else {
        p.push_back(0);
        p.push_back(proto_);
        put16(p, static_cast<uint16_t>(l4_len));
    }
    return p;
}

std::vector<uint8_t> PacketBuilder::buildL4() const {
    std::vector<uint8_t> l4;
    if (isNonFirstFragment()) {
        l4.resize(payload_);
        return l4;
    }
    std::optional<size_t> csum_off;
    switch (l4_) {
        case L4::kTcp:
            put16(l4, sport_);
            put16(l4, dport_);
            put32(l4, tcp_seq_);
            put32(l4, tcp_ack_ >= 0 ? uint32_t(tcp_ack_) : (tcp_flags_ & kTcpAck) ? 1 : 0);
            l4.push_back(static_cast<uint8_t>((5 + tcp_options_.size() / 4) << 4));  // doff
            l4.push_back(tcp_flags_);
            put16(l4, 65535);  // window
            csum_off = l4.size();
            put16(l4, 0);
            put16(l4, 0);  // urgent pointer
            l4.insert(l4.end(), tcp_options_.begin(), tcp_options_.end());
            break;
        case L4::kUdp:
            put16(l4, sport_);
            put16(l4, dport_);
            put16(l4, 0);  // length, set below
            csum_off = l4.size();
            put16(l4, 0);
            break;
        case L4::kSctp:
            put16(l4, sport_);
            put16(l4, dport_);
            put32(l4, 0);  // verification tag
            put32(l4, 0);  // checksum, set below
            break;
        case L4::kIcmp:
            l4.push_back(icmp_type_);
            l4.push_back(icmp_code_);
            csum_off = l4.size();
            put16(l4, 0);
            put32(l4, icmp_rest_);
            append(l4, icmp_body_);
            break;
        case L4::kNone:
            append(l4, raw_l4_);
            break;
    }
    l4.resize(l4.size() + payload_);
    if (l4.size() > 0xffff) {
        throw std::runtime_error("PacketBuilder: L4 segment of " + std::to_string(l4.size()) +
                                 " bytes is too large");
    }

    if (l4_ == L4::kUdp) {
        set16(l4, 4, static_cast<uint16_t>(l4.size()));
    }
    if (l4_ == L4::kSctp) {
        uint32_t crc = crc32c(l4);
        for (int i = 0; i < 4; ++i) {
            l4[8 + i] = (crc >> (8 * i)) & 0xff;  // stored little-endian, like the kernel does
        }
    }
    if (csum_off) {
        // ICMPv4 is the only one here without a pseudo header.
        std::vector<uint8_t> sum_input =
            (l4_ == L4::kIcmp && !v6_) ? std::vector<uint8_t>{} : pseudoHeader(l4.size());
        append(sum_input, l4);
        uint16_t sum = internetChecksum(sum_input);
        if (l4_ == L4::kUdp && sum == 0) {
            sum = 0xffff;  // 0 means "no checksum" for UDP
        }
        set16(l4, *csum_off, sum);
    }
    return l4;
}

std::vector<uint8_t> PacketBuilder::buildL3() const {
    std::vector<uint8_t> l4 = buildL4();
    std::vector<uint8_t> out;
    size_t l3_len = l3HeaderLen();
    if (!v6_) {
        size_t total = l3_len + l4.size();
        if (total > 0xffff) {
            throw std::runtime_error("PacketBuilder: IPv4 packet of " + std::to_string(total) +
                                     " bytes is too large");
        }
        uint16_t frag = 0;
        if (frag4_) {
            frag = (frag4_->more ? 0x2000 : 0) | (frag4_->offset / 8);
        }
        out.push_back(0x45);  // version 4, IHL 5
        out.push_back(0);     // TOS
        put16(out, static_cast<uint16_t>(total));
        put16(out, frag4_ ? static_cast<uint16_t>(frag4_->id) : 0);
        put16(out, frag);
        out.push_back(ttl_);
        out.push_back(proto_);
        put16(out, 0);  // header checksum, set below
        append(out, std::span(src_).first(4));
        append(out, std::span(dst_).first(4));
        set16(out, 10, internetChecksum(out));
    } else {
        size_t plen = l3_len - 40 + l4.size();
        if (plen > 0xffff) {
            throw std::runtime_error("PacketBuilder: IPv6 payload of " + std::to_string(plen) +
                                     " bytes is too large");
        }
        put32(out, 0x60000000);  // version 6, no traffic class / flow label
        put16(out, static_cast<uint16_t>(plen));
        out.push_back(ext_.empty() ? proto_ : ext_.front().type);
        out.push_back(ttl_);
        append(out, src_);
        append(out, dst_);
        for (size_t i = 0; i < ext_.size(); ++i) {
            const ExtHeader& e = ext_[i];
            out.push_back(i + 1 < ext_.size() ? ext_[i + 1].type : proto_);
            if (e.type == kExtFragment) {
                out.push_back(0);
                put16(out, e.frag_offset | (e.frag_more ? 1 : 0));  // offset is already *8
                put32(out, e.frag_id);
                continue;
            }
            out.push_back(static_cast<uint8_t>(e.len / 8 - 1));
            if (e.type == kExtRouting) {
                out.push_back(0);  // routing type 0
                out.push_back(0);  // segments left 0: receivers ignore the header
                out.insert(out.end(), e.len - 4, 0);
            } else {
                putOptions(out, e.len - 2);
            }
        }
    }
    append(out, l4);
    return out;
}

std::vector<uint8_t> PacketBuilder::build() const {
    std::vector<uint8_t> l3 = buildL3();
    std::vector<uint8_t> out;
    append(out, kEthDstMac);
    append(out, kEthSrcMac);
    if (vlan_) {
        put16(out, 0x8100);
        put16(out, *vlan_);  // PCP 0, DEI 0
    }
    put16(out, v6_ ? 0x86dd : 0x0800);
    append(out, l3);
    return out;
}

std::vector<uint8_t> PacketBuilder::icmpQuote() const {
    std::vector<uint8_t> l3 = buildL3();
    l3.resize(std::min(l3.size(), l3HeaderLen() + 8));
    return l3;
}

}  // namespace ztseg::test
