// The Rules API reply and the metrics' per-policy view of it.
#include "agent/rule_report.hpp"

#include <gtest/gtest.h>

namespace ztseg::agent {
namespace {

RuleHitsSnapshot snapshot() {
    auto cp = std::make_shared<policy::CompiledPolicy>();
    cp->generation = 9;
    cp->sources = {
        {3, "db", Direction::Ingress, Action::Allow, {"three-tier.yaml", 46, 9}, "api -> db", 0xaa},
        {4, "db", Direction::Ingress, Action::Deny, {"three-tier.yaml", 50, 9}, "", 0xbb},
        {5, "web", Direction::Egress, Action::Allow, {"three-tier.yaml", 24, 9}, "", 0xcc},
    };
    RuleHitsSnapshot s;
    s.policy = cp;
    // rule 5 has no slot (counters full)
    s.hits = {{3, 10, 1400, 2, 0, 1'700'000'000'000'000'000ull, 1'600'000'000'000'000'000ull},
              {4, 0, 0, 0, 0, 0, 1'600'000'000'000'000'000ull}};
    s.uncounted = 1;
    return s;
}

TEST(RuleReport, EveryRuleWithItsSourceAndCounts) {
    v1::RulesReply r = rulesReply(snapshot(), "h1");
    EXPECT_EQ(r.host(), "h1");
    EXPECT_EQ(r.generation(), 9u);
    EXPECT_EQ(r.uncounted(), 1u);
    ASSERT_EQ(r.rules_size(), 3);
    const v1::RuleHits& a = r.rules(0);
    EXPECT_EQ(a.rule_id(), 3u);
    EXPECT_EQ(a.policy(), "db");
    EXPECT_EQ(a.file(), "three-tier.yaml");
    EXPECT_EQ(a.line(), 46u);
    EXPECT_EQ(a.direction(), "ingress");
    EXPECT_EQ(a.action(), "allow");
    EXPECT_EQ(a.fingerprint(), 0xaau);
    EXPECT_TRUE(a.counted());
    EXPECT_EQ(a.packets(), 10u);
    EXPECT_EQ(a.bytes(), 1400u);
    EXPECT_EQ(a.admitted(), 2u);
    EXPECT_EQ(a.last_hit_unix_ms(), 1'700'000'000'000);
    EXPECT_EQ(a.counting_since_unix_ms(), 1'600'000'000'000);
    EXPECT_EQ(r.rules(1).action(), "deny");
    EXPECT_TRUE(r.rules(1).counted());
    EXPECT_EQ(r.rules(1).last_hit_unix_ms(), 0);
    EXPECT_FALSE(r.rules(2).counted());
}

TEST(RuleReport, NoPolicyNoRules) {
    v1::RulesReply r = rulesReply(RuleHitsSnapshot{}, "h1");
    EXPECT_EQ(r.generation(), 0u);
    EXPECT_EQ(r.rules_size(), 0);
}

TEST(RuleReport, MetricsSumPerPolicyAndListRulesOnlyOnRequest) {
    v1::RulesReply r = rulesReply(snapshot(), "h1");
    MetricsSnapshot m;
    addRuleHits(r, false, m);
    ASSERT_EQ(m.policy_hits.size(), 2u);
    EXPECT_EQ(m.policy_hits["db"].packets, 10u);
    EXPECT_EQ(m.policy_hits["db"].bytes, 1400u);
    EXPECT_EQ(m.policy_hits["db"].admitted, 2u);
    EXPECT_EQ(m.policy_hits["db"].rules, 2u);
    EXPECT_EQ(m.policy_hits["db"].unused_rules, 1u);   // the deny rule never hit
    EXPECT_EQ(m.policy_hits["web"].unused_rules, 0u);  // not counted: not called unused
    EXPECT_EQ(m.rules_uncounted, 1u);
    EXPECT_TRUE(m.rule_hits.empty());
    MetricsSnapshot per_rule;
    addRuleHits(r, true, per_rule);
    ASSERT_EQ(per_rule.rule_hits.size(), 3u);
    EXPECT_EQ(per_rule.rule_hits[0].location, "three-tier.yaml:46");
    EXPECT_EQ(per_rule.rule_hits[0].packets, 10u);
}

}  // namespace
}  // namespace ztseg::agent
