// One release's way through the fleet (docs/design.md#staged-rollout): waves
// of hosts, canaries first; every wave waits until each of its hosts has
// settled on the generation, then soaks and checks health (default-deny drop
// growth under a threshold). A failed wave halts the rollout and rolls back
// forward: the stable policy reissued under a newer generation.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "controller.pb.h"
#include "controller/controller.hpp"
#include "controller/fleet.hpp"

namespace ztseg::controller {

// The two things a rollout waits for, host by host. A host has settled on
// generation g when it runs g (or newer), has refused g, or is not connected
// (nothing more will come from it; the checks after the wait say why).
bool settledOn(const Fleet::Hosts& hosts, const std::string& host, uint64_t g);
// It answered the health report request `report_id` (or is not connected).
bool reportedSince(const Fleet::Hosts& hosts, const std::string& host, uint64_t report_id);

class Rollout {
  public:
    Rollout(Controller& c, Release next);
    // Every wave in turn; returns when done, halted (and rolled back), or stopping.
    void run();

  private:
    using Wave = std::vector<std::string>;
    // "" when every host of the wave runs the release; else the first failure.
    // baseline: each acked host's default-deny count, for the health check.
    std::string awaitAcks(size_t i, std::map<std::string, uint64_t>& baseline);
    // "" when every host reported after the soak without excess default-deny drops.
    std::string checkHealth(size_t i, const std::map<std::string, uint64_t>& baseline);
    void finish();
    // Records the failure and rolls back forward; false if there was nothing to go back to.
    bool halt(const std::string& reason, uint32_t wave);
    bool waitSettled(const std::vector<std::string>& hosts, uint64_t g);

    Controller& c_;
    Release next_;
    std::vector<Wave> waves_;
    v1::RolloutStatus status_;
};

}  // namespace ztseg::controller
