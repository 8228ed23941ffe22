// Policies for the host itself (`entity: host`): compiled into the reserved
// host identity's mode and rules, carried by the bundle (an unknown mode is
// refused, never read as "unmanaged"), judged by the reference evaluator,
// `explain` and the compiled judge alike; `selector: {}` never selects the
// host, so existing fleets are not put under host policy by surprise.
#include <gtest/gtest.h>

#include <algorithm>

#include "bundle.pb.h"
#include "datapath/slot_content.hpp"
#include "policy/bundle.hpp"
#include "policy/compiled_judge.hpp"
#include "policy/compiler.hpp"
#include "policy/evaluator.hpp"
#include "policy/explain.hpp"
#include "policy/parser.hpp"

namespace ztseg::policy {
namespace {

const std::string kInventory =
    "workloads:\n"
    "  - name: bastion\n"
    "    labels: {app: bastion}\n"
    "    addresses: [10.9.0.1]\n"
    "  - name: web\n"
    "    labels: {app: web}\n"
    "    addresses: [10.9.0.2]\n"
    "hosts: [10.9.1.1]\n";

// SSH to the host only from the bastion; the host may reach web on 443; a
// guard denies SSH from web even if an allow is added later.
const std::string kHostPolicy =
    "policies:\n"
    "  - name: host-base\n"
    "    entity: host\n"
    "    ingress:\n"
    "      - from: [{selector: {matchLabels: {app: bastion}}}]\n"
    "        ports: [{port: 22, protocol: tcp}]\n"
    "      - from: [{selector: {matchLabels: {app: web}}}]\n"
    "        ports: [{port: 22, protocol: tcp}]\n"
    "        action: deny\n"
    "    egress:\n"
    "      - to: [{selector: {matchLabels: {app: web}}}]\n"
    "        ports: [{port: 443, protocol: tcp}]\n";

PolicySet parse(const std::string& text) {
    Diagnostics diags;
    return parsePolicies({{"test.yaml", text}}, diags);
}

TEST(HostPolicy, ParsesAsAPolicyForTheHost) {
    PolicySet ps = parse(kInventory + kHostPolicy);
    ASSERT_EQ(ps.policies.size(), 1u);
    EXPECT_EQ(ps.policies[0].subject, PolicySubject::Host);
    EXPECT_EQ(ps.policies[0].rules.size(), 3u);
}

TEST(HostPolicy, CompilesIntoTheHostIdentitysModeAndRules) {
    PolicySet ps = parse(kInventory + kHostPolicy);
    Diagnostics diags;
    CompiledPolicy cp = compile(ps, 3, diags);
    ASSERT_TRUE(cp.modes.count(kHostIdentity));
    EXPECT_EQ(cp.modes.at(kHostIdentity), WorkloadMode::Enforce);
    size_t host_rules = std::count_if(cp.rules.begin(), cp.rules.end(),
                                      [](const Rule& r) { return r.local == kHostIdentity; });
    EXPECT_EQ(host_rules, 3u);
    // the workloads stay unmanaged: no policy selects them
    for (const auto& w : cp.workloads) EXPECT_EQ(w.mode, WorkloadMode::Unmanaged) << w.name;
    // the datapath's slot flags say how the host is enforced
    Generation gen = cp.toGeneration();
    IdentityTable t;
    t.modes = gen.modes;
    EXPECT_EQ(t.slotFlags() & (ZTSEG_SLOTF_HOST_ENFORCE | ZTSEG_SLOTF_HOST_AUDIT),
              ZTSEG_SLOTF_HOST_ENFORCE);
}

TEST(HostPolicy, AuditModeIsCarriedToTheSlotFlags) {
    std::string text = kInventory + kHostPolicy;
    text.replace(text.find("    entity: host\n"), 17, "    entity: host\n    mode: audit\n");
    Diagnostics diags;
    CompiledPolicy cp = compile(parse(text), 3, diags);
    EXPECT_EQ(cp.modes.at(kHostIdentity), WorkloadMode::Audit);
    IdentityTable t;
    t.modes = cp.modes;
    EXPECT_EQ(t.slotFlags() & (ZTSEG_SLOTF_HOST_ENFORCE | ZTSEG_SLOTF_HOST_AUDIT),
              ZTSEG_SLOTF_HOST_AUDIT);
}

TEST(HostPolicy, AnEmptyWorkloadSelectorNeverSelectsTheHost) {
    std::string text = kInventory +
                       "policies:\n"
                       "  - name: everyone\n"
                       "    selector: {}\n";
    Diagnostics diags;
    PolicySet ps = parse(text);
    CompiledPolicy cp = compile(ps, 3, diags);
    EXPECT_FALSE(cp.modes.count(kHostIdentity));
    Evaluator ev(ps);
    Evaluation e =
        ev.evaluate(Evaluator::hostLabels(), ev.peerOfAddress(IpPrefix::parse("10.9.0.2")),
                    Direction::Ingress, ZTSEG_PROTO_TCP, 22);
    EXPECT_EQ(e.reason, EvalReason::NotManaged);
    IdentityTable t;
    t.modes = cp.modes;
    EXPECT_EQ(t.slotFlags() & (ZTSEG_SLOTF_HOST_ENFORCE | ZTSEG_SLOTF_HOST_AUDIT), 0u);
}

TEST(HostPolicy, TheHostIdentityExistsWithoutDeclaredHostAddresses) {
    std::string text = "workloads:\n  - name: web\n    labels: {app: web}\n" + kHostPolicy;
    text.replace(text.find("      - from: [{selector: {matchLabels: {app: bastion}}}]\n"
                           "        ports: [{port: 22, protocol: tcp}]\n"),
                 std::string("      - from: [{selector: {matchLabels: {app: bastion}}}]\n"
                             "        ports: [{port: 22, protocol: tcp}]\n")
                     .size(),
                 "");
    Diagnostics diags;
    CompiledPolicy cp = compile(parse(text), 3, diags);
    ASSERT_NE(cp.identity(kHostIdentity), nullptr);
    EXPECT_EQ(cp.modes.at(kHostIdentity), WorkloadMode::Enforce);
}

TEST(HostPolicy, TheBundleCarriesTheHostsMode) {
    Diagnostics diags;
    CompiledPolicy cp = compile(parse(kInventory + kHostPolicy), 3, diags);
    CompiledPolicy back = parseBundle(serializeBundle(cp));
    EXPECT_EQ(back.modes, cp.modes);
    EXPECT_EQ(back.rules, cp.rules);

    // A mode this build does not know is refused, not read as "unmanaged".
    v1::Bundle b;
    ASSERT_TRUE(b.ParseFromString(serializeBundle(cp)));
    b.set_host_mode(static_cast<v1::Mode>(7));
    try {
        parseBundle(b.SerializeAsString());
        ADD_FAILURE() << "a bundle with host_mode 7 was accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("unknown host_mode 7"), std::string::npos) << e.what();
    }
}

TEST(HostPolicy, TheEvaluatorJudgesTheHostAndOnlyHostPoliciesSelectIt) {
    PolicySet ps = parse(kInventory + kHostPolicy);
    Evaluator ev(ps);
    Peer bastion = ev.peerOfAddress(IpPrefix::parse("10.9.0.1"));
    Peer web = ev.peerOfAddress(IpPrefix::parse("10.9.0.2"));
    const LabelSet& host = Evaluator::hostLabels();

    Evaluation ssh_bastion = ev.evaluate(host, bastion, Direction::Ingress, ZTSEG_PROTO_TCP, 22);
    EXPECT_EQ(ssh_bastion.reason, EvalReason::Allowed);
    EXPECT_TRUE(ssh_bastion.pass);
    Evaluation ssh_web = ev.evaluate(host, web, Direction::Ingress, ZTSEG_PROTO_TCP, 22);
    EXPECT_EQ(ssh_web.reason, EvalReason::PolicyDeny);
    EXPECT_FALSE(ssh_web.pass);
    Evaluation http = ev.evaluate(host, bastion, Direction::Ingress, ZTSEG_PROTO_TCP, 80);
    EXPECT_EQ(http.reason, EvalReason::DefaultDeny);
    Evaluation out = ev.evaluate(host, web, Direction::Egress, ZTSEG_PROTO_TCP, 443);
    EXPECT_EQ(out.reason, EvalReason::Allowed);
    Evaluation unlabeled = ev.evaluate(host, ev.peerOfAddress(IpPrefix::parse("10.77.0.1")),
                                       Direction::Ingress, ZTSEG_PROTO_TCP, 22);
    EXPECT_EQ(unlabeled.reason, EvalReason::Unlabeled);
    // a host policy selects no workload
    EXPECT_EQ(
        ev.evaluate({{"app", "web"}}, bastion, Direction::Ingress, ZTSEG_PROTO_TCP, 22).reason,
        EvalReason::NotManaged);
}

TEST(HostPolicy, ExplainAndTheCompiledJudgeAgreeOnTheHost) {
    PolicySet ps = parse(kInventory + kHostPolicy);
    Diagnostics diags;
    CompiledPolicy cp = compile(ps, 3, diags);
    struct Case {
        std::string from, to, service;
        bool allowed;
        std::string because;
    };
    for (const Case& c : std::vector<Case>{
             {"app=bastion", "host", "22/tcp", true, "allowed by rule 1 of policy 'host-base'"},
             {"app=web", "10.9.1.1", "22/tcp", false, "denied by rule 2 of policy 'host-base'"},
             {"host", "app=web", "443/tcp", true, "allowed by rule 3 of policy 'host-base'"},
             {"host", "app=web", "80/tcp", false, "default deny"},
         }) {
        SCOPED_TRACE(c.from + " -> " + c.to + " " + c.service);
        Explanation ref = explainFlow(ps, c.from, c.to, c.service);
        Explanation live = explainCompiled(cp, c.from, c.to, c.service);
        EXPECT_EQ(ref.allowed, c.allowed) << ref.text();
        EXPECT_EQ(live.allowed, c.allowed) << live.text();
        EXPECT_NE(ref.text().find(c.because), std::string::npos) << ref.text();
        EXPECT_NE(live.text().find(c.because), std::string::npos) << live.text();
    }
}

// Failsafe rules (ztsegd.yaml) decide the host's side before its policy:
// explain names the rule, from the files and from a compiled bundle alike;
// without a matching rule the host policy decides as before.
TEST(HostPolicy, ExplainNamesTheFailsafeRuleThatDecidedAFlow) {
    PolicySet ps = parse(kInventory + kHostPolicy);
    Diagnostics diags;
    CompiledPolicy cp = compile(ps, 3, diags);
    const std::vector<FailsafeRule> failsafe{
        {"ssh", "ztsegd.yaml:7:16", Direction::Ingress, ZTSEG_PROTO_TCP, 22,
         IpPrefix::parse("192.0.2.0/24")},
        {"dns", "ztsegd.yaml:8:9", Direction::Egress, ZTSEG_PROTO_UDP, 53,
         IpPrefix::parse("10.9.0.2/32")},
    };
    struct Case {
        std::string from, to, service;
        bool allowed;
        std::string because;
    };
    for (const Case& c : std::vector<Case>{
             // an unlabeled management station: the host policy admits only the bastion
             {"192.0.2.7", "host", "22/tcp", true,
              "ingress at host: admitted by failsafe rule 'ssh' (ingress tcp/22 from "
              "192.0.2.0/24, ztsegd.yaml:7:16), whatever the host policy says"},
             {"192.0.2.7", "host", "23/tcp", false, "has no identity"},
             {"192.0.3.7", "host", "22/tcp", false, "has no identity"},
             // web's address: the host policy would say default deny
             {"host", "10.9.0.2", "53/udp", true,
              "egress  at host: admitted by failsafe rule 'dns' (egress udp/53 to 10.9.0.2/32, "
              "ztsegd.yaml:8:9), whatever the host policy says"},
             {"host", "app=web", "80/tcp", false, "default deny"},
         }) {
        SCOPED_TRACE(c.from + " -> " + c.to + " " + c.service);
        Explanation ref = explainFlow(ps, c.from, c.to, c.service, failsafe);
        Explanation live = explainCompiled(cp, c.from, c.to, c.service, failsafe);
        EXPECT_EQ(ref.allowed, c.allowed) << ref.text();
        EXPECT_EQ(live.allowed, c.allowed) << live.text();
        EXPECT_NE(ref.text().find(c.because), std::string::npos) << ref.text();
        EXPECT_NE(live.text().find(c.because), std::string::npos) << live.text();
    }
    // without the rules, the management station is an unlabeled source
    EXPECT_FALSE(explainFlow(ps, "192.0.2.7", "host", "22/tcp").allowed);
}

}  // namespace
}  // namespace ztseg::policy
