// `fleet rules`: hosts' counts summed per rule, rules matched by fingerprint.
#include "controller/fleet_rules.hpp"

#include <gtest/gtest.h>

namespace ztseg::controller {
namespace {

v1::RuleHits rule(uint32_t id, uint64_t fp, uint64_t packets, int64_t last, int64_t since,
                  bool counted = true) {
    v1::RuleHits r;
    r.set_rule_id(id);
    r.set_policy("db");
    r.set_file("db.yaml");
    r.set_line(id * 10);
    r.set_fingerprint(fp);
    r.set_counted(counted);
    r.set_packets(packets);
    r.set_bytes(packets * 10);
    r.set_admitted(packets ? 1 : 0);
    r.set_last_hit_unix_ms(last);
    r.set_counting_since_unix_ms(since);
    return r;
}

v1::RulesReply host(uint64_t generation, std::vector<v1::RuleHits> rules, uint64_t uncounted = 0) {
    v1::RulesReply r;
    r.set_generation(generation);
    r.set_uncounted(uncounted);
    for (auto& x : rules) {
        *r.add_rules() = std::move(x);
    }
    return r;
}

TEST(FleetRules, SumsByFingerprintAcrossGenerations) {
    // h2 runs an older generation where the same rule had another id and line.
    auto sum = sumRuleHits({host(5, {rule(1, 0xa, 10, 500, 100), rule(2, 0xb, 0, 0, 100)}),
                            host(4, {rule(7, 0xa, 5, 900, 300)}, 2)});
    EXPECT_EQ(sum.hosts(), 2u);
    EXPECT_EQ(sum.generation(), 5u);
    EXPECT_EQ(sum.uncounted(), 2u);
    ASSERT_EQ(sum.rules_size(), 2);
    const v1::RuleHits& a = sum.rules(0);
    EXPECT_EQ(a.rule_id(), 1u) << "names from the newest generation";
    EXPECT_EQ(a.line(), 10u);
    EXPECT_EQ(a.packets(), 15u);
    EXPECT_EQ(a.bytes(), 150u);
    EXPECT_EQ(a.admitted(), 2u);
    EXPECT_EQ(a.last_hit_unix_ms(), 900) << "the latest hit on any host";
    EXPECT_EQ(a.counting_since_unix_ms(), 300) << "the latest start: unused only when all counted";
    EXPECT_EQ(sum.rules(1).packets(), 0u);
    EXPECT_TRUE(sum.rules(1).counted());
}

TEST(FleetRules, RuleCountedNowhereStaysUncounted) {
    auto sum = sumRuleHits(
        {host(5, {rule(1, 0xa, 0, 0, 0, false)}), host(5, {rule(1, 0xa, 0, 0, 0, false)})});
    ASSERT_EQ(sum.rules_size(), 1);
    EXPECT_FALSE(sum.rules(0).counted());
}

TEST(FleetRules, NoHostsNoRules) {
    auto sum = sumRuleHits({});
    EXPECT_EQ(sum.hosts(), 0u);
    EXPECT_EQ(sum.rules_size(), 0);
}

}  // namespace
}  // namespace ztseg::controller
