#include "controller/auto_confirm.hpp"

#include <spdlog/spdlog.h>

#include <vector>

namespace ztseg::controller {

AutoConfirm::AutoConfirm(std::chrono::milliseconds settle, Links links)
    : settle_(settle), links_(std::move(links)), thread_([this] { run(); }) {}

AutoConfirm::~AutoConfirm() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

void AutoConfirm::onReport(const std::string& host, const v1::Report& r) {
    if (r.has_confirm()) {
        const v1::ConfirmResult& c = r.confirm();
        if (c.confirmed()) {
            links_.event("confirmed", c.generation(), host, "");
        } else {
            spdlog::warn("agent {} refused the confirmation of generation {}: {}", host,
                         c.generation(), c.error());
            links_.event("confirm-refused", c.generation(), host, c.error());
        }
    }
    const v1::StatusReply& st = r.status();
    std::string send_to;
    uint64_t g = st.confirm_pending().generation();
    {
        std::lock_guard lock(mu_);
        if (!st.has_confirm_pending() || st.generation() != g) {
            hosts_.erase(host);  // nothing awaits confirmation (or it rolled back)
            return;
        }
        Window& w = hosts_[host];
        if (w.generation != g) {
            w = Window{g, Clock::now() + settle_, 0, false};
            cv_.notify_all();
            return;
        }
        // The answer to the probe asked after the settle: reachable, and on g.
        if (w.probe_id != 0 && r.request_id() >= w.probe_id && !w.confirmed) {
            w.confirmed = true;
            send_to = host;
        }
    }
    if (!send_to.empty()) {
        bool sent = links_.confirm(send_to, g);
        spdlog::info("agent {} runs generation {} after the settle: {}", send_to, g,
                     sent ? "confirmed" : "confirmation not sent (link gone)");
        links_.event(sent ? "confirm" : "confirm-unsent", g, send_to, "");
    }
}

void AutoConfirm::onDisconnect(const std::string& host) {
    std::lock_guard lock(mu_);
    hosts_.erase(host);
}

void AutoConfirm::run() {
    std::unique_lock lock(mu_);
    while (!stop_) {
        auto next = Clock::time_point::max();
        std::vector<std::string> due;
        const auto now = Clock::now();
        for (auto& [host, w] : hosts_) {
            if (w.probe_id != 0) {
                continue;
            }
            if (w.probe_at <= now) {
                due.push_back(host);
            } else {
                next = std::min(next, w.probe_at);
            }
        }
        if (due.empty()) {
            if (next == Clock::time_point::max()) {
                cv_.wait(lock);
            } else {
                cv_.wait_until(lock, next);
            }
            continue;
        }
        std::vector<std::pair<std::string, uint64_t>> asks;
        for (const auto& host : due) {
            uint64_t id = links_.next_report_id();
            hosts_[host].probe_id = id;
            asks.emplace_back(host, id);
        }
        lock.unlock();
        for (const auto& [host, id] : asks) {
            links_.request_report(host, id);
        }
        lock.lock();
    }
}

}  // namespace ztseg::controller
