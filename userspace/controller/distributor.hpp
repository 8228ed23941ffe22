// How the controller reaches its hosts. Direct mode: down each agent's
// Connect stream (AgentSessions). etcd mode: keys under a prefix that the
// agents watch (EtcdDistributor). The rollout engine speaks only this.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "controller.pb.h"

namespace ztseg::controller {

class Distributor {
  public:
    virtual ~Distributor() = default;
    // Sends a signed bundle (or a signed delta) to one host; false if the
    // host cannot be reached now.
    virtual bool push(const std::string& host, uint64_t generation,
                      const std::string& signed_bundle) = 0;
    struct Push {
        std::string host;
        uint64_t generation = 0;
        const std::string* bytes = nullptr;  // the full signed bundle, or a signed delta
        bool delta = false;
    };
    // The same for many hosts at once; per push, whether it was sent. By
    // default one push() after the other; etcd mode batches them.
    virtual std::vector<bool> pushMany(const std::vector<Push>& pushes) {
        std::vector<bool> sent;
        sent.reserve(pushes.size());
        for (const auto& p : pushes) sent.push_back(push(p.host, p.generation, *p.bytes));
        return sent;
    }
    // Asks a host for a fresh report answering `id` (with its per-rule hit
    // counts when `rules`).
    virtual void requestReport(const std::string& host, uint64_t id, bool rules) = 0;
    // The bundle every host should converge to, and the rollout's progress.
    virtual void publishStable(uint64_t generation, const std::string& signed_bundle) = 0;
    virtual void publishRollout(const v1::RolloutStatus& status) = 0;
};

}  // namespace ztseg::controller
