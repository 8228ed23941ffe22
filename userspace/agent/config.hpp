// ztsegd's configuration file (dist/ztsegd.yaml documents every field).
// Unknown or repeated fields and bad values are errors with file:line:column.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "datapath/datapath.hpp"

namespace ztseg::agent {

struct TlsConfig {
    std::string cert;  // PEM files
    std::string key;
    std::string ca;
};

struct AgentConfig {
    std::string host_name;  // default: gethostname()
    std::string fleet;      // bundles for another fleet are refused
    std::string state_dir = "/var/lib/ztseg";
    std::string cgroup_root;              // default: the cgroup2 mount point
    std::vector<std::string> interfaces;  // XDP attach patterns (fnmatch)
    XdpRequest xdp_mode = XdpRequest::Auto;
    std::string bundle;  // applied at start if newer than the state
    std::string flow_file = "/var/log/ztseg/flows.jsonl";
    uint64_t flow_file_max_bytes = 100ull << 20;
    uint32_t flow_file_max_files = 5;
    std::string unix_socket = "/run/ztseg/ztsegd.sock";
    std::string tcp_listen;  // host:port for mutual TLS, empty = off
    TlsConfig tls;
    std::string metrics_listen = "127.0.0.1:9962";
    DatapathOptions datapath;
};

// Throws Error listing every problem as "file:line:col: message".
AgentConfig parseConfig(const std::string& text, const std::string& file_name);
AgentConfig loadConfig(const std::string& path);

}  // namespace ztseg::agent
