// Per-rule hit counters: which slot of the pinned ztseg_rule_hits array each
// rule counts in, and reading them back. A rule keeps its slot (and so its
// counts) for as long as some generation holds a rule with its fingerprint;
// a rule that is new, or changed, starts in a fresh, zeroed slot. The
// assignment itself is pinned (ztseg_rule_slots), so it outlives ztsegd.
// Internal to userspace/datapath.
#pragma once

#include <cstdint>
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

    // ztseg_rules entries, sorted by rule id, for a generation whose rules are
    // `want` (sorted by rule id, one per id, fingerprints not 0). Existing
    // slots are kept, new fingerprints get a zeroed slot, and a slot that no
    // entry of the active slot or of the new generation refers to any more is
    // released. `replaced`: the entries of the slot being rewritten (nullptr:
    // none or unknown); `active`: the active slot's (nullptr: unknown, as after
    // adopting; then nothing is released until it is known). Only rules that
    // differ from `replaced` cost a hash lookup: a one-rule change at 100k
    // rules is a merge of two sorted lists. Rules left without a slot
    // (capacity) are not counted.
    std::vector<RuleRefEntry> assign(const BpfMap& slots, const BpfMap& hits,
                                     const std::vector<RuleFingerprint>& want,
                                     const std::vector<RuleRefEntry>* replaced,
                                     const std::vector<RuleRefEntry>* active);
    // The last assign's entries were not installed (the apply failed): the
    // next assign recounts references from the active slot.
    void forgetLastAssign() { references_known_ = false; }
    size_t uncounted() const { return uncounted_; }  // rules without a slot at the last assign
    size_t capacity() const { return capacity_; }

    // The counts of `rules` (a generation's ztseg_rules entries).
    std::vector<RuleHitCount> read(const BpfMap& hits,
                                   const std::vector<RuleRefEntry>& rules) const;

  private:
    // A fingerprint's slot and how many entries of the two slots' generations
    // (active and newest) refer to it.
    struct Assigned {
        ztseg_rule_slot slot{};
        uint32_t references = 0;
    };
    using Table = std::unordered_map<uint64_t, Assigned>;

    uint32_t allocate(const BpfMap& slots, const BpfMap& hits, uint64_t fingerprint);
    void release(const BpfMap& slots, Table::iterator it);
    void recountReferences(const std::vector<RuleRefEntry>* active);
    bool isTaken(uint32_t counter) const { return (taken_[counter / 64] >> (counter % 64)) & 1; }
    void setTaken(uint32_t counter, bool taken);
    uint32_t firstFreeFrom(uint32_t counter) const;  // capacity_ if none

    uint32_t capacity_ = 0;  // slots 1 .. capacity_-1 are usable; 0 means "not counted"
    Table by_fingerprint_;
    std::vector<uint64_t> taken_;  // bitmap of slots, by counter
    uint32_t next_free_hint_ = 1;
    size_t uncounted_ = 0;
    // References count the entries of the active and the newest generation
    // this table assigned; false until one is assigned, or after a failure.
    bool references_known_ = false;
    // Slots loaded from the pins that no known generation refers to: released
    // once the active slot's entries are known.
    bool sweep_pending_ = false;
};

}  // namespace ztseg
