#include "controller/fleet.hpp"

namespace ztseg::controller {

std::pair<uint64_t, uint64_t> dropCounts(const v1::StatusReply& st) {
    static const char* const kDropReasons[] = {"unlabeled",    "policy-deny", "default-deny",
                                               "malformed",    "fragment",    "raw-socket",
                                               "unclassified", "martian",     "unproven"};
    uint64_t default_deny = 0, drops = 0;
    for (const auto& c : st.counters()) {
        for (const char* r : kDropReasons) {
            if (c.reason() == r) {
                drops += c.packets();
            }
        }
        if (c.reason() == "default-deny") {
            default_deny += c.packets();
        }
    }
    return {default_deny, drops};
}

void Fleet::connected(const std::string& host, const std::string& peer, uint64_t generation,
                      uint64_t highest) {
    {
        std::lock_guard lock(mu_);
        HostState& h = hosts_[host];
        h.host = host;
        h.connected = true;
        h.peer = peer;
        h.generation = generation;
        h.highest = highest;
        h.last_contact_ms = unixMillis();
        h.pushed = 0;  // whatever was pushed before may not have arrived
    }
    changed();
}

void Fleet::disconnected(const std::string& host) {
    {
        std::lock_guard lock(mu_);
        auto it = hosts_.find(host);
        if (it == hosts_.end())
            return;
        it->second.connected = false;
    }
    changed();
}

void Fleet::report(const std::string& host, const v1::Report& r) {
    {
        std::lock_guard lock(mu_);
        HostState& h = hosts_[host];
        h.host = host;
        if (!h.connected) {
            h.connected = true;  // etcd mode: a report is a sign of life
            h.pushed = 0;
        }
        h.generation = r.status().generation();
        h.version = r.status().version();
        h.commit = r.status().commit();
        h.highest = r.highest_generation();
        h.last_contact_ms = unixMillis();
        std::tie(h.default_deny, h.drops) = dropCounts(r.status());
        h.report_id = std::max(h.report_id, r.request_id());
        if (r.has_rules()) {
            h.rules = std::make_shared<const v1::RulesReply>(r.rules());
            h.rules_id = std::max(h.rules_id, r.request_id());
        }
        if (r.has_apply()) {
            h.last_apply = r.apply();
            if (!r.apply().applied()) {
                h.last_error = r.apply().error();
            }
        }
    }
    changed();
}

void Fleet::markPushed(const std::string& host, uint64_t generation, bool delta) {
    std::lock_guard lock(mu_);
    hosts_[host].pushed = generation;
    hosts_[host].pushed_delta = delta;
}

void Fleet::expire(std::chrono::milliseconds timeout) {
    bool any = false;
    {
        std::lock_guard lock(mu_);
        int64_t now = unixMillis();
        for (auto& [name, h] : hosts_) {
            if (h.connected && now - h.last_contact_ms > timeout.count()) {
                h.connected = false;
                any = true;
            }
        }
    }
    if (any)
        changed();
}

Fleet::Hosts Fleet::snapshot() const {
    std::lock_guard lock(mu_);
    return hosts_;
}

bool Fleet::waitUntil(const std::function<bool(const Hosts&)>& pred,
                      std::chrono::steady_clock::time_point deadline) const {
    std::unique_lock lock(mu_);
    return cv_.wait_until(lock, deadline, [&] { return pred(hosts_); });
}

void Fleet::changed() {
    cv_.notify_all();
    if (on_change_)
        on_change_();
}

}  // namespace ztseg::controller
