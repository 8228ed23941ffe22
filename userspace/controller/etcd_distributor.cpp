#include "controller/etcd_distributor.hpp"

#include <spdlog/spdlog.h>

#include <charconv>
#include <nlohmann/json.hpp>
#include <string_view>

#include "common/error.hpp"
#include "common/etcd_bundle_ref.hpp"
#include "policy/signing.hpp"

namespace ztseg::controller {

EtcdDistributor::EtcdDistributor(std::vector<std::string> endpoints, std::string prefix,
                                 Fleet& fleet, std::chrono::milliseconds host_timeout)
    : prefix_(std::move(prefix)),
      fleet_(fleet),
      host_timeout_(host_timeout),
      kv_(endpoints),
      watch_(endpoints) {
    watcher_ = std::thread([this] { watchReports(); });
    expirer_ = std::thread([this] {
        std::unique_lock lock(mu_);
        while (!cv_.wait_for(lock, std::chrono::milliseconds(500), [&] { return stop_; })) {
            lock.unlock();
            fleet_.expire(host_timeout_);
            lock.lock();
        }
    });
}

EtcdDistributor::~EtcdDistributor() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    watch_.stop();
    watcher_.join();
    expirer_.join();
}

void EtcdDistributor::watchReports() {
    const std::string reports = prefix_ + "/reports/";
    std::string last_error;
    for (;;) {
        try {
            int64_t rev = 0;
            for (const auto& kv : kv_.range(reports, &rev)) {
                onReport(kv);
            }
            watch_.watch(reports, true, rev + 1, [this](const EtcdKeyValue& kv) { onReport(kv); });
            return;  // stopped
        } catch (const Error& e) {
            if (e.what() != last_error) {
                spdlog::warn("etcd: {} (retrying)", e.what());
                last_error = e.what();
            }
        }
        std::unique_lock lock(mu_);
        if (cv_.wait_for(lock, std::chrono::milliseconds(500), [&] { return stop_; }))
            return;
    }
}

void EtcdDistributor::onReport(const EtcdKeyValue& kv) {
    std::string host = kv.key.substr(prefix_.size() + std::string("/reports/").size());
    v1::Report r;
    if (kv.deleted || host.empty() || !r.ParseFromString(kv.value)) {
        return;
    }
    // A report older than the timeout is history, not a sign of life.
    if (unixMillis() - r.time_unix_ms() > host_timeout_.count()) {
        return;
    }
    fleet_.report(host, r);
}

bool EtcdDistributor::push(const std::string& host, uint64_t generation,
                           const std::string& signed_bundle) {
    return pushMany({{host, generation, &signed_bundle, policy::isSignedDelta(signed_bundle)}})
        .front();
}

std::string EtcdDistributor::publishGeneration(uint64_t generation,
                                               const std::string& signed_bundle) {
    std::lock_guard lock(gen_mu_);
    std::string ref = makeEtcdBundleRef(prefix_, generation, signed_bundle);
    if (auto it = gens_.find(generation); it != gens_.end() && it->second == ref) {
        return ref;
    }
    if (!gens_listed_) {
        // Left by an earlier run of this controller: pruned like ours.
        const std::string dir = prefix_ + "/generations/";
        for (const auto& kv : kv_.range(dir, nullptr, /*keys_only=*/true)) {
            uint64_t g = 0;
            std::string_view n = std::string_view(kv.key).substr(dir.size());
            auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), g);
            if (ec == std::errc() && end == n.data() + n.size()) {
                gens_.emplace(g, "");  // contents unknown: rewritten if pushed again
            }
        }
        gens_listed_ = true;
    }
    kv_.put(etcdGenerationKey(prefix_, generation), signed_bundle);
    gens_[generation] = ref;
    spdlog::info("etcd: {} holds generation {} ({} bytes) for hosts without its base",
                 etcdGenerationKey(prefix_, generation), generation, signed_bundle.size());
    while (gens_.size() > kKeepGenerations) {
        uint64_t oldest = gens_.begin()->first;
        try {
            kv_.remove(etcdGenerationKey(prefix_, oldest));
        } catch (const Error& e) {
            spdlog::warn("etcd: pruning generation {}: {}", oldest, e.what());
            break;  // tried again after the next generation
        }
        gens_.erase(gens_.begin());
    }
    return ref;
}

std::vector<bool> EtcdDistributor::pushMany(const std::vector<Push>& pushes) {
    std::vector<bool> sent(pushes.size(), false);
    std::vector<std::pair<std::string, std::string>> items;
    std::vector<size_t> index;  // items[i] is pushes[index[i]]
    std::map<uint64_t, std::string> refs;
    for (size_t i = 0; i < pushes.size(); ++i) {
        const Push& p = pushes[i];
        std::string value;
        if (p.delta) {
            value = *p.bytes;
        } else {
            auto it = refs.find(p.generation);
            if (it == refs.end()) {
                try {
                    it =
                        refs.emplace(p.generation, publishGeneration(p.generation, *p.bytes)).first;
                } catch (const Error& e) {
                    spdlog::warn("etcd push of generation {}: {}", p.generation, e.what());
                    continue;  // no reference without the key it names
                }
            }
            value = it->second;
        }
        items.emplace_back(prefix_ + "/hosts/" + p.host + "/bundle", std::move(value));
        index.push_back(i);
    }
    std::vector<std::string> errors = kv_.putMany(items);
    std::string first_error;
    size_t failed = 0;
    for (size_t i = 0; i < items.size(); ++i) {
        if (errors[i].empty()) {
            sent[index[i]] = true;
        } else if (failed++ == 0) {
            first_error = errors[i];
        }
    }
    if (failed != 0) {
        spdlog::warn("etcd push to {} of {} hosts failed: {}", failed, items.size(), first_error);
    }
    return sent;
}

void EtcdDistributor::requestReport(const std::string& host, uint64_t id, bool rules) {
    try {
        // "<id>", or "<id> rules" for a report with per-rule hit counts
        kv_.put(prefix_ + "/hosts/" + host + "/report-request",
                std::to_string(id) + (rules ? " rules" : ""));
    } catch (const Error& e) {
        spdlog::warn("etcd report request to {}: {}", host, e.what());
    }
}

void EtcdDistributor::publishStable(uint64_t generation, const std::string& signed_bundle) {
    kv_.put(prefix_ + "/bundle", signed_bundle);
    // Agents watch this small key, not the bundle: a watch event carries the
    // value, and hosts that already run this generation (a delta or a wave
    // brought it) need not receive the full bundle again.
    kv_.put(prefix_ + "/stable", std::to_string(generation));
    spdlog::info("etcd: {}/bundle is generation {}", prefix_, generation);
}

void EtcdDistributor::publishRollout(const v1::RolloutStatus& st) {
    nlohmann::json j{{"generation", st.generation()},
                     {"state", st.state()},
                     {"wave", st.wave()},
                     {"waves", st.waves()},
                     {"reason", st.reason()},
                     {"rollback_generation", st.rollback_generation()}};
    try {
        kv_.put(prefix_ + "/rollout", j.dump());
    } catch (const Error& e) {
        spdlog::warn("etcd rollout state: {}", e.what());
    }
}

}  // namespace ztseg::controller
