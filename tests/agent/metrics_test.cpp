#include "agent/metrics.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "abi.h"
#include "common/error.hpp"
#include "common/httplib_quiet.hpp"

namespace ztseg::agent {
namespace {

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) {
        out.push_back(l);
    }
    return out;
}

bool hasLine(const std::string& text, const std::string& line) {
    for (const auto& l : lines(text)) {
        if (l == line) {
            return true;
        }
    }
    return false;
}

// Value of the one sample line starting with `series ` (name plus labels).
std::string valueOf(const std::string& text, const std::string& series) {
    std::string found;
    int n = 0;
    for (const auto& l : lines(text)) {
        if (l.rfind(series + " ", 0) == 0) {
            found = l.substr(series.size() + 1);
            ++n;
        }
    }
    EXPECT_EQ(n, 1) << series;
    return found;
}

MetricsSnapshot sampleSnapshot() {
    MetricsSnapshot s;
    auto& c = s.datapath.by_hook;
    c[ZTSEG_HOOK_XDP][ZTSEG_REASON_DROP_DEFAULT_DENY] = {7, 700};
    c[ZTSEG_HOOK_SOCK_CONNECT][ZTSEG_REASON_DROP_POLICY_DENY] = {3, 0};
    c[ZTSEG_HOOK_CGROUP_EGRESS][ZTSEG_REASON_DROP_UNLABELED] = {2, 128};
    c[ZTSEG_HOOK_XDP][ZTSEG_REASON_ALLOW_POLICY] = {10, 1000};
    c[ZTSEG_HOOK_CGROUP_INGRESS][ZTSEG_REASON_ALLOW_CONNTRACK] = {5, 500};
    c[ZTSEG_HOOK_CGROUP_EGRESS][ZTSEG_REASON_PASS_NO_ENDPOINT] = {2, 200};
    c[ZTSEG_HOOK_SOCK_SENDMSG][ZTSEG_REASON_AUDIT] = {1, 64};
    s.datapath.events[ZTSEG_EVSTAT_EMITTED] = 50;
    s.datapath.events[ZTSEG_EVSTAT_LOST_RINGBUF] = 9;
    s.datapath.events[ZTSEG_EVSTAT_RATE_LIMITED] = 11;
    s.datapath.events[ZTSEG_EVSTAT_SOURCE_LIMITED] = 7;
    s.datapath.events[ZTSEG_EVSTAT_SUMMARIES] = 2;
    s.datapath.events[ZTSEG_EVSTAT_LOST_DROPS] = 5;
    s.policy_generation = 42;
    s.map_entries = {{"ztseg_ct", 120}, {"ztseg_policy", 17}};
    s.map_capacity = {{"ztseg_ct", 65536}, {"ztseg_policy", 16384}};
    s.flow_events_by_sink = {{"file", 40}, {"stdout", 38}};
    s.flow_events_lost_by_stage = {{"sink_file", 4}};
    s.conntrack.created = 900;
    s.conntrack.assured_total = 12;
    s.conntrack.untracked = 77;
    s.pending_cgroups = 2;
    s.apply_durations_seconds = {0.0005, 0.003, 0.2, 0.2, 20};
    s.apply_failures = 2;
    s.attached_interfaces = {{"eth0", "native"}, {"veth1", "generic"}};
    s.workloads = 3;
    s.raw_socket_guard = true;
    s.policy_hits["db"] = {100, 6400, 3, 2, 2, 1};
    s.policy_hits["web"] = {0, 0, 0, 0, 1, 1};
    return s;
}

