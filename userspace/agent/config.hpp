// ztsegd's configuration file (dist/ztsegd.yaml documents every field).
// Unknown or repeated fields and bad values are errors with file:line:column.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/revocation.hpp"
#include "common/tls_config.hpp"
#include "datapath/datapath.hpp"
#include "model/failsafe.hpp"

namespace ztseg::agent {

// Being managed by ztseg-controller: this agent dials it over mutual TLS
// with api.tls (cert, key, ca) as its identity (docs/ztseg-controller.md).
struct ControllerSettings {
    std::string address;      // host:port, empty = not managed by a controller
    std::string server_name;  // DNS name in the controller's certificate (default: address host)
    uint32_t report_interval_ms = 5000;  // unsolicited status reports
};

// etcd mode: signed bundles are read from a key prefix in etcd.
struct EtcdSettings {
    std::vector<std::string> endpoints;  // http://host:port (JSON gateway); empty = off
    std::string prefix;                  // default /ztseg/<fleet>
    uint32_t report_interval_ms = 5000;
};

// failsafe: the host's flows no host policy refuses (docs/ztsegd.md#failsafe-rules).
// The controller and etcd links and the agent API follow from their own
// sections; failsafeRules() (agent/failsafe_rules.hpp) makes the list.
struct LocatedPrefix {
    IpPrefix prefix;
    std::string where;  // file:line:col
};
struct FailsafeSettings {
    bool enabled = true;  // false: no failsafe rule at all (a warning at every start)
    std::vector<LocatedPrefix> management;  // SSH and the agent API in from these
    uint16_t ssh_port = 22;
    std::vector<LocatedPrefix> dns;   // udp+tcp 53 out to these
    std::vector<LocatedPrefix> ntp;   // udp 123 out to these
    bool dhcp = true;                 // DHCP and DHCPv6 client (udp 67/68, 546/547)
    std::vector<FailsafeRule> rules;  // failsafe.rules: any other flow, one per peer
};

struct AgentConfig {
    std::string host_name;  // default: gethostname()
    std::string fleet;      // bundles for another fleet are refused
    std::string state_dir = "/var/lib/ztseg";
    std::string cgroup_root;  // default: the cgroup2 mount point
    // XDP attach patterns (fnmatch) or exact names. A glob never matches the
    // loopback device; naming it ("lo") is an error. Empty only with cgroup_only.
    std::vector<std::string> interfaces{"*"};
    // Explicit opt-out of XDP: cgroup hooks only (a warning at every start).
    bool cgroup_only = false;
    XdpRequest xdp_mode = XdpRequest::Auto;
    std::string bundle;  // applied at start if newer than the state
    // PEM Ed25519 public keys; when any is listed, only bundles signed by one
    // of them are applied, on every path (file, --apply, API, controller, etcd).
    std::vector<std::string> trusted_keys;
    ControllerSettings controller;
    EtcdSettings etcd;
    std::string flow_file = "/var/log/ztseg/flows.jsonl";
    uint64_t flow_file_max_bytes = 100ull << 20;
    uint32_t flow_file_max_files = 5;
    std::string unix_socket = "/run/ztseg/ztsegd.sock";
    std::string tcp_listen;  // host:port for mutual TLS, empty = off
    TlsConfig tls;
    // Peer certificates refused on the TCP API and the controller link (the
    // controller's server certificate); re-read on SIGHUP.
    RevocationSettings revoked;
    std::string metrics_listen =
        "127.0.0.1:9746";  // clear of cilium-agent (9962-9965), node_exporter (9100)
    // One series per rule (ztseg_rule_hit_*); off by default: per policy only.
    bool metrics_per_rule = false;
    DatapathOptions datapath;
    FailsafeSettings failsafe;
};

// Throws Error listing every problem as "file:line:col: message".
AgentConfig parseConfig(const std::string& text, const std::string& file_name);
AgentConfig loadConfig(const std::string& path);

}  // namespace ztseg::agent
