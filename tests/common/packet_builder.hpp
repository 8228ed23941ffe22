// Raw packet construction for BPF_PROG_TEST_RUN and parser unit tests.
//
// Every length and checksum is filled in correctly (IPv4 header checksum, TCP/UDP/ICMP/ICMPv6
// with pseudo header, SCTP CRC32c), because packets may be injected into real kernel paths.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ztseg::test {

inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpPsh = 0x08;
inline constexpr uint8_t kTcpAck = 0x10;

inline constexpr std::array<uint8_t, 6> kEthDstMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
inline constexpr std::array<uint8_t, 6> kEthSrcMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x02};

// RFC 1071 Internet checksum (already complemented, host byte order of the big-endian sum).
uint16_t internetChecksum(std::span<const uint8_t> data);
// CRC32c (Castagnoli) as used by SCTP: init ~0, final xor ~0.
uint32_t crc32c(std::span<const uint8_t> data);

class PacketBuilder {
  public:
    // Text addresses; throws std::runtime_error if they do not parse.
    static PacketBuilder ipv4(const std::string& src, const std::string& dst);
    static PacketBuilder ipv6(const std::string& src, const std::string& dst);
    // Complete Ethernet frame carrying an ARP who-has request (42 bytes, no padding).
    static std::vector<uint8_t> arpRequest(const std::string& sender_ip,
                                           const std::string& target_ip);

    // The L4 setters are mutually exclusive; the last call wins.
    PacketBuilder& tcp(uint16_t sport, uint16_t dport, uint8_t flags = kTcpSyn);
    // TCP options after the 20-byte header (a multiple of 4 bytes, at most 40).
    PacketBuilder& tcpOptions(std::vector<uint8_t> options);
    // TCP sequence and acknowledgement numbers (default 1, and 1 when ACK is set).
    PacketBuilder& seqAck(uint32_t seq, uint32_t ack);
    PacketBuilder& udp(uint16_t sport, uint16_t dport);
    // SCTP common header only (12 bytes, vtag 0), no chunks.
    PacketBuilder& sctp(uint16_t sport, uint16_t dport);
    // Echo request/reply (ICMP 8/0, ICMPv6 128/129), sequence 1.
    PacketBuilder& icmpEcho(uint16_t id, bool reply = false);
    // 8-byte ICMP header (type, code, checksum, 4 zero bytes) with no body.
    PacketBuilder& icmp(uint8_t type, uint8_t code);
    // ICMP error whose body quotes an offending packet (see icmpQuote()).
    PacketBuilder& icmpError(uint8_t type, uint8_t code, std::vector<uint8_t> inner_l3);
    // Raw L4 protocol number with no L4 header (e.g. 47 GRE). Default is 255 (v4) / 59 (v6).
    PacketBuilder& protocol(uint8_t ipproto);
    // Another protocol whose header starts with ports (UDP-Lite, DCCP): a
    // 16-byte header of sport, dport and zeros (checksums not computed).
    PacketBuilder& portedProtocol(uint8_t ipproto, uint16_t sport, uint16_t dport);
    // n zero bytes after the L4 header.
    PacketBuilder& payload(size_t n);
    // IPv6 only: 0 hop-by-hop / 60 destination options (Pad1/PadN, plus skippable experimental
    // options of type 0x1e when longer than 8 bytes), 43 routing (type 0, segments left 0).
    // len_bytes is a multiple of 8 in [8, 2048]; headers are emitted in call order before L4.
    PacketBuilder& ipv6ExtHeader(uint8_t type, size_t len_bytes);
    // IPv4: id (low 16 bits)/MF/offset in the IP header. IPv6: appends a fragment header (44) at
    // this point of the extension chain. offset_bytes must be a multiple of 8. With offset > 0 no
    // L4 header is emitted, only the payload; a first fragment's L4 length/checksum cover only its
    // bytes.
    PacketBuilder& fragment(uint32_t id, uint16_t offset_bytes, bool more_fragments);
    // One 802.1Q tag (a second call replaces it).
    PacketBuilder& vlan(uint16_t vid);
    // IPv4 TTL / IPv6 hop limit (default 64).
    PacketBuilder& ttl(uint8_t ttl);

    // Ethernet (dst kEthDstMac, src kEthSrcMac, optional 802.1Q) + L3 + L4.
    std::vector<uint8_t> build() const;
    // Same without the Ethernet header.
    std::vector<uint8_t> buildL3() const;
    // What an ICMP error quotes: all L3 headers plus the first 8 bytes of L4.
    std::vector<uint8_t> icmpQuote() const;

  private:
    enum class L4 { kNone, kTcp, kUdp, kSctp, kIcmp };
    struct ExtHeader {
        uint8_t type;
        size_t len;
        // Used only for the fragment header (type 44).
        uint32_t frag_id = 0;
        uint16_t frag_offset = 0;
        bool frag_more = false;
    };
    struct Ipv4Fragment {
        uint32_t id;
        uint16_t offset;
        bool more;
    };

    explicit PacketBuilder(bool v6);
    bool isNonFirstFragment() const;
    size_t l3HeaderLen() const;
    std::vector<uint8_t> buildL4() const;
    std::vector<uint8_t> pseudoHeader(size_t l4_len) const;

    bool v6_;
    std::array<uint8_t, 16> src_{};
    std::array<uint8_t, 16> dst_{};
    uint8_t ttl_ = 64;
    L4 l4_ = L4::kNone;
    uint32_t tcp_seq_ = 1;
    std::vector<uint8_t> tcp_options_;
    int64_t tcp_ack_ = -1;  // -1: 1 when ACK is set
    uint8_t proto_;
    uint16_t sport_ = 0;
    uint16_t dport_ = 0;
    uint8_t tcp_flags_ = 0;
    uint8_t icmp_type_ = 0;
    uint8_t icmp_code_ = 0;
    uint32_t icmp_rest_ = 0;  // bytes 4..7 of the ICMP header
    std::vector<uint8_t> icmp_body_;
    size_t payload_ = 0;
    std::vector<uint8_t> raw_l4_;  // portedProtocol()
    std::vector<ExtHeader> ext_;
    std::optional<Ipv4Fragment> frag4_;
    std::optional<uint16_t> vlan_;
};

}  // namespace ztseg::test
