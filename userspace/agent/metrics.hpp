// Agent metrics: a snapshot of what the agent and datapath know, rendered in
// the Prometheus text exposition format 0.0.4 and served over HTTP.
// Metric names mirror Cilium's with a ztseg_ prefix (docs/design.md#flow-events).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "agent/health.hpp"
#include "datapath/datapath.hpp"

namespace ztseg::agent {

// One policy's rules together (bounded cardinality: one series per policy).
struct PolicyHitTotals {
    uint64_t packets = 0;
    uint64_t bytes = 0;
    uint64_t admitted = 0;
    uint64_t refused = 0;
    uint64_t rules = 0;         // rules of the policy
    uint64_t unused_rules = 0;  // counted rules with no hit since counting began
};
// One rule (only when metrics.per_rule is on: one series per rule).
struct RuleHitSample {
    std::string policy;
    uint32_t rule_id = 0;
    std::string location;  // file:line
    uint64_t packets = 0;
    uint64_t bytes = 0;
};

struct MetricsSnapshot {
    Counters datapath{};  // per hook x reason packet/byte counters, event stats
    uint64_t policy_generation = 0;
    std::map<std::string, uint64_t> map_entries;   // by BPF map name
    std::map<std::string, uint64_t> map_capacity;  // by BPF map name
    std::map<std::string, uint64_t> flow_events_by_sink;
    // e.g. "ringbuf", "rate_limited", "sink_file", "rotated_undelivered".
    // "ringbuf", "rate_limited" and "source_limited" default to
    // datapath.events when not given here.
    std::map<std::string, uint64_t> flow_events_lost_by_stage;
    std::vector<double> apply_durations_seconds;  // one observation per apply
    uint64_t apply_failures = 0;
    std::map<std::string, std::string> attached_interfaces;  // ifname -> "native"/"generic"
    uint64_t workloads = 0;
    ConntrackUsage conntrack{};     // table pressure: created, assured, untracked flows
    uint64_t pending_cgroups = 0;   // cgroups judged by name until ztsegd classifies them
    bool raw_socket_guard = false;  // Datapath::rawSocketGuard()
    std::map<std::string, PolicyHitTotals> policy_hits;  // by policy name
    std::vector<RuleHitSample> rule_hits;                // empty unless per-rule is asked for
    uint64_t rules_uncounted = 0;                        // enforced but not counted (full)
    // Apply with a confirm window (confirm_window.hpp).
    bool confirm_pending = false;
    int64_t confirm_deadline_unix_ms = 0;  // when it rolls back, if pending
    uint64_t confirm_rollbacks = 0;        // automatic rollbacks since start
};

// Upper bounds of ztseg_policy_apply_duration_seconds (+Inf is implicit).
inline constexpr double kApplyDurationBuckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                   0.25,  0.5,    1,     2.5,  5,     10};

// "ingress" for xdp and cgroup-ingress, "egress" for cgroup-egress and sock-*.
std::string_view hookDirection(uint32_t hook);

// Prometheus text format 0.0.4: every family has one # HELP and one # TYPE
// line; families and series come in a fixed order.
std::string renderPrometheus(const MetricsSnapshot& snap);

inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

// Serves GET /metrics (renderPrometheus(source())) and GET /healthz
// (healthJson(health())) on its own thread; any other path is 404. port 0
// picks a free port. Throws Error if it cannot bind. `source` may throw
// NotReady (503) while the daemon starts.
class MetricsServer {
  public:
    struct NotReady : std::runtime_error {
        using std::runtime_error::runtime_error;
    };
    MetricsServer(std::string bind_addr, uint16_t port, std::function<MetricsSnapshot()> source,
                  std::function<Health()> health = nullptr);
    ~MetricsServer();  // stops the server and joins its thread
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    uint16_t port() const { return port_; }
    const std::string& bindAddress() const { return bind_addr_; }

  private:
    struct Impl;
    std::string bind_addr_;
    uint16_t port_ = 0;
    std::unique_ptr<Impl> impl_;
};

}  // namespace ztseg::agent
