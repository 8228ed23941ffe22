// Waits for an RCU grace period in the background. After the active slot is
// flipped, programs that started before the flip may still read the old slot;
// once a grace period has passed none can, and the old slot may be rewritten.
// Updating an array-of-maps entry makes the kernel wait for exactly that
// (synchronize_rcu, ~13 ms here), so a private one-entry outer map serves as
// the trigger: the flip itself stays a single 8-byte write and returns at
// once, and only the next writer of the old slot waits (usually not at all).
#pragma once

#include <atomic>
#include <memory>
#include <thread>

#include "datapath/bpf_map.hpp"

namespace ztseg {

class GracePeriod {
  public:
    GracePeriod();
    GracePeriod(const GracePeriod&) = delete;
    GracePeriod& operator=(const GracePeriod&) = delete;
    ~GracePeriod();

    // Begin waiting for a grace period that starts now.
    void start();
    // Block until the last started grace period has ended. Throws Error if
    // the kernel refused the trigger (then no grace period is guaranteed).
    void wait();

  private:
    BpfMap outer_, inner_;
    std::thread waiter_;
    std::shared_ptr<std::atomic<int>> error_ = std::make_shared<std::atomic<int>>(0);
};

}  // namespace ztseg
