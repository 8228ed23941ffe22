// A rule's fingerprint follows its meaning, not its place (what per-rule
// counters follow across generations).
#include "policy/rule_fingerprint.hpp"

#include <gtest/gtest.h>

#include "policy/bundle.hpp"
#include "policy/compiler.hpp"
#include "policy/parser.hpp"

namespace ztseg::policy {
namespace {

const char* kBase = R"(workloads:
  - {name: api, labels: {app: api}, addresses: [10.0.0.1]}
  - {name: db, labels: {app: db}, addresses: [10.0.0.2]}
policies:
  - name: db
    selector: {matchLabels: {app: db}}
    ingress:
      - from: [{selector: {matchLabels: {app: api}}}]
        ports: [{port: 5432, protocol: tcp}]
        description: api -> db
      - from: [{cidr: 10.9.0.0/16}]
        ports: [{port: 22, protocol: tcp}]
)";

std::map<std::string, uint64_t> fingerprints(const std::vector<SourceText>& files) {
    Diagnostics d;
    CompiledPolicy cp = compile(parsePolicies(files, d), 1, d);
    std::map<std::string, uint64_t> out;  // by description, or port for the second
    for (const RuleSource& s : cp.sources) {
        EXPECT_NE(s.fingerprint, 0u);
        EXPECT_EQ(s.fingerprint >> 63, 0u);
        out[s.description.empty() ? "ssh" : "pg"] = s.fingerprint;
    }
    return out;
}

std::string replaced(std::string s, const std::string& from, const std::string& to) {
    s.replace(s.find(from), from.size(), to);
    return s;
}

TEST(RuleFingerprint, PositionFileAndDescriptionDoNotCount) {
    auto base = fingerprints({{"a.yaml", kBase}});
    // moved to another file, below a comment, with another description
    std::string moved = "# moved\n\n" + replaced(kBase, "description: api -> db", "description: x");
    auto other = fingerprints({{"z/other.yaml", moved}});
    EXPECT_EQ(base.at("pg"), other.at("pg"));
    EXPECT_EQ(base.at("ssh"), other.at("ssh"));
}

TEST(RuleFingerprint, ContentPolicyAndTargetDo) {
    auto base = fingerprints({{"a.yaml", kBase}});
    EXPECT_NE(base.at("pg"), base.at("ssh"));
    auto port = fingerprints({{"a.yaml", replaced(kBase, "port: 5432", "port: 5433")}});
    EXPECT_NE(port.at("pg"), base.at("pg"));
    EXPECT_EQ(port.at("ssh"), base.at("ssh")) << "the other rule is unchanged";
    auto cidr = fingerprints({{"a.yaml", replaced(kBase, "10.9.0.0/16", "10.9.0.0/24")}});
    EXPECT_NE(cidr.at("ssh"), base.at("ssh"));
    auto renamed = fingerprints({{"a.yaml", replaced(kBase, "  - name: db\n", "  - name: db2\n")}});
    EXPECT_NE(renamed.at("pg"), base.at("pg"));
    auto peer = fingerprints({{"a.yaml", replaced(kBase, "{app: api}}}]", "{app: web}}}]")}});
    EXPECT_NE(peer.at("pg"), base.at("pg"));
}

TEST(RuleFingerprint, AuditModeKeepsIt) {
    auto base = fingerprints({{"a.yaml", kBase}});
    auto audit = fingerprints(
        {{"a.yaml", replaced(kBase, "    selector: {matchLabels: {app: db}}\n",
                             "    mode: audit\n    selector: {matchLabels: {app: db}}\n")}});
    EXPECT_EQ(audit.at("pg"), base.at("pg"));
}

TEST(RuleFingerprint, IdenticalRulesOfOnePolicyStayApart) {
    Diagnostics d;
    std::string dup = std::string(kBase) +
                      "      - from: [{cidr: 10.9.0.0/16}]\n        ports: [{port: 22, protocol: "
                      "tcp}]\n";
    CompiledPolicy cp = compile(parsePolicies({{"a.yaml", dup}}, d), 1, d);
    ASSERT_EQ(cp.sources.size(), 3u);
    EXPECT_NE(cp.sources[1].fingerprint, cp.sources[2].fingerprint);
}

TEST(RuleFingerprint, CarriedByTheBundleAndTheGeneration) {
    Diagnostics d;
    CompiledPolicy cp = compile(parsePolicies({{"a.yaml", kBase}}, d), 1, d);
    Generation g = cp.toGeneration();
    ASSERT_EQ(g.rule_fingerprints.size(), 2u);
    EXPECT_EQ(g.rule_fingerprints[0],
              (RuleFingerprint{cp.sources[0].rule_id, cp.sources[0].fingerprint}));
    EXPECT_LT(g.rule_fingerprints[0].rule_id, g.rule_fingerprints[1].rule_id);
    CompiledPolicy back = parseBundle(serializeBundle(cp));
    ASSERT_EQ(back.sources.size(), 2u);
    EXPECT_EQ(back.sources[0].fingerprint, cp.sources[0].fingerprint);
    EXPECT_EQ(back.sources[1].fingerprint, cp.sources[1].fingerprint);
}

}  // namespace
}  // namespace ztseg::policy
