#include "controller/fleet_rules.hpp"

#include <algorithm>
#include <map>
#include <string>
#include <tuple>

namespace ztseg::controller {
namespace {

// Rules from bundles without fingerprints match by policy and rule id.
std::tuple<uint64_t, std::string, uint32_t> ruleKey(const v1::RuleHits& r) {
    if (r.fingerprint() != 0) {
        return {r.fingerprint(), "", 0};
    }
    return {0, r.policy(), r.rule_id()};
}

void add(v1::RuleHits& sum, const v1::RuleHits& r) {
    if (!r.counted()) {
        return;
    }
    const bool first = !sum.counted();
    sum.set_counted(true);
    sum.set_packets(sum.packets() + r.packets());
    sum.set_bytes(sum.bytes() + r.bytes());
    sum.set_admitted(sum.admitted() + r.admitted());
    sum.set_refused(sum.refused() + r.refused());
    sum.set_last_hit_unix_ms(std::max(sum.last_hit_unix_ms(), r.last_hit_unix_ms()));
    sum.set_counting_since_unix_ms(
        first ? r.counting_since_unix_ms()
              : std::max(sum.counting_since_unix_ms(), r.counting_since_unix_ms()));
}

}  // namespace

v1::RulesReply sumRuleHits(const std::vector<v1::RulesReply>& hosts) {
    std::vector<const v1::RulesReply*> newest_first;
    for (const v1::RulesReply& h : hosts) {
        newest_first.push_back(&h);
    }
    std::stable_sort(newest_first.begin(), newest_first.end(),
                     [](const v1::RulesReply* a, const v1::RulesReply* b) {
                         return a->generation() > b->generation();
                     });
    v1::RulesReply out;
    out.set_hosts(uint32_t(hosts.size()));
    std::map<std::tuple<uint64_t, std::string, uint32_t>, v1::RuleHits> sums;
    for (const v1::RulesReply* h : newest_first) {
        out.set_generation(std::max(out.generation(), h->generation()));
        out.set_uncounted(out.uncounted() + h->uncounted());
        for (const v1::RuleHits& r : h->rules()) {
            auto [it, inserted] = sums.try_emplace(ruleKey(r));
            if (inserted) {
                it->second = r;  // names from the newest generation
                it->second.set_counted(false);
                it->second.clear_packets();
                it->second.clear_bytes();
                it->second.clear_admitted();
                it->second.clear_refused();
                it->second.clear_last_hit_unix_ms();
                it->second.clear_counting_since_unix_ms();
            }
            add(it->second, r);
        }
    }
    std::vector<v1::RuleHits> rules;
    for (auto& [key, r] : sums) {
        rules.push_back(std::move(r));
    }
    std::stable_sort(rules.begin(), rules.end(), [](const v1::RuleHits& a, const v1::RuleHits& b) {
        return a.rule_id() < b.rule_id();
    });
    for (v1::RuleHits& r : rules) {
        *out.add_rules() = std::move(r);
    }
    return out;
}

}  // namespace ztseg::controller
