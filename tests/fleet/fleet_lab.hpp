// A fleet on one machine for the controller tests: one "hub" network
// namespace running ztseg-controller (and etcd in etcd mode), and N agents,
// each a real ztsegd in its own namespace (veth to the hub), with its own
// certificate, bpffs pin directory, state directory and cgroup subtree.
// Everything is uniquely named and removed on destruction, also on failure.
//
//   hub ns: controller 0.0.0.0:17443, etcd 0.0.0.0:12379
//     10.214.(i+1).1 ──veth── 10.214.(i+1).2  agent i ns: ztsegd "agent<i>"
//                                             cgroup <tag>/agent<i>[/probe]
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent.grpc.pb.h"
#include "common/lab.hpp"
#include "controller.grpc.pb.h"
#include "integration/test_pki.hpp"

namespace ztseg::test {

inline constexpr uint16_t kControllerPort = 17443;
inline constexpr uint16_t kEtcdPort = 12379;
inline constexpr uint16_t kProbePort = 7000;  // the probe workload's egress target on the hub
inline const std::string kFleetName = "lab";

class FleetLab {
  public:
    struct Agent {
        std::string name;
        std::unique_ptr<NetNs> ns;
        std::unique_ptr<VethPair> veth;
        std::unique_ptr<Cgroup2> root, probe;  // cgroup_root and the probe workload
        std::filesystem::path dir;
        std::string pin_dir;
        std::unique_ptr<Child> proc;
    };
    enum class Mode { Direct, Etcd };

    explicit FleetLab(int agents);
    ~FleetLab();

    // The policy source: the probe workload may reach the hub on `ports`.
    void writePolicy(const std::vector<uint16_t>& ports, const std::string& note);
    void writeControllerConfig(Mode mode, const std::vector<std::string>& signing_keys);
    void startController();
    void stopController();
    void writeAgentConfig(int i, Mode mode);
    void startAgent(int i);
    void stopAgent(int i);
    void startEtcd();
    void stopEtcd();

    std::unique_ptr<v1::Controller::Stub> controller() const;
    std::unique_ptr<v1::Agent::Stub> agentApi(int i) const;
    v1::FleetStatusReply fleetStatus() const;  // empty reply if unreachable
    v1::StatusReply agentStatus(int i) const;  // empty reply if unreachable
    uint64_t agentGeneration(int i) const;     // 0 if unreachable
    v1::ReloadReply reload() const;            // blocks for the rollout
    grpc::Status applyTo(int i, const std::string& bundle) const;
    std::vector<nlohmann::json> rolloutLog() const;
    // The JSON lines of a log the controller is still appending to: only
    // complete lines (a last line without its newline is not written yet).
    static std::vector<nlohmann::json> jsonLines(const std::filesystem::path& file);
    // `ztsegctl ARGS` (exit status, stdout).
    std::pair<int, std::string> ztsegctl(const std::string& args) const;

    static bool waitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

    // The controller's TLS certificate (a name in pki): impostors for the trust tests.
    std::string controller_cert = "controller";
    // Agents also serve their API on TCP here (host:port in their namespace), if set.
    std::string agent_api_tcp;
    // Appended to every agent config (e.g. a revoked: section).
    std::string agent_extra_yaml;
    // Where the controller and etcd run: the hub namespace, or (nullptr) the
    // caller's own, listening on 127.0.0.1 (simulated agents in this process
    // reach them without a veth: bench/fleet_sim). Set before writing configs.
    NetNs* service_ns = &hub;
    uint16_t controller_port = kControllerPort;
    uint16_t etcd_port = kEtcdPort;
    uint32_t etcd_host_timeout_ms = 5000;  // etcd mode: a host silent this long is offline
    // Replaces the canary/waves rollout section of the controller config when set.
    std::string rollout_yaml;
    // A client certificate for host `name` (spiffe://lab/host/<name>), for
    // agents that are not lab namespaces (simulated ones).
    void addHostCert(const std::string& name);
    std::string controllerAddress() const;  // host:port agents dial
    std::string etcdEndpoint() const;       // http://host:port
    pid_t controllerPid() const;            // 0 if not running
    pid_t etcdPid() const;
    // SIGHUP to agent i: ztsegd re-reads its config.
    void reloadAgent(int i);
    std::string agentLog(int i) const;

    std::vector<Agent> agents;
    NetNs hub;
    TestPki pki;
    std::filesystem::path dir;
    std::string tag;
    std::string keyPath(const std::string& name, const char* ext) const {
        return (dir / "keys" / (name + ext)).string();
    }
    std::filesystem::path controllerState() const { return dir / "controller-state"; }
    std::filesystem::path flowFile() const { return dir / "fleet-flows.jsonl"; }

  private:
    std::unique_ptr<Cgroup2> cg_root_;
    std::unique_ptr<Child> controller_, etcd_;
};

std::string hubAddr(int i);
std::string agentAddr(int i);

}  // namespace ztseg::test
