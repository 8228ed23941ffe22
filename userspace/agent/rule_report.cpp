#include "agent/rule_report.hpp"

#include <algorithm>

namespace ztseg::agent {

v1::RulesReply rulesReply(const RuleHitsSnapshot& snap, const std::string& host) {
    v1::RulesReply r;
    r.set_host(host);
    r.set_uncounted(snap.uncounted);
    if (!snap.policy) {
        return r;
    }
    r.set_generation(snap.policy->generation);
    std::map<uint32_t, const RuleHitCount*> by_id;
    for (const RuleHitCount& h : snap.hits) {
        by_id[h.rule_id] = &h;
    }
    for (const policy::RuleSource& s : snap.policy->sources) {
        v1::RuleHits* o = r.add_rules();
        o->set_rule_id(s.rule_id);
        o->set_policy(s.policy);
        o->set_file(s.loc.file);
        o->set_line(uint32_t(std::max(0, s.loc.line)));
        o->set_direction(s.direction == Direction::Ingress ? "ingress" : "egress");
        o->set_action(s.action == Action::Deny ? "deny" : "allow");
        o->set_description(s.description);
        o->set_fingerprint(s.fingerprint);
        auto h = by_id.find(s.rule_id);
        if (h == by_id.end()) {
            continue;
        }
        o->set_counted(true);
        o->set_packets(h->second->packets);
        o->set_bytes(h->second->bytes);
        o->set_admitted(h->second->admitted);
        o->set_refused(h->second->refused);
        o->set_last_hit_unix_ms(int64_t(h->second->last_unix_ns / 1'000'000));
        o->set_counting_since_unix_ms(int64_t(h->second->since_unix_ns / 1'000'000));
    }
    return r;
}

void addRuleHits(const v1::RulesReply& rules, bool per_rule, MetricsSnapshot& m) {
    m.rules_uncounted = rules.uncounted();
    for (const v1::RuleHits& h : rules.rules()) {
        PolicyHitTotals& t = m.policy_hits[h.policy()];
        t.packets += h.packets();
        t.bytes += h.bytes();
        t.admitted += h.admitted();
        t.refused += h.refused();
        ++t.rules;
        if (h.counted() && h.last_hit_unix_ms() == 0) {
            ++t.unused_rules;
        }
        if (per_rule) {
            m.rule_hits.push_back({h.policy(), h.rule_id(),
                                   h.file() + ":" + std::to_string(h.line()), h.packets(),
                                   h.bytes()});
        }
    }
}

}  // namespace ztseg::agent
