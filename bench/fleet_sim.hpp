// The fleet simulation: the real ztseg-controller (and, in etcd mode, a real
// local etcd) from tests/fleet's FleetLab, running in this machine's own
// network namespace on private ports, and N SimAgents in this process, each
// with its own client certificate. pushOneRuleChange() does what an operator
// does (edit the policy source, `ztsegctl fleet reload`) and measures when
// every agent admitted the new generation.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "policy/parser.hpp"
#include "proc_stats.hpp"
#include "sim_agent.hpp"

namespace ztseg::test {
class FleetLab;
}

namespace ztseg::bench {

enum class FleetMode { Controller, Etcd };
const char* modeName(FleetMode m);

struct FleetSimOptions {
    int agents = 20;
    FleetMode mode = FleetMode::Controller;
    int rules = 10'000;  // synthetic policy size (bench/synthetic_policy)
    std::chrono::seconds converge_timeout{600};
};

// Nearest-rank percentile of sorted values (0 if empty).
double percentile(const std::vector<double>& sorted, double p);

struct PushResult {
    uint64_t generation = 0;
    int agents = 0, reached = 0;
    std::string rollout_state, rollout_reason;  // the controller's, after Reload
    // Per agent that admitted it, sorted, from the Reload call: when the
    // bundle reached the agent, when admission completed here (agents share
    // this machine's cores), how long admission itself took, and the estimate
    // for agents on their own CPUs (received + own admission time).
    std::vector<double> received_ms, admitted_ms, admission_ms, own_cpu_ms;
    double reload_ms = 0;  // the Reload RPC (blocks for the rollout)
    uint64_t streams = 0;  // Connect streams opened during the push (reconnects)
    uint64_t wire_messages = 0, wire_bytes = 0;  // ControllerMessages received (direct mode)
    uint64_t admitted_bytes = 0;                 // bundle bytes handed to admission
    uint64_t refusals = 0;
    ProcStats controller_before, controller_after;
    ProcStats etcd_after;                      // etcd mode
    std::map<std::string, double> etcd_delta;  // etcd mode: counters after - before
    double etcd_db_mib = -1;                   // etcd mode: its database file after

    double timeToAllMs() const { return reached == agents ? percentile(admitted_ms, 100) : 0; }
};

class FleetSim {
  public:
    // Lab, certificates, the synthetic policy, controller (and etcd), agents
    // connected and converged on the first generation. Throws on failure.
    explicit FleetSim(FleetSimOptions opts);
    ~FleetSim();
    FleetSim(const FleetSim&) = delete;
    FleetSim& operator=(const FleetSim&) = delete;

    // Changes one rule in the source, reloads the controller and waits for
    // every agent to admit the new generation (or the timeout).
    PushResult pushOneRuleChange();

    std::vector<std::unique_ptr<SimAgent>>& agents() { return agents_; }
    test::FleetLab& lab() { return *lab_; }
    // A signing key agents trust ("A"), to forge and sign bundles in tests.
    policy::Ed25519Key signingKey() const;
    // The time to first convergence (every agent at generation 1).
    double initialConvergeMs() const { return initial_ms_; }
    // etcd mode: etcd's counters over that first convergence (after - before).
    const std::map<std::string, double>& initialEtcdDelta() const { return initial_etcd_delta_; }

  private:
    void writePolicy(const std::vector<policy::SourceText>& files);
    bool waitAll(uint64_t generation, std::chrono::seconds timeout) const;

    FleetSimOptions opts_;
    std::unique_ptr<test::FleetLab> lab_;
    std::vector<policy::SourceText> source_;
    std::vector<std::unique_ptr<SimAgent>> agents_;
    std::string state_root_;
    int next_port_ = 20000;
    double initial_ms_ = 0;
    std::map<std::string, double> initial_etcd_delta_;
};

}  // namespace ztseg::bench
