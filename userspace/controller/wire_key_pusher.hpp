// Keeps every connected agent's pairwise wire-proof keys current
// (wire_keys.hpp): a host gets its keys when it connects and again at every
// change of the key plan (a next key announced, sending switched, an old key
// retired). Direct mode only: keys travel only over the mutual-TLS streams.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "controller/agent_sessions.hpp"
#include "controller/controller_config.hpp"

namespace ztseg::controller {

class WireKeyPusher {
  public:
    // Workload name -> identity in the policy hosts run (the stable release
    // and, during a rollout, the rolling one).
    using WorkloadIdentities = std::function<std::map<std::string, uint32_t>()>;
    // Reads wire_proof.secret_file (at least 32 bytes; empty setting: proofs
    // off, and hosts are told so). Throws Error if it cannot be read.
    WireKeyPusher(const ControllerConfig& cfg, AgentSessions& sessions,
                  WorkloadIdentities identities);
    ~WireKeyPusher();  // stops the rotation thread
    WireKeyPusher(const WireKeyPusher&) = delete;
    WireKeyPusher& operator=(const WireKeyPusher&) = delete;

    void pushTo(const std::string& host);  // a host that just connected
    // Every connected host, now: the policy (and so the identities) changed.
    // Not with the controller's engine lock held (it reads the releases).
    void pushAll();

  private:
    void run();
    void pushLocked(const std::string& host, int64_t now, const WireFleet& fleet);
    void pushAllLocked(int64_t now);
    WireFleet wireFleet() const;  // addresses from the config, identities from the policy

    const std::string fleet_;
    const WireProofSettings settings_;
    const std::map<std::string, std::vector<std::string>> host_addresses_;
    const std::map<std::string, std::vector<std::string>> host_workloads_;
    const WorkloadIdentities identities_;
    std::string secret_;
    AgentSessions& sessions_;
    std::mutex mu_;  // one push at a time: a host never gets an older plan after a newer one
    std::condition_variable cv_;
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace ztseg::controller
