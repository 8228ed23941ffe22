#include "agent/metrics.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>

#include "abi.h"
#include "common/error.hpp"
#include "common/httplib_quiet.hpp"
#include "common/version.hpp"
#include "model/names.hpp"

namespace ztseg::agent {

namespace {

using Labels = std::vector<std::pair<std::string_view, std::string_view>>;

std::string escapeLabelValue(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '"':
                out += "\\\"";
                break;
            case '\n':
                out += "\\n";
                break;
            default:
                out += c;
        }
    }
    return out;
}

std::string formatDouble(double v) {
    if (std::isnan(v)) {
        return "NaN";
    }
    if (std::isinf(v)) {
        return v > 0 ? "+Inf" : "-Inf";
    }
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
    if (ec != std::errc()) {
        throw Error("metrics: cannot format value");
    }
    return std::string(buf, end);
}

class Writer {
  public:
    void family(std::string_view name, std::string_view type, std::string_view help) {
        out_ += "# HELP ";
        out_ += name;
        out_ += ' ';
        out_ += help;  // fixed texts without backslash or newline
        out_ += "\n# TYPE ";
        out_ += name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
    }
    void sample(std::string_view name, const Labels& labels, std::string_view value) {
        out_ += name;
        if (!labels.empty()) {
            out_ += '{';
            bool first = true;
            for (const auto& [k, v] : labels) {
                if (!first) {
                    out_ += ',';
                }
                first = false;
                out_ += k;
                out_ += "=\"";
                out_ += escapeLabelValue(v);
                out_ += '"';
            }
            out_ += '}';
        }
        out_ += ' ';
        out_ += value;
        out_ += '\n';
    }
    void sample(std::string_view name, const Labels& labels, uint64_t value) {
        sample(name, labels, std::to_string(value));
    }
    std::string take() { return std::move(out_); }

  private:
    std::string out_;
};

constexpr std::string_view kDirections[] = {"ingress", "egress"};

}  // namespace

std::string_view hookDirection(uint32_t hook) {
    return hook == ZTSEG_HOOK_XDP || hook == ZTSEG_HOOK_CGROUP_INGRESS ? "ingress" : "egress";
}

namespace {

// Per-policy aggregates always; per-rule series only when asked for.
void writeRuleHits(Writer& w, const MetricsSnapshot& snap) {
    using Field = uint64_t PolicyHitTotals::*;
    const std::tuple<const char*, const char*, Field> kFamilies[] = {
        {"ztseg_policy_hit_packets_total", "Packets decided by the policy's rules.",
         &PolicyHitTotals::packets},
        {"ztseg_policy_hit_bytes_total", "Bytes of packets decided by the policy's rules.",
         &PolicyHitTotals::bytes},
        {"ztseg_policy_admitted_connections_total",
         "New connections the policy's allow rules admitted.", &PolicyHitTotals::admitted},
        {"ztseg_policy_refused_packets_total",
         "Packets of new connections the policy's deny rules refused (or would, in audit).",
         &PolicyHitTotals::refused},
    };
    for (const auto& [name, help, field] : kFamilies) {
        w.family(name, "counter", help);
        for (const auto& [policy, t] : snap.policy_hits) {
            w.sample(name, {{"policy", policy}}, t.*field);
        }
    }
    w.family("ztseg_policy_unused_rules", "gauge",
             "Rules of the policy that no packet has hit since counting began.");
    for (const auto& [policy, t] : snap.policy_hits) {
        w.sample("ztseg_policy_unused_rules", {{"policy", policy}}, t.unused_rules);
    }
    w.family(
        "ztseg_rules_uncounted", "gauge",
        "Rules enforced but not counted: the rule counters are full (datapath.rule_capacity).");
    w.sample("ztseg_rules_uncounted", {}, snap.rules_uncounted);
    if (snap.rule_hits.empty()) {
        return;
    }
    w.family("ztseg_rule_hit_packets_total", "counter", "Packets decided by one rule.");
    for (const RuleHitSample& r : snap.rule_hits) {
        w.sample(
            "ztseg_rule_hit_packets_total",
            {{"policy", r.policy}, {"rule", std::to_string(r.rule_id)}, {"source", r.location}},
            r.packets);
    }
    w.family("ztseg_rule_hit_bytes_total", "counter", "Bytes of packets decided by one rule.");
    for (const RuleHitSample& r : snap.rule_hits) {
        w.sample(
            "ztseg_rule_hit_bytes_total",
            {{"policy", r.policy}, {"rule", std::to_string(r.rule_id)}, {"source", r.location}},
            r.bytes);
    }
}

}  // namespace

