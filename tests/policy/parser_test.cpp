// The policy language front end: every error found with its exact place
// (file:line:column) and a message that says what was expected; compiler
// warnings with their place; deterministic identities and bundles; bundle
// round trip and rejection of bad bundles.
#include "policy/parser.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "bundle.pb.h"
#include "policy/bundle.hpp"
#include "policy/compiler.hpp"
#include "policy/evaluator.hpp"

namespace ztseg::policy {
namespace {

// Parses `text` as test.yaml; returns every diagnostic (errors throw PolicyError).
std::vector<Diagnostic> parseDiags(const std::string& text, bool* threw = nullptr) {
    Diagnostics diags;
    try {
        parsePolicies({{"test.yaml", text}}, diags);
        if (threw)
            *threw = false;
        return diags.all();
    } catch (const PolicyError& e) {
        if (threw)
            *threw = true;
        return e.diagnostics();
    }
}

std::string listDiags(const std::vector<Diagnostic>& diags) {
    std::string out;
    for (const auto& d : diags) {
        out += "  " + d.str() + "\n";
    }
    return out;
}

// One diagnostic of `severity` at exactly `loc` whose message contains `msg`.
::testing::AssertionResult hasDiag(const std::vector<Diagnostic>& diags,
                                   Diagnostic::Severity severity, const std::string& loc,
                                   const std::string& msg) {
    for (const auto& d : diags) {
        if (d.severity == severity && d.loc.str() == loc &&
            d.message.find(msg) != std::string::npos) {
            return ::testing::AssertionSuccess();
        }
    }
    return ::testing::AssertionFailure()
           << "no " << (severity == Diagnostic::Severity::Error ? "error" : "warning") << " at "
           << loc << " containing \"" << msg << "\"; got:\n"
           << listDiags(diags);
}

::testing::AssertionResult hasError(const std::vector<Diagnostic>& diags, const std::string& loc,
                                    const std::string& msg) {
    return hasDiag(diags, Diagnostic::Severity::Error, loc, msg);
}

size_t countErrors(const std::vector<Diagnostic>& diags) {
    return size_t(std::count_if(diags.begin(), diags.end(), [](const Diagnostic& d) {
        return d.severity == Diagnostic::Severity::Error;
    }));
}

// ---- errors: one table, one expected error each ----

struct ErrorCase {
    const char* name;
    std::string yaml;
    std::string loc;  // file:line:column
    std::string msg;  // a key part of the message
};

// A valid preamble (lines 1-3) that policies below can select.
const std::string kW = "workloads:\n  - name: a\n    labels: {app: a}\n";
// A policy header (lines 4-6 after kW) whose ingress rules follow at line 7.
const std::string kIngress =
    kW + "policies:\n  - name: p\n    selector: {matchLabels: {app: a}}\n    ingress:\n";
// ... and a rule whose `ports:` entries follow at line 9.
const std::string kPorts = kIngress + "      - from: [{entity: any}]\n        ports:\n";

const std::vector<ErrorCase> kErrorCases = {
    // invalid YAML
    {"YamlBadIndentation", "workloads:\n  - name: a\n   labels: {app: a}\n", "test.yaml:3:4",
     "invalid YAML"},
    {"YamlUnclosedFlowSequence", "workloads: [{name: a}\n", "test.yaml:2:1", "invalid YAML"},
    {"YamlDuplicateMappingValue", "workloads:\n  - name: a: b\n", "test.yaml:2:12", "invalid YAML"},
    {"DocumentNotAMapping", "- name: a\n", "test.yaml:1:1", "expected a policy document"},
    // unknown fields
    {"UnknownTopLevelField", "workload:\n  - name: a\n", "test.yaml:1:1",
     "unknown field 'workload' in policy document (expected one of: externals, hosts, policies, "
     "workloads)"},
    {"UnknownFieldInWorkload", kW + "    adress: 10.0.0.1\n", "test.yaml:4:5",
     "unknown field 'adress' in workload (expected one of: addresses, cgroup, labels, name, "
     "systemd)"},
    {"UnknownFieldInExternal", "externals:\n  - name: e\n    cidr: [10.0.0.0/8]\n", "test.yaml:3:5",
     "unknown field 'cidr' in external (expected one of: cidrs, labels, name)"},
    {"UnknownFieldInPolicy",
     kW + "policies:\n  - name: p\n    podSelector: {matchLabels: {app: a}}\n", "test.yaml:6:5",
     "unknown field 'podSelector' in policy (expected one of: egress, entity, ingress, mode, "
     "name, raw_sockets, selector)"},
    {"PolicyEntityOtherThanHost", kW + "policies:\n  - name: p\n    entity: world\n",
     "test.yaml:6:13",
     "a policy's entity can only be 'host' (the host itself), not 'world'; workloads are "
     "chosen by 'selector'"},
    {"PolicyWithSelectorAndEntity",
     kW + "policies:\n  - name: p\n    entity: host\n    selector: {}\n", "test.yaml:5:5",
     "a policy has 'selector' (workloads) or 'entity: host' (the host), not both"},
    {"PolicyWithoutSubject", kW + "policies:\n  - name: p\n", "test.yaml:5:5",
     "a policy needs 'selector' (the workloads it applies to) or 'entity: host' (the host "
     "itself)"},
    {"RawSocketsOnHostPolicy",
     kW + "policies:\n  - name: p\n    entity: host\n    raw_sockets: allow\n", "test.yaml:7:18",
     "'raw_sockets' applies to workloads; the host's own raw sockets are not confined by ztseg"},
    {"UnknownFieldInIngressRule", kIngress + "      - from: [{entity: any}]\n        port: 80\n",
     "test.yaml:9:9",
     "unknown field 'port' in ingress rule (expected one of: action, description, from, ports)"},
    {"UnknownFieldInEgressRule",
     kW + "policies:\n  - name: p\n    selector: {}\n    egress:\n      - from: [{entity: any}]\n",
     "test.yaml:8:9", "unknown field 'from' in egress rule"},
    {"UnknownFieldInPeer", kIngress + "      - from: [{cidr: 10.0.0.0/8, namespace: x}]\n",
     "test.yaml:8:35",
     "unknown field 'namespace' in peer (expected one of: cidr, entity, except, selector)"},
    {"UnknownFieldInPortEntry", kPorts + "          - {port: 80, proto: tcp}\n", "test.yaml:10:24",
     "unknown field 'proto' in port entry (expected one of: port, protocol)"},
    {"UnknownFieldInSelector",
     kW + "policies:\n  - name: p\n    selector: {matchLabel: {app: a}}\n", "test.yaml:6:16",
     "unknown field 'matchLabel' in selector (expected one of: matchExpressions, matchLabels)"},
    {"UnknownFieldInMatchExpression",
     kW + "policies:\n  - name: p\n    selector:\n      matchExpressions:\n"
          "        - {key: app, operator: Exists, value: x}\n",
     "test.yaml:8:40", "unknown field 'value' in match expression"},
    // missing required fields
    {"WorkloadWithoutName", "workloads:\n  - labels: {app: a}\n", "test.yaml:2:5",
     "a workload needs 'name'"},
    {"WorkloadWithEmptyName", "workloads:\n  - name: ''\n    labels: {app: a}\n", "test.yaml:2:11",
     "'name' must not be empty"},
    {"WorkloadWithoutLabels", "workloads:\n  - name: a\n    systemd: a.service\n", "test.yaml:2:5",
     "a workload needs 'labels' (its identity)"},
    {"WorkloadWithEmptyLabels", "workloads:\n  - name: a\n    labels: {}\n", "test.yaml:3:13",
     "a workload needs at least one label"},
    {"PolicyWithoutName", kW + "policies:\n  - selector: {}\n", "test.yaml:5:5",
     "a policy needs 'name'"},
    {"PolicyWithoutSelector", kW + "policies:\n  - name: p\n    ingress: []\n", "test.yaml:5:5",
     "a policy needs 'selector' (the workloads it applies to)"},
    {"IngressRuleWithoutFrom", kIngress + "      - ports: [{port: 80}]\n", "test.yaml:8:9",
     "an ingress rule needs 'from'"},
    {"EgressRuleWithoutTo",
     kW + "policies:\n  - name: p\n    selector: {}\n    egress:\n      - ports: [{port: 80}]\n",
     "test.yaml:8:9", "an egress rule needs 'to'"},
    {"ExternalWithoutName", "externals:\n  - cidrs: [192.0.2.0/24]\n", "test.yaml:2:5",
     "an external needs 'name'"},
    {"ExternalWithoutCidrs", "externals:\n  - name: e\n    labels: {net: e}\n", "test.yaml:2:5",
     "an external needs 'cidrs' (at least one range)"},
    {"ExternalWithEmptyCidrs", "externals:\n  - name: e\n    cidrs: []\n", "test.yaml:2:5",
     "an external needs 'cidrs'"},
    {"MatchExpressionWithoutOperator",
     kW + "policies:\n  - name: p\n    selector:\n      matchExpressions:\n        - {key: app}\n",
     "test.yaml:8:11", "a match expression needs 'operator'"},
    {"MatchExpressionWithoutKey",
     kW + "policies:\n  - name: p\n    selector:\n      matchExpressions:\n"
          "        - {operator: Exists}\n",
     "test.yaml:8:11", "a match expression needs 'key'"},
    // repeated fields: an error, never a silent winner
    {"DuplicateFieldInPolicy",
     kIngress + "      - from: [{entity: any}]\n    ingress:\n      - from: [{entity: any}]\n"
                "        action: deny\n",
     "test.yaml:9:5", "duplicate field 'ingress' in policy (first at test.yaml:7:5)"},
    {"DuplicateFieldInWorkload", kW + "    labels: {app: b}\n", "test.yaml:4:5",
     "duplicate field 'labels' in workload (first at test.yaml:3:5)"},
    {"DuplicateLabelKey", "workloads:\n  - name: a\n    labels: {app: a, app: b}\n",
     "test.yaml:3:22", "duplicate label key 'app'"},
    // wrong shapes
    {"WorkloadsNotAList", "workloads: {name: a}\n", "test.yaml:1:12",
     "expected 'workloads' to be a list"},
    {"RuleNotAMapping", kIngress + "      - allow-all\n", "test.yaml:8:9",
     "expected an ingress rule (a mapping)"},
    {"LabelsNotAMapping", "workloads:\n  - name: a\n    labels: [app=a]\n", "test.yaml:3:13",
     "expected labels (key: value pairs) (a mapping)"},
    {"CgroupAndSystemd", kW + "    cgroup: system.slice/a.service\n    systemd: a.service\n",
     "test.yaml:2:5", "a workload is found by 'cgroup' or by 'systemd', not both"},
    // addresses and CIDRs
    {"BadWorkloadAddress", kW + "    addresses: [10.0.0.300]\n", "test.yaml:4:17",
     "invalid IP address '10.0.0.300': expected an IPv4/IPv6 address or CIDR"},
    {"NotAnAddress", kW + "    addresses: [10.0.0.1, db.internal]\n", "test.yaml:4:27",
     "invalid IP address 'db.internal'"},
    {"BadIpv6Address", kW + "    addresses: [\"fd00::1::2\"]\n", "test.yaml:4:17",
     "invalid IP address 'fd00::1::2'"},
    {"Ipv4PrefixLengthOutOfRange", "externals:\n  - name: e\n    cidrs: [10.0.0.0/33]\n",
     "test.yaml:3:13", "invalid prefix length in '10.0.0.0/33' (0-32)"},
    {"Ipv6PrefixLengthOutOfRange", "externals:\n  - name: e\n    cidrs: [\"fd00::/129\"]\n",
     "test.yaml:3:13", "invalid prefix length in 'fd00::/129' (0-128)"},
    {"NonNumericPrefixLength", "hosts: [10.0.0.0/x]\n", "test.yaml:1:9",
     "invalid prefix length in '10.0.0.0/x'"},
    {"BadHostAddress", "hosts: [10.0.0.1, 10.0.0]\n", "test.yaml:1:19",
     "invalid IP address '10.0.0'"},
    {"BadPeerCidr", kIngress + "      - from: [{cidr: 10.0.0.0/40}]\n", "test.yaml:8:23",
     "invalid prefix length in '10.0.0.0/40'"},
    {"BadExceptCidr", kIngress + "      - from: [{cidr: 10.0.0.0/8, except: [10.1.0.0/99]}]\n",
     "test.yaml:8:44", "invalid prefix length in '10.1.0.0/99'"},
    {"ExceptOutsideItsCidr",
     kIngress + "      - from: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16, 11.0.0.0/16]}]\n",
     "test.yaml:8:57", "except 11.0.0.0/16 is not inside 10.0.0.0/8"},
    {"ExceptOfOtherFamily",
     kIngress + "      - from: [{cidr: 10.0.0.0/8, except: [\"fd00::/8\"]}]\n", "test.yaml:8:44",
     "except fd00::/8 is not inside 10.0.0.0/8"},
    {"ExceptWithoutCidr", kIngress + "      - from: [{entity: world, except: [10.0.0.0/8]}]\n",
     "test.yaml:8:40", "'except' goes with 'cidr'"},
    // peers
    {"PeerWithTwoKinds", kIngress + "      - from: [{entity: any, selector: {}}]\n",
     "test.yaml:8:16", "a peer is exactly one of 'selector', 'cidr' or 'entity'"},
    {"PeerWithNoKind", kIngress + "      - from: [{except: [10.0.0.0/8]}]\n", "test.yaml:8:16",
     "a peer is exactly one of 'selector', 'cidr' or 'entity'"},
    {"UnknownEntity", kIngress + "      - from: [{entity: everyone}]\n", "test.yaml:8:25",
     "unknown entity 'everyone' (expected any, host, world)"},
    // ports and protocols
    {"PortZero", kPorts + "          - {port: 0, protocol: tcp}\n", "test.yaml:10:20",
     "port '0' out of range: ports are 1-65535"},
    {"Port65536", kPorts + "          - {port: 65536, protocol: udp}\n", "test.yaml:10:20",
     "port '65536' out of range"},
    {"RangeEndPastMax", kPorts + "          - {port: 65000-70000}\n", "test.yaml:10:20",
     "port '65000-70000' out of range"},
    {"ReversedRange", kPorts + "          - {port: 9000-8000, protocol: tcp}\n", "test.yaml:10:20",
     "port '9000-8000' out of range: ports are 1-65535, first <= last"},
    {"NonNumericPort", kPorts + "          - {port: https, protocol: tcp}\n", "test.yaml:10:20",
     "invalid port 'https': expected a number or a range like 8000-8100"},
    {"NegativePort", kPorts + "          - {port: -80}\n", "test.yaml:10:20", "invalid port '-80'"},
    {"HalfOpenRange", kPorts + "          - {port: 8000-}\n", "test.yaml:10:20",
     "invalid port '8000-'"},
    {"PortWithIcmp", kPorts + "          - {port: 8, protocol: icmp}\n", "test.yaml:10:20",
     "ports do not apply to icmp"},
    {"PortWithIcmpv6InList", kPorts + "          - {port: 8, protocol: [tcp, icmpv6]}\n",
     "test.yaml:10:20", "ports do not apply to icmpv6"},
    {"UnknownProtocol", kPorts + "          - {port: 80, protocol: http}\n", "test.yaml:10:34",
     "unknown protocol 'http' (expected tcp, udp, icmp, icmpv6, sctp, udplite, dccp, any)"},
    {"UnknownProtocolInList", kPorts + "          - {port: 80, protocol: [tcp, TPC]}\n",
     "test.yaml:10:40", "unknown protocol 'TPC'"},
    {"PortEntryNotAMapping", kPorts + "          - 80\n", "test.yaml:10:13",
     "expected a port entry ({port, protocol}) (a mapping)"},
    // mode, action
    {"UnknownMode", kW + "policies:\n  - name: p\n    selector: {}\n    mode: permissive\n",
     "test.yaml:7:11", "unknown mode 'permissive' (expected enforce or audit)"},
    {"UnknownAction", kIngress + "      - from: [{entity: any}]\n        action: reject\n",
     "test.yaml:9:17", "unknown action 'reject' (expected allow or deny)"},
    // selectors
    {"UnknownOperator",
     kW + "policies:\n  - name: p\n    selector:\n      matchExpressions:\n"
          "        - {key: app, operator: Has}\n",
     "test.yaml:8:32", "unknown operator 'Has' (expected In, NotIn, Exists, DoesNotExist)"},
    {"InWithoutValues",
     kW + "policies:\n  - name: p\n    selector:\n      matchExpressions:\n"
          "        - {key: app, operator: In}\n",
     "test.yaml:8:11", "operator In needs 'values'"},
    {"NotInWithoutValues",
     kW + "policies:\n  - name: p\n    selector:\n      matchExpressions:\n"
          "        - {key: app, operator: NotIn}\n",
     "test.yaml:8:11", "operator NotIn needs 'values'"},
    {"ExistsWithValues",
     kW + "policies:\n  - name: p\n    selector:\n      matchExpressions:\n"
          "        - {key: app, operator: Exists, values: [a]}\n",
     "test.yaml:8:48", "operator Exists takes no values"},
    {"DoesNotExistWithValues",
     kW + "policies:\n  - name: p\n    selector:\n      matchExpressions:\n"
          "        - {key: app, operator: DoesNotExist, values: [a]}\n",
     "test.yaml:8:54", "operator DoesNotExist takes no values"},
    // labels
    {"InvalidLabelKey", "workloads:\n  - name: a\n    labels: {\"my app\": a}\n", "test.yaml:3:14",
     "invalid label key 'my app': expected letters, digits, '-', '_', '.', '/'"},
    {"InvalidLabelValue", "workloads:\n  - name: a\n    labels: {app: \"web server\"}\n",
     "test.yaml:3:19",
     "invalid label value 'web server': expected at most 63 letters, digits, '-', '_', '.'"},
    {"LabelValueTooLong",
     "workloads:\n  - name: a\n    labels: {app: " + std::string(64, 'x') + "}\n", "test.yaml:3:19",
     "invalid label value '" + std::string(64, 'x') + "'"},
    {"ReservedLabelPrefixInWorkload",
     "workloads:\n  - name: a\n    labels: {app: a, ztseg.io/reserved: host}\n", "test.yaml:3:22",
     "label key 'ztseg.io/reserved' uses the reserved prefix ztseg.io/"},
    {"ReservedLabelPrefixInExternal",
     "externals:\n  - name: e\n    cidrs: [192.0.2.0/24]\n    labels: {ztseg.io/cidr: x}\n",
     "test.yaml:4:14", "uses the reserved prefix ztseg.io/"},
    {"ReservedLabelPrefixInSelector",
     kW + "policies:\n  - name: p\n    selector: {matchLabels: {ztseg.io/reserved: world}}\n",
     "test.yaml:6:30", "uses the reserved prefix ztseg.io/"},
    {"InvalidLabelInPeerSelector",
     kIngress + "      - from: [{selector: {matchLabels: {app: \"a b\"}}}]\n", "test.yaml:8:47",
     "invalid label value 'a b'"},
    // names and addresses that must be unique
    {"DuplicateWorkloadName", kW + "  - name: a\n    labels: {app: b}\n", "test.yaml:4:5",
     "workload 'a' is already defined at test.yaml:2:5"},
    {"DuplicatePolicyName",
     kW + "policies:\n  - name: p\n    selector: {}\n  - name: p\n    selector: {}\n",
     "test.yaml:7:5", "policy 'p' is already defined at test.yaml:5:5"},
    {"DuplicateExternalName",
     "externals:\n  - name: e\n    cidrs: [192.0.2.0/24]\n  - name: e\n    cidrs: "
     "[198.51.100.0/24]\n",
     "test.yaml:4:5", "external 'e' is already defined at test.yaml:2:5"},
    {"ExternalWithAWorkloadsLabels",
     kW + "externals:\n  - name: e\n    cidrs: [192.0.2.0/24]\n    labels: {app: a}\n",
     "test.yaml:5:5", "external 'e' has the same labels as workload 'a' (test.yaml:2:5)"},
    {"TwoWorkloadsOwnOneAddress",
     kW + "    addresses: [10.0.0.1]\n  - name: b\n    labels: {app: b}\n    addresses: "
          "[10.0.0.1/32]\n",
     "test.yaml:5:5", "address 10.0.0.1/32 of workload 'b' is already claimed by workload 'a'"},
    {"WorkloadAndExternalOwnOneRange",
     kW + "    addresses: [\"fd00:1::/64\"]\nexternals:\n  - name: e\n    cidrs: "
          "[\"fd00:1::/64\"]\n",
     "test.yaml:6:5", "address fd00:1::/64 of external 'e' is already claimed by workload 'a'"},
};

class ParserErrors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ParserErrors, ReportsExactLocationAndMessage) {
    const ErrorCase& c = GetParam();
    bool threw = false;
    std::vector<Diagnostic> diags = parseDiags(c.yaml, &threw);
    EXPECT_TRUE(threw) << "no PolicyError for:\n" << c.yaml;
    EXPECT_TRUE(hasError(diags, c.loc, c.msg)) << "input:\n" << c.yaml;
}

INSTANTIATE_TEST_SUITE_P(Table, ParserErrors, ::testing::ValuesIn(kErrorCases),
                         [](const ::testing::TestParamInfo<ErrorCase>& param_info) {
                             return std::string(param_info.param.name);
                         });

// ---- errors: more than one ----

TEST(ParserErrorsAll, SeveralErrorsInOneFileAreAllReported) {
    std::string yaml =
        "workloads:\n"
        "  - name: a\n"
        "    labels: {app: a, \"bad key\": x}\n"  // 3:22
        "    addresses: [10.0.0.256]\n"           // 4:17
        "policies:\n"
        "  - name: p\n"
        "    mode: strict\n"  // 7:11
        "    selector: {matchLabels: {app: a}}\n"
        "    ingress:\n"
        "      - from: [{entity: nobody}]\n"  // 10:25
        "        ports: [{port: 0}]\n"        // 11:24
        "    egress:\n"
        "      - ports: [{port: 53, protocol: dns}]\n";  // 13:9 (no 'to'), 13:38
    bool threw = false;
    auto diags = parseDiags(yaml, &threw);
    EXPECT_TRUE(threw);
    EXPECT_EQ(countErrors(diags), 7u) << listDiags(diags);
    EXPECT_TRUE(hasError(diags, "test.yaml:3:22", "invalid label key 'bad key'"));
    EXPECT_TRUE(hasError(diags, "test.yaml:4:17", "invalid IP address '10.0.0.256'"));
    EXPECT_TRUE(hasError(diags, "test.yaml:7:11", "unknown mode 'strict'"));
    EXPECT_TRUE(hasError(diags, "test.yaml:10:25", "unknown entity 'nobody'"));
    EXPECT_TRUE(hasError(diags, "test.yaml:11:24", "port '0' out of range"));
    EXPECT_TRUE(hasError(diags, "test.yaml:13:9", "an egress rule needs 'to'"));
    EXPECT_TRUE(hasError(diags, "test.yaml:13:38", "unknown protocol 'dns'"));
}

TEST(ParserErrorsAll, ErrorsInTwoFilesAreBothReported) {
    Diagnostics diags;
    try {
        parsePolicies({{"b.yaml", "workloads:\n  - name: b\n    labels: {app: b}\n    x: 1\n"},
                       {"a.yaml", "workloads: [{name: a}\n"}},
                      diags);
        FAIL() << "no PolicyError";
    } catch (const PolicyError& e) {
        auto all = e.diagnostics();
        EXPECT_EQ(countErrors(all), 2u) << listDiags(all);
        EXPECT_TRUE(hasError(all, "a.yaml:2:1", "invalid YAML"));
        EXPECT_TRUE(hasError(all, "b.yaml:4:5", "unknown field 'x' in workload"));
        // what() carries every error, one per line, file order
        std::string what = e.what();
        EXPECT_NE(what.find("a.yaml:2:1: error: invalid YAML"), std::string::npos) << what;
        EXPECT_NE(what.find("\nb.yaml:4:5: error: unknown field 'x'"), std::string::npos) << what;
    }
}

// Files are checked and parsed in parallel; what is reported must not depend
// on which thread finished first: every error, in file order, every time.
TEST(ParserErrorsAll, ManyFilesReportEveryErrorInFileOrder) {
    std::vector<SourceText> sources;
    std::vector<std::string> want;
    for (int i = 0; i < 48; ++i) {
        char name[32];
        std::snprintf(name, sizeof(name), "f%02d.yaml", i);
        std::string n = std::to_string(i);
        switch (i % 4) {
            case 0:  // fine
                sources.push_back(
                    {name, "workloads:\n  - name: w" + n + "\n    labels: {app: w" + n + "}\n"});
                break;
            case 1:
                sources.push_back({name, "workloads: [{name: a" + n + "}\n"});
                want.push_back(std::string(name) + ":2:1: error: invalid YAML");
                break;
            case 2:
                sources.push_back({name, "workloads:\n  - name: \x01" + n + "\n"});
                want.push_back(std::string(name) + ":2:11: error: control character 0x01");
                break;
            default:
                sources.push_back({name, "workloads:\n  - name: u" + n + "\n    labels: {app: u" +
                                             n + "}\n    x: 1\n"});
                want.push_back(std::string(name) + ":4:5: error: unknown field 'x' in workload");
                break;
        }
    }
    std::string first_what;
    for (int round = 0; round < 5; ++round) {
        Diagnostics diags;
        try {
            parsePolicies(sources, diags);
            FAIL() << "no PolicyError";
        } catch (const PolicyError& e) {
            std::vector<std::string> got;
            for (const Diagnostic& d : e.diagnostics()) {
                if (d.severity == Diagnostic::Severity::Error) {
                    got.push_back(d.str());
                }
            }
            ASSERT_EQ(got.size(), want.size()) << e.what();
            for (size_t i = 0; i < want.size(); ++i) {
                EXPECT_EQ(got[i].rfind(want[i], 0), 0u) << got[i] << " vs " << want[i];
            }
            if (round == 0) {
                first_what = e.what();
            }
            EXPECT_EQ(first_what, e.what());
        }
    }
}

TEST(ParserErrorsAll, DuplicatesAcrossFilesNameTheOtherFile) {
    Diagnostics diags;
    try {
        parsePolicies({{"one.yaml", kW + "policies:\n  - name: p\n    selector: {}\n"},
                       {"two.yaml",
                        "workloads:\n  - name: a\n    labels: {app: z}\npolicies:\n  - name: "
                        "p\n    selector: {}\n"}},
                      diags);
        FAIL() << "no PolicyError";
    } catch (const PolicyError& e) {
        EXPECT_TRUE(hasError(e.diagnostics(), "two.yaml:2:5",
                             "workload 'a' is already defined at one.yaml:2:5"));
        EXPECT_TRUE(hasError(e.diagnostics(), "two.yaml:5:5",
                             "policy 'p' is already defined at one.yaml:5:5"));
    }
}

TEST(ParserValid, EmptyFilesAreFine) {
    for (const std::string& text : {std::string(""), std::string("# nothing yet\n"),
                                    std::string("---\n"), std::string("workloads:\n")}) {
        Diagnostics diags;
        PolicySet ps = parsePolicies({{"empty.yaml", text}}, diags);
        EXPECT_TRUE(diags.all().empty()) << diags.str();
        EXPECT_EQ(ps.files, std::vector<std::string>{"empty.yaml"});
        EXPECT_TRUE(ps.workloads.empty() && ps.policies.empty());
    }
}

// Kubernetes manifests write "TCP": protocols are names, whatever their case.
TEST(ParserValid, ProtocolNamesAreCaseInsensitive) {
    std::string yaml =
        "workloads:\n  - name: a\n    labels: {app: a}\n    addresses: [10.0.0.1]\n"
        "policies:\n  - name: p\n    selector: {matchLabels: {app: a}}\n"
        "    ingress:\n      - from: [{entity: world}]\n"
        "        ports: [{port: 80, protocol: TCP}, {port: 53, protocol: [Udp, sctp]}, "
        "{protocol: ICMP}]\n";
    Diagnostics diags;
    PolicySet ps = parsePolicies({{"k8s.yaml", yaml}}, diags);
    EXPECT_TRUE(diags.all().empty()) << diags.str();
    ASSERT_EQ(ps.policies.size(), 1u);
    std::vector<uint8_t> protocols;
    for (const auto& r : ps.policies[0].rules) {
        for (const auto& p : r.ports) protocols.push_back(p.protocol);
    }
    EXPECT_EQ(protocols, (std::vector<uint8_t>{ZTSEG_PROTO_TCP, ZTSEG_PROTO_UDP, ZTSEG_PROTO_SCTP,
                                               ZTSEG_PROTO_ICMP}));
}

TEST(ParserValid, FieldsAndDefaults) {
    std::string yaml =
        "workloads:\n"
        "  - name: a\n"
        "    labels: {app: a, env: prod}\n"
        "    cgroup: \"system.slice/a-*.service\"\n"
        "    addresses: [10.0.0.1, \"fd00::1\", 10.1.0.0/16]\n"
        "externals:\n"
        "  - name: internet\n"
        "    cidrs: [0.0.0.0/0]\n"
        "hosts: [10.0.0.254]\n"
        "policies:\n"
        "  - name: p\n"
        "    selector: {matchLabels: {app: a}}\n"
        "    egress:\n"
        "      - to: [{entity: world}]\n"
        "        ports: [{port: 443, protocol: tcp}]\n"
        "    ingress:\n"
        "      - from: [{cidr: 10.0.0.0/8, except: [10.9.0.0/16]}, {entity: host}]\n"
        "        ports: [{port: 8000-8100, protocol: [tcp, udp]}, {protocol: icmp}, {port: 7}]\n"
        "        action: deny\n"
        "        description: why\n"
        "      - from: [{entity: any}]\n";
    Diagnostics diags;
    PolicySet ps = parsePolicies({{"test.yaml", yaml}}, diags);
    ASSERT_EQ(ps.workloads.size(), 1u);
    EXPECT_EQ(ps.workloads[0].cgroup, "system.slice/a-*.service");
    EXPECT_EQ(ps.workloads[0].addresses.size(), 3u);
    EXPECT_EQ(ps.workloads[0].loc.str(), "test.yaml:2:5");
    ASSERT_EQ(ps.externals.size(), 1u);
    EXPECT_TRUE(ps.externals[0].labels.empty());
    EXPECT_EQ(ps.hosts.size(), 1u);
    ASSERT_EQ(ps.policies.size(), 1u);
    const PolicySpec& p = ps.policies[0];
    EXPECT_EQ(p.mode, WorkloadMode::Enforce);  // default
    ASSERT_EQ(p.rules.size(), 3u);
    // Rules in source order (egress written first), ids from 1.
    EXPECT_EQ(p.rules[0].direction, Direction::Egress);
    EXPECT_EQ(p.rules[0].id, 1u);
    EXPECT_EQ(p.rules[0].action, Action::Allow);  // default
    const RuleSpec& deny = p.rules[1];
    EXPECT_EQ(deny.id, 2u);
    EXPECT_EQ(deny.loc.str(), "test.yaml:17:9");
    EXPECT_EQ(deny.action, Action::Deny);
    EXPECT_EQ(deny.description, "why");
    ASSERT_EQ(deny.peers.size(), 2u);
    EXPECT_EQ(deny.peers[0].kind, PeerSpec::Kind::Cidr);
    EXPECT_EQ(deny.peers[0].except.size(), 1u);
    EXPECT_EQ(deny.peers[1].kind, PeerSpec::Kind::Host);
    // A protocol list expands to one entry per protocol; no protocol = any.
    ASSERT_EQ(deny.ports.size(), 4u);
    EXPECT_EQ(deny.ports[0].protocol, ZTSEG_PROTO_TCP);
    EXPECT_EQ(deny.ports[0].ports.first, 8000);
    EXPECT_EQ(deny.ports[0].ports.last, 8100);
    EXPECT_EQ(deny.ports[1].protocol, ZTSEG_PROTO_UDP);
    EXPECT_EQ(deny.ports[2].protocol, ZTSEG_PROTO_ICMP);
    EXPECT_TRUE(deny.ports[2].ports.isAny());
    EXPECT_EQ(deny.ports[3].protocol, ZTSEG_PROTO_ANY);
    EXPECT_EQ(deny.ports[3].ports.first, 7);
    EXPECT_TRUE(p.rules[2].ports.empty());  // omitted ports: any protocol, any port
    EXPECT_EQ(p.rules[2].peers[0].kind, PeerSpec::Kind::Any);
}

TEST(ParserValid, RuleIdsFollowSortedFileNamesThenSourceOrder) {
    const std::string pol =
        "policies:\n  - name: P\n    selector: {}\n"
        "    egress:\n      - to: [{entity: any}]\n"
        "    ingress:\n      - from: [{entity: any}]\n"
        "      - from: [{entity: host}]\n";
    auto named = [&](const std::string& name) {
        std::string t = pol;
        t.replace(t.find("P"), 1, name);
        return t;
    };
    Diagnostics diags;
    PolicySet ps = parsePolicies(
        {{"b.yaml", named("pb")}, {"a/z.yaml", named("paz")}, {"a.yaml", named("pa")}}, diags);
    EXPECT_EQ(ps.files, (std::vector<std::string>{"a.yaml", "a/z.yaml", "b.yaml"}));
    std::vector<std::string> order;
    for (const auto& p : ps.policies) {
        for (const auto& r : p.rules) {
            order.push_back(std::to_string(r.id) + " " + r.loc.str());
        }
    }
    EXPECT_EQ(order, (std::vector<std::string>{"1 a.yaml:5:9", "2 a.yaml:7:9", "3 a.yaml:8:9",
                                               "4 a/z.yaml:5:9", "5 a/z.yaml:7:9", "6 a/z.yaml:8:9",
                                               "7 b.yaml:5:9", "8 b.yaml:7:9", "9 b.yaml:8:9"}));
}

// ---- regressions: inputs that were once accepted silently ----

// A host address equal to a workload's address gives one prefix two owners in
// the inventory (host identity 1 and the workload): the LPM lookup is then
// decided by map write order, while the evaluator picks the workload.
TEST(ParserRegressions, HostAddressAlsoOwnedByAWorkloadIsAnError) {
    std::string yaml = kW + "    addresses: [10.0.0.1]\nhosts: [10.0.0.1]\n";
    bool threw = false;
    auto diags = parseDiags(yaml, &threw);
    EXPECT_TRUE(threw) << listDiags(diags);
    EXPECT_TRUE(std::any_of(diags.begin(), diags.end(), [](const Diagnostic& d) {
        return d.message.find("10.0.0.1/32") != std::string::npos &&
               d.message.find("already claimed") != std::string::npos;
    })) << listDiags(diags);
    if (!threw) {
        // What it leads to: one prefix, two identities in the inventory.
        Diagnostics d;
        CompiledPolicy cp = compile(parsePolicies({{"test.yaml", yaml}}, d), 1, d);
        std::set<std::string> seen;
        for (const auto& e : cp.inventory) {
            EXPECT_TRUE(seen.insert(e.prefix.str()).second)
                << e.prefix.str() << " appears twice in the inventory";
        }
    }
}

// `protocol: []` drops the port entry; if it was the rule's only entry the
// rule has no ports at all, i.e. any protocol and any port: an allow meant
// for 22/tcp allows everything.
TEST(ParserRegressions, EmptyProtocolListIsAnError) {
    bool threw = false;
    std::string yaml = kPorts + "          - {port: 22, protocol: []}\n";
    auto diags = parseDiags(yaml, &threw);
    EXPECT_TRUE(threw) << listDiags(diags);
    EXPECT_EQ(countErrors(diags), 1u) << listDiags(diags);
    if (!threw) {
        // What it leads to: the rule meant for port 22 admits 443/tcp.
        Diagnostics d;
        PolicySet ps = parsePolicies({{"test.yaml", yaml}}, d);
        Evaluation ev = Evaluator(ps).evaluate({{"app", "a"}}, Peer{Peer::Kind::World, {}, {}, "w"},
                                               Direction::Ingress, ZTSEG_PROTO_TCP, 443);
        EXPECT_NE(evalReasonName(ev.reason), "allow-policy") << "a 22-only rule admits 443/tcp";
    }
}

// `from: []` (or `from:` with nothing) parses as a rule with no peers, which
// matches nothing: a deny rule written that way silently denies nothing
// (Kubernetes users read an empty `from` as "everyone"). Like empty `cidrs`
// and empty `labels`, it should be an error.
TEST(ParserRegressions, RuleWithEmptyPeerListIsAnError) {
    for (const char* peers : {"from: []", "from:"}) {
        SCOPED_TRACE(peers);
        bool threw = false;
        auto diags = parseDiags(kIngress + "      - " + peers + "\n        action: deny\n", &threw);
        EXPECT_TRUE(threw) << listDiags(diags);
        EXPECT_EQ(countErrors(diags), 1u) << listDiags(diags);
    }
}

// `operator: In` with `values: []` is accepted and matches nothing (NotIn with
// [] matches everything). Kubernetes rejects both: In/NotIn need a non-empty list.
TEST(ParserRegressions, InWithEmptyValuesIsAnError) {
    bool threw = false;
    auto diags = parseDiags(kW + "policies:\n  - name: p\n    selector:\n      matchExpressions:\n"
                                 "        - {key: app, operator: In, values: []}\n",
                            &threw);
    EXPECT_TRUE(threw) << listDiags(diags);
    EXPECT_EQ(countErrors(diags), 1u) << listDiags(diags);
}

// ---- warnings from compile(), each with its place ----

std::vector<Diagnostic> compileDiags(const std::string& yaml) {
    Diagnostics diags;
    PolicySet ps = parsePolicies({{"test.yaml", yaml}}, diags);
    compile(ps, 1, diags);
    return diags.all();
}

::testing::AssertionResult hasWarning(const std::vector<Diagnostic>& diags, const std::string& loc,
                                      const std::string& msg) {
    return hasDiag(diags, Diagnostic::Severity::Warning, loc, msg);
}

const std::string kTwo =
    "workloads:\n  - name: a\n    labels: {app: a}\n  - name: b\n    labels: "
    "{app: b}\npolicies:\n";  // policies start at line 7

TEST(CompilerWarnings, PolicySelectorMatchingNoWorkload) {
    auto d = compileDiags(kTwo + "  - name: p\n    selector: {matchLabels: {app: c}}\n");
    EXPECT_EQ(d.size(), 1u) << listDiags(d);
    EXPECT_TRUE(hasWarning(d, "test.yaml:7:5", "policy 'p': selector app=c matches no workload"));
}

TEST(CompilerWarnings, PolicySelectorMatchingOnlyAnExternal) {
    // Policies apply to workloads; an external's labels do not make it local.
    auto d = compileDiags(
        "externals:\n  - name: e\n    cidrs: [192.0.2.0/24]\n    labels: {app: e}\npolicies:\n"
        "  - name: p\n    selector: {matchLabels: {app: e}}\n");
    EXPECT_TRUE(hasWarning(d, "test.yaml:6:5", "matches no workload"));
}

TEST(CompilerWarnings, PeerSelectorMatchingNothing) {
    auto d = compileDiags(kTwo +
                          "  - name: p\n    selector: {matchLabels: {app: a}}\n    ingress:\n"
                          "      - from:\n          - selector:\n              matchExpressions: "
                          "[{key: app, operator: In, values: [c, d]}]\n");
    EXPECT_EQ(d.size(), 1u) << listDiags(d);
    EXPECT_TRUE(hasWarning(d, "test.yaml:11:13",
                           "peer selector app in (c,d) matches no workload or external"));
}

TEST(CompilerWarnings, AllowOverriddenByDenyNamesBothPlaces) {
    auto d = compileDiags(kTwo +
                          "  - name: allow-b\n    selector: {matchLabels: {app: a}}\n"
                          "    ingress:\n      - from: [{selector: {matchLabels: {app: b}}}]\n"
                          "        ports: [{port: 8080, protocol: tcp}]\n"
                          "  - name: deny-all\n    selector: {}\n    ingress:\n"
                          "      - from: [{entity: any}]\n        ports: [{port: 8000-9000}]\n"
                          "        action: deny\n");
    EXPECT_EQ(d.size(), 1u) << listDiags(d);
    EXPECT_TRUE(hasWarning(d, "test.yaml:10:9",
                           "allow rule in policy 'allow-b' never takes effect: the deny rule at "
                           "test.yaml:15:9 covers it (deny beats allow)"));
}

TEST(CompilerWarnings, PartlyOverlappingDenyIsNotReported) {
    // The deny covers 8080 but the allow also opens 8443: the allow still matters.
    auto d =
        compileDiags(kTwo +
                     "  - name: p\n    selector: {matchLabels: {app: a}}\n    ingress:\n"
                     "      - from: [{selector: {matchLabels: {app: b}}}]\n"
                     "        ports: [{port: 8080, protocol: tcp}, {port: 8443, protocol: tcp}]\n"
                     "      - from: [{entity: any}]\n        ports: [{port: 8080}]\n"
                     "        action: deny\n");
    EXPECT_TRUE(d.empty()) << listDiags(d);
}

TEST(CompilerWarnings, WorkloadInAuditAndEnforcePolicies) {
    auto d =
        compileDiags(kTwo +
                     "  - name: rollout\n    mode: audit\n    selector: {matchLabels: {app: a}}\n"
                     "  - name: strict\n    selector: {matchLabels: {app: a}}\n");
    EXPECT_EQ(d.size(), 1u) << listDiags(d);
    EXPECT_TRUE(hasWarning(d, "test.yaml:10:5",
                           "policy 'strict' is enforce, but policy 'rollout' (test.yaml:7:5) "
                           "selects some of its workloads in audit mode: they stay in audit"));
    Diagnostics diags;
    CompiledPolicy cp = compile(
        parsePolicies({{"test.yaml", kTwo + "  - name: rollout\n    mode: audit\n    selector: "
                                            "{matchLabels: {app: a}}\n  - name: strict\n    "
                                            "selector: {matchLabels: {app: a}}\n"}},
                      diags),
        1, diags);
    EXPECT_EQ(cp.workloads[0].mode, WorkloadMode::Audit);      // a
    EXPECT_EQ(cp.workloads[1].mode, WorkloadMode::Unmanaged);  // b: no policy selects it
}

// Regression: the mixed-mode warning was emitted once per selected identity
// and named only the last enforce policy of each workload.
TEST(CompilerWarnings, MixedModeWarnedOncePerEnforcePolicy) {
    auto d = compileDiags(kTwo +
                          "  - name: audit-all\n    mode: audit\n    selector: {}\n"
                          "  - name: enforce-1\n    selector: {}\n"
                          "  - name: enforce-2\n    selector: {}\n");
    EXPECT_EQ(d.size(), 2u) << listDiags(d);
    EXPECT_TRUE(hasWarning(d, "test.yaml:10:5", "policy 'enforce-1' is enforce"));
    EXPECT_TRUE(hasWarning(d, "test.yaml:12:5", "policy 'enforce-2' is enforce"));
}

// ---- determinism and stability ----

const std::vector<SourceText> kSources = {
    {"apps.yaml",
     "workloads:\n"
     "  - name: web\n    labels: {app: web, env: prod}\n    addresses: [10.1.0.1, \"fd00:1::1\"]\n"
     "  - name: api\n    labels: {app: api, env: prod}\n    addresses: [10.1.0.2]\n"
     "  - name: db\n    labels: {env: prod, app: db}\n    addresses: [10.1.0.3]\n"
     "policies:\n"
     "  - name: web\n    selector: {matchLabels: {app: web}}\n"
     "    ingress:\n      - from: [{entity: world}]\n        ports: [{port: 443, protocol: tcp}]\n"
     "    egress:\n      - to: [{selector: {matchLabels: {app: api}}}]\n"
     "  - name: api\n    selector: {matchLabels: {app: api}}\n"
     "    ingress:\n      - from: [{selector: {matchLabels: {app: web}}}]\n"
     "    egress:\n      - to: [{cidr: 10.2.0.0/16, except: [10.2.9.0/24]}]\n"
     "        ports: [{port: 5432, protocol: tcp}]\n"},
    {"edge.yaml",
     "externals:\n  - name: internet\n    cidrs: [192.0.2.0/24, \"2001:db8::/32\"]\n"
     "  - name: partner\n    cidrs: [198.51.100.0/24]\n    labels: {partner: acme}\n"
     "hosts: [10.0.0.1]\n"
     "policies:\n  - name: db\n    selector: {matchLabels: {app: db}}\n"
     "    ingress:\n      - from: [{selector: {matchLabels: {app: api}}}, {entity: host}]\n"
     "        ports: [{port: 5432, protocol: tcp}]\n"},
    {"zz/ops.yaml",
     "workloads:\n  - name: ops\n    labels: {app: ops}\n    systemd: ops.service\n"
     "policies:\n  - name: ops\n    mode: audit\n    selector: {matchLabels: {app: ops}}\n"
     "    egress:\n      - to: [{entity: any}]\n        action: deny\n"},
};

CompiledPolicy compileSources(std::vector<SourceText> sources, uint64_t generation = 7) {
    Diagnostics diags;
    PolicySet ps = parsePolicies(std::move(sources), diags);
    CompiledPolicy cp = compile(ps, generation, diags);
    EXPECT_FALSE(diags.hasErrors()) << diags.str();
    return cp;
}

std::map<std::string, IdentityId> identitiesByLabels(const CompiledPolicy& cp) {
    std::map<std::string, IdentityId> out;
    for (const auto& i : cp.identities) {
        out[canonical(i.labels)] = i.id;
    }
    return out;
}

TEST(Determinism, FileOrderDoesNotChangeTheBundle) {
    std::string reference = serializeBundle(compileSources(kSources));
    std::vector<SourceText> shuffled = kSources;
    std::mt19937 rng(42);
    for (int i = 0; i < 6; ++i) {
        std::shuffle(shuffled.begin(), shuffled.end(), rng);
        EXPECT_EQ(serializeBundle(compileSources(shuffled)), reference);
    }
    EXPECT_EQ(serializeBundle(compileSources(kSources)), reference);  // and twice is the same
}

TEST(Determinism, IdentitiesDoNotDependOnFileNamesOrDeclarationOrder) {
    CompiledPolicy a = compileSources(kSources);
    // Other file names (so another file order) and workloads declared in reverse order.
    std::vector<SourceText> renamed = kSources;
    renamed[0].name = "zzz-apps.yaml";
    renamed[2].name = "00-ops.yaml";
    std::string& t = renamed[0].text;
    std::string web =
        "  - name: web\n    labels: {app: web, env: prod}\n    addresses: [10.1.0.1, "
        "\"fd00:1::1\"]\n";
    auto pos = t.find(web);
    ASSERT_NE(pos, std::string::npos);
    t.erase(pos, web.size());
    t.insert(t.find("policies:\n"), web);
    CompiledPolicy b = compileSources(renamed);
    EXPECT_EQ(identitiesByLabels(a), identitiesByLabels(b));
    EXPECT_EQ(a.inventory.size(), b.inventory.size());
    for (size_t i = 0; i < a.inventory.size() && i < b.inventory.size(); ++i) {
        EXPECT_EQ(a.inventory[i].prefix, b.inventory[i].prefix);
        EXPECT_EQ(a.inventory[i].identity, b.inventory[i].identity);
    }
    EXPECT_EQ(a.modes, b.modes);
    // Label order inside a label set does not matter either (db is written env-first).
    auto ids = identitiesByLabels(a);
    EXPECT_EQ(ids.at("app=db,env=prod"), identityHash("app=db,env=prod"));
}

TEST(Determinism, ChangingOneWorkloadsLabelsKeepsEveryOtherIdentity) {
    CompiledPolicy before = compileSources(kSources);
    std::vector<SourceText> changed = kSources;
    std::string& t = changed[0].text;
    auto pos = t.find("labels: {app: api, env: prod}");
    ASSERT_NE(pos, std::string::npos);
    t.replace(pos, std::string("labels: {app: api, env: prod}").size(),
              "labels: {app: api, env: prod, version: v2}");
    CompiledPolicy after = compileSources(changed);
    auto b = identitiesByLabels(before), a = identitiesByLabels(after);
    EXPECT_EQ(b.size(), a.size());
    EXPECT_EQ(a.count("app=api,env=prod"), 0u);
    EXPECT_EQ(a.count("app=api,env=prod,version=v2"), 1u);
    for (const auto& [labels, id] : b) {
        if (labels != "app=api,env=prod") {
            EXPECT_EQ(a.at(labels), id) << labels;
        }
    }
}

TEST(Determinism, IdentityNumbersAreInTheUserRangeAndReservedOnesAreFixed) {
    CompiledPolicy cp = compileSources(kSources);
    for (const auto& i : cp.identities) {
        if (i.kind == IdentityKind::Reserved) {
            EXPECT_TRUE(i.id == kHostIdentity || i.id == kWorldIdentity) << i.id;
        } else {
            EXPECT_GE(i.id, ZTSEG_ID_USER_MIN);
            EXPECT_LT(i.id, ZTSEG_ID_ANY);
        }
    }
    auto ids = identitiesByLabels(cp);
    EXPECT_EQ(ids.at("ztseg.io/reserved=host"), kHostIdentity);
    EXPECT_EQ(ids.at("ztseg.io/reserved=world"), kWorldIdentity);
    // Both the CIDR and its except range named in a rule got identities.
    EXPECT_EQ(ids.count("ztseg.io/cidr=10.2.0.0/16"), 1u);
    EXPECT_EQ(ids.count("ztseg.io/cidr=10.2.9.0/24"), 1u);
}

// ---- bundle round trip and rejection ----

void expectSamePolicy(const CompiledPolicy& a, const CompiledPolicy& b) {
    EXPECT_EQ(a.generation, b.generation);
    EXPECT_EQ(a.files, b.files);
    EXPECT_EQ(a.source_digest, b.source_digest);
    EXPECT_EQ(a.modes, b.modes);
    EXPECT_EQ(a.raw_sockets, b.raw_sockets);
    ASSERT_EQ(a.identities.size(), b.identities.size());
    for (size_t i = 0; i < a.identities.size(); ++i) {
        const auto &x = a.identities[i], &y = b.identities[i];
        EXPECT_EQ(x.id, y.id);
        EXPECT_EQ(x.kind, y.kind) << x.id;
        EXPECT_EQ(x.labels, y.labels) << x.id;
        EXPECT_EQ(x.names, y.names) << x.id;
        auto px = x.prefixes, py = y.prefixes;
        auto less = [](const IpPrefix& p, const IpPrefix& q) { return p.str() < q.str(); };
        std::sort(px.begin(), px.end(), less);
        std::sort(py.begin(), py.end(), less);
        EXPECT_EQ(px, py) << x.id;
    }
    ASSERT_EQ(a.inventory.size(), b.inventory.size());
    for (size_t i = 0; i < a.inventory.size(); ++i) {
        EXPECT_EQ(a.inventory[i].prefix, b.inventory[i].prefix);
        EXPECT_EQ(a.inventory[i].identity, b.inventory[i].identity);
    }
    ASSERT_EQ(a.rules.size(), b.rules.size());
    for (size_t i = 0; i < a.rules.size(); ++i) {
        const Rule &x = a.rules[i], &y = b.rules[i];
        EXPECT_TRUE(x.local == y.local && x.peer == y.peer && x.direction == y.direction &&
                    x.protocol == y.protocol && x.ports.first == y.ports.first &&
                    x.ports.last == y.ports.last && x.action == y.action && x.rule_id == y.rule_id)
            << "rule entry " << i;
    }
    ASSERT_EQ(a.sources.size(), b.sources.size());
    for (size_t i = 0; i < a.sources.size(); ++i) {
        const RuleSource &x = a.sources[i], &y = b.sources[i];
        EXPECT_EQ(x.rule_id, y.rule_id);
        EXPECT_EQ(x.policy, y.policy);
        EXPECT_EQ(x.direction, y.direction);
        EXPECT_EQ(x.action, y.action);
        EXPECT_EQ(x.loc.str(), y.loc.str());
        EXPECT_EQ(x.description, y.description);
    }
    ASSERT_EQ(a.workloads.size(), b.workloads.size());
    for (size_t i = 0; i < a.workloads.size(); ++i) {
        const CompiledWorkload &x = a.workloads[i], &y = b.workloads[i];
        EXPECT_EQ(x.name, y.name);
        EXPECT_EQ(x.identity, y.identity);
        EXPECT_EQ(x.cgroup, y.cgroup);
        EXPECT_EQ(x.systemd_unit, y.systemd_unit);
        EXPECT_EQ(x.mode, y.mode);
        EXPECT_EQ(x.raw_sockets, y.raw_sockets) << x.name;
    }
}

TEST(Bundle, RoundTripsEverything) {
    CompiledPolicy cp = compileSources(kSources, 12345);
    ASSERT_FALSE(cp.rules.empty());
    ASSERT_FALSE(cp.sources.empty());
    BundleMeta meta{"prod-eu", 1893456000};
    std::string bytes = serializeBundle(cp, meta);
    BundleMeta back;
    CompiledPolicy parsed = parseBundle(bytes, &back);
    expectSamePolicy(cp, parsed);
    EXPECT_EQ(back.fleet, "prod-eu");
    EXPECT_EQ(back.not_after_unix, 1893456000);
    // and the parsed policy serializes to the same bytes
    EXPECT_EQ(serializeBundle(parsed, meta), bytes);
}

TEST(Bundle, ShippedExamplesRoundTrip) {
    Diagnostics diags;
    PolicySet ps = loadPolicies({std::string(ZTSEG_SOURCE_DIR) + "/policies"}, diags);
    CompiledPolicy cp = compile(ps, 3, diags);
    expectSamePolicy(cp, parseBundle(serializeBundle(cp)));
}

// Expects parseBundle to throw an Error whose message contains `msg`.
void expectRejected(const std::string& bytes, const std::string& msg) {
    try {
        parseBundle(bytes);
        ADD_FAILURE() << "accepted; expected an error containing \"" << msg << "\"";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(msg), std::string::npos) << e.what();
        EXPECT_EQ(std::string(e.what()).rfind("bundle: ", 0), 0u) << e.what();
    }
}

