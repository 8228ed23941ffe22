// Pairwise keys for proven identity on the wire (docs/datapath.md), derived
// by the controller and pushed to each host over its mutual-TLS stream (never
// in a bundle). The key of hosts A and B in epoch e is
//   HKDF-SHA256(ikm = fleet secret, salt = "ztseg wire proof v1",
//               info = fleet \0 min(A,B) \0 max(A,B) \0 e as 8 bytes big-endian)
// truncated to 16 bytes: both ends derive the same key, no host learns a key
// of a pair it is not in, and a key of one epoch says nothing about another.
//
// Rotation: epoch e = floor(unix time / rotate_every_s). Hosts prove under the
// current epoch's key; `overlap_s` before an epoch ends the next key is
// already accepted, and `overlap_s` after it began the previous one still is,
// so a push that arrives up to overlap_s late loses no connection.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "controller.pb.h"

namespace ztseg::controller {

struct WireProofSettings {
    std::string secret_file;  // empty: wire proofs off (every host is told so)
    uint32_t rotate_every_s = 86400;
    uint32_t overlap_s = 300;
    uint32_t window_s = 30;  // accepted clock skew plus delay (datapath)
};

// RFC 5869 HKDF with SHA-256 (OpenSSL), `length` bytes.
std::vector<uint8_t> hkdfSha256(const std::string& ikm, const std::string& salt,
                                const std::string& info, size_t length);

std::array<uint8_t, 16> pairKey(const std::string& secret, const std::string& fleet,
                                const std::string& a, const std::string& b, uint64_t epoch);

// The key id an epoch's key carries on the wire: 1..255, adjacent epochs differ.
uint8_t wireKeyId(uint64_t epoch);

// Which epochs' keys are in force at `now_unix_s`, and when that changes.
struct WireKeyPlan {
    uint64_t epoch = 0;  // sent under
    struct Key {
        uint64_t epoch;
        bool send;
    };
    std::vector<Key> keys;  // accepted (the current one also sent)
    int64_t next_change_unix_s = 0;
};
WireKeyPlan wireKeyPlan(const WireProofSettings& s, int64_t now_unix_s);

// Who takes part and what each may prove: addresses (prefix text) and the
// workload identities each host runs, by host name.
struct WireFleet {
    std::map<std::string, std::vector<std::string>> addresses;
    std::map<std::string, std::vector<uint32_t>> identities;
};

// What `host` is told: every other host with addresses as a peer, with the
// pair's keys of the plan and the identities the peer may prove. Empty
// (proofs off) when `secret` is empty or `host` has no addresses of its own.
v1::WireProofPush wireProofFor(const std::string& host, const std::string& fleet,
                               const std::string& secret, const WireProofSettings& s,
                               const WireFleet& hosts, int64_t now_unix_s);

}  // namespace ztseg::controller
