// ztseg-controller's configuration file (dist/ztseg-controller.yaml documents
// every field). Unknown or repeated fields and bad values are errors with
// file:line:column.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/tls_config.hpp"
#include "controller/wire_keys.hpp"

namespace ztseg::controller {

struct RolloutConfig {
    // Canary hosts: those whose labels (from `hosts`) include all of these;
    // when empty, canary_percent of the connected hosts (at least one).
    std::map<std::string, std::string> canary_labels;
    uint32_t canary_percent = 10;
    // After the canaries: cumulative shares of the connected hosts, in %.
    std::vector<uint32_t> waves{50, 100};
    uint32_t ack_timeout_ms = 15000;  // every host of a wave acks within this
    uint32_t soak_ms = 3000;          // then its health is watched for this long
    // Health: a host whose default-deny drops grow by more than this many
    // packets during the soak fails the wave.
    uint64_t max_default_deny_increase = 20;
    // Direct mode: every push asks the agent for this confirm window; the
    // controller confirms once the agent, asked again after confirm_settle_ms,
    // answers over its link with the generation active (auto_confirm.hpp).
    // Unconfirmed (the controller or the link gone), the agent returns to
    // its last confirmed generation by itself. 0: pushes without a window.
    uint32_t confirm_within_ms = 60000;
    uint32_t confirm_settle_ms = 2000;
};

struct ControllerConfig {
    std::string fleet;                  // required: bundles and certificates name it
    std::string policy_dir;             // required: the policy source
    uint32_t watch_interval_ms = 2000;  // 0: only reload on request (SIGHUP, Reload)
    std::string state_dir = "/var/lib/ztseg-controller";
    std::vector<std::string> signing_keys;  // PEM Ed25519 private keys; every bundle gets all
    std::string unix_socket = "/run/ztseg/controller.sock";  // operators (root only)
    std::string listen;  // host:port for agents, mutual TLS (direct mode)
    TlsConfig tls;
    std::vector<std::string> revoked_serials;  // agent certificates refused (hex serials)
    std::vector<std::string> revoked_hosts;    // host names refused
    std::map<std::string, std::map<std::string, std::string>> host_labels;  // `hosts`
    // `hosts.<name>.addresses`: the prefixes only that host sends from (its
    // workloads' and its own), canonical text; one host per address.
    std::map<std::string, std::vector<std::string>> host_addresses;
    // `hosts.<name>.workloads`: the workloads (policy names) the host runs,
    // the only identities its wire proofs may name.
    std::map<std::string, std::vector<std::string>> host_workloads;
    WireProofSettings wire_proof;  // proven identity on the wire (direct mode)
    RolloutConfig rollout;
    std::string flow_file;  // fleet-wide OCSF JSON lines; empty: flows are not collected
    uint64_t flow_file_max_bytes = 100ull << 20;
    uint32_t flow_file_max_files = 5;
    std::string rollout_log = "/var/log/ztseg/rollout.jsonl";  // rollout timeline
    // etcd mode: distribute through etcd instead of agent connections.
    std::vector<std::string> etcd_endpoints;
    std::string etcd_prefix;                // default /ztseg/<fleet>
    uint32_t etcd_host_timeout_ms = 15000;  // a host without a report this long is offline
};

// Throws Error listing every problem as "file:line:col: message".
ControllerConfig parseControllerConfig(const std::string& text, const std::string& file_name);
ControllerConfig loadControllerConfig(const std::string& path);

}  // namespace ztseg::controller