TEST(Bundle, RejectsGarbage) {
    expectRejected("this is not a bundle at all\xff\xff\xff", "not a valid ztseg bundle");
    expectRejected(std::string("\x0a\xff\xff\xff\xff\x0f", 6), "not a valid ztseg bundle");
    // Bytes that happen to be valid protobuf are still no bundle: generation 0.
    expectRejected("", "generation 0 is invalid");
}

TEST(Bundle, RejectsGenerationZero) {
    CompiledPolicy cp = compileSources(kSources, 0);
    expectRejected(serializeBundle(cp), "generation 0 is invalid (generations start at 1)");
}

TEST(Bundle, RejectsRulesNamingUnknownIdentities) {
    CompiledPolicy cp = compileSources(kSources);
    ASSERT_FALSE(cp.rules.empty());
    CompiledPolicy bad = cp;
    bad.rules[0].local = 4711;
    expectRejected(serializeBundle(bad), "rule entry 0 names unknown identity 4711");
    bad = cp;
    bad.rules.back().peer = 4712;
    expectRejected(serializeBundle(bad), "rule entry " + std::to_string(bad.rules.size() - 1) +
                                             " names unknown identity 4712");
    bad = cp;
    bad.inventory[0].identity = 4713;
    expectRejected(serializeBundle(bad), "inventory entry 0 names unknown identity 4713");
    bad = cp;
    bad.workloads[0].identity = 4714;
    expectRejected(serializeBundle(bad),
                   "workload '" + cp.workloads[0].name + "' names unknown identity 4714");
}

