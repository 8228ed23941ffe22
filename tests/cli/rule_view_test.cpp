// `ztsegctl rules`: which rules are unused in a window, sorting, and output.
#include "cli/rule_view.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/error.hpp"

namespace ztseg::cli {
namespace {

using Clock = std::chrono::system_clock;
const Clock::time_point kNow = Clock::time_point(std::chrono::milliseconds(1'800'000'000'000));
constexpr int64_t kDay = 86'400'000;
const int64_t kNowMs = 1'800'000'000'000;

v1::RuleHits rule(uint32_t id, const std::string& file, uint32_t line, uint64_t packets,
                  int64_t last_ms, int64_t since_ms, bool counted = true) {
    v1::RuleHits r;
    r.set_rule_id(id);
    r.set_policy("p" + std::to_string(id));
    r.set_file(file);
    r.set_line(line);
    r.set_direction("ingress");
    r.set_action("allow");
    r.set_counted(counted);
    r.set_packets(packets);
    r.set_bytes(packets * 100);
    r.set_last_hit_unix_ms(last_ms);
    r.set_counting_since_unix_ms(since_ms);
    return r;
}

v1::RulesReply reply() {
    v1::RulesReply r;
    r.set_host("h1");
    r.set_generation(4);
    *r.add_rules() = rule(1, "b.yaml", 5, 10, kNowMs - 1000, kNowMs - 30 * kDay);       // used now
    *r.add_rules() = rule(2, "a.yaml", 9, 50, kNowMs - 10 * kDay, kNowMs - 30 * kDay);  // old hit
    *r.add_rules() = rule(3, "a.yaml", 3, 0, 0, kNowMs - 30 * kDay);                    // never
    *r.add_rules() = rule(4, "c.yaml", 1, 0, 0, kNowMs - 2 * kDay);                     // new
    *r.add_rules() = rule(5, "c.yaml", 7, 0, 0, 0, false);                              // uncounted
    return r;
}

std::vector<uint32_t> ids(const std::vector<v1::RuleHits>& rules) {
    std::vector<uint32_t> out;
    for (const auto& r : rules) {
        out.push_back(r.rule_id());
    }
    return out;
}

TEST(RuleView, UnusedSinceCountingBeganMeansNeverHit) {
    RuleListing l = listRules(reply(), RuleSort::Rule, true, "", kNow);
    EXPECT_EQ(ids(l.rules), (std::vector<uint32_t>{3, 4}));
    EXPECT_TRUE(l.too_new.empty());
}

TEST(RuleView, UnusedInAWindowNeedsTheWholeWindowCounted) {
    RuleListing l = listRules(reply(), RuleSort::Rule, true, "7d", kNow);
    // rule 2 was last hit 10 days ago; rule 4 has been counted for 2 days only
    EXPECT_EQ(ids(l.rules), (std::vector<uint32_t>{2, 3}));
    EXPECT_EQ(ids(l.too_new), (std::vector<uint32_t>{4}));
    l = listRules(reply(), RuleSort::Rule, true, "12d", kNow);
    EXPECT_EQ(ids(l.rules), (std::vector<uint32_t>{3}));
}

TEST(RuleView, Sorting) {
    EXPECT_EQ(ids(listRules(reply(), RuleSort::Hits, false, "", kNow).rules),
              (std::vector<uint32_t>{2, 1, 3, 4, 5}));
    EXPECT_EQ(ids(listRules(reply(), RuleSort::File, false, "", kNow).rules),
              (std::vector<uint32_t>{3, 2, 1, 4, 5}));
    EXPECT_EQ(ids(listRules(reply(), RuleSort::Last, false, "", kNow).rules),
              (std::vector<uint32_t>{1, 2, 3, 4, 5}));
    EXPECT_THROW(parseRuleSort("size"), Error);
}

TEST(RuleView, TextNamesWindowSourceAndTooNewRules) {
    RuleListing l = listRules(reply(), RuleSort::Rule, true, "7d", kNow);
    std::string t = rulesText(l, "ztsegd on h1 (generation 4)", kNow);
    EXPECT_NE(t.find("ztsegd on h1 (generation 4): 2 rules no traffic used in the last 7d"),
              std::string::npos)
        << t;
    EXPECT_NE(t.find("a.yaml:9"), std::string::npos) << t;
    EXPECT_NE(t.find("10d ago"), std::string::npos) << t;
    EXPECT_NE(t.find("never"), std::string::npos) << t;
    EXPECT_NE(t.find("1 more without a hit, but counted for less than 7d (too new to call "
                     "unused): 4 (c.yaml:1)"),
              std::string::npos)
        << t;
}

TEST(RuleView, JsonCarriesEveryField) {
    RuleListing l = listRules(reply(), RuleSort::Rule, false, "", kNow);
    auto j = nlohmann::json::parse(rulesJson(l, reply()));
    EXPECT_EQ(j["host"], "h1");
    EXPECT_EQ(j["generation"], 4);
    ASSERT_EQ(j["rules"].size(), 5u);
    EXPECT_EQ(j["rules"][0]["file"], "b.yaml");
    EXPECT_EQ(j["rules"][0]["packets"], 10);
    EXPECT_EQ(j["rules"][0]["bytes"], 1000);
    EXPECT_TRUE(j["rules"][2]["last_hit"].is_null());
    EXPECT_EQ(j["rules"][4]["counted"], false);
    EXPECT_TRUE(j["rules"][4]["counting_since"].is_null());
    EXPECT_FALSE(j.contains("too_new"));
}

}  // namespace
}  // namespace ztseg::cli