std::string renderPrometheus(const MetricsSnapshot& snap) {
    Writer w;
    const Counters& c = snap.datapath;

    w.family("ztseg_drop_count_total", "counter", "Packets dropped by the datapath, by reason.");
    for (uint32_t h = 0; h < ZTSEG_HOOK_MAX; ++h) {
        for (uint32_t r = ZTSEG_REASON_FIRST_DROP; r < ZTSEG_REASON_MAX; ++r) {
            w.sample(
                "ztseg_drop_count_total",
                {{"reason", reasonName(r)}, {"direction", hookDirection(h)}, {"hook", hookName(h)}},
                c.at(h, r).packets);
        }
    }
    w.family("ztseg_drop_bytes_total", "counter", "Bytes dropped by the datapath, by reason.");
    for (uint32_t h = 0; h < ZTSEG_HOOK_MAX; ++h) {
        for (uint32_t r = ZTSEG_REASON_FIRST_DROP; r < ZTSEG_REASON_MAX; ++r) {
            w.sample(
                "ztseg_drop_bytes_total",
                {{"reason", reasonName(r)}, {"direction", hookDirection(h)}, {"hook", hookName(h)}},
                c.at(h, r).bytes);
        }
    }

    w.family("ztseg_forward_count_total", "counter",
             "Packets passed by the datapath (all non-drop reasons), by direction.");
    for (std::string_view dir : kDirections) {
        uint64_t sum = 0;
        for (uint32_t h = 0; h < ZTSEG_HOOK_MAX; ++h) {
            if (hookDirection(h) != dir) {
                continue;
            }
            for (uint32_t r = 0; r < ZTSEG_REASON_MAX; ++r) {
                if (!reasonIsDrop(r)) {
                    sum += c.at(h, r).packets;
                }
            }
        }
        w.sample("ztseg_forward_count_total", {{"direction", dir}}, sum);
    }
    w.family("ztseg_forward_count_by_reason_total", "counter",
             "Packets passed by the datapath, by pass reason and hook.");
    for (uint32_t h = 0; h < ZTSEG_HOOK_MAX; ++h) {
        for (uint32_t r = 0; r < ZTSEG_REASON_MAX; ++r) {
            if (!reasonIsDrop(r)) {
                w.sample("ztseg_forward_count_by_reason_total",
                         {{"reason", reasonName(r)}, {"hook", hookName(h)}}, c.at(h, r).packets);
            }
        }
    }

    w.family("ztseg_flow_events_total", "counter", "Flow events delivered, by sink.");
    for (const auto& [sink, n] : snap.flow_events_by_sink) {
        w.sample("ztseg_flow_events_total", {{"sink", sink}}, n);
    }
    w.family("ztseg_flow_events_lost_total", "counter", "Flow events lost, by pipeline stage.");
    std::map<std::string, uint64_t> lost = snap.flow_events_lost_by_stage;
    lost.try_emplace("ringbuf", c.events[ZTSEG_EVSTAT_LOST_RINGBUF]);
    lost.try_emplace("rate_limited", c.events[ZTSEG_EVSTAT_RATE_LIMITED]);
    lost.try_emplace("source_limited", c.events[ZTSEG_EVSTAT_SOURCE_LIMITED]);
    for (const auto& [stage, n] : lost) {
        w.sample("ztseg_flow_events_lost_total", {{"stage", stage}}, n);
    }
    w.family("ztseg_flow_event_summaries_total", "counter",
             "Summary events: one source's drops beyond its event budget.");
    w.sample("ztseg_flow_event_summaries_total", {}, c.events[ZTSEG_EVSTAT_SUMMARIES]);
    w.family("ztseg_drops_unreported_total", "counter",
             "Drops whose event or summary the full ring buffer lost.");
    w.sample("ztseg_drops_unreported_total", {}, c.events[ZTSEG_EVSTAT_LOST_DROPS]);

    w.family("ztseg_policy_generation", "gauge", "Policy generation active in the datapath.");
    w.sample("ztseg_policy_generation", {}, snap.policy_generation);

    w.family("ztseg_policy_apply_duration_seconds", "histogram",
             "Time taken to apply a policy generation.");
    double sum = 0;
    for (double d : snap.apply_durations_seconds) {
        sum += d;
    }
    for (double le : kApplyDurationBuckets) {
        uint64_t n = 0;
        for (double d : snap.apply_durations_seconds) {
            n += d <= le ? 1 : 0;
        }
        const std::string les = formatDouble(le);
        w.sample("ztseg_policy_apply_duration_seconds_bucket", {{"le", les}}, n);
    }
    const uint64_t count = snap.apply_durations_seconds.size();
    w.sample("ztseg_policy_apply_duration_seconds_bucket", {{"le", "+Inf"}}, count);
    w.sample("ztseg_policy_apply_duration_seconds_sum", {}, formatDouble(sum));
    w.sample("ztseg_policy_apply_duration_seconds_count", {}, count);

    w.family("ztseg_policy_apply_failures_total", "counter",
             "Policy applies that failed (old generation kept).");
    w.sample("ztseg_policy_apply_failures_total", {}, snap.apply_failures);

    w.family("ztseg_confirm_pending", "gauge",
             "1 while an apply with a confirm window awaits confirmation.");
    w.sample("ztseg_confirm_pending", {}, uint64_t{snap.confirm_pending ? 1u : 0u});
    if (snap.confirm_pending) {
        w.family("ztseg_confirm_deadline_timestamp_seconds", "gauge",
                 "When ztsegd rolls back by itself unless the pending apply is confirmed.");
        w.sample("ztseg_confirm_deadline_timestamp_seconds", {},
                 formatDouble(double(snap.confirm_deadline_unix_ms) / 1000));
    }
    w.family("ztseg_confirm_rollbacks_total", "counter",
             "Automatic rollbacks: applies not confirmed within their window.");
    w.sample("ztseg_confirm_rollbacks_total", {}, snap.confirm_rollbacks);

    w.family("ztseg_bpf_map_entries", "gauge", "Entries in a BPF map.");
    for (const auto& [map, n] : snap.map_entries) {
        w.sample("ztseg_bpf_map_entries", {{"map", map}}, n);
    }
    w.family("ztseg_bpf_map_capacity", "gauge", "Maximum entries of a BPF map.");
    for (const auto& [map, n] : snap.map_capacity) {
        w.sample("ztseg_bpf_map_capacity", {{"map", map}}, n);
    }

    w.family("ztseg_xdp_attached", "gauge", "XDP program attached to an interface, by mode.");
    for (const auto& [ifname, mode] : snap.attached_interfaces) {
        w.sample("ztseg_xdp_attached", {{"interface", ifname}, {"mode", mode}}, uint64_t{1});
    }

    w.family("ztseg_workloads", "gauge", "Local workloads managed by the agent.");
    w.sample("ztseg_workloads", {}, snap.workloads);
    w.family("ztseg_pending_cgroups", "gauge",
             "New cgroups judged by their name until the agent has classified them.");
    w.sample("ztseg_pending_cgroups", {}, snap.pending_cgroups);
    w.family("ztseg_conntrack_flows_total", "counter",
             "Flows by conntrack stage: created (new table), assured (moved to the established "
             "table), untracked (peers without identity, never tracked).");
    w.sample("ztseg_conntrack_flows_total", {{"stage", "created"}}, snap.conntrack.created);
    w.sample("ztseg_conntrack_flows_total", {{"stage", "assured"}}, snap.conntrack.assured_total);
    w.sample("ztseg_conntrack_flows_total", {{"stage", "untracked"}}, snap.conntrack.untracked);

    writeRuleHits(w, snap);

    w.family("ztseg_raw_socket_guard", "gauge",
             "1 if raw IP, AF_PACKET and AF_XDP sockets of enforced workloads are refused "
             "(BPF LSM), 0 if they are not confined.");
    w.sample("ztseg_raw_socket_guard", {}, uint64_t{snap.raw_socket_guard ? 1u : 0u});

    w.family("ztseg_build_info", "gauge",
             "Always 1: the ztsegd version and the commit it was built from.");
    w.sample("ztseg_build_info", {{"version", buildVersion()}, {"commit", buildCommit()}},
             uint64_t{1});
    return w.take();
}

