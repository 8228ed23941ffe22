#include "controller/etcd_distributor.hpp"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "common/error.hpp"

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

bool EtcdDistributor::push(const std::string& host, uint64_t, const std::string& signed_bundle) {
    try {
        kv_.put(prefix_ + "/hosts/" + host + "/bundle", signed_bundle);
        return true;
    } catch (const Error& e) {
        spdlog::warn("etcd push to {}: {}", host, e.what());
        return false;
    }
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
