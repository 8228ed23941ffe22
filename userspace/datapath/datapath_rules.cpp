// Datapath: per-rule hit counters (datapath/rule_counters.hpp) — which
// ztseg_rule_hits slot each rule of a new generation counts in, and what the
// active generation's rules have counted.
#include <bpf/bpf.h>

#include <algorithm>
#include <optional>

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

std::optional<std::vector<RuleRefEntry>> Datapath::activeRuleRefs() const {
    uint32_t raw = activeSlotRaw();
    if (raw == 0) {
        return std::vector<RuleRefEntry>{};
    }
    if (const auto& mirror = mirror_[raw - 1].content) {
        return mirror->rules;
    }
    // Adopted state: read the active slot's map. Opening an inner map by id
    // needs CAP_SYS_ADMIN, which ztsegd's unit does not grant: then unknown.
    uint32_t slot = raw - 1, id = 0;
    if (!slot_maps_[ZTSEG_SLOT_RULES].lookup(&slot, &id) || id == 0) {
        return std::vector<RuleRefEntry>{};
    }
    std::optional<BpfMap> inner;
    try {
        inner.emplace(BpfMap::openByIdReadOnly(id, "ztseg_rules(active)"));
    } catch (const Error&) {
        return std::nullopt;
    }
    std::vector<RuleRefEntry> out;
    ztseg_rule_key key{}, next{};
    const void* prev = nullptr;
    while (inner->nextKey(prev, &next)) {
        ztseg_rule_ref ref{};
        if (inner->lookup(&next, &ref)) {
            out.push_back({next, ref});
        }
        key = next;
        prev = &key;
    }
    return out;
}

std::vector<RuleRefEntry> Datapath::assignRuleCounters(const Generation& gen,
                                                       const SlotContent* replaced,
                                                       const SlotContent* active) {
    if (!opts_.rule_counters) {
        return {};
    }
    std::vector<RuleFingerprint> want;
    if (gen.rule_fingerprints.empty()) {
        want.reserve(gen.rules.size());
        for (const Rule& r : gen.rules) {
            want.push_back({r.rule_id, 0});
        }
    } else {
        want = gen.rule_fingerprints;
    }
    auto byId = [](const RuleFingerprint& a, const RuleFingerprint& b) {
        return a.rule_id < b.rule_id;
    };
    auto sameId = [](const RuleFingerprint& a, const RuleFingerprint& b) {
        return a.rule_id == b.rule_id;
    };
    if (!std::is_sorted(want.begin(), want.end(), byId)) {
        std::stable_sort(want.begin(), want.end(), byId);
    }
    want.erase(std::unique(want.begin(), want.end(), sameId), want.end());
    for (RuleFingerprint& w : want) {
        if (w.fingerprint == 0) {
            w.fingerprint = generationOnlyFingerprint(gen.number, w.rule_id);
        }
    }
    return ruleTable().assign(rule_slots_, rule_hits_, want,
                              replaced != nullptr ? &replaced->rules : nullptr,
                              active != nullptr ? &active->rules : nullptr);
}

void Datapath::forgetRuleCounterAssignment() {
    if (rule_table_) {
        rule_table_->forgetLastAssign();
    }
}

std::vector<RuleHitCount> Datapath::ruleHits() const {
    auto active = activeRuleRefs();
    if (!active) {
        return {};  // adopted, not applied since: known again after the next apply
    }
    std::vector<RuleHitCount> out = ruleTable().read(rule_hits_, *active);
    std::sort(out.begin(), out.end(),
              [](const RuleHitCount& a, const RuleHitCount& b) { return a.rule_id < b.rule_id; });
    return out;
}

size_t Datapath::uncountedRules() const {
    return rule_table_ ? rule_table_->uncounted() : 0;
}

}  // namespace ztseg