struct MetricsServer::Impl {
    httplib::Server server;
    std::thread thread;
    std::atomic<bool> done{false};
};

MetricsServer::MetricsServer(std::string bind_addr, uint16_t port,
                             std::function<MetricsSnapshot()> source,
                             std::function<Health()> health)
    : bind_addr_(std::move(bind_addr)), impl_(std::make_unique<Impl>()) {
    if (!source) {
        throw Error("metrics server: no snapshot source");
    }
    auto& svr = impl_->server;
    svr.Get("/metrics",
            [source = std::move(source)](const httplib::Request&, httplib::Response& res) {
                try {
                    res.set_content(renderPrometheus(source()), kPrometheusContentType);
                } catch (const NotReady& e) {
                    res.status = 503;
                    res.set_content(std::string(e.what()) + "\n", "text/plain; charset=utf-8");
                } catch (const std::exception& e) {
                    spdlog::error("metrics: scrape failed: {}", e.what());
                    res.status = 500;
                    res.set_content(std::string("metrics unavailable: ") + e.what() + "\n",
                                    "text/plain; charset=utf-8");
                }
            });
    if (health) {
        svr.Get("/healthz",
                [health = std::move(health)](const httplib::Request&, httplib::Response& res) {
                    Health h;
                    try {
                        h = health();
                    } catch (const std::exception& e) {
                        h.state = Health::State::Degraded;
                        h.reasons = {std::string("health check failed: ") + e.what()};
                    }
                    res.status = healthHttpStatus(h);
                    res.set_content(healthJson(h), "application/json");
                });
    }
    svr.set_error_handler([](const httplib::Request&, httplib::Response& res) {
        if (res.status == 404) {
            res.set_content("not found\n", "text/plain; charset=utf-8");
        }
    });

    // httplib's default sets SO_REUSEPORT, which would let a second agent
    // share the port silently; SO_REUSEADDR alone still allows a quick restart.
    svr.set_socket_options([](int sock) {
        int yes = 1;
        ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });

    errno = 0;
    int bound = -1;
    if (port == 0) {
        bound = svr.bind_to_any_port(bind_addr_);
    } else if (svr.bind_to_port(bind_addr_, port)) {
        bound = port;
    }
    if (bound <= 0) {
        const int err = errno;
        std::string what =
            "metrics.listen " + bind_addr_ + ":" + std::to_string(port) + ": cannot listen";
        if (err != 0) {
            what += std::string(": ") + std::strerror(err) + " (is another agent using the port?)";
        }
        throw Error(what);
    }
    port_ = static_cast<uint16_t>(bound);

    Impl* impl = impl_.get();
    impl->thread = std::thread([impl] {
        if (!impl->server.listen_after_bind()) {
            spdlog::error("metrics server: accept loop failed");
        }
        impl->done = true;
    });
    // stop() only takes effect once the accept loop runs: wait for it so the
    // destructor can never miss it.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!impl->server.is_running() && !impl->done &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (impl->done) {
        impl->thread.join();
        throw Error("metrics server: accept loop on " + bind_addr_ + ":" + std::to_string(port_) +
                    " stopped at once");
    }
    if (!impl->server.is_running()) {
        // Should never happen; leave the thread a way out and report.
        impl->server.stop();
        impl->thread.detach();
        // Leaked on purpose: the detached thread may still use it.
        static_cast<void>(impl_.release());
        throw Error("metrics server: " + bind_addr_ + ":" + std::to_string(port_) +
                    " did not start");
    }
    spdlog::info("metrics: serving http://{}:{}/metrics", bind_addr_, port_);
}

MetricsServer::~MetricsServer() {
    if (!impl_) {
        return;
    }
    impl_->server.stop();
    if (impl_->thread.joinable()) {
        impl_->thread.join();
    }
}

}  // namespace ztseg::agent
