// Controller: what operators ask of it: the policy in force, per-rule hit
// counts across the fleet, fleet status.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

#include "common/error.hpp"
#include "controller/controller.hpp"
#include "controller/fleet_rules.hpp"
#include "controller/rollout.hpp"
#include "policy/bundle.hpp"

namespace ztseg::controller {

using Clock = std::chrono::steady_clock;

v1::PolicyReply Controller::policy() {
    std::optional<Release> stable;
    {
        std::lock_guard lock(mu_);
        stable = stable_;
    }
    v1::PolicyReply r;
    if (!stable) {
        return r;
    }
    std::string signers;
    for (const auto& sig : policy::openEnvelope(stable->signed_bundle).signatures) {
        signers += (signers.empty() ? "" : ", ") + sig.key_id;
    }
    r.set_generation(stable->generation);
    r.set_bundle(stable->signed_bundle);
    r.set_signer(signers);
    r.set_in_force_since_unix_ms(stable->stable_since_unix_ms);
    return r;
}

v1::RulesReply Controller::rules(std::chrono::milliseconds wait) {
    if (dist_ == nullptr) {
        throw Error("the controller has not started: no hosts to ask");
    }
    uint64_t id;
    {
        std::lock_guard lock(mu_);
        id = ++report_seq_;
    }
    std::vector<std::string> asked;
    for (const auto& [name, h] : fleet_.snapshot()) {
        if (h.connected) {
            dist_->requestReport(name, id, true);
            asked.push_back(name);
        }
    }
    auto answered = [&](const HostState& h) { return h.rules && h.rules_id >= id; };
    fleet_.waitUntil(
        [&](const Fleet::Hosts& hs) {
            return std::all_of(asked.begin(), asked.end(), [&](const std::string& n) {
                auto it = hs.find(n);
                return it == hs.end() || !it->second.connected || answered(it->second);
            });
        },
        Clock::now() + wait);
    std::vector<v1::RulesReply> replies;
    std::vector<std::string> unanswered;
    const Fleet::Hosts hs = fleet_.snapshot();
    for (const std::string& n : asked) {
        auto it = hs.find(n);
        if (it != hs.end() && answered(it->second)) {
            replies.push_back(*it->second.rules);
        } else {
            unanswered.push_back(n);
        }
    }
    v1::RulesReply out = sumRuleHits(replies);
    out.set_host(cfg_.fleet);
    for (const std::string& n : unanswered) {
        out.add_unanswered(n);
    }
    return out;
}

bool Controller::waitHosts(const std::function<bool(const Fleet::Hosts&)>& pred,
                           std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        reconcile();
        {
            std::lock_guard lock(mu_);
            if (stop_)
                return false;
        }
        auto step = std::min(deadline, Clock::now() + std::chrono::milliseconds(100));
        if (fleet_.waitUntil(pred, step))
            return true;
        if (Clock::now() >= deadline)
            return false;
    }
}

v1::FleetStatusReply Controller::status() {
    v1::FleetStatusReply r;
    r.set_fleet(cfg_.fleet);
    r.set_mode(etcd_ ? "etcd" : "direct");
    {
        std::lock_guard lock(mu_);
        if (stable_) {
            r.set_stable_generation(stable_->generation);
            r.set_source_digest(stable_->digest);
        }
        *r.mutable_rollout() = rollout_status_;
        if (r.rollout().state().empty())
            r.mutable_rollout()->set_state("idle");
    }
    for (const auto& [name, h] : fleet_.snapshot()) {
        v1::HostStatus* o = r.add_hosts();
        o->set_host(name);
        o->set_connected(h.connected);
        o->set_generation(h.generation);
        o->set_highest_generation(h.highest);
        o->set_last_contact_unix_ms(h.last_contact_ms);
        o->set_default_deny_drops(h.default_deny);
        o->set_drops(h.drops);
        o->set_last_error(h.last_error);
        o->set_peer(h.peer);
        o->set_version(h.version);
        o->set_commit(h.commit);
        auto it = cfg_.host_labels.find(name);
        if (it != cfg_.host_labels.end()) {
            o->mutable_labels()->insert(it->second.begin(), it->second.end());
        }
    }
    return r;
}

}  // namespace ztseg::controller
