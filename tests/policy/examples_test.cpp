// The shipped examples in policies/: each compiles cleanly on its own (with the
// fleet-wide fleet.yaml) and all of them together, and each does what its
// comments promise, checked through explainFlow() as `ztsegctl explain` would.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "policy/compiler.hpp"
#include "policy/explain.hpp"
#include "policy/parser.hpp"

namespace ztseg::policy {
namespace {

namespace fs = std::filesystem;

const std::string kPolicyDir = std::string(ZTSEG_SOURCE_DIR) + "/policies";
const std::vector<std::string> kExamples = {"three-tier.yaml",       "monitoring.yaml",
                                            "ssh-bastion.yaml",      "partner-api.yaml",
                                            "egress-blocklist.yaml", "rollout-audit.yaml"};

// Every example file, i.e. every *.yaml in policies/ but the shared fleet.yaml.
std::vector<std::string> exampleFiles() {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(kPolicyDir)) {
        auto ext = e.path().extension();
        if ((ext == ".yaml" || ext == ".yml") && e.path().filename() != "fleet.yaml") {
            out.push_back(e.path().filename().string());
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

// The whole directory, parsed once: what `ztsegctl explain` uses by default.
const PolicySet& shipped() {
    static const PolicySet ps = [] {
        Diagnostics diags;
        return loadPolicies({kPolicyDir}, diags);
    }();
    return ps;
}

Explanation explain(const std::string& from, const std::string& to, const std::string& svc) {
    return explainFlow(shipped(), from, to, svc);
}

const ExplainSide& side(const Explanation& ex, Direction dir) {
    for (const auto& s : ex.sides) {
        if (s.direction == dir) {
            return s;
        }
    }
    ADD_FAILURE() << "no " << (dir == Direction::Egress ? "egress" : "ingress") << " side in:\n"
                  << ex.text();
    static const ExplainSide kNone{};
    return kNone;
}

// Allowed by enforcing policy on every side that is a workload.
void expectAllowed(const Explanation& ex) {
    EXPECT_TRUE(ex.allowed) << ex.text();
    EXPECT_FALSE(ex.would_drop) << ex.text();
    for (const auto& s : ex.sides) {
        EXPECT_EQ(s.evaluation.reason, EvalReason::Allowed) << ex.text();
    }
}

// The rule that decided one side: its file and description.
void expectDecidedBy(const ExplainSide& s, const std::string& file, const std::string& desc) {
    ASSERT_NE(s.evaluation.rule, nullptr) << s.because;
    EXPECT_EQ(s.evaluation.rule->loc.file, file) << s.because;
    EXPECT_EQ(s.evaluation.rule->description, desc) << s.because;
}

const CompiledWorkload* workload(const CompiledPolicy& cp, const std::string& name) {
    for (const auto& w : cp.workloads) {
        if (w.name == name) {
            return &w;
        }
    }
    return nullptr;
}

// ---- compiles cleanly ----

TEST(Examples, EveryPromisedExampleIsShipped) {
    std::vector<std::string> files = exampleFiles();
    for (const auto& f : kExamples) {
        EXPECT_NE(std::find(files.begin(), files.end(), f), files.end()) << f;
    }
    EXPECT_TRUE(fs::exists(kPolicyDir + "/README.md"));
}

TEST(Examples, EachExampleCompilesAloneWithoutErrorsOrWarnings) {
    for (const auto& f : exampleFiles()) {
        SCOPED_TRACE(f);
        Diagnostics diags;
        try {
            PolicySet ps = loadPolicies({kPolicyDir + "/fleet.yaml", kPolicyDir + "/" + f}, diags);
            CompiledPolicy cp = compile(ps, 1, diags);
            EXPECT_FALSE(cp.workloads.empty());
            EXPECT_FALSE(cp.rules.empty());
        } catch (const PolicyError& e) {
            ADD_FAILURE() << e.what();
        }
        EXPECT_TRUE(diags.all().empty()) << diags.str();
    }
}

TEST(Examples, AllExamplesTogetherCompileWithoutErrorsOrWarnings) {
    Diagnostics diags;
    PolicySet ps = loadPolicies({kPolicyDir}, diags);
    CompiledPolicy cp = compile(ps, 1, diags);
    EXPECT_TRUE(diags.all().empty()) << diags.str();
    // Names and addresses do not collide: every file's workloads are all there.
    EXPECT_EQ(cp.workloads.size(), 11u);
    std::set<std::string> prefixes;
    for (const auto& e : cp.inventory) {
        EXPECT_TRUE(prefixes.insert(e.prefix.str()).second) << e.prefix.str();
    }
}

// ---- three-tier.yaml ----

TEST(ThreeTier, EachHopIsAllowedOnBothEnds) {
    Explanation ex = explain("app=web", "app=api", "8080/tcp");
    expectAllowed(ex);
    ASSERT_EQ(ex.sides.size(), 2u);
    expectDecidedBy(side(ex, Direction::Egress), "three-tier.yaml", "web -> api");
    expectDecidedBy(side(ex, Direction::Ingress), "three-tier.yaml", "web -> api");
    expectAllowed(explain("app=api", "app=db", "5432/tcp"));
}

TEST(ThreeTier, WebCannotSkipTheApiToReachTheDb) {
    Explanation ex = explain("app=web", "app=db", "5432/tcp");
    EXPECT_FALSE(ex.allowed) << ex.text();
    EXPECT_EQ(side(ex, Direction::Egress).evaluation.reason, EvalReason::DefaultDeny);
    EXPECT_EQ(side(ex, Direction::Ingress).evaluation.reason, EvalReason::DefaultDeny);
    // The db starts no connections at all.
    EXPECT_FALSE(explain("app=db", "app=api", "8080/tcp").allowed);
}

TEST(ThreeTier, InternetReachesOnlyTheWebTier) {
    expectAllowed(explain("192.0.2.10", "app=web", "443/tcp"));
    expectAllowed(explain("2001:db8::10", "app=web", "80/tcp"));
    EXPECT_FALSE(explain("192.0.2.10", "app=web", "22/tcp").allowed);
    Explanation ex = explain("192.0.2.10", "app=api", "8080/tcp");
    EXPECT_FALSE(ex.allowed) << ex.text();
    EXPECT_EQ(side(ex, Direction::Ingress).evaluation.reason, EvalReason::DefaultDeny);
}

TEST(ThreeTier, UndeclaredInternalAddressIsUnlabeledAndDropped) {
    // 10.0.0.0/8 is not world (fleet.yaml): an address nobody declared has no identity.
    Explanation ex = explain("10.99.0.1", "app=web", "443/tcp");
    EXPECT_FALSE(ex.allowed) << ex.text();
    EXPECT_EQ(side(ex, Direction::Ingress).evaluation.reason, EvalReason::Unlabeled);
    EXPECT_EQ(explain("fd00:99::1", "app=web", "443/tcp").sides.at(0).evaluation.reason,
              EvalReason::Unlabeled);
}

// ---- monitoring.yaml ----

TEST(Monitoring, PrometheusScrapesEveryWorkloadOn9100) {
    for (const char* target : {"app=web", "app=db", "app=bastion", "app=build", "app=orders-api",
                               "app=updater", "app=billing", "app=prometheus"}) {
        SCOPED_TRACE(target);
        Explanation ex = explain("app=prometheus", target, "9100/tcp");
        expectAllowed(ex);
        expectDecidedBy(side(ex, Direction::Ingress), "monitoring.yaml",
                        "Prometheus scrapes node_exporter");
    }
    expectAllowed(explain("app=prometheus", "app=db", "icmp"));
    expectAllowed(explain("app=prometheus", "app=api", "icmpv6"));
}

TEST(Monitoring, PrometheusScrapesTheHosts) {
    Explanation ex = explain("app=prometheus", "10.0.0.11", "9100/tcp");
    expectAllowed(ex);
    expectDecidedBy(side(ex, Direction::Egress), "monitoring.yaml",
                    "scrape node_exporter on every host");
    EXPECT_FALSE(explain("app=prometheus", "fd00::12", "22/tcp").allowed);
}

TEST(Monitoring, OnlyPrometheusAndOnlyThePortItNeeds) {
    EXPECT_FALSE(explain("app=prometheus", "app=db", "5432/tcp").allowed);
    Explanation ex = explain("app=web", "app=db", "9100/tcp");
    EXPECT_FALSE(ex.allowed) << ex.text();
    EXPECT_EQ(side(ex, Direction::Ingress).evaluation.reason, EvalReason::DefaultDeny);
    EXPECT_FALSE(explain("192.0.2.10", "app=prometheus", "9100/tcp").allowed);
}

// ---- ssh-bastion.yaml ----

TEST(SshBastion, BastionIsTheOnlySshSource) {
    expectAllowed(explain("app=bastion", "app=build", "22/tcp"));
    expectAllowed(explain("app=bastion", "app=git", "22/tcp"));
    for (const char* src :
         {"app=git", "app=prometheus", "app=web", "10.200.1.5", "192.0.2.10", "10.0.0.11"}) {
        SCOPED_TRACE(src);
        Explanation ex = explain(src, "app=build", "22/tcp");
        EXPECT_FALSE(ex.allowed) << ex.text();
        // The guard denies outright, whatever other policy might allow.
        EXPECT_EQ(side(ex, Direction::Ingress).evaluation.reason, EvalReason::PolicyDeny);
        expectDecidedBy(side(ex, Direction::Ingress), "ssh-bastion.yaml",
                        "SSH only via the bastion");
    }
}

TEST(SshBastion, AdminsReachTheBastionFromTheVpnOnly) {
    Explanation ex = explain("10.200.1.5", "app=bastion", "22/tcp");
    expectAllowed(ex);
    expectDecidedBy(side(ex, Direction::Ingress), "ssh-bastion.yaml",
                    "admins log in to the bastion from the VPN");
    expectAllowed(explain("fd00:200::5", "app=bastion", "22/tcp"));
    EXPECT_FALSE(explain("192.0.2.10", "app=bastion", "22/tcp").allowed);
}

TEST(SshBastion, BastionReachesServersOnlyOnSsh) {
    Explanation ex = explain("app=bastion", "app=build", "443/tcp");
    EXPECT_FALSE(ex.allowed) << ex.text();
    EXPECT_EQ(side(ex, Direction::Egress).evaluation.reason, EvalReason::DefaultDeny);
    EXPECT_FALSE(explain("app=bastion", "app=db", "22/tcp").allowed);
}

// ---- partner-api.yaml ----

TEST(PartnerApi, PartnerReachesTheApiOn443) {
    Explanation ex = explain("198.51.100.10", "app=orders-api", "443/tcp");
    expectAllowed(ex);
    expectDecidedBy(side(ex, Direction::Ingress), "partner-api.yaml",
                    "ACME calls the orders API, not from its guest NAT pool");
    EXPECT_FALSE(explain("198.51.100.10", "app=orders-api", "8443/tcp").allowed);
}

TEST(PartnerApi, PartnerExceptRangeIsRefused) {
    Explanation ex = explain("198.51.100.200", "app=orders-api", "443/tcp");
    EXPECT_FALSE(ex.allowed) << ex.text();
    EXPECT_EQ(side(ex, Direction::Ingress).evaluation.reason, EvalReason::DefaultDeny);
    // The except range is an identity of its own: not partner=acme for the webhooks either.
    EXPECT_FALSE(explain("app=orders-api", "198.51.100.200", "443/tcp").allowed);
    expectAllowed(explain("app=orders-api", "198.51.100.10", "443/tcp"));
}

TEST(PartnerApi, PartnerReachesNothingElseOfOurs) {
    EXPECT_FALSE(explain("198.51.100.10", "app=api", "8080/tcp").allowed);
    EXPECT_FALSE(explain("partner=acme", "app=db", "5432/tcp").allowed);
    // Other internet addresses do not get the partner's access.
    EXPECT_FALSE(explain("192.0.2.10", "app=orders-api", "443/tcp").allowed);
}

// ---- egress-blocklist.yaml ----

TEST(EgressBlocklist, BroadEgressAllowReachesTheInternet) {
    expectAllowed(explain("app=updater", "192.0.2.80", "443/tcp"));
    expectAllowed(explain("app=updater", "2001:db8:1::80", "80/tcp"));
    EXPECT_FALSE(explain("app=updater", "192.0.2.80", "22/tcp").allowed);
}

TEST(EgressBlocklist, DenyOverridesBroadEgressAllow) {
    for (const char* dst : {"203.0.113.7", "2001:db8:bad::1"}) {
        SCOPED_TRACE(dst);
        Explanation ex = explain("app=updater", dst, "443/tcp");
        EXPECT_FALSE(ex.allowed) << ex.text();
        const ExplainSide& s = side(ex, Direction::Egress);
        EXPECT_EQ(s.evaluation.reason, EvalReason::PolicyDeny);
        expectDecidedBy(s, "egress-blocklist.yaml",
                        "threat-intel blocklist, every protocol and port");
    }
}

TEST(EgressBlocklist, WorldNeverIncludesOurWorkloads) {
    Explanation ex = explain("app=updater", "app=web", "443/tcp");
    EXPECT_FALSE(ex.allowed) << ex.text();
    EXPECT_EQ(side(ex, Direction::Egress).evaluation.reason, EvalReason::DefaultDeny);
}

// ---- rollout-audit.yaml ----

TEST(RolloutAudit, RolloutWorkloadIsInAuditMode) {
    Diagnostics diags;
    CompiledPolicy cp = compile(shipped(), 1, diags);
    const CompiledWorkload* ledger = workload(cp, "ledger");
    const CompiledWorkload* billing = workload(cp, "billing");
    ASSERT_TRUE(ledger && billing);
    EXPECT_EQ(ledger->mode, WorkloadMode::Audit);
    EXPECT_EQ(billing->mode, WorkloadMode::Enforce);
    EXPECT_EQ(cp.modes.at(ledger->identity), WorkloadMode::Audit);

    // What the ledger's policy would drop passes, flagged would-drop.
    Explanation ex = explain("192.0.2.10", "app=ledger", "7443/tcp");
    EXPECT_TRUE(ex.allowed) << ex.text();
    EXPECT_TRUE(ex.would_drop) << ex.text();
    EXPECT_EQ(side(ex, Direction::Ingress).evaluation.reason, EvalReason::DefaultDeny);
}

TEST(RolloutAudit, FlowsThePolicyAllowsAreNotWouldDrops) {
    expectAllowed(explain("app=billing", "app=ledger", "7443/tcp"));
    expectAllowed(explain("app=ledger", "192.0.2.10", "443/tcp"));
    Explanation ex = explain("app=ledger", "192.0.2.10", "25/tcp");
    EXPECT_TRUE(ex.allowed && ex.would_drop) << ex.text();
}

TEST(RolloutAudit, AuditIsPerWorkloadTheEnforcedPeerStillDrops) {
    // The ledger's egress would drop (audit: passes), billing's ingress drops (enforce).
    Explanation ex = explain("app=ledger", "app=billing", "7443/tcp");
    EXPECT_FALSE(ex.allowed) << ex.text();
    EXPECT_TRUE(side(ex, Direction::Egress).evaluation.pass);
    EXPECT_TRUE(side(ex, Direction::Egress).evaluation.would_drop);
    EXPECT_FALSE(side(ex, Direction::Ingress).evaluation.pass);
    // And billing's own egress is enforced: it reaches the ledger on 7443 only.
    EXPECT_FALSE(explain("app=billing", "app=ledger", "22/tcp").allowed);
}

}  // namespace
}  // namespace ztseg::policy
