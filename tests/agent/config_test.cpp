// ztsegd config: defaults, every section, and located errors for bad input;
// the failsafe section and the rules ztsegd puts in force from it.
#include "agent/config.hpp"

#include <gtest/gtest.h>

#include "agent/failsafe_rules.hpp"
#include "common/error.hpp"

namespace ztseg::agent {
namespace {

std::string errorOf(const std::string& text) {
    try {
        parseConfig(text, "ztsegd.yaml");
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(AgentConfig, EmptyFileGivesDefaults) {
    AgentConfig c = parseConfig("", "ztsegd.yaml");
    EXPECT_EQ(c.state_dir, "/var/lib/ztseg");
    EXPECT_EQ(c.datapath.pin_dir, "/sys/fs/bpf/ztseg");
    EXPECT_EQ(c.xdp_mode, XdpRequest::Auto);
    EXPECT_EQ(c.interfaces, (std::vector<std::string>{"*"})) << "every interface but lo";
    EXPECT_FALSE(c.cgroup_only);
    EXPECT_FALSE(c.host_name.empty()) << "defaults to gethostname()";
    EXPECT_EQ(c.datapath.drop_event_interval_ns, 1'000'000'000u);
}

TEST(AgentConfig, EverySectionIsRead) {
    AgentConfig c = parseConfig(R"(
host_name: node-7
fleet: prod-eu
state_dir: /tmp/zt-state
pin_dir: /sys/fs/bpf/zt2
cgroup_root: /sys/fs/cgroup/unified
interfaces: [eth0, "ens*"]
xdp_mode: generic
bundle: /etc/ztseg/bundle.pb
flows: {file: /tmp/flows.jsonl, max_bytes: 1048576, max_files: 3, drop_event_interval_ms: 250}
api:
  unix_socket: /run/zt.sock
  tcp: 0.0.0.0:9963
  tls: {cert: a.pem, key: a.key, ca: ca.pem}
metrics: {listen: 127.0.0.1:9999}
datapath: {policy_capacity: 4096, identity_capacity: 2048, endpoint_capacity: 64,
           conntrack_capacity: 8192, ringbuf_bytes: 65536, raw_socket_fallback: false}
)",
                                "ztsegd.yaml");
    EXPECT_EQ(c.host_name, "node-7");
    EXPECT_EQ(c.fleet, "prod-eu");
    EXPECT_EQ(c.datapath.pin_dir, "/sys/fs/bpf/zt2");
    EXPECT_EQ(c.interfaces, (std::vector<std::string>{"eth0", "ens*"}));
    EXPECT_EQ(c.xdp_mode, XdpRequest::Generic);
    EXPECT_EQ(c.flow_file_max_bytes, 1048576u);
    EXPECT_EQ(c.flow_file_max_files, 3u);
    EXPECT_EQ(c.datapath.drop_event_interval_ns, 250'000'000u);
    EXPECT_EQ(c.tcp_listen, "0.0.0.0:9963");
    EXPECT_EQ(c.tls.ca, "ca.pem");
    EXPECT_EQ(c.metrics_listen, "127.0.0.1:9999");
    EXPECT_EQ(c.datapath.policy_capacity, 4096u);
    EXPECT_EQ(c.datapath.ringbuf_bytes, 65536u);
    EXPECT_FALSE(c.datapath.raw_socket_fallback);
}

TEST(AgentConfig, XdpModeTcxForcesTcxEverywhere) {
    EXPECT_EQ(parseConfig("xdp_mode: tcx\n", "ztsegd.yaml").xdp_mode, XdpRequest::Tcx);
}

TEST(AgentConfig, ErrorsNameTheLocation) {
    EXPECT_EQ(
        errorOf("intrefaces: [eth0]\n"),
        "ztsegd.yaml:1:1: unknown field 'intrefaces' in ztsegd config (expected one of: "
        "api, bundle, cgroup_only, cgroup_root, controller, datapath, etcd, failsafe, fleet, "
        "flows, "
        "host_name, interfaces, metrics, pin_dir, revoked, state_dir, trusted_keys, xdp_mode)");
    EXPECT_EQ(errorOf("xdp_mode: fast\n"),
              "ztsegd.yaml:1:11: xdp_mode must be auto, native, generic or tcx");
    EXPECT_EQ(errorOf("flows:\n  max_files: 0\n"),
              "ztsegd.yaml:2:14: expected a whole number from 1 to 1000");
    EXPECT_EQ(errorOf("datapath: {ringbuf_bytes: 5000}\n"),
              "ztsegd.yaml:1:11: datapath.ringbuf_bytes must be a power of two");
    EXPECT_EQ(errorOf("api: {tcp: 0.0.0.0:1}\n"),
              "ztsegd.yaml:1:6: api.tcp needs api.tls.cert, key and ca (mutual TLS only)");
    EXPECT_EQ(errorOf("fleet: a\nfleet: b\n"),
              "ztsegd.yaml:2:1: duplicate field 'fleet' in ztsegd config (first at "
              "ztsegd.yaml:1:1)");
    EXPECT_EQ(errorOf("interfaces: eth0\n"), "ztsegd.yaml:1:13: expected a list");
    EXPECT_NE(errorOf("a: [\n").find("ztsegd.yaml:2:1: invalid YAML"), std::string::npos);
}

// Revocation of peer certificates (API over TCP, controller link): the CRL is
// loaded by the daemon, which names the setting's location when it fails.
TEST(AgentConfig, RevocationSettingsAndTheirErrors) {
    AgentConfig c = parseConfig(
        "api: {tls: {cert: c.pem, key: k.pem, ca: ca.pem}}\n"
        "revoked:\n  serials: [\"3A:0F\", 1b2c]\n  crl: /etc/ztseg/crl.pem\n",
        "ztsegd.yaml");
    EXPECT_EQ(c.revoked.serials, (std::vector<std::string>{"3A:0F", "1b2c"}));
    EXPECT_EQ(c.revoked.crl, "/etc/ztseg/crl.pem");
    EXPECT_EQ(c.revoked.crl_where, "ztsegd.yaml:4:8");
    EXPECT_TRUE(parseConfig("", "ztsegd.yaml").revoked.serials.empty()) << "nothing by default";
    EXPECT_EQ(errorOf("revoked: {serials: [\"3A:0F\", host-7]}\n"),
              "ztsegd.yaml:1:30: revoked.serials: 'host-7' is not a hexadecimal serial number (as "
              "`openssl x509 -noout -serial` prints it)");
    EXPECT_EQ(errorOf("revoked: {crl: /etc/ztseg/crl.pem}\n"),
              "ztsegd.yaml:1:10: revoked.crl needs api.tls.ca (the CA that signs the CRL)");
    EXPECT_EQ(errorOf("revoked: {hosts: [a]}\n"),
              "ztsegd.yaml:1:11: unknown field 'hosts' in revoked (expected one of: crl, serials)");
}

// Peers are named spiffe://<fleet>/...: a fleet that is no SPIFFE trust
// domain would silently match no certificate.
TEST(AgentConfig, FleetOfATlsAgentIsATrustDomain) {
    std::string tls = "api: {tcp: \":1\", tls: {cert: c, key: k, ca: a}}\n";
    EXPECT_EQ(errorOf("fleet: Prod\n" + tls),
              "ztsegd.yaml:1:8: fleet 'Prod' is not a SPIFFE trust domain (lowercase letters, "
              "digits, '.', '-', '_'): no certificate could name it");
    EXPECT_EQ(errorOf("fleet: prod-eu.example\n" + tls), "");
    EXPECT_EQ(errorOf("fleet: Prod\n"), "") << "no TLS peers: the fleet only names bundles";
}

TEST(AgentConfig, AllErrorsAreReportedTogether) {
    std::string e = errorOf("fleet: [x]\nxdp_mode: fast\nbogus: 1\n");
    EXPECT_NE(e.find("ztsegd.yaml:1:8"), std::string::npos) << e;
    EXPECT_NE(e.find("ztsegd.yaml:2:11"), std::string::npos) << e;
    EXPECT_NE(e.find("ztsegd.yaml:3:1"), std::string::npos) << e;
}

TEST(AgentConfig, MissingFileIsAClearError) {
    try {
        loadConfig("/nonexistent/ztsegd.yaml");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()),
                  "read config /nonexistent/ztsegd.yaml: No such file or directory");
    }
}

}  // namespace
}  // namespace ztseg::agent

