// A simulated ztsegd for fleet benchmarks: the agent's own fleet links
// (agent::ControllerLink or agent::EtcdLink, mutual TLS with this host's
// certificate) and its own admission (agent::admitBundle: signature, fleet,
// expiry, rollback), but the admitted policy goes into memory instead of the
// kernel. Whatever the controller sends reaches admission through
// AgentOps::apply, exactly as in ztsegd, so new bundle kinds (deltas) are
// exercised without changes here.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/api_server.hpp"
#include "agent/bundle_gate.hpp"
#include "agent/config.hpp"
#include "shared/generation_store.hpp"

namespace ztseg {
class FlowHub;
namespace agent {
class ControllerLink;
class EtcdLink;
}  // namespace agent
}  // namespace ztseg

namespace ztseg::bench {

using SimClock = std::chrono::steady_clock;

struct SimAgentOptions {
    std::string name;       // host name, as in its certificate
    std::string fleet;      // bundles for another fleet are refused
    std::string state_dir;  // rollback protection (GenerationStore); tmpfs is fine
    std::vector<policy::Ed25519Key> trusted_keys;
    TlsConfig tls;                            // this host's certificate, key and the fleet CA
    std::string controller_address;           // host:port: direct mode
    std::string server_name;                  // the controller's DNS name
    std::vector<std::string> etcd_endpoints;  // etcd mode (instead of the controller)
    std::string etcd_prefix;
    uint32_t report_interval_ms = 30'000;  // unsolicited reports (keep them rare in a bench)
};

class SimAgent final : public agent::AgentOps {
  public:
    explicit SimAgent(SimAgentOptions opts);
    ~SimAgent() override;  // disconnects
    SimAgent(const SimAgent&) = delete;
    SimAgent& operator=(const SimAgent&) = delete;

    // Dials the controller or watches etcd (whichever the options name).
    void connect();
    void disconnect();

    // AgentOps: what the links call. apply() admits through agent::admitBundle
    // and keeps a summary of the compiled policy (generation, rules).
    // A confirm window is accepted and never expires: simulated agents have
    // no datapath to return to (confirm() accepts any generation).
    uint64_t apply(const std::string& bundle, uint32_t confirm_within_ms) override;
    uint64_t rollback() override;  // refused: simulated agents only move forward
    uint64_t confirm(uint64_t generation) override { return generation; }
    v1::StatusReply status() override;
    v1::PolicyReply policy() override;
    v1::RulesReply rules() override;
    // Recorded for status (epoch, peers): simulated agents have no datapath.
    void setWireProof(const WireProofConfig& config, uint64_t epoch) override;

    const std::string& name() const { return opts_.name; }
    uint64_t generation() const;
    size_t ruleCount() const;
    // One admitted generation: when its bytes were handed to admission (the
    // link received them), when admission completed, and how long admission
    // itself took (without waiting for an admission slot).
    struct Arrival {
        SimClock::time_point received, admitted;
        double admission_ms = 0;
    };
    std::optional<Arrival> arrival(uint64_t generation) const;  // nullopt: never admitted

    // Simulated agents share this machine's cores: at most `n` admit at a
    // time (default: cores - 1, at least 1), so that the links' gRPC threads
    // keep running (keepalives) while thousands of agents parse a bundle.
    static void setConcurrentAdmissions(int n);
    uint64_t refusals() const;
    std::string lastRefusal() const;
    uint64_t bytesAdmitted() const;  // bundle bytes handed to admission (every attempt)

  private:
    SimAgentOptions opts_;
    agent::AgentConfig cfg_;
    GenerationStore store_;
    mutable std::mutex mu_;
    v1::WireProofStatus wire_proof_;  // under mu_
    uint64_t generation_ = 0;
    size_t rules_ = 0;
    std::string signer_;
    std::map<uint64_t, Arrival> admitted_;
    uint64_t refusals_ = 0;
    std::string last_refusal_;
    uint64_t bytes_ = 0;
    std::unique_ptr<FlowHub> hub_;
    std::unique_ptr<agent::ControllerLink> controller_;
    std::unique_ptr<agent::EtcdLink> etcd_;
};

}  // namespace ztseg::bench
