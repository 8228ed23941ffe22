// The controller's view of its hosts: who is connected, which generation each
// runs and has acked, its drop counters from the last report. Updated by the
// agent connections (or etcd reports), read by the rollout engine, which can
// wait for a condition over all hosts.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/unix_time.hpp"
#include "controller.pb.h"

namespace ztseg::controller {

struct HostState {
    std::string host;
    bool connected = false;
    std::string peer;
    uint64_t generation = 0;
    uint64_t highest = 0;
    std::string version;  // ztsegd's, from its last report (rolling upgrades)
    std::string commit;
    int64_t last_contact_ms = 0;                  // unix ms
    uint64_t default_deny = 0;                    // packets, summed over hooks
    uint64_t drops = 0;                           // every drop reason
    std::string last_error;                       // last refusal
    uint64_t report_id = 0;                       // newest ReportRequest answered
    v1::ApplyResult last_apply;                   // newest ack
    uint64_t pushed = 0;                          // generation last pushed (0 after a reconnect)
    bool pushed_delta = false;                    // ...as a delta (refused: the full bundle next)
    std::shared_ptr<const v1::RulesReply> rules;  // per-rule hit counts, newest asked for
    uint64_t rules_id = 0;                        // the ReportRequest they answered
};

// Drop counters of a status report: {default-deny packets, all drops}.
std::pair<uint64_t, uint64_t> dropCounts(const v1::StatusReply& st);

class Fleet {
  public:
    using Hosts = std::map<std::string, HostState>;

    void connected(const std::string& host, const std::string& peer, uint64_t generation,
                   uint64_t highest);
    void disconnected(const std::string& host);
    void report(const std::string& host, const v1::Report& r);
    void markPushed(const std::string& host, uint64_t generation, bool delta = false);
    // etcd mode: hosts without a report for `timeout` count as disconnected.
    void expire(std::chrono::milliseconds timeout);

    Hosts snapshot() const;
    // Waits until pred(hosts) holds (re-checked on every change) or the
    // deadline passes; returns pred's last value.
    bool waitUntil(const std::function<bool(const Hosts&)>& pred,
                   std::chrono::steady_clock::time_point deadline) const;
    // Called (without the lock) after every change: the engine's wake-up.
    void onChange(std::function<void()> cb) { on_change_ = std::move(cb); }

  private:
    void changed();
    mutable std::mutex mu_;
    mutable std::condition_variable cv_;
    Hosts hosts_;
    std::function<void()> on_change_;
};

}  // namespace ztseg::controller
