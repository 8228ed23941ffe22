// `ztsegctl diff` / `apply --dry-run` and the apply guard: what a candidate
// changes against the policy in force, in label terms, and when a change
// removes too much enforcement to apply without --force.
#include "policy/policy_diff.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include "policy/compiler.hpp"
#include "policy/parser.hpp"

namespace ztseg::policy {
namespace {

const std::string kWorkloads =
    "workloads:\n"
    "  - name: web\n"
    "    labels: {app: web}\n"
    "    addresses: [10.9.0.1]\n"
    "  - name: api\n"
    "    labels: {app: api}\n"
    "    addresses: [10.9.0.2]\n"
    "  - name: db\n"
    "    labels: {app: db}\n"
    "    addresses: [10.9.0.3]\n";

// api <- web tcp/8080 and db <- api tcp/5432, each on the server's ingress.
std::string twoHops(const std::string& db_mode = "") {
    return kWorkloads +
           "policies:\n"
           "  - name: api\n"
           "    selector: {matchLabels: {app: api}}\n"
           "    ingress:\n"
           "      - from: [{selector: {matchLabels: {app: web}}}]\n"
           "        ports: [{port: 8080, protocol: tcp}]\n"
           "  - name: db\n"
           "    selector: {matchLabels: {app: db}}\n" +
           db_mode +
           "    ingress:\n"
           "      - from: [{selector: {matchLabels: {app: api}}}]\n"
           "        ports: [{port: 5432, protocol: tcp}]\n";
}

CompiledPolicy compileText(const std::string& text, uint64_t generation,
                           const std::string& file = "test.yaml") {
    Diagnostics diags;
    PolicySet ps = parsePolicies({{file, text}}, diags);
    return compile(ps, generation, diags);
}

std::vector<std::string> entries(const std::vector<RuleChange>& list) {
    std::vector<std::string> out;
    for (const auto& c : list) out.push_back(c.entry);
    return out;
}

TEST(PolicyDiff, SamePolicyIsNoChangeEvenFromAnotherFileAndGeneration) {
    PolicyDiff d = diffPolicies(compileText(twoHops(), 3), compileText(twoHops(), 4, "moved.yaml"));
    EXPECT_TRUE(d.empty());
    EXPECT_EQ(d.active_rules, 2u);
    EXPECT_EQ(d.active_enforced, 2u);
    EXPECT_FALSE(guardRefusal(d).has_value());
}

TEST(PolicyDiff, RulesAddedAndRemovedInLabelTermsWithTheirSource) {
    std::string wider = twoHops();
    wider.replace(wider.find("port: 5432"), 10, "port: 5433");
    PolicyDiff d = diffPolicies(compileText(twoHops(), 3), compileText(wider, 4));
    EXPECT_EQ(entries(d.rules_added), std::vector<std::string>{"app=db <- app=api tcp/5433 allow"});
    EXPECT_EQ(entries(d.rules_removed),
              std::vector<std::string>{"app=db <- app=api tcp/5432 allow"});
    ASSERT_EQ(d.rules_added.size(), 1u);
    EXPECT_EQ(d.rules_added[0].policy, "db");
    EXPECT_EQ(d.rules_added[0].location, "test.yaml:20");
    EXPECT_TRUE(d.workloads_added.empty());
    EXPECT_TRUE(d.identities_added.empty());
    // One of two entries removed: exactly the 50% the guard allows.
    EXPECT_FALSE(guardRefusal(d).has_value());
    EXPECT_TRUE(guardRefusal(d, 49).has_value());
}

TEST(PolicyDiff, ModeChangesAndWorkloadsComingAndGoing) {
    std::string audit = twoHops("    mode: audit\n");
    std::string renamed = audit;
    renamed.replace(renamed.find("name: web"), 9, "name: www");
    renamed.replace(renamed.find("{app: web}"), 10, "{app: www}");
    PolicyDiff d = diffPolicies(compileText(twoHops(), 3), compileText(renamed, 4));
    ASSERT_EQ(d.workloads_changed.size(), 1u);
    EXPECT_EQ(d.workloads_changed[0].name, "db");
    EXPECT_EQ(d.workloads_changed[0].what, "mode enforce -> audit");
    EXPECT_EQ(d.workloads_added, std::vector<std::string>{"www (unmanaged)"});
    EXPECT_EQ(d.workloads_removed, std::vector<std::string>{"web (unmanaged)"});
    EXPECT_EQ(d.identities_added, std::vector<std::string>{"app=www (www)"});
    EXPECT_EQ(d.identities_removed, std::vector<std::string>{"app=web (web)"});
    // The api's only rule named app=web: it matches nothing now.
    EXPECT_EQ(entries(d.rules_removed),
              std::vector<std::string>{"app=api <- app=web tcp/8080 allow"});
}

TEST(PolicyDiff, GuardRefusesRemovingAllEnforcement) {
    // Every policy in audit mode: nothing is enforced any more.
    std::string all_audit = twoHops("    mode: audit\n");
    all_audit.replace(all_audit.find("    ingress:"), 0, "    mode: audit\n");
    PolicyDiff d = diffPolicies(compileText(twoHops(), 3), compileText(all_audit, 4));
    EXPECT_EQ(d.active_enforced, 2u);
    EXPECT_EQ(d.candidate_enforced, 0u);
    auto why = guardRefusal(d);
    ASSERT_TRUE(why.has_value());
    EXPECT_NE(why->find("remove all enforcement"), std::string::npos) << *why;
    EXPECT_NE(why->find("generation 3 enforces 2 workload(s)"), std::string::npos) << *why;

    // An emptied policy directory: only the inventory is left.
    d = diffPolicies(compileText(twoHops(), 3), compileText(kWorkloads, 4));
    ASSERT_TRUE(guardRefusal(d).has_value());
    EXPECT_EQ(d.rules_removed.size(), 2u);
}

TEST(PolicyDiff, GuardRefusesRemovingMoreThanTheShare) {
    // Enforcement stays (db), but 1 of 2 entries goes at a 40% limit.
    std::string one_hop = twoHops();
    one_hop.erase(
        one_hop.find("    ingress:\n      - from: [{selector: {matchLabels: {app: web}}}]"),
        std::string("    ingress:\n      - from: [{selector: {matchLabels: {app: web}}}]\n"
                    "        ports: [{port: 8080, protocol: tcp}]\n")
            .size());
    PolicyDiff d = diffPolicies(compileText(twoHops(), 3), compileText(one_hop, 4));
    EXPECT_EQ(d.rules_removed.size(), 1u);
    auto why = guardRefusal(d, 40);
    ASSERT_TRUE(why.has_value());
    EXPECT_NE(why->find("remove 1 of the 2 rule entries of generation 3 (50%, more than 40%)"),
              std::string::npos)
        << *why;
    // Starting from nothing is never refused.
    EXPECT_FALSE(guardRefusal(diffPolicies(CompiledPolicy{}, compileText(kWorkloads, 1)), 0));
}

}  // namespace
}  // namespace ztseg::policy
