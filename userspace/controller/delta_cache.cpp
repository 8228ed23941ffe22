#include "controller/delta_cache.hpp"

#include <spdlog/spdlog.h>

#include "common/error.hpp"
#include "policy/bundle_delta.hpp"
#include "policy/signing.hpp"

namespace ztseg::controller {

DeltaCache::DeltaCache(size_t keep) : keep_(keep) {}

void DeltaCache::remember(uint64_t generation, const std::string& signed_bundle) {
    auto bytes = std::make_shared<const Held>(
        Held{signed_bundle, policy::openEnvelope(signed_bundle).bundle});
    std::lock_guard lock(mu_);
    bundles_[generation] = std::move(bytes);
    while (bundles_.size() > keep_) {
        uint64_t oldest = bundles_.begin()->first;
        bundles_.erase(bundles_.begin());
        std::erase_if(deltas_, [&](const auto& d) {
            return d.first.first == oldest || d.first.second == oldest;
        });
    }
}

std::optional<std::string> DeltaCache::delta(uint64_t base, uint64_t target) {
    std::shared_ptr<const Held> from, to;
    {
        std::lock_guard lock(mu_);
        if (auto it = deltas_.find({base, target}); it != deltas_.end()) {
            return it->second;
        }
        auto b = bundles_.find(base), t = bundles_.find(target);
        if (base == 0 || base >= target || b == bundles_.end() || t == bundles_.end()) {
            return std::nullopt;
        }
        from = b->second;
        to = t->second;
    }
    // Made outside the lock: at 100k rules this takes a while, and pushes to
    // hosts that need other deltas (or full bundles) need not wait.
    std::optional<std::string> signed_delta;
    try {
        std::optional<std::string> d = policy::makeDelta(from->bundle, to->bundle);
        if (d) {
            d = policy::deltaEnvelope(*d, to->signed_bundle);
        }
        if (d && d->size() < to->signed_bundle.size()) {
            signed_delta = std::move(d);
            spdlog::info("delta {} -> {}: {} bytes (full bundle {} bytes)", base, target,
                         signed_delta->size(), to->signed_bundle.size());
        } else {
            spdlog::info("delta {} -> {}: no smaller than the full bundle, hosts get that", base,
                         target);
        }
    } catch (const Error& e) {
        spdlog::warn("delta {} -> {}: {}; hosts get the full bundle", base, target, e.what());
    }
    std::lock_guard lock(mu_);
    deltas_[{base, target}] = signed_delta;
    return signed_delta;
}

}  // namespace ztseg::controller
