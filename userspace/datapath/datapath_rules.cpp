// Datapath: per-rule hit counters (datapath/rule_counters.hpp) — which
// ztseg_rule_hits slot each rule of a new generation counts in, and what the
// active generation's rules have counted.
#include <bpf/bpf.h>

#include <algorithm>
#include <set>

#include "common/error.hpp"
#include "datapath/datapath.hpp"

namespace ztseg {
namespace {

// For rules without a fingerprint (bundles from before fingerprints): counted
// under this generation only. The top bit keeps them apart from real ones.
uint64_t generationOnlyFingerprint(uint64_t generation, uint32_t rule_id) {
    return (1ull << 63) | (generation << 32) | rule_id;
}

}  // namespace

RuleCounterTable& Datapath::ruleTable() const {
    if (!rule_table_) {
        rule_table_ = std::make_unique<RuleCounterTable>(rule_slots_, rule_hits_);
    }
    return *rule_table_;
}

std::vector<RuleRefEntry> Datapath::activeRuleRefs() const {
    uint32_t raw = activeSlotRaw();
    if (raw == 0) {
        return {};
    }
    if (const auto& mirror = mirror_[raw - 1].content) {
        return mirror->rules;
    }
    // Adopted state: read the active slot's map.
    uint32_t slot = raw - 1, id = 0;
    if (!slot_maps_[ZTSEG_SLOT_RULES].lookup(&slot, &id) || id == 0) {
        return {};
    }
    BpfMap inner = BpfMap::openByIdReadOnly(id, "ztseg_rules(active)");
    std::vector<RuleRefEntry> out;
    ztseg_rule_key key{}, next{};
    const void* prev = nullptr;
    while (inner.nextKey(prev, &next)) {
        ztseg_rule_ref ref{};
        if (inner.lookup(&next, &ref)) {
            out.push_back({next, ref});
        }
        key = next;
        prev = &key;
    }
    return out;
}

std::vector<RuleRefEntry> Datapath::assignRuleCounters(const Generation& gen) {
    if (!opts_.rule_counters) {
        return {};
    }
    std::map<uint32_t, uint64_t> fingerprints;
    for (const Rule& r : gen.rules) {
        auto fp = gen.rule_fingerprints.find(r.rule_id);
        fingerprints.emplace(r.rule_id, fp != gen.rule_fingerprints.end()
                                            ? fp->second
                                            : generationOnlyFingerprint(gen.number, r.rule_id));
    }
    std::set<uint32_t> in_use;
    for (const RuleRefEntry& e : activeRuleRefs()) {
        in_use.insert(e.value.counter);
    }
    return ruleTable().assign(rule_slots_, rule_hits_, fingerprints, in_use);
}

std::vector<RuleHitCount> Datapath::ruleHits() const {
    std::vector<RuleHitCount> out = ruleTable().read(rule_hits_, activeRuleRefs());
    std::sort(out.begin(), out.end(),
              [](const RuleHitCount& a, const RuleHitCount& b) { return a.rule_id < b.rule_id; });
    return out;
}

size_t Datapath::uncountedRules() const {
    return rule_table_ ? rule_table_->uncounted() : 0;
}

}  // namespace ztseg