TEST(Bundle, RejectsReservedOrDuplicateIdentities) {
    CompiledPolicy cp = compileSources(kSources);
    CompiledPolicy bad = cp;
    bad.identities.push_back(bad.identities.back());
    expectRejected(serializeBundle(bad), "is reserved or listed twice");
    bad = cp;
    bad.identities[0].id = kUnlabeled;
    expectRejected(serializeBundle(bad), "identity 0 is reserved or listed twice");
}

TEST(Bundle, RejectsBadPrefixes) {
    CompiledPolicy cp = compileSources(kSources);
    CompiledPolicy bad = cp;
    bad.inventory[0].prefix.family = 4;
    bad.inventory[0].prefix.length = 33;
    expectRejected(serializeBundle(bad), "inventory entry 0: prefix length 33");
    bad = cp;
    bad.inventory[1].prefix = IpPrefix::parse("fd00::/64");
    bad.inventory[1].prefix.length = 129;
    expectRejected(serializeBundle(bad), "inventory entry 1: prefix length 129");
    // An address of neither 4 nor 16 bytes, written straight into the protobuf.
    v1::Bundle b;
    ASSERT_TRUE(b.ParseFromString(serializeBundle(cp)));
    b.mutable_inventory(0)->mutable_prefix()->set_addr(std::string(5, '\x0a'));
    expectRejected(b.SerializeAsString(),
                   "inventory entry 0: address of 5 bytes (expected 4 or 16)");
}