TEST(MetricsRender, DropSeriesExactLines) {
    const std::string t = renderPrometheus(sampleSnapshot());
    EXPECT_TRUE(
        hasLine(t, "# HELP ztseg_drop_count_total Packets dropped by the datapath, by reason."));
    EXPECT_TRUE(hasLine(t, "# TYPE ztseg_drop_count_total counter"));
    EXPECT_TRUE(hasLine(
        t, R"(ztseg_drop_count_total{reason="default-deny",direction="ingress",hook="xdp"} 7)"));
    EXPECT_TRUE(hasLine(
        t, R"(ztseg_drop_bytes_total{reason="default-deny",direction="ingress",hook="xdp"} 700)"));
    EXPECT_TRUE(hasLine(
        t,
        R"(ztseg_drop_count_total{reason="policy-deny",direction="egress",hook="sock-connect"} 3)"));
    EXPECT_TRUE(hasLine(
        t,
        R"(ztseg_drop_count_total{reason="unlabeled",direction="egress",hook="cgroup-egress"} 2)"));
    // Known combinations are exported even at zero.
    EXPECT_TRUE(hasLine(
        t,
        R"(ztseg_drop_count_total{reason="malformed",direction="ingress",hook="cgroup-ingress"} 0)"));
    // Pass reasons never appear as drops.
    EXPECT_EQ(t.find(R"(ztseg_drop_count_total{reason="allow-policy")"), std::string::npos);
    EXPECT_EQ(t.find(R"(ztseg_drop_count_total{reason="audit")"), std::string::npos);
}

TEST(MetricsRender, ForwardSumsPassReasonsByDirection) {
    const std::string t = renderPrometheus(sampleSnapshot());
    EXPECT_TRUE(hasLine(t, R"(ztseg_forward_count_total{direction="ingress"} 15)"));
    EXPECT_TRUE(hasLine(t, R"(ztseg_forward_count_total{direction="egress"} 3)"));
    EXPECT_TRUE(
        hasLine(t, R"(ztseg_forward_count_by_reason_total{reason="allow-policy",hook="xdp"} 10)"));
    EXPECT_TRUE(
        hasLine(t, R"(ztseg_forward_count_by_reason_total{reason="audit",hook="sock-sendmsg"} 1)"));
    EXPECT_EQ(t.find(R"(ztseg_forward_count_by_reason_total{reason="default-deny")"),
              std::string::npos);
}

TEST(MetricsRender, GaugesAndEventCounters) {
    const std::string t = renderPrometheus(sampleSnapshot());
    EXPECT_TRUE(hasLine(t, "# TYPE ztseg_policy_generation gauge"));
    EXPECT_TRUE(hasLine(t, "ztseg_policy_generation 42"));
    EXPECT_TRUE(hasLine(t, "ztseg_workloads 3"));
    EXPECT_TRUE(hasLine(t, "ztseg_pending_cgroups 2"));
    EXPECT_TRUE(hasLine(t, R"(ztseg_conntrack_flows_total{stage="created"} 900)"));
    EXPECT_TRUE(hasLine(t, R"(ztseg_conntrack_flows_total{stage="assured"} 12)"));
    EXPECT_TRUE(hasLine(t, R"(ztseg_conntrack_flows_total{stage="untracked"} 77)"));
    EXPECT_TRUE(hasLine(t, "ztseg_raw_socket_guard 1"));
    MetricsSnapshot unconfined = sampleSnapshot();
    unconfined.raw_socket_guard = false;
    EXPECT_TRUE(hasLine(renderPrometheus(unconfined), "ztseg_raw_socket_guard 0"));
    EXPECT_TRUE(hasLine(t, "ztseg_policy_apply_failures_total 2"));
    EXPECT_TRUE(hasLine(t, R"(ztseg_bpf_map_entries{map="ztseg_ct"} 120)"));
    EXPECT_TRUE(hasLine(t, R"(ztseg_bpf_map_capacity{map="ztseg_policy"} 16384)"));
    EXPECT_TRUE(hasLine(t, R"(ztseg_xdp_attached{interface="eth0",mode="native"} 1)"));
    EXPECT_TRUE(hasLine(t, R"(ztseg_xdp_attached{interface="veth1",mode="generic"} 1)"));
    EXPECT_TRUE(hasLine(t, R"(ztseg_flow_events_total{sink="file"} 40)"));
    EXPECT_TRUE(hasLine(t, R"(ztseg_flow_events_lost_total{stage="sink_file"} 4)"));
    // Datapath event stats fill the kernel-side stages ...
    EXPECT_TRUE(hasLine(t, R"(ztseg_flow_events_lost_total{stage="ringbuf"} 9)"));
    EXPECT_TRUE(hasLine(t, R"(ztseg_flow_events_lost_total{stage="rate_limited"} 11)"));
    EXPECT_TRUE(hasLine(t, R"(ztseg_flow_events_lost_total{stage="source_limited"} 7)"));
    EXPECT_TRUE(hasLine(t, "ztseg_flow_event_summaries_total 2"));
    EXPECT_TRUE(hasLine(t, "ztseg_drops_unreported_total 5"));
    // ... unless the snapshot names them itself.
    MetricsSnapshot s = sampleSnapshot();
    s.flow_events_lost_by_stage["ringbuf"] = 100;
    const std::string t2 = renderPrometheus(s);
    EXPECT_TRUE(hasLine(t2, R"(ztseg_flow_events_lost_total{stage="ringbuf"} 100)"));
    EXPECT_EQ(valueOf(t2, R"(ztseg_flow_events_lost_total{stage="ringbuf"})"), "100");
}

