// Proven identity on the wire (abi.h "proven identity"): what the datapath
// needs to prove this host's TCP connections to fleet peers and to check
// theirs. Plain data, so the daemon's config and the controller can hold it.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "model/ip_prefix.hpp"

namespace ztseg {

// One SipHash-2-4 key shared with a peer host.
struct WireKey {
    uint8_t id = 0;
    std::array<uint8_t, 16> key{};
    bool send = false;    // new connections to the peer are proven under it
    bool accept = false;  // the peer's proofs under it are accepted
};

// A peer host: the addresses whose TCP SYNs must carry its proof (its
// workloads' and its own), and at most ZTSEG_PROOF_KEYS keys (the current one
// and, during a rotation, the previous or the next).
struct WirePeer {
    uint32_t id = 0;  // non-zero, unique per peer
    std::string name;
    std::vector<IpPrefix> addresses;
    std::vector<WireKey> keys;
    // The workload identities it hosts: the only ones its proofs may name
    // (besides 0, "my address's identity"). Empty: it proves no workload.
    std::vector<uint32_t> identities;
};

struct WireProofConfig {
    std::vector<WirePeer> peers;
    uint32_t window_s = 30;  // accepted clock skew plus delay, seconds
};

// The 20-byte TCP option a SYN from `saddr:sport` to `daddr:dport` with
// initial sequence number `isn` carries (abi.h), computed with OpenSSL's
// SipHash: the reference for the datapath's. Addresses are IpPrefix-style
// bytes (IPv4 in the first 4). `ts` is CLOCK_TAI seconds (mod 2^24).
std::array<uint8_t, 20> wireProofOption(const WireKey& key, const IpPrefix& saddr,
                                        const IpPrefix& daddr, uint16_t sport, uint16_t dport,
                                        uint32_t isn, uint32_t identity, uint32_t ts);

// SipHash-2-4 with a 16-byte key, 8-byte output as a little-endian number.
uint64_t siphash24(const std::array<uint8_t, 16>& key, const uint8_t* data, size_t len);

// CLOCK_TAI seconds mod 2^24, as the datapath stamps proofs.
uint32_t wireProofNow();

}  // namespace ztseg