TEST(Bundle, RejectsBadRuleFields) {
    CompiledPolicy cp = compileSources(kSources);
    v1::Bundle b;
    ASSERT_TRUE(b.ParseFromString(serializeBundle(cp)));
    v1::Bundle bad = b;
    bad.mutable_rules(0)->set_port_first(70000);
    expectRejected(bad.SerializeAsString(), "rule entry 0: invalid protocol or port range");
    bad = b;
    bad.mutable_rules(0)->set_port_first(9);
    bad.mutable_rules(0)->set_port_last(8);
    expectRejected(bad.SerializeAsString(), "rule entry 0: invalid protocol or port range");
    bad = b;
    bad.mutable_rules(0)->set_direction(v1::DIRECTION_UNSPECIFIED);
    expectRejected(bad.SerializeAsString(), "rule entry 0: invalid direction");
    bad = b;
    bad.mutable_rules(0)->set_action(v1::ACTION_UNSPECIFIED);
    expectRejected(bad.SerializeAsString(), "rule entry 0: invalid action");
}

TEST(Bundle, RejectsTruncatedBundlesCutMidField) {
    std::string bytes = serializeBundle(compileSources(kSources));
    // Cut inside the first identity (field 3, right after the generation and fleet).
    for (size_t len : {size_t(1), size_t(5), bytes.size() / 2, bytes.size() - 1}) {
        SCOPED_TRACE(len);
        EXPECT_THROW(parseBundle(bytes.substr(0, len)), Error);
    }
}

// Regression: a bundle cut at a field boundary is itself valid protobuf
// (e.g. without its last rules, which may be the deny rules). serializeBundle
// writes compiler_version (field 11) last and parseBundle requires it.
TEST(Bundle, RejectsEveryTruncation) {
    std::string bytes = serializeBundle(compileSources(kSources));
    std::vector<size_t> accepted;
    for (size_t len = 0; len < bytes.size(); ++len) {
        try {
            parseBundle(bytes.substr(0, len));
            accepted.push_back(len);
        } catch (const Error&) {
        }
    }
    std::string list;
    for (size_t len : accepted) {
        list += " " + std::to_string(len);
    }
    EXPECT_TRUE(accepted.empty()) << accepted.size() << " of " << bytes.size()
                                  << " truncations accepted, e.g. lengths:" << list.substr(0, 200);
}

}  // namespace
}  // namespace ztseg::policy