TEST(MetricsRender, HelpAndTypeOncePerFamilyBeforeSamples) {
    const std::string t = renderPrometheus(sampleSnapshot());
    std::map<std::string, int> help, type;
    std::map<std::string, std::string> types;
    std::string current;
    for (const auto& l : lines(t)) {
        if (l.rfind("# HELP ", 0) == 0) {
            const std::string name = l.substr(7, l.find(' ', 7) - 7);
            ++help[name];
            current = name;
            continue;
        }
        if (l.rfind("# TYPE ", 0) == 0) {
            const std::string name = l.substr(7, l.find(' ', 7) - 7);
            ++type[name];
            types[name] = l.substr(l.find(' ', 7) + 1);
            EXPECT_EQ(name, current) << "TYPE must follow HELP of the same family";
            continue;
        }
        const std::string name = l.substr(0, l.find_first_of("{ "));
        std::string family = name;
        if (types[current] == "histogram") {
            for (const char* suffix : {"_bucket", "_sum", "_count"}) {
                const std::string s = suffix;
                if (name.size() > s.size() && name.ends_with(s)) {
                    family = name.substr(0, name.size() - s.size());
                }
            }
        }
        EXPECT_EQ(family, current) << l;
    }
    const std::vector<std::string> expected = {
        "ztseg_drop_count_total",
        "ztseg_drop_bytes_total",
        "ztseg_forward_count_total",
        "ztseg_forward_count_by_reason_total",
        "ztseg_flow_events_total",
        "ztseg_flow_events_lost_total",
        "ztseg_flow_event_summaries_total",
        "ztseg_drops_unreported_total",
        "ztseg_policy_generation",
        "ztseg_policy_apply_duration_seconds",
        "ztseg_policy_apply_failures_total",
        "ztseg_confirm_pending",
        "ztseg_confirm_rollbacks_total",
        "ztseg_bpf_map_entries",
        "ztseg_bpf_map_capacity",
        "ztseg_xdp_attached",
        "ztseg_workloads",
        "ztseg_pending_cgroups",
        "ztseg_conntrack_flows_total",
        "ztseg_policy_hit_packets_total",
        "ztseg_policy_hit_bytes_total",
        "ztseg_policy_admitted_connections_total",
        "ztseg_policy_refused_packets_total",
        "ztseg_policy_unused_rules",
        "ztseg_rules_uncounted",
        "ztseg_raw_socket_guard",
        "ztseg_build_info",
    };
    EXPECT_EQ(help.size(), expected.size());
    EXPECT_EQ(type.size(), expected.size());
    for (const auto& f : expected) {
        EXPECT_EQ(help[f], 1) << f;
        EXPECT_EQ(type[f], 1) << f;
    }
    EXPECT_EQ(types["ztseg_policy_apply_duration_seconds"], "histogram");
    EXPECT_EQ(types["ztseg_bpf_map_entries"], "gauge");
    EXPECT_EQ(types["ztseg_flow_events_lost_total"], "counter");
}

