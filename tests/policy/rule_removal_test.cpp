// removeRules(): the edited policy files still compile to exactly the other
// rules, comments and line endings survive, what cannot be edited exactly is
// refused with file:line, and the unified diff applies with patch and git apply.
#include "policy/rule_removal.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

#include "common/error.hpp"
#include "policy/compiler.hpp"
#include "policy/parser.hpp"

namespace ztseg::policy {
namespace {

namespace fs = std::filesystem;

using Sources = std::map<std::string, std::string>;

const std::string kPolicyDir = std::string(ZTSEG_SOURCE_DIR) + "/policies";

std::string readFile(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

Sources shipped(const std::vector<std::string>& names) {
    Sources out;
    for (const auto& n : names) {
        out[n] = readFile(fs::path(kPolicyDir) / n);
    }
    return out;
}

CompiledPolicy compileSources(const Sources& sources) {
    std::vector<SourceText> texts;
    for (const auto& [name, text] : sources) {
        texts.push_back({name, text});
    }
    Diagnostics diags;
    PolicySet ps = parsePolicies(texts, diags);
    return compile(ps, 1, diags);
}

// A rule as an operator recognises it, whatever its id and line.
using RuleKey = std::tuple<std::string, Direction, Action, std::string>;

RuleKey keyOf(const RuleSource& s) {
    return {s.policy, s.direction, s.action, s.description};
}

std::vector<RuleKey> ruleKeys(const CompiledPolicy& cp) {
    std::vector<RuleKey> out;
    for (const RuleSource& s : cp.sources) {
        out.push_back(keyOf(s));
    }
    std::sort(out.begin(), out.end());
    return out;
}

const RuleSource& findRule(const CompiledPolicy& cp, const std::string& policy, Direction dir,
                           const std::string& description) {
    for (const RuleSource& s : cp.sources) {
        if (s.policy == policy && s.direction == dir && s.description == description) {
            return s;
        }
    }
    throw Error("test: no rule '" + description + "' in policy " + policy);
}

RuleRemoval removalOf(const RuleSource& s) {
    return {s.loc.file, s.loc.line};
}

// Removing `gone` leaves exactly the other rules of `sources`, and the
// edited files parse and compile.
void expectRemaining(const Sources& sources, const RemovalResult& result,
                     const std::vector<RuleKey>& gone) {
    std::vector<RuleKey> expected = ruleKeys(compileSources(sources));
    for (const RuleKey& k : gone) {
        auto it = std::find(expected.begin(), expected.end(), k);
        ASSERT_NE(it, expected.end());
        expected.erase(it);
    }
    Sources after = sources;
    for (const auto& [file, text] : result.edited) {
        after[file] = text;
    }
    EXPECT_EQ(ruleKeys(compileSources(after)), expected);
}

bool haveTool(const std::string& name) {
    return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

// Writes `sources` into a fresh directory, runs `apply` (reading the diff on
// stdin) there and returns the files that changed afterwards.
Sources appliedWith(const std::string& apply, const Sources& sources, const std::string& diff) {
    static int n = 0;
    fs::path dir = fs::temp_directory_path() /
                   ("ztseg-removal-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    fs::remove_all(dir);
    fs::create_directories(dir);
    for (const auto& [name, text] : sources) {
        fs::create_directories((dir / name).parent_path());
        std::ofstream(dir / name, std::ios::binary) << text;
    }
    std::ofstream(dir / "removal.diff", std::ios::binary) << diff;
    std::string cmd = "cd '" + dir.string() + "' && " + apply + " < removal.diff >apply.log 2>&1";
    int rc = std::system(cmd.c_str());
    EXPECT_EQ(rc, 0) << apply << " failed:\n" << readFile(dir / "apply.log") << "\ndiff:\n" << diff;
    Sources changed;
    for (const auto& [name, text] : sources) {
        std::string now = readFile(dir / name);
        if (now != text) {
            changed[name] = now;
        }
    }
    fs::remove_all(dir);
    return changed;
}

// The diff applies cleanly with patch -p1 and git apply and gives `edited`.
void expectDiffApplies(const Sources& sources, const RemovalResult& result) {
    bool patch = haveTool("patch"), git = haveTool("git");
    if (!patch && !git) {
        GTEST_SKIP() << "neither patch nor git is installed";
    }
    if (patch) {
        EXPECT_EQ(
            appliedWith("patch -p1 --quiet --no-backup-if-mismatch --batch", sources, result.diff),
            result.edited);
    }
    if (git) {
        EXPECT_EQ(appliedWith("git apply -", sources, result.diff), result.edited);
    }
}

std::string crlf(const std::string& lf) {
    std::string out;
    for (char c : lf) {
        out += c == '\n' ? std::string("\r\n") : std::string(1, c);
    }
    return out;
}

// The message of the Error removeRules() throws, or "" if it does not.
std::string removalError(const Sources& sources, const std::vector<RuleRemoval>& rules) {
    try {
        removeRules(sources, rules);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(RuleRemoval, OneRuleFromThreeTierLeavesExactlyTheOthers) {
    Sources sources = shipped({"three-tier.yaml", "fleet.yaml"});
    CompiledPolicy cp = compileSources(sources);
    const RuleSource& web_api = findRule(cp, "web", Direction::Egress, "web -> api");
    RemovalResult result = removeRules(sources, {removalOf(web_api)});
    ASSERT_EQ(result.edited.size(), 1u);
    ASSERT_TRUE(result.edited.count("three-tier.yaml"));
    expectRemaining(sources, result, {keyOf(web_api)});
    // The item and the comment above it go, the list is written as [] (it
    // was web's only egress rule); nothing else changes.
    const std::string& before = sources.at("three-tier.yaml");
    const std::string item =
        "      # web talks to the api, never to the db directly.\n"
        "      - to: [{selector: {matchLabels: {app: api}}}]\n"
        "        ports: [{port: 8080, protocol: tcp}]\n"
        "        description: web -> api\n";
    std::string expected = before;
    size_t at = expected.find("    egress:\n" + item);
    ASSERT_NE(at, std::string::npos);
    expected.replace(at, 12 + item.size(), "    egress: []\n");
    EXPECT_EQ(result.edited.at("three-tier.yaml"), expected);
    ASSERT_EQ(result.notes.size(), 1u);
    EXPECT_EQ(result.notes[0].rfind("policy web keeps no egress rule (three-tier.yaml:26:", 0), 0u)
        << result.notes[0];
    EXPECT_EQ(
        result.diff.rfind("--- a/three-tier.yaml\n+++ b/three-tier.yaml\n@@ -23,11 +23,7 @@\n", 0),
        0u)
        << result.diff;
    expectDiffApplies(sources, result);
}

TEST(RuleRemoval, SeveralRulesInSeveralFiles) {
    Sources sources = shipped({"three-tier.yaml", "monitoring.yaml", "fleet.yaml"});
    CompiledPolicy cp = compileSources(sources);
    std::vector<const RuleSource*> gone = {
        &findRule(cp, "web", Direction::Ingress, "public HTTPS and HTTP"),
        &findRule(cp, "api", Direction::Egress, "api -> db"),
        &findRule(cp, "prometheus", Direction::Egress,
                  "blackbox ping probes (ICMP takes no ports)"),
        &findRule(cp, "prometheus", Direction::Egress, "scrape node_exporter on every host"),
    };
    std::vector<RuleRemoval> removals;
    std::vector<RuleKey> keys;
    for (const RuleSource* s : gone) {
        removals.push_back(removalOf(*s));
        keys.push_back(keyOf(*s));
    }
    removals.push_back(removalOf(*gone[0]));  // named twice: removed once
    RemovalResult result = removeRules(sources, removals);
    EXPECT_EQ(result.edited.size(), 2u);
    expectRemaining(sources, result, keys);
    // Files in sorted order.
    size_t monitoring = result.diff.find("--- a/monitoring.yaml"),
           tier = result.diff.find("--- a/three-tier.yaml");
    ASSERT_NE(monitoring, std::string::npos);
    ASSERT_NE(tier, std::string::npos);
    EXPECT_LT(monitoring, tier);
    // prometheus keeps one egress rule; web's ingress and api's egress lose their only one.
    ASSERT_EQ(result.notes.size(), 2u);
    EXPECT_EQ(result.notes[0].rfind("policy web keeps no ingress rule", 0), 0u) << result.notes[0];
    EXPECT_EQ(result.notes[1].rfind("policy api keeps no egress rule", 0), 0u) << result.notes[1];
    EXPECT_EQ(result.edited.at("monitoring.yaml").find("node_exporter of the hosts themselves"),
              std::string::npos);
    expectDiffApplies(sources, result);
}

TEST(RuleRemoval, LastRuleOfAListLeavesAnEmptyListAndANote) {
    Sources sources = shipped({"three-tier.yaml", "fleet.yaml"});
    CompiledPolicy cp = compileSources(sources);
    const RuleSource& api_db = findRule(cp, "db", Direction::Ingress, "api -> db");
    RemovalResult result = removeRules(sources, {removalOf(api_db)});
    const std::string& after = result.edited.at("three-tier.yaml");
    EXPECT_NE(after.find("    selector: {matchLabels: {app: db}}\n    ingress: []\n"),
              std::string::npos)
        << after;
    ASSERT_EQ(result.notes.size(), 1u);
    EXPECT_EQ(result.notes[0],
              "policy db keeps no ingress rule (three-tier.yaml:46: ingress: []): it now denies "
              "all ingress (default deny) unless another policy selecting its workloads allows "
              "it");
    expectRemaining(sources, result, {keyOf(api_db)});
    expectDiffApplies(sources, result);
}

// A policy written to exercise what belongs to an item: comments above it
// at its '-', comments inside and under it, blank lines after it.
const std::string kCommented =
    "# header comment\n"
    "policies:\n"
    "  - name: p   # trailing comment\n"
    "    selector: {}\n"
    "    ingress:  # the list\n"
    "      # about the first rule\n"
    "      - from: [{entity: any}]\n"
    "        # inside the first rule\n"
    "        ports: [{port: 22, protocol: tcp}]\n"
    "        # commented out: action: deny\n"
    "\n"
    "      # about the second rule\n"
    "      - from:\n"
    "          - entity: host\n"
    "        description: 'quoted: kept as written'\n"
    "    # about egress\n"
    "    egress:\n"
    "    - to: [{entity: world}]\n"
    "    - to: [{entity: host}]\n"
    "      description: \"two\"\n";

// `text` without the lines numbered (from 1) in `gone`.
std::string withoutLines(const std::string& text, const std::set<int>& gone) {
    std::istringstream in(text);
    std::string out, line;
    for (int n = 1; std::getline(in, line); ++n) {
        if (!gone.count(n)) {
            out += line + "\n";
        }
    }
    return out;
}

TEST(RuleRemoval, CommentsAboveAndInsideTheItemGoWithItOthersStay) {
    Sources sources = {{"c.yaml", kCommented}};
    RemovalResult result = removeRules(sources, {{"c.yaml", 7}, {"c.yaml", 18}});
    // Lines 6-10: the comment above, the item, the comments inside and under
    // it; the blank line 11 stays. Line 18: the egress item.
    EXPECT_EQ(result.edited.at("c.yaml"), withoutLines(kCommented, {6, 7, 8, 9, 10, 18}));
    EXPECT_TRUE(result.notes.empty());
    expectRemaining(sources, result,
                    {{"p", Direction::Ingress, Action::Allow, ""},
                     {"p", Direction::Egress, Action::Allow, ""}});
    expectDiffApplies(sources, result);
}

TEST(RuleRemoval, EmptiedListKeepsItsTrailingComment) {
    Sources sources = {{"c.yaml", kCommented}};
    RemovalResult result = removeRules(sources, {{"c.yaml", 7}, {"c.yaml", 13}});
    const std::string& after = result.edited.at("c.yaml");
    EXPECT_NE(after.find("    selector: {}\n    ingress: []  # the list\n\n    # about egress\n"),
              std::string::npos)
        << after;
    ASSERT_EQ(result.notes.size(), 1u);
    EXPECT_EQ(result.notes[0].rfind("policy p keeps no ingress rule (c.yaml:5: ingress: [])", 0),
              0u);
    expectRemaining(sources, result,
                    {{"p", Direction::Ingress, Action::Allow, ""},
                     {"p", Direction::Ingress, Action::Allow, "quoted: kept as written"}});
    // Two removals three lines apart share one hunk.
    EXPECT_EQ(result.diff.find("@@", result.diff.find("@@") + 2), result.diff.find(" @@\n") + 1);
    expectDiffApplies(sources, result);
}

TEST(RuleRemoval, CrlfLineEndingsArePreserved) {
    Sources sources = {{"c.yaml", crlf(kCommented)}};
    RemovalResult lf = removeRules({{"c.yaml", kCommented}}, {{"c.yaml", 7}, {"c.yaml", 19}});
    RemovalResult result = removeRules(sources, {{"c.yaml", 7}, {"c.yaml", 19}});
    EXPECT_EQ(result.edited.at("c.yaml"), crlf(lf.edited.at("c.yaml")));
    expectRemaining(sources, result,
                    {{"p", Direction::Ingress, Action::Allow, ""},
                     {"p", Direction::Egress, Action::Allow, "two"}});
    expectDiffApplies(sources, result);
}

// Policy p (selects everything) whose egress list is `items`.
std::string egressPolicy(const std::string& items) {
    return "policies:\n"
           "  - name: p\n"
           "    selector: {}\n"
           "    egress:\n" +
           items;
}

TEST(RuleRemoval, ItemWithTheDashOnItsOwnLineIsFoundAtItsFirstKey) {
    // The parser records the line of the first key, not of the '-'.
    const std::string yaml = egressPolicy(
        "      -\n"
        "        to: [{entity: any}]\n"
        "      - to: [{entity: host}]\n");
    Sources sources = {{"d.yaml", yaml}};
    RemovalResult result = removeRules(sources, {{"d.yaml", 6}});
    EXPECT_EQ(result.edited.at("d.yaml"), egressPolicy("      - to: [{entity: host}]\n"));
    EXPECT_NE(removalError(sources, {{"d.yaml", 5}}), "");
    expectDiffApplies(sources, result);
}

TEST(RuleRemoval, FileWithoutFinalNewline) {
    const std::string yaml = egressPolicy(
        "      - to: [{entity: host}]\n"
        "      - to: [{entity: any}]");
    Sources sources = {{"n.yaml", yaml}};
    RemovalResult result = removeRules(sources, {{"n.yaml", 6}});
    EXPECT_EQ(result.edited.at("n.yaml"), egressPolicy("      - to: [{entity: host}]\n"));
    EXPECT_NE(result.diff.find("\\ No newline at end of file\n"), std::string::npos);
    expectDiffApplies(sources, result);
}

TEST(RuleRemoval, FlowStyleListIsRefused) {
    Sources sources = {{"f.yaml",
                        "policies:\n"
                        "  - name: p\n"
                        "    selector: {}\n"
                        "    ingress: [{from: [{entity: any}]}, {from: [{entity: host}]}]\n"
                        "    egress: [\n"
                        "      {to: [{entity: any}]},\n"
                        "    ]\n"}};
    std::string err = removalError(sources, {{"f.yaml", 4}});
    EXPECT_EQ(err.rfind("f.yaml:4: the rule is not a block list item", 0), 0u) << err;
    EXPECT_NE(err.find("flow-style"), std::string::npos) << err;
    err = removalError(sources, {{"f.yaml", 6}});
    EXPECT_EQ(err.rfind("f.yaml:6: the rule is not a block list item", 0), 0u) << err;
}

TEST(RuleRemoval, ItemTheTextCannotDelimitIsRefused) {
    // The flow mapping goes on at the '-' column: the text of the item is not
    // its indented block, and removing that would leave half of it.
    Sources sources = {{"g.yaml", egressPolicy("      - {to: [{entity: any}],\n"
                                               "      description: x}\n"
                                               "      - to: [{entity: host}]\n")}};
    std::string err = removalError(sources, {{"g.yaml", 5}});
    EXPECT_EQ(err,
              "removing the rules at g.yaml:5 as text would change more than those rules; remove "
              "them by hand");
}

TEST(RuleRemoval, BadLocationsAreRefusedNamingThem) {
    Sources sources = shipped({"three-tier.yaml"});
    EXPECT_EQ(removalError(sources, {{"nope.yaml", 3}}),
              "nope.yaml:3: no such policy file among the sources");
    // A policy, a workload, a rule's second line, a comment, past the end.
    for (int line : {19, 5, 29, 1, 500, 0}) {
        EXPECT_EQ(removalError(sources, {{"three-tier.yaml", line}}),
                  "three-tier.yaml:" + std::to_string(line) +
                      ": no ingress or egress rule of a policy starts on this line");
    }
    EXPECT_EQ(
        removalError({{"bad.yaml", "policies: [\n"}}, {{"bad.yaml", 1}}).rfind("bad.yaml:", 0), 0u);
}

}  // namespace
}  // namespace ztseg::policy
