// The flow analysis library behind explain (of an event), whatif and suggest,
// on the flow files `make demo` recorded (tests/cli/data) and the shipped
// example policies.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "cli/flow_query.hpp"
#include "common/error.hpp"
#include "flows/flow_judge.hpp"
#include "flows/ocsf.hpp"
#include "flows/ocsf_reader.hpp"
#include "flows/suggest.hpp"
#include "flows/whatif.hpp"
#include "policy/compiler.hpp"
#include "policy/parser.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace ztseg::flows {
namespace {

const fs::path kSource = ZTSEG_SOURCE_DIR;
const std::string kAudit = (kSource / "tests/cli/data/audit.jsonl").string();
const std::string kEnforce = (kSource / "tests/cli/data/enforce.jsonl").string();

std::string slurp(const fs::path& p) {
    std::ifstream f(p);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// The demo's policy: shipped fleet.yaml and three-tier.yaml, the lab's
// bastion; audit = the demo's phase 1 edit (mode: audit on every policy).
policy::PolicySet labPolicy(bool audit, bool bastion_ssh) {
    std::string tier = slurp(kSource / "policies/three-tier.yaml");
    if (audit) {
        tier = std::regex_replace(tier, std::regex("\n    selector: "),
                                  "\n    mode: audit\n    selector: ");
    }
    std::vector<policy::SourceText> src = {
        {"fleet.yaml", slurp(kSource / "policies/fleet.yaml")},
        {"three-tier.yaml", tier},
        {"lab.yaml", slurp(kSource / "tests/cli/data/lab.yaml")}};
    if (bastion_ssh) {
        src.push_back({"bastion-ssh.yaml", slurp(kSource / "tests/cli/data/bastion-ssh.yaml")});
    }
    policy::Diagnostics d;
    return policy::parsePolicies(src, d);
}

std::vector<FlowRecord> allFlows() {
    auto a = readFlowFile(kAudit), e = readFlowFile(kEnforce);
    a.insert(a.end(), e.begin(), e.end());
    return a;
}

// The recordings predate the OCSF mapping of issue 14: today's line for each
// event differs from the recorded one, but reads back to the same line.
TEST(OcsfReader, EveryRecordedLineReadsBackToTheSameEvent) {
    size_t lines = 0;
    for (const auto& file : {kAudit, kEnforce}) {
        forEachFlowLine(file, [&](const FlowRecord& r, const std::string& line) {
            ++lines;
            const std::string today = toOcsfLine(r);
            EXPECT_EQ(toOcsfLine(parseOcsfLine(today)), today) << line;
            nlohmann::json old = nlohmann::json::parse(line), now = nlohmann::json::parse(today);
            for (const char* key : {"time", "traffic", "firewall_rule", "status_detail"}) {
                EXPECT_EQ(now.value(key, nlohmann::json()), old.value(key, nlohmann::json()))
                    << key << " of " << line;
            }
        });
    }
    EXPECT_EQ(lines, 16u);
    FlowRecord r = readFlowFile(kAudit).front();
    EXPECT_EQ(r.verdict, "allowed");
    EXPECT_EQ(r.src.ip, "10.10.1.10");
    EXPECT_EQ(r.dst.port, 8080);
    EXPECT_EQ(r.src.labels.at("app"), "web");
    EXPECT_EQ(r.direction, Direction::Egress);
    EXPECT_EQ(r.workload, "web");
    EXPECT_EQ(r.policy, "web");
    EXPECT_EQ(r.rule_location, "three-tier.yaml:29");
}

TEST(OcsfReader, BadLinesAreNamedByFileAndLine) {
    fs::path f = fs::temp_directory_path() / ("ztseg-bad-flows-" + std::to_string(getpid()));
    std::string good = slurp(kAudit).substr(0, slurp(kAudit).find('\n'));
    auto expectError = [&](const std::string& second, const std::string& want) {
        std::ofstream(f, std::ios::trunc) << good << "\n" << second << "\n";
        FlowReadReport lenient;
        EXPECT_EQ(readFlowFile(f.string(), {}, &lenient).size(), 1u);
        EXPECT_EQ(lenient.skipped, 1u);
        EXPECT_EQ(lenient.bad_lines, std::vector<size_t>{2});
        EXPECT_NE(lenient.first_error.find(want), std::string::npos) << lenient.first_error;
        try {
            readFlowFile(f.string(), {.strict = true});
            ADD_FAILURE() << "no error for " << second;
        } catch (const Error& e) {
            std::string what = e.what();
            EXPECT_NE(what.find("read flows " + f.string() + ":2: "), std::string::npos) << what;
            EXPECT_NE(what.find(want), std::string::npos) << what;
        }
    };
    expectError("not json", "not a JSON object");
    expectError(R"({"class_uid": 3002})", "not an OCSF Network Activity event");
    expectError(R"({"class_uid": 4001})", "missing field event.connection_info");
    std::string bad_uid = std::regex_replace(good, std::regex(R"("uid":"\d+")"), R"("uid":"web")");
    expectError(bad_uid, "is not an identity number");
    fs::remove(f);
    EXPECT_THROW(readFlowFile("/nonexistent/flows.jsonl"), Error);
}

TEST(FlowJudge, RecordedVerdictsAgreeWithThePolicyThatProducedThem) {
    // Phase 1 events against the audit policy, phase 2 against the enforce
    // one: the reference evaluator judges every policy decision as the
    // datapath did.
    policy::PolicySet audit = labPolicy(true, false), enforce = labPolicy(false, true);
    WhatifReport a = whatif(audit, readFlowFile(kAudit));
    EXPECT_EQ(a.judged, 8u);
    EXPECT_TRUE(a.changes.empty()) << a.changes.front().from << " -> " << a.changes.front().to;
    WhatifReport e = whatif(enforce, readFlowFile(kEnforce));
    EXPECT_EQ(e.judged, 8u);
    EXPECT_TRUE(e.changes.empty()) << e.changes.front().from << " -> " << e.changes.front().to;
}

TEST(FlowJudge, ExplainsTheRefusedConnectOfWebToDb) {
    policy::PolicySet ps = labPolicy(false, true);
    FlowJudge judge(ps);
    FlowRecord r = readFlowFile(kEnforce).at(5);
    ASSERT_EQ(r.hook, "sock-connect");
    Judgement j = judge.judge(r);
    EXPECT_EQ(j.verdict, "dropped");
    EXPECT_EQ(j.reason, "default-deny");
    EXPECT_EQ(j.at, "egress at app=web");
    EXPECT_EQ(j.because, "default deny: no rule admits app=web -> app=db on 5432/tcp");
    policy::Explanation ex = judge.explain(r);
    EXPECT_FALSE(ex.allowed);
    ASSERT_EQ(ex.sides.size(), 2u);

    FlowRecord ok = readFlowFile(kEnforce).at(3);  // api -> db, ingress at db
    j = judge.judge(ok);
    EXPECT_EQ(j.verdict, "allowed");
    EXPECT_NE(j.because.find("policy 'db' (three-tier.yaml:48:9)"), std::string::npos) << j.because;
}

TEST(Whatif, EnforcingListsNewlyDeniedFirstGroupedByPairAndService) {
    WhatifReport rep = whatif(labPolicy(false, false), readFlowFile(kAudit));
    EXPECT_EQ(rep.events, 8u);
    EXPECT_EQ(rep.unchanged, 4u);
    EXPECT_EQ(rep.count(Change::NewlyDenied), 4u);
    ASSERT_EQ(rep.changes.size(), 4u);
    std::set<std::string> pairs;
    for (const auto& g : rep.changes) {
        EXPECT_EQ(g.change, Change::NewlyDenied);
        EXPECT_EQ(g.before, "would-drop");
        EXPECT_EQ(g.after, "dropped");
        pairs.insert(g.from + " -> " + g.to + " " + g.service + " @" + g.at);
    }
    EXPECT_EQ(pairs,
              (std::set<std::string>{"10.10.9.66 (unlabeled) -> app=db 5432/tcp @ingress at app=db",
                                     "app=bastion -> app=db 22/tcp @ingress at app=db",
                                     "app=web -> app=db 5432/tcp @egress at app=web",
                                     "app=web -> app=db 5432/tcp @ingress at app=db"}));

    // With the bastion's rule, its SSH moves to newly allowed (listed after the denials).
    rep = whatif(labPolicy(false, true), readFlowFile(kAudit));
    EXPECT_EQ(rep.count(Change::NewlyDenied), 3u);
    EXPECT_EQ(rep.count(Change::NewlyAllowed), 1u);
    EXPECT_EQ(rep.changes.back().change, Change::NewlyAllowed);
    EXPECT_EQ(rep.changes.back().from, "app=bastion");
}

TEST(Whatif, RepliesAndOtherNonDecisionsAreNotJudged) {
    std::vector<FlowRecord> flows = readFlowFile(kAudit);
    FlowRecord reply = flows.front();
    reply.reason = "allow-conntrack";
    flows.push_back(reply);
    WhatifReport rep = whatif(labPolicy(true, false), flows);
    EXPECT_EQ(rep.not_judged, 1u);
    EXPECT_EQ(rep.judged, 8u);
}

// suggest -> compile -> whatif: every flow it admitted still passes.
void expectRoundTrip(const Suggestion& s, const std::vector<FlowRecord>& flows) {
    policy::Diagnostics d;
    policy::PolicySet mine;
    try {
        mine = policy::parsePolicies({{"suggested.yaml", s.yaml}}, d);
        policy::compile(mine, 1, d);
    } catch (const policy::PolicyError& e) {
        FAIL() << e.diagnostics().front().str() << "\n" << s.yaml;
    }
    EXPECT_TRUE(d.warnings().empty()) << d.warnings().front().str() << "\n" << s.yaml;
    std::vector<FlowRecord> admitted;
    for (size_t i : s.admitted) admitted.push_back(flows[i]);
    WhatifReport rep = whatif(mine, admitted);
    EXPECT_EQ(rep.count(Change::NewlyDenied), 0u) << s.yaml;
    EXPECT_EQ(rep.count(Change::NewlyWouldDrop), 0u) << s.yaml;
    for (const auto& r : admitted) {
        EXPECT_NE(r.verdict, "dropped");
    }
    // Every flow that passed today and is not listed as not admitted passes.
    WhatifReport all = whatif(mine, flows);
    for (const auto& g : all.changes) {
        if (g.change == Change::NewlyDenied) {
            EXPECT_NE(g.from.find("(unlabeled)"), std::string::npos) << g.from << " -> " << g.to;
        }
    }
}

TEST(Suggest, WithTheInventoryRoundTripsThroughCompileAndWhatif) {
    std::vector<FlowRecord> flows = allFlows();
    policy::PolicySet inventory = labPolicy(true, false);
    Suggestion s = suggestPolicy(flows, &inventory, {});
    expectRoundTrip(s, flows);
    // Allowed and would-drop events of labeled parties; the intruder's and
    // the dropped ones are not admitted.
    EXPECT_EQ(s.policies, 4u);  // web, api, db, bastion
    ASSERT_EQ(s.not_admitted.size(), 1u);
    EXPECT_EQ(s.not_admitted[0],
              "1 event: 10.10.9.66 (unlabeled) -> app=db 5432/tcp: an address without identity "
              "cannot be admitted by any rule");
    // Label-based, the fewest labels that name the workload, with evidence.
    EXPECT_NE(s.yaml.find("- from: [{selector: {matchLabels: {app: api}}}]\n"
                          "        ports: [{port: 5432, protocol: tcp}]"),
              std::string::npos)
        << s.yaml;
    EXPECT_NE(s.yaml.find("# 2 connections seen (4 events: 4 allowed)"), std::string::npos)
        << s.yaml;
    EXPECT_EQ(s.yaml.find("10.10.2.10/"), std::string::npos) << "no address-based rules";
}

TEST(Suggest, WithoutInventoryRebuildsItFromTheFlows) {
    std::vector<FlowRecord> flows = allFlows();
    Suggestion s = suggestPolicy(flows, nullptr, {"audit", false, {}});
    expectRoundTrip(s, flows);
    EXPECT_NE(s.yaml.find("  - name: db\n    labels: {app: db, env: prod, tier: data}\n"
                          "    addresses: [\"10.10.3.10\"]\n"),
              std::string::npos)
        << s.yaml;
    EXPECT_NE(s.yaml.find("    mode: audit\n"), std::string::npos);
}

TEST(Suggest, WorldHostAndExternalsAreNamedByEntityOrLabel) {
    policy::Diagnostics d;
    policy::PolicySet inv = policy::parsePolicies(
        {{"inv.yaml",
          "workloads:\n"
          "  - {name: web, labels: {app: web, env: prod}, addresses: [10.1.0.1]}\n"
          "  - {name: web2, labels: {app: web, env: dev}, addresses: [10.1.0.2]}\n"
          "externals:\n"
          "  - {name: internet, cidrs: [198.51.100.0/24]}\n"
          "  - {name: partner, cidrs: [192.0.2.0/24], labels: {partner: acme}}\n"
          "hosts: [10.9.9.9]\n"}},
        d);
    auto flow = [](const std::string& src, const std::string& dst, uint16_t port, uint8_t proto,
                   Direction dir, const std::string& workload) {
        FlowRecord r;
        r.verdict = "allowed";
        r.reason = "no-endpoint";
        r.direction = dir;
        r.protocol = proto;
        r.protocol_name = proto == 1 ? "icmp" : "tcp";
        r.src.ip = src;
        r.dst.ip = dst;
        r.dst.port = port;
        r.workload = workload;
        return r;
    };
    std::vector<FlowRecord> flows = {
        flow("198.51.100.7", "10.1.0.1", 443, 6, Direction::Ingress, "web"),
        flow("192.0.2.5", "10.1.0.1", 8443, 6, Direction::Ingress, "web"),
        flow("10.9.9.9", "10.1.0.2", 0, 1, Direction::Ingress, "web2"),
        flow("10.1.0.2", "10.1.0.1", 80, 6, Direction::Egress, "web2"),
    };
    Suggestion s = suggestPolicy(flows, &inv, {});
    expectRoundTrip(s, flows);
    EXPECT_NE(s.yaml.find("{entity: world}"), std::string::npos) << s.yaml;
    EXPECT_NE(s.yaml.find("{entity: host}"), std::string::npos) << s.yaml;
    EXPECT_NE(s.yaml.find("{selector: {matchLabels: {partner: acme}}}"), std::string::npos);
    EXPECT_NE(s.yaml.find("ports: [{protocol: icmp}]"), std::string::npos);
    // app=web names two workloads: env tells them apart.
    EXPECT_NE(s.yaml.find("selector: {matchLabels: {env: prod}}"), std::string::npos) << s.yaml;
}

TEST(Labels, MinimalLabelsPreferAppAndStayUnique) {
    using policy::LabelSet;
    LabelSet web{{"app", "web"}, {"env", "prod"}, {"tier", "frontend"}};
    LabelSet web_dev{{"app", "web"}, {"env", "dev"}, {"tier", "frontend"}};
    LabelSet db{{"app", "db"}, {"env", "prod"}};
    EXPECT_EQ(policy::minimalLabels(web, {web, db}), (LabelSet{{"app", "web"}}));
    EXPECT_EQ(policy::minimalLabels(web, {web, web_dev, db}),
              (LabelSet{{"app", "web"}, {"env", "prod"}}));
    EXPECT_EQ(policy::minimalLabels(db, {web, web_dev, db}), (LabelSet{{"app", "db"}}));
    LabelSet sub{{"app", "web"}};
    EXPECT_EQ(policy::minimalLabels(sub, {sub, web}), sub) << "a subset of another set: whole";
}

TEST(FlowQuery, SinceTakesDurationsAndRfc3339) {
    using cli::parseSince;
    auto now = std::chrono::system_clock::from_time_t(1'800'000'000);
    EXPECT_EQ(parseSince("90s", now), now - 90s);
    EXPECT_EQ(parseSince("5m", now), now - 5min);
    EXPECT_EQ(parseSince("2h", now), now - 2h);
    EXPECT_EQ(parseSince("1d", now), now - 24h);
    EXPECT_EQ(parseSince("2027-01-15T08:00:00Z", now),
              std::chrono::system_clock::from_time_t(1'800'000'000));
    EXPECT_EQ(parseSince("2027-01-15T09:00:00+01:00", now),
              std::chrono::system_clock::from_time_t(1'800'000'000));
    EXPECT_EQ(parseSince("2027-01-15T08:00:00.250Z", now),
              std::chrono::system_clock::from_time_t(1'800'000'000) + 250ms);
    EXPECT_THROW(parseSince("yesterday", now), Error);
    EXPECT_THROW(parseSince("5w", now), Error);
}

TEST(FlowQuery, FromAndToTakeLabelsAddressesIdentitiesAndNames) {
    std::vector<FlowRecord> flows = allFlows();
    auto count = [&](std::vector<std::string> filters, cli::FlowQueryArgs a = {}) {
        a.filters = std::move(filters);
        cli::FlowQuery q = cli::FlowQuery::parse(a, std::chrono::system_clock::now());
        return std::count_if(flows.begin(), flows.end(),
                             [&](const FlowRecord& r) { return q.matches(r); });
    };
    EXPECT_EQ(count({"--from", "app=web"}), 7);
    EXPECT_EQ(count({"--from", "web"}), 7);
    EXPECT_EQ(count({"--from", "10.10.1.0/24"}), 6)
        << "the refused connect() has no source address";
    EXPECT_EQ(count({"--from", "0"}), 3) << "identity 0: the intruder";
    EXPECT_EQ(count({"--to", "app=db", "--verdict", "dropped", "--direction", "ingress"}), 2);
    EXPECT_EQ(count({"--not", "--from", "0"}), long(flows.size()) - 3);
    EXPECT_THROW(count({"--verdict", "maybe"}), Error);
}

TEST(FlowQuery, UntilClosesTheWindow) {
    std::vector<FlowRecord> flows = allFlows();
    ASSERT_GT(flows.size(), 2u);
    auto count = [&](const cli::FlowQueryArgs& a) {
        cli::FlowQuery q = cli::FlowQuery::parse(a, std::chrono::system_clock::now());
        return std::count_if(flows.begin(), flows.end(),
                             [&](const FlowRecord& r) { return q.matches(r); });
    };
    cli::FlowQueryArgs a;
    a.until = "2026-12-02T03:37:33Z";
    long early = count(a);
    a.until = "";
    a.since = "2026-12-02T03:37:33Z";
    long late = count(a);
    EXPECT_GT(early, 0);
    EXPECT_GT(late, 0);
    EXPECT_EQ(early + late, long(flows.size())) << "no flow at exactly 03:37:33.000";
    a.until = "2026-12-02T03:37:32Z";
    EXPECT_THROW(count(a), Error) << "--until before --since";
}

}  // namespace
}  // namespace ztseg::flows
