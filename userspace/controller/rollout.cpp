#include "controller/rollout.hpp"

#include <algorithm>
#include <chrono>
#include <optional>
#include <set>

#include "controller/rollout_plan.hpp"

namespace ztseg::controller {
namespace {

using json = nlohmann::json;

json hostList(const std::vector<std::string>& hosts) {
    return json(hosts);
}

const HostState* hostIn(const Fleet::Hosts& hosts, const std::string& host) {
    auto it = hosts.find(host);
    return it == hosts.end() || !it->second.connected ? nullptr : &it->second;
}

bool refused(const HostState& h, uint64_t g) {
    return h.last_apply.generation() == g && !h.last_apply.applied();
}

}  // namespace

bool settledOn(const Fleet::Hosts& hosts, const std::string& host, uint64_t g) {
    const HostState* h = hostIn(hosts, host);
    return h == nullptr || h->generation >= g || refused(*h, g);
}

bool reportedSince(const Fleet::Hosts& hosts, const std::string& host, uint64_t report_id) {
    const HostState* h = hostIn(hosts, host);
    return h == nullptr || h->report_id >= report_id;
}

Rollout::Rollout(Controller& c, Release next) : c_(c), next_(std::move(next)) {
    std::vector<std::string> online;
    for (const auto& [name, h] : c_.fleet_.snapshot()) {
        if (h.connected) {
            online.push_back(name);
        }
    }
    waves_ = planWaves(online, c_.cfg_.host_labels, c_.cfg_.rollout);
}

bool Rollout::waitSettled(const std::vector<std::string>& hosts, uint64_t g) {
    return c_.waitHosts(
        [&](const Fleet::Hosts& hs) {
            return std::all_of(hosts.begin(), hosts.end(),
                               [&](const std::string& n) { return settledOn(hs, n, g); });
        },
        std::chrono::milliseconds(c_.cfg_.rollout.ack_timeout_ms));
}

void Rollout::run() {
    const uint64_t g = next_.generation;
    status_.set_generation(g);
    status_.set_state("rolling");
    status_.set_waves(uint32_t(waves_.size()));
    json plan = json::array();
    for (const auto& w : waves_) {
        plan.push_back(hostList(w));
    }
    c_.event("rollout-start", g, {{"digest", next_.digest}, {"waves", plan}});
    {
        std::lock_guard lock(c_.mu_);
        c_.rolling_ = next_;
        c_.included_.clear();
    }
    c_.releasesChanged();  // its workloads may prove their identities before it arrives
    for (size_t i = 0; i < waves_.size(); ++i) {
        const Wave& wave = waves_[i];
        status_.set_wave(uint32_t(i));
        c_.setRollout(status_);
        c_.event("wave-start", g, {{"wave", i}, {"canary", i == 0}, {"hosts", hostList(wave)}});
        {
            std::lock_guard lock(c_.mu_);
            c_.included_.insert(wave.begin(), wave.end());
        }
        std::map<std::string, uint64_t> baseline;
        std::string failure = awaitAcks(i, baseline);
        if (c_.stopping()) {
            return;  // an interrupted rollout resumes nothing; never a rollback
        }
        if (failure.empty()) {
            failure = checkHealth(i, baseline);
            if (c_.stopping()) {
                return;
            }
        }
        if (!failure.empty()) {
            halt(failure, uint32_t(i));
            return;
        }
        c_.event("wave-done", g, {{"wave", i}});
    }
    finish();
}

// 1. Every host of the wave acks (applies, or refuses with a reason).
std::string Rollout::awaitAcks(size_t i, std::map<std::string, uint64_t>& baseline) {
    const uint64_t g = next_.generation;
    const Wave& wave = waves_[i];
    const auto& rc = c_.cfg_.rollout;
    waitSettled(wave, g);
    if (c_.stopping()) {
        return "";
    }
    auto hs = c_.fleet_.snapshot();
    std::string failure;
    for (const auto& n : wave) {
        const HostState& h = hs[n];
        if (h.generation >= g) {
            c_.event("ack", g, {{"host", n}, {"wave", i}});
            baseline[n] = h.default_deny;
        } else {
            std::string why = !h.connected ? "disconnected before acking"
                              : refused(h, g)
                                  ? "refused: " + h.last_apply.error()
                                  : "no ack within " + std::to_string(rc.ack_timeout_ms) + " ms";
            c_.event("ack-failed", g, {{"host", n}, {"wave", i}, {"reason", why}});
            if (failure.empty()) {
                failure = n + " " + why;
            }
        }
    }
    return failure;
}

// 2. Soak, then a fresh report from each: default-deny growth is the health signal.
std::string Rollout::checkHealth(size_t i, const std::map<std::string, uint64_t>& baseline) {
    const uint64_t g = next_.generation;
    const Wave& wave = waves_[i];
    const auto& rc = c_.cfg_.rollout;
    c_.waitHosts([](const Fleet::Hosts&) { return false; }, std::chrono::milliseconds(rc.soak_ms));
    uint64_t id;
    {
        std::lock_guard lock(c_.mu_);
        id = ++c_.report_seq_;
    }
    for (const auto& n : wave) {
        c_.dist_->requestReport(n, id, false);
    }
    c_.waitHosts(
        [&](const Fleet::Hosts& hs) {
            return std::all_of(wave.begin(), wave.end(),
                               [&](const std::string& n) { return reportedSince(hs, n, id); });
        },
        std::chrono::milliseconds(rc.ack_timeout_ms));
    if (c_.stopping()) {
        return "";
    }
    auto hs = c_.fleet_.snapshot();
    std::string failure;
    for (const auto& n : wave) {
        const HostState& h = hs[n];
        if (h.report_id < id) {
            std::string why = h.connected ? "no health report" : "disconnected during soak";
            c_.event("health-failed", g, {{"host", n}, {"wave", i}, {"reason", why}});
            if (failure.empty()) {
                failure = n + " " + why;
            }
            continue;
        }
        uint64_t base = baseline.count(n) ? baseline.at(n) : 0;
        uint64_t delta = h.default_deny - std::min(h.default_deny, base);
        bool ok = delta <= rc.max_default_deny_increase;
        c_.event(ok ? "health-ok" : "health-failed", g,
                 {{"host", n},
                  {"wave", i},
                  {"default_deny_increase", delta},
                  {"threshold", rc.max_default_deny_increase}});
        if (!ok && failure.empty()) {
            failure = n + ": default-deny drops grew by " + std::to_string(delta) + " during the " +
                      std::to_string(rc.soak_ms) + " ms soak (threshold " +
                      std::to_string(rc.max_default_deny_increase) + ")";
        }
    }
    return failure;
}

void Rollout::finish() {
    const uint64_t g = next_.generation;
    c_.store_->recordCurrent(next_.signed_bundle);
    {
        std::lock_guard lock(c_.mu_);
        c_.stable_ = next_;
        c_.stable_->stable_since_unix_ms = unixMillis();
        c_.rolling_.reset();
        c_.included_.clear();
    }
    c_.releasesChanged();
    c_.dist_->publishStable(g, next_.signed_bundle);
    status_.set_state("done");
    c_.setRollout(status_);
    c_.event("rollout-done", g);
}

bool Rollout::halt(const std::string& reason, uint32_t wave) {
    const Release& failed = next_;
    c_.failed_digest_ = failed.digest;
    v1::RolloutStatus st;
    st.set_generation(failed.generation);
    st.set_state("halted");
    st.set_wave(wave);
    st.set_reason(reason);
    c_.event("halt", failed.generation, {{"wave", wave}, {"reason", reason}});
    std::set<std::string> touched;
    std::optional<Release> back;
    {
        std::lock_guard lock(c_.mu_);
        touched = c_.included_;
        if (c_.stable_) {
            back = *c_.stable_;
        }
    }
    if (!back) {
        // Nothing to go back to: the hosts that took it keep it, nobody else gets it.
        {
            std::lock_guard lock(c_.mu_);
            c_.rolling_.reset();
            c_.included_.clear();
            c_.rollout_status_ = st;
        }
        c_.releasesChanged();
        c_.event("rollback-impossible", failed.generation,
                 {{"reason", "no earlier stable generation"}});
        return false;
    }
    // Roll back forward: the previous policy under a new, higher generation.
    Release rb = c_.reissue(*back, failed.generation + 1);
    c_.store_->recordApplied(rb.generation, rb.signed_bundle);
    {
        std::lock_guard lock(c_.mu_);
        c_.stable_ = rb;
        c_.stable_->stable_since_unix_ms = unixMillis();
        c_.rolling_.reset();
        c_.included_.clear();
    }
    c_.releasesChanged();
    st.set_rollback_generation(rb.generation);
    c_.setRollout(st);
    c_.dist_->publishStable(rb.generation, rb.signed_bundle);
    std::vector<std::string> hosts(touched.begin(), touched.end());
    c_.event(
        "rollback-start", rb.generation,
        {{"undoes", failed.generation}, {"content_of", back->generation}, {"hosts", json(hosts)}});
    const uint64_t g = rb.generation;
    waitSettled(hosts, g);
    auto hs = c_.fleet_.snapshot();
    for (const auto& n : touched) {
        c_.event(hs[n].generation >= g ? "rollback-ack" : "rollback-ack-missing", g, {{"host", n}});
    }
    c_.event("rollback-done", g);
    return true;
}

}  // namespace ztseg::controller
