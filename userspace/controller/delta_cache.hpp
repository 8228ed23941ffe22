// Signed deltas between the releases this controller issued (DESIGN §6): a
// host that reports generation B while the fleet should run G gets the delta
// B -> G when the controller still holds B's bundle, else the full bundle.
// Deltas are made once per (B, G) and kept; bundles of the last few releases
// are kept to make them.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ztseg::controller {

class DeltaCache {
  public:
    // `keep`: how many releases' bundles to hold (each is the full bundle).
    explicit DeltaCache(size_t keep = 3);

    // A release's signed bundle (SignedBundle envelope) from now on serves as
    // a base and a target.
    void remember(uint64_t generation, const std::string& signed_bundle);
    // The delta `base` -> `target` in its envelope (with the target's
    // signatures), or nullopt: `base` unknown, or the change too large for a
    // delta to pay.
    std::optional<std::string> delta(uint64_t base, uint64_t target);

  private:
    size_t keep_;
    std::mutex mu_;
    struct Held {
        std::string signed_bundle, bundle;  // the envelope, and the Bundle bytes in it
    };
    std::map<uint64_t, std::shared_ptr<const Held>> bundles_;
    std::map<std::pair<uint64_t, uint64_t>, std::optional<std::string>> deltas_;
};

}  // namespace ztseg::controller
