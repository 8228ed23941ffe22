#include "agent/etcd_link.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <string_view>

#include "agent/fleet_report.hpp"
#include "common/error.hpp"
#include "common/etcd_bundle_ref.hpp"
#include "policy/bundle_delta.hpp"
#include "policy/signing.hpp"

namespace ztseg::agent {

EtcdLink::EtcdLink(const AgentConfig& cfg, AgentOps& ops)
    : cfg_(cfg),
      ops_(ops),
      fleet_key_(cfg.etcd.prefix + "/bundle"),
      stable_key_(cfg.etcd.prefix + "/stable"),
      host_prefix_(cfg.etcd.prefix + "/hosts/" + cfg.host_name + "/"),
      host_bundle_key_(host_prefix_ + "bundle"),
      request_key_(host_prefix_ + "report-request"),
      report_key_(cfg.etcd.prefix + "/reports/" + cfg.host_name),
      kv_(cfg.etcd.endpoints),
      fleet_watch_(cfg.etcd.endpoints),
      host_watch_(cfg.etcd.endpoints) {
    threads_.emplace_back([this] { watchLoop(fleet_watch_, stable_key_, false); });
    threads_.emplace_back([this] { watchLoop(host_watch_, host_prefix_, true); });
    threads_.emplace_back([this] {
        auto every = std::chrono::milliseconds(cfg_.etcd.report_interval_ms);
        do {
            try {
                report(0);
            } catch (const Error& e) {
                spdlog::debug("etcd report: {}", e.what());
            }
        } while (sleepFor(every));
    });
    spdlog::info("etcd mode: watching {} and {} on {}", stable_key_, host_prefix_,
                 cfg_.etcd.endpoints.front());
}

EtcdLink::~EtcdLink() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    fleet_watch_.stop();
    host_watch_.stop();
    for (auto& t : threads_) t.join();
}

bool EtcdLink::sleepFor(std::chrono::milliseconds d) {
    std::unique_lock lock(mu_);
    return !cv_.wait_for(lock, d, [&] { return stop_; });
}

// Catch up (an agent that was offline applies the newest bundle), then watch
// from the revision that state reflects; after any failure, start over.
void EtcdLink::watchLoop(EtcdClient& client, const std::string& key, bool prefix) {
    std::string last_error;
    for (;;) {
        try {
            int64_t rev = 0;
            kv_.range(key, &rev);
            sync();
            client.watch(key, prefix, rev + 1, [this](const EtcdKeyValue& kv) { onChange(kv); });
            return;  // stopped
        } catch (const Error& e) {
            if (e.what() != last_error) {
                spdlog::warn("etcd: {} (retrying)", e.what());
                last_error = e.what();
            }
        }
        if (!sleepFor(std::chrono::milliseconds(500)))
            return;
    }
}

void EtcdLink::onChange(const EtcdKeyValue& kv) {
    if (kv.deleted) {
        return;
    }
    if (kv.key == request_key_) {
        uint64_t id = 0;
        auto [rest, ec] = std::from_chars(kv.value.data(), kv.value.data() + kv.value.size(), id);
        report(id, nullptr, std::string_view(rest, kv.value.data() + kv.value.size()) == " rules");
    } else if (kv.key == stable_key_ || kv.key == host_bundle_key_) {
        sync();
    }
}

void EtcdLink::sync() {
    std::lock_guard lock(sync_mu_);
    std::optional<std::string> host;
    if (auto kv = kv_.get(host_bundle_key_)) {
        host = isEtcdBundleRef(kv->value) ? resolve(kv->value) : std::move(kv->value);
    }
    uint64_t stable = 0;
    if (auto kv = kv_.get(stable_key_)) {
        std::from_chars(kv->value.data(), kv->value.data() + kv->value.size(), stable);
    }
    // Newest first: this host's own key (a canary bundle, or a delta to
    // where the fleet is going) unless the fleet moved past it.
    bool host_first = host && policy::claimedGeneration(*host) >= stable;
    if (host_first && tryCandidate(*host)) {
        return;
    }
    // The full stable bundle only when this host is behind it.
    if (stable == 0 || stable > ops_.status().highest_generation()) {
        if (auto kv = kv_.get(fleet_key_); kv && tryCandidate(kv->value)) {
            return;
        }
    }
    if (host && !host_first) {
        tryCandidate(*host);
    }
}

std::optional<std::string> EtcdLink::resolve(const std::string& ref_bytes) {
    // Refused once, refused for good (a reference to a key that later
    // appears is a new reference: the controller writes the key first).
    std::string ref_digest = policy::sha256(ref_bytes);
    if (std::find(tried_.begin(), tried_.end(), ref_digest) != tried_.end()) {
        return std::nullopt;
    }
    EtcdBundleRef ref;
    std::string why;
    try {
        ref = parseEtcdBundleRef(ref_bytes);
    } catch (const Error& e) {
        why = e.what();
    }
    if (why.empty() && ref.generation <= ops_.status().highest_generation()) {
        return std::nullopt;  // older than what this host has: not worth reading
    }
    const std::string expected = etcdGenerationKey(cfg_.etcd.prefix, ref.generation);
    std::optional<EtcdKeyValue> kv;
    if (why.empty() && ref.key != expected) {
        why = "it names key " + ref.key + ", not " + expected;
    }
    if (why.empty()) {
        kv = kv_.get(expected);  // throws on an etcd failure: retried, not refused
        if (!kv) {
            why = "key " + expected + " does not exist";
        } else if (sha256Hex(kv->value) != ref.sha256_hex) {
            why = "key " + expected + " holds bytes with SHA-256 " + sha256Hex(kv->value) +
                  ", not " + ref.sha256_hex;
        } else if (policy::claimedGeneration(kv->value) != ref.generation) {
            why = "key " + expected + " holds generation " +
                  std::to_string(policy::claimedGeneration(kv->value)) + ", not " +
                  std::to_string(ref.generation);
        }
    }
    if (why.empty()) {
        return std::move(kv->value);  // admitted (or refused) as any bundle
    }
    tried_.push_back(ref_digest);
    if (tried_.size() > 8) {
        tried_.erase(tried_.begin());
    }
    spdlog::error("etcd: {} holds a bundle reference this host refuses: {}; enforcement unchanged",
                  host_bundle_key_, why);
    v1::ApplyResult res;
    res.set_generation(ref.generation);
    res.set_error("bundle reference in " + host_bundle_key_ + " refused: " + why);
    report(0, &res);
    return std::nullopt;
}

bool EtcdLink::tryCandidate(const std::string& candidate) {
    uint64_t claimed = policy::claimedGeneration(candidate);
    if (claimed != 0 && claimed <= ops_.status().highest_generation()) {
        return false;  // older than what this host has (no need to refuse it again)
    }
    std::string digest = policy::sha256(candidate);  // only for what may be applied
    if (std::find(tried_.begin(), tried_.end(), digest) != tried_.end()) {
        return false;  // tried (and refused) before
    }
    tried_.push_back(digest);
    if (tried_.size() > 8) {
        tried_.erase(tried_.begin());
    }
    v1::ApplyResult res;
    res.set_generation(claimed);
    try {
        ops_.apply(candidate, 0);  // nothing in etcd mode can confirm a window
        res.set_applied(true);
    } catch (const std::exception& e) {
        res.set_error(e.what());
    }
    report(0, &res);
    return res.applied();
}

void EtcdLink::report(uint64_t request_id, const v1::ApplyResult* apply, bool rules) {
    kv_.put(report_key_, fleetReport(ops_, request_id, apply, rules).SerializeAsString());
}

}  // namespace ztseg::agent