TEST(MetricsRender, RuleHitsPerPolicyAlwaysPerRuleOnlyWhenAsked) {
    MetricsSnapshot snap = sampleSnapshot();
    std::string t = renderPrometheus(snap);
    EXPECT_TRUE(hasLine(t, R"(ztseg_policy_hit_packets_total{policy="db"} 100)")) << t;
    EXPECT_TRUE(hasLine(t, R"(ztseg_policy_hit_bytes_total{policy="db"} 6400)"));
    EXPECT_TRUE(hasLine(t, R"(ztseg_policy_admitted_connections_total{policy="db"} 3)"));
    EXPECT_TRUE(hasLine(t, R"(ztseg_policy_refused_packets_total{policy="db"} 2)"));
    EXPECT_TRUE(hasLine(t, R"(ztseg_policy_unused_rules{policy="web"} 1)"));
    EXPECT_TRUE(hasLine(t, "ztseg_rules_uncounted 0"));
    EXPECT_EQ(t.find("ztseg_rule_hit_"), std::string::npos) << "no per-rule series by default";
    snap.rule_hits.push_back({"db", 4, "three-tier.yaml:46", 90, 5760});
    snap.rules_uncounted = 7;
    t = renderPrometheus(snap);
    EXPECT_TRUE(hasLine(
        t, R"(ztseg_rule_hit_packets_total{policy="db",rule="4",source="three-tier.yaml:46"} 90)"))
        << t;
    EXPECT_TRUE(hasLine(
        t, R"(ztseg_rule_hit_bytes_total{policy="db",rule="4",source="three-tier.yaml:46"} 5760)"));
    EXPECT_TRUE(hasLine(t, "ztseg_rules_uncounted 7"));
}

