// How the controller reaches its hosts. Direct mode: down each agent's
// Connect stream (AgentSessions). etcd mode: keys under a prefix that the
// agents watch (EtcdDistributor). The rollout engine speaks only this.
#pragma once

#include <cstdint>
#include <string>

#include "controller.pb.h"

namespace ztseg::controller {

class Distributor {
  public:
    virtual ~Distributor() = default;
    // Sends a signed bundle to one host; false if the host cannot be reached now.
    virtual bool push(const std::string& host, uint64_t generation,
                      const std::string& signed_bundle) = 0;
    // Asks a host for a fresh report answering `id` (with its per-rule hit
    // counts when `rules`).
    virtual void requestReport(const std::string& host, uint64_t id, bool rules) = 0;
    // The bundle every host should converge to, and the rollout's progress.
    virtual void publishStable(uint64_t generation, const std::string& signed_bundle) = 0;
    virtual void publishRollout(const v1::RolloutStatus& status) = 0;
};

}  // namespace ztseg::controller
