// Per-rule hit counters: which slot of the pinned ztseg_rule_hits array each
// rule counts in, and reading them back. A rule keeps its slot (and so its
// counts) for as long as some generation holds a rule with its fingerprint;
// a rule that is new, or changed, starts in a fresh, zeroed slot. The
// assignment itself is pinned (ztseg_rule_slots), so it outlives ztsegd.
// Internal to userspace/datapath.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>
#include <vector>

#include "abi.h"
#include "datapath/bpf_map.hpp"
#include "datapath/slot_content.hpp"

namespace ztseg {

// What one rule of the active generation has counted since `since_unix_ns`.
struct RuleHitCount {
    uint32_t rule_id = 0;
    uint64_t packets = 0;
    uint64_t bytes = 0;
    uint64_t admitted = 0;       // new connections it admitted
    uint64_t refused = 0;        // packets of new connections it refused (would refuse, in audit)
    uint64_t last_unix_ns = 0;   // 0 = never hit
    uint64_t since_unix_ns = 0;  // when counting began for this rule (its slot's assignment)
};

class RuleCounterTable {
  public:
    // Loads the pinned assignment (ztseg_rule_slots) for ztseg_rule_hits.
    // The maps are passed to every call: the table holds no fds.
    RuleCounterTable(const BpfMap& slots, const BpfMap& hits);

    // ztseg_rules entries for a generation whose rules have these
    // fingerprints (rule id -> fingerprint): existing slots are kept, new
    // fingerprints get a zeroed slot, and slots that neither this generation
    // nor `in_use` (the counters the active generation still points at) need
    // are released. Rules left without a slot (capacity) are not counted.
    // in_use nullopt (not known): no slot is released.
    std::vector<RuleRefEntry> assign(const BpfMap& slots, const BpfMap& hits,
                                     const std::map<uint32_t, uint64_t>& fingerprints,
                                     const std::optional<std::set<uint32_t>>& in_use);
    size_t uncounted() const { return uncounted_; }  // rules without a slot at the last assign
    size_t capacity() const { return capacity_; }

    // The counts of `rules` (a generation's ztseg_rules entries).
    std::vector<RuleHitCount> read(const BpfMap& hits,
                                   const std::vector<RuleRefEntry>& rules) const;

  private:
    uint32_t allocate(const BpfMap& slots, const BpfMap& hits, uint64_t fingerprint);
    void release(const BpfMap& slots, uint64_t fingerprint);

    uint32_t capacity_ = 0;  // slots 1 .. capacity_-1 are usable; 0 means "not counted"
    std::unordered_map<uint64_t, ztseg_rule_slot> by_fingerprint_;
    std::set<uint32_t> taken_;
    uint32_t next_free_hint_ = 1;
    size_t uncounted_ = 0;
};

}  // namespace ztseg
