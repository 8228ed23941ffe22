// Rules -> policy map entries. Two transformations make per-packet cost
// independent of the rule set: port ranges become port prefixes (the datapath
// probes only the prefix lengths in use), and deny closure adds a deny entry
// at every intersection of a deny with an allow, so the datapath's first hit
// (in its fixed specific-to-general order) is a deny whenever any rule denies.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "abi.h"
#include "model/types.hpp"

namespace ztseg {

struct PortPrefix {
    uint16_t value = 0;  // low (16 - length) bits zero
    uint8_t length = 0;  // 0 = any port, 16 = exact
    bool operator==(const PortPrefix&) const = default;
};

// The minimal set of prefixes covering exactly [first, last].
std::vector<PortPrefix> portRangeToPrefixes(uint16_t first, uint16_t last);

struct PolicyMapEntry {
    ztseg_policy_key key;
    ztseg_policy_value value;
};

// Which of the datapath's probe combinations a key has: bit 1 peer is
// ZTSEG_ID_ANY, bit 0 protocol is ZTSEG_PROTO_ANY (abi.h).
int probeCombo(const ztseg_policy_key& k);
// Per combination, bit p set: some key of that combination has port prefix length p.
using ProbeMasks = std::array<uint32_t, 4>;

struct PolicyEntries {
    std::vector<PolicyMapEntry> entries;  // sorted by key bytes: deterministic
    ProbeMasks probe_masks{};
};

PolicyEntries compilePolicyEntries(const std::vector<Rule>& rules);

}  // namespace ztseg