namespace ztseg::agent {
namespace {

// The shipped default config parses and says what the code defaults are.
TEST(AgentConfig, ShippedDefaultConfigMatchesTheBuiltInDefaults) {
    AgentConfig shipped = loadConfig(std::string(ZTSEG_SOURCE_DIR) + "/dist/ztsegd.yaml");
    AgentConfig builtin = parseConfig("", "empty.yaml");
    EXPECT_EQ(shipped.state_dir, builtin.state_dir);
    EXPECT_EQ(shipped.datapath.pin_dir, builtin.datapath.pin_dir);
    EXPECT_EQ(shipped.flow_file, builtin.flow_file);
    EXPECT_EQ(shipped.flow_file_max_bytes, builtin.flow_file_max_bytes);
    EXPECT_EQ(shipped.flow_file_max_files, builtin.flow_file_max_files);
    EXPECT_EQ(shipped.datapath.drop_event_interval_ns, builtin.datapath.drop_event_interval_ns);
    EXPECT_EQ(shipped.unix_socket, builtin.unix_socket);
    EXPECT_EQ(shipped.metrics_listen, builtin.metrics_listen);
    EXPECT_EQ(shipped.datapath.policy_capacity, builtin.datapath.policy_capacity);
    EXPECT_EQ(shipped.datapath.identity_capacity, builtin.datapath.identity_capacity);
    EXPECT_EQ(shipped.datapath.endpoint_capacity, builtin.datapath.endpoint_capacity);
    EXPECT_EQ(shipped.datapath.conntrack_capacity, builtin.datapath.conntrack_capacity);
    EXPECT_EQ(shipped.datapath.ringbuf_bytes, builtin.datapath.ringbuf_bytes);
    EXPECT_EQ(shipped.datapath.raw_socket_fallback, builtin.datapath.raw_socket_fallback);
    EXPECT_TRUE(builtin.datapath.raw_socket_fallback);
    EXPECT_EQ(shipped.interfaces, builtin.interfaces);
    EXPECT_EQ(shipped.cgroup_only, builtin.cgroup_only);
}

// No XDP means nothing judges what the kernel answers itself on an interface:
// only an explicit cgroup_only: true turns it off.
TEST(AgentConfig, EmptyInterfacesRefusedWithoutCgroupOnly) {
    EXPECT_EQ(errorOf("fleet: a\ninterfaces: []\n"),
              "ztsegd.yaml:2:13: interfaces is empty: XDP would judge no interface, and traffic "
              "the kernel answers itself (host services, ICMP) would never be judged; list "
              "interfaces (default [\"*\"]: every interface but lo), or set cgroup_only: true to "
              "run with cgroup hooks only");
    EXPECT_NE(errorOf("interfaces:\n").find("interfaces is empty"), std::string::npos);
    EXPECT_NE(errorOf("interfaces: []\ncgroup_only: false\n").find("1:13: interfaces is empty"),
              std::string::npos);
}

TEST(AgentConfig, CgroupOnlyIsTheExplicitOptOut) {
    AgentConfig c = parseConfig("interfaces: []\ncgroup_only: true\n", "ztsegd.yaml");
    EXPECT_TRUE(c.cgroup_only);
    EXPECT_TRUE(c.interfaces.empty());
    AgentConfig d = parseConfig("cgroup_only: true\n", "ztsegd.yaml");
    EXPECT_TRUE(d.interfaces.empty()) << "no default [\"*\"] under cgroup_only";
    EXPECT_EQ(errorOf("interfaces: [eth0]\ncgroup_only: true\n"),
              "ztsegd.yaml:2:14: cgroup_only: true contradicts the interfaces listed (remove one)");
    EXPECT_EQ(errorOf("cgroup_only: yes\n"), "ztsegd.yaml:1:14: expected true or false");
}

TEST(AgentConfig, LoopbackIsNeverAnXdpInterface) {
    EXPECT_EQ(errorOf("interfaces: [eth0, lo]\n"),
              "ztsegd.yaml:1:20: interfaces: 'lo' is the loopback device; XDP is never attached "
              "to loopback (patterns such as '*' skip it)");
    AgentConfig c = parseConfig("interfaces: [\"*\", \"l*\"]\n", "ztsegd.yaml");
    EXPECT_EQ(c.interfaces.size(), 2u) << "patterns are fine: they skip loopback";
}

TEST(AgentConfig, FleetManagementSettings) {
    AgentConfig c = parseConfig(R"(
fleet: lab
trusted_keys: [/etc/ztseg/a.pub, /etc/ztseg/b.pub]
api: {tls: {cert: c.pem, key: c.key, ca: ca.pem}}
controller: {address: "10.0.0.1:7443", server_name: controller.lab, report_interval_ms: 500}
)",
                                "ztsegd.yaml");
    EXPECT_EQ(c.trusted_keys.size(), 2u);
    EXPECT_EQ(c.controller.address, "10.0.0.1:7443");
    EXPECT_EQ(c.controller.server_name, "controller.lab");
    EXPECT_EQ(c.controller.report_interval_ms, 500u);
    EXPECT_EQ(c.etcd.prefix, "/ztseg/lab");
    AgentConfig e = parseConfig(
        "fleet: lab\ntrusted_keys: [k.pub]\netcd: {endpoints: [\"http://10.0.0.1:2379\"], "
        "prefix: /zt}\n",
        "ztsegd.yaml");
    EXPECT_EQ(e.etcd.endpoints.size(), 1u);
    EXPECT_EQ(e.etcd.prefix, "/zt");
}

TEST(AgentConfig, NetworkBundleSourcesNeedTrustedKeysFleetAndTls) {
    EXPECT_EQ(errorOf("controller: {address: \"c:1\"}\n"),
              "ztsegd.yaml:1:13: controller needs trusted_keys (bundles are verified)\n"
              "ztsegd.yaml:1:13: controller needs fleet\n"
              "ztsegd.yaml:1:13: controller needs api.tls.cert, key and ca (this host's identity)");
    EXPECT_EQ(errorOf("fleet: x\netcd: {endpoints: [e]}\n"),
              "ztsegd.yaml:2:7: etcd needs trusted_keys (bundles are verified)");
    EXPECT_NE(errorOf("fleet: x\ntrusted_keys: [k]\napi: {tls: {cert: a, key: b, ca: c}}\n"
                      "controller: {address: \"c:1\"}\netcd: {endpoints: [e]}\n")
                  .find("choose controller or etcd, not both"),
              std::string::npos);
}

std::vector<std::string> texts(const std::vector<FailsafeRule>& rules) {
    std::vector<std::string> out;
    for (const auto& r : rules) out.push_back(r.name + ": " + r.flowText() + " (" + r.origin + ")");
    return out;
}

TEST(FailsafeConfig, DefaultsAreTheDhcpClientOnly) {
    AgentConfig c = parseConfig("", "ztsegd.yaml");
    EXPECT_TRUE(c.failsafe.enabled);
    EXPECT_EQ(texts(failsafeRules(c, nullptr)),
              (std::vector<std::string>{
                  "dhcp: egress udp/67 to 0.0.0.0/0 (built-in (failsafe.dhcp))",
                  "dhcp: ingress udp/68 from 0.0.0.0/0 (built-in (failsafe.dhcp))",
                  "dhcpv6: egress udp/547 to ::/0 (built-in (failsafe.dhcp))",
                  "dhcpv6: ingress udp/546 from ::/0 (built-in (failsafe.dhcp))",
              }));
}

TEST(FailsafeConfig, ManagementDnsNtpControllerAndOwnRules) {
    AgentConfig c = parseConfig(
        "fleet: lab\n"
        "trusted_keys: [k.pem]\n"
        "api: {tcp: \"0.0.0.0:9750\", tls: {cert: c, key: k, ca: a}}\n"
        "controller: {address: \"10.0.0.9:9443\"}\n"
        "failsafe:\n"
        "  management: [10.1.0.0/16, \"fd00:1::/64\"]\n"
        "  ssh_port: 2222\n"
        "  dns: [10.0.0.53]\n"
        "  ntp: [10.0.0.123]\n"
        "  dhcp: false\n"
        "  rules:\n"
        "    - {name: bgp, direction: ingress, protocol: tcp, port: 179, peers: [10.2.0.1]}\n",
        "ztsegd.yaml");
    EXPECT_EQ(texts(failsafeRules(c, nullptr)),
              (std::vector<std::string>{
                  "ssh: ingress tcp/2222 from 10.1.0.0/16 (ztsegd.yaml:6:16)",
                  "ssh: ingress tcp/2222 from fd00:1::/64 (ztsegd.yaml:6:29)",
                  "agent-api: ingress tcp/9750 from 10.1.0.0/16 (ztsegd.yaml:6:16)",
                  "agent-api: ingress tcp/9750 from fd00:1::/64 (ztsegd.yaml:6:29)",
                  "controller: egress tcp/9443 to 10.0.0.9/32 (controller.address)",
                  "dns: egress udp/53 to 10.0.0.53/32 (ztsegd.yaml:8:9)",
                  "dns: egress tcp/53 to 10.0.0.53/32 (ztsegd.yaml:8:9)",
                  "ntp: egress udp/123 to 10.0.0.123/32 (ztsegd.yaml:9:9)",
                  "bgp: ingress tcp/179 from 10.2.0.1/32 (ztsegd.yaml:12:73)",
              }));
}

TEST(FailsafeConfig, EtcdEndpointsAreLinks) {
    AgentConfig c = parseConfig(
        "fleet: lab\ntrusted_keys: [k.pem]\n"
        "etcd: {endpoints: [\"http://10.0.0.7:2379\", \"http://[fd00::7]\", \"http://10.0.0.8\"]}\n"
        "failsafe: {dhcp: false}\n",
        "ztsegd.yaml");
    EXPECT_EQ(texts(failsafeRules(c, nullptr)),
              (std::vector<std::string>{
                  "etcd: egress tcp/2379 to 10.0.0.7/32 (etcd.endpoints)",
                  "etcd: egress tcp/2379 to fd00::7/128 (etcd.endpoints)",
                  "etcd: egress tcp/2379 to 10.0.0.8/32 (etcd.endpoints)",
              }));
}

TEST(FailsafeConfig, AnUnresolvableNameGivesAWarningNotARule) {
    AgentConfig c = parseConfig(
        "fleet: lab\ntrusted_keys: [k.pem]\n"
        "etcd: {endpoints: [\"http://no-such-host.invalid:2379\"]}\nfailsafe: {dhcp: false}\n",
        "ztsegd.yaml");
    std::vector<std::string> warnings;
    EXPECT_TRUE(failsafeRules(c, &warnings).empty());
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_EQ(warnings[0].rfind("failsafe rule etcd: 'no-such-host.invalid' does not resolve (", 0),
              0u)
        << warnings[0];
}

TEST(FailsafeConfig, DisabledMeansNoRuleAtAll) {
    AgentConfig c = parseConfig(
        "failsafe: {enabled: false, management: [10.0.0.0/8], dns: [10.0.0.53]}\n", "ztsegd.yaml");
    EXPECT_FALSE(c.failsafe.enabled);
    EXPECT_TRUE(failsafeRules(c, nullptr).empty());
}

TEST(FailsafeConfig, ErrorsNameTheLocation) {
    EXPECT_EQ(errorOf("failsafe: {managment: []}\n"),
              "ztsegd.yaml:1:12: unknown field 'managment' in failsafe (expected one of: dhcp, "
              "dns, enabled, management, ntp, rules, ssh_port)");
    EXPECT_EQ(errorOf("failsafe: {management: [10.0.0.0/33]}\n"),
              "ztsegd.yaml:1:25: failsafe.management: invalid prefix length in '10.0.0.0/33' "
              "(0-32)");
    EXPECT_EQ(errorOf("failsafe: {dns: 10.0.0.53}\n"),
              "ztsegd.yaml:1:17: failsafe.dns must be a list of addresses or prefixes");
    EXPECT_EQ(errorOf("failsafe: {ssh_port: 0}\n"),
              "ztsegd.yaml:1:22: expected a whole number from 1 to 65535");
    EXPECT_EQ(errorOf("failsafe:\n  rules:\n    - {name: x, direction: both, protocol: icmp, "
                      "port: 1, peers: [10.0.0.1]}\n"),
              "ztsegd.yaml:3:7: failsafe.rules: direction must be ingress (the host serves) or "
              "egress (the host connects)\n"
              "ztsegd.yaml:3:7: failsafe.rules: protocol must be tcp or udp");
    EXPECT_EQ(errorOf("failsafe:\n  rules:\n    - {direction: egress, port: 53}\n"),
              "ztsegd.yaml:3:7: failsafe.rules: a rule needs a name (it appears in flow events "
              "and explain)\n"
              "ztsegd.yaml:3:7: failsafe.rules: a rule needs peers (addresses or prefixes; "
              "0.0.0.0/0 and ::/0 for any)");
}

TEST(FailsafeRuleMatch, LongestPeerPrefixWinsAndAnyV6CoversV4) {
    std::vector<FailsafeRule> rules{
        {"wide", "a", Direction::Ingress, ZTSEG_PROTO_TCP, 22, IpPrefix::parse("10.0.0.0/8")},
        {"narrow", "b", Direction::Ingress, ZTSEG_PROTO_TCP, 22, IpPrefix::parse("10.1.0.0/16")},
        {"any", "c", Direction::Ingress, ZTSEG_PROTO_UDP, 546, IpPrefix::parse("::/0")},
    };
    IpPrefix a = IpPrefix::parse("10.1.2.3");
    IpPrefix b = IpPrefix::parse("10.9.2.3");
    IpPrefix c = IpPrefix::parse("192.0.2.1");
    EXPECT_EQ(matchFailsafe(rules, Direction::Ingress, ZTSEG_PROTO_TCP, 22, 4, a.addr.data())->name,
              "narrow");
    EXPECT_EQ(matchFailsafe(rules, Direction::Ingress, ZTSEG_PROTO_TCP, 22, 4, b.addr.data())->name,
              "wide");
    EXPECT_EQ(matchFailsafe(rules, Direction::Ingress, ZTSEG_PROTO_TCP, 22, 4, c.addr.data()),
              nullptr);
    EXPECT_EQ(matchFailsafe(rules, Direction::Egress, ZTSEG_PROTO_TCP, 22, 4, a.addr.data()),
              nullptr);
    EXPECT_EQ(
        matchFailsafe(rules, Direction::Ingress, ZTSEG_PROTO_UDP, 546, 4, c.addr.data())->name,
        "any");
}

}  // namespace
}  // namespace ztseg::agent