TEST(MetricsRender, HistogramBucketsCumulative) {
    const std::string t = renderPrometheus(sampleSnapshot());
    const std::string b = "ztseg_policy_apply_duration_seconds_bucket";
    EXPECT_TRUE(hasLine(t, b + R"({le="0.001"} 1)"));
    EXPECT_TRUE(hasLine(t, b + R"({le="0.005"} 2)"));
    EXPECT_TRUE(hasLine(t, b + R"({le="0.1"} 2)"));
    EXPECT_TRUE(hasLine(t, b + R"({le="0.25"} 4)"));
    EXPECT_TRUE(hasLine(t, b + R"({le="10"} 4)"));
    EXPECT_TRUE(hasLine(t, b + R"({le="+Inf"} 5)"));
    EXPECT_TRUE(hasLine(t, "ztseg_policy_apply_duration_seconds_count 5"));
    EXPECT_NEAR(std::strtod(valueOf(t, "ztseg_policy_apply_duration_seconds_sum").c_str(), nullptr),
                20.4035, 1e-9);

    // Every bucket in order, non-decreasing, ending at +Inf == _count.
    std::regex re(R"re(^ztseg_policy_apply_duration_seconds_bucket\{le="([^"]+)"\} (\d+)$)re");
    std::vector<std::string> les;
    uint64_t prev = 0, last = 0;
    for (const auto& l : lines(t)) {
        std::smatch m;
        if (std::regex_match(l, m, re)) {
            les.push_back(m[1]);
            last = std::stoull(m[2]);
            EXPECT_GE(last, prev) << l;
            prev = last;
        }
    }
    ASSERT_EQ(les.size(), std::size(kApplyDurationBuckets) + 1);
    EXPECT_EQ(les.front(), "0.001");
    EXPECT_EQ(les.back(), "+Inf");
    EXPECT_EQ(last, 5u);

    // No observations: all zero, still well-formed.
    const std::string e = renderPrometheus(MetricsSnapshot{});
    EXPECT_TRUE(hasLine(e, b + R"({le="+Inf"} 0)"));
    EXPECT_TRUE(hasLine(e, "ztseg_policy_apply_duration_seconds_sum 0"));
    EXPECT_TRUE(hasLine(e, "ztseg_policy_apply_duration_seconds_count 0"));
}

TEST(MetricsRender, LabelValuesEscaped) {
    MetricsSnapshot s;
    s.attached_interfaces = {{"a\"b\\c\nd", "native"}};
    s.flow_events_by_sink = {{"quote\"", 1}};
    const std::string t = renderPrometheus(s);
    EXPECT_TRUE(hasLine(t, R"(ztseg_xdp_attached{interface="a\"b\\c\nd",mode="native"} 1)")) << t;
    EXPECT_TRUE(hasLine(t, R"(ztseg_flow_events_total{sink="quote\""} 1)")) << t;
}

TEST(MetricsRender, EveryLineParses) {
    const std::regex sample(R"re(^[a-zA-Z_:][a-zA-Z0-9_:]*)re"
                            R"re((\{[a-zA-Z_][a-zA-Z0-9_]*="(\\[\\"n]|[^"\\\n])*")re"
                            R"re((,[a-zA-Z_][a-zA-Z0-9_]*="(\\[\\"n]|[^"\\\n])*")*\})?)re"
                            R"re( (-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|[-+]Inf|NaN)$)re");
    const std::regex comment(R"(^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$)");
    MetricsSnapshot odd = sampleSnapshot();
    odd.attached_interfaces["we\"ird\\if\n"] = "generic";
    odd.map_entries["m,a=p{}"] = 1;
    for (const MetricsSnapshot& s : {sampleSnapshot(), MetricsSnapshot{}, odd}) {
        const std::string t = renderPrometheus(s);
        ASSERT_FALSE(t.empty());
        EXPECT_EQ(t.back(), '\n');
        for (const auto& l : lines(t)) {
            if (l.starts_with("#")) {
                EXPECT_TRUE(std::regex_match(l, comment)) << l;
            } else {
                EXPECT_TRUE(std::regex_match(l, sample)) << l;
            }
        }
    }
}

TEST(MetricsRender, Deterministic) {
    EXPECT_EQ(renderPrometheus(sampleSnapshot()), renderPrometheus(sampleSnapshot()));
}

TEST(MetricsServer, ScrapeOverLoopback) {
    std::atomic<int> calls{0};
    MetricsServer srv("127.0.0.1", 0, [&] {
        ++calls;
        return sampleSnapshot();
    });
    ASSERT_NE(srv.port(), 0);
    httplib::Client cli("127.0.0.1", srv.port());
    auto res = cli.Get("/metrics");
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_EQ(res->body, renderPrometheus(sampleSnapshot()));
    EXPECT_EQ(calls.load(), 1);

    auto other = cli.Get("/other");
    ASSERT_TRUE(other);
    EXPECT_EQ(other->status, 404);
    auto root = cli.Get("/");
    ASSERT_TRUE(root);
    EXPECT_EQ(root->status, 404);
    EXPECT_EQ(calls.load(), 1);
}

TEST(MetricsServer, PortZeroPicksDistinctFreePorts) {
    auto src = [] { return MetricsSnapshot{}; };
    MetricsServer a("127.0.0.1", 0, src);
    MetricsServer b("127.0.0.1", 0, src);
    EXPECT_NE(a.port(), 0);
    EXPECT_NE(b.port(), 0);
    EXPECT_NE(a.port(), b.port());
    for (uint16_t p : {a.port(), b.port()}) {
        httplib::Client cli("127.0.0.1", p);
        auto res = cli.Get("/metrics");
        ASSERT_TRUE(res);
        EXPECT_EQ(res->status, 200);
    }
}

TEST(MetricsServer, BindConflictThrowsNamingAddressAndPort) {
    auto src = [] { return MetricsSnapshot{}; };
    MetricsServer a("127.0.0.1", 0, src);
    const std::string where = "127.0.0.1:" + std::to_string(a.port());
    try {
        MetricsServer b("127.0.0.1", a.port(), src);
        FAIL() << "second bind to " << where << " succeeded";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(where), std::string::npos) << e.what();
    }
    EXPECT_THROW(MetricsServer("no.such.host.invalid", 9, src), Error);
}

TEST(MetricsServer, SourceFailureIs500) {
    MetricsServer srv("127.0.0.1", 0, []() -> MetricsSnapshot { throw Error("datapath gone"); });
    httplib::Client cli("127.0.0.1", srv.port());
    auto res = cli.Get("/metrics");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 500);
    EXPECT_NE(res->body.find("datapath gone"), std::string::npos);
}

TEST(MetricsServer, DestructorStopsAndFreesPort) {
    uint16_t port = 0;
    for (int i = 0; i < 20; ++i) {  // start/stop back to back must never hang
        MetricsServer srv("127.0.0.1", 0, [] { return MetricsSnapshot{}; });
        port = srv.port();
    }
    httplib::Client cli("127.0.0.1", port);
    cli.set_connection_timeout(1, 0);
    EXPECT_FALSE(cli.Get("/metrics"));
    // The port can be bound again right away.
    MetricsServer again("127.0.0.1", port, [] { return MetricsSnapshot{}; });
    EXPECT_EQ(again.port(), port);
}

}  // namespace
}  // namespace ztseg::agent
