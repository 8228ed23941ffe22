// Fleet simulation benchmark (issue 16): the real ztseg-controller against N
// simulated agents in this process (bench/sim_agent: real gRPC, mutual TLS,
// the agent's own signature and admission checks, policy applied in memory),
// directly and through a real local etcd. One one-rule change of a synthetic
// policy is pushed the way an operator does (edit source, Reload); reported:
// per-agent latency (p50/p99/max = time to all), bytes, controller CPU and
// RSS, etcd load. Markdown on stdout.
//
// Usage: ztseg_bench_fleet [--smoke] [--agents 100,1000] [--modes controller,etcd]
//                          [--rules 10000]
// --smoke: 20 agents, 100 rules, both modes; exits 1 unless every agent
// admitted the change, nothing was refused and bytes were counted.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <sstream>

#include "fleet_sim.hpp"

using namespace ztseg::bench;

namespace {

std::vector<std::string> splitList(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    for (std::string item; std::getline(in, item, ',');) out.push_back(item);
    return out;
}

double metric(const PushResult& r, const char* name) {
    auto it = r.etcd_delta.find(name);
    return it == r.etcd_delta.end() ? -1 : it->second;
}

std::string count(double v) {
    return v < 0 ? "n/a" : std::to_string(int64_t(v));
}

struct Row {
    FleetMode mode;
    int agents;
    PushResult r;
    double initial_ms;
    double sim_cpu_s;  // this process (the simulated agents) during the push
};

void printRow(const Row& row, int rules) {
    const PushResult& r = row.r;
    double mib = 1024.0 * 1024.0;
    std::printf(
        "| %s | %d | %d | %d/%d | %.0f | %.0f | %.0f | %.0f | %.0f | %.2f | %.1f | %.2f | %.2f | "
        "%.0f / %.0f | %.0f |",
        modeName(row.mode), row.agents, rules, r.reached, r.agents, r.reload_ms, r.percentile(50),
        r.percentile(99), r.time_to_all_ms, row.initial_ms,
        double(row.mode == FleetMode::Controller ? r.wire_bytes : r.admitted_bytes) / mib,
        double(r.admitted_bytes) / double(std::max(r.reached, 1)) / 1024,
        r.controller_after.cpu_s - r.controller_before.cpu_s, row.sim_cpu_s,
        r.controller_after.rss_mib, r.controller_after.peak_mib, double(r.refusals));
    if (row.mode == FleetMode::Etcd) {
        std::printf(" %s | %s | %.1f | %.0f |\n", count(metric(r, "etcd_mvcc_put_total")).c_str(),
                    count(metric(r, "etcd_debugging_mvcc_events_total")).c_str(),
                    metric(r, "etcd_network_client_grpc_sent_bytes_total") / mib,
                    r.etcd_after.rss_mib);
    } else {
        std::printf(" – | – | – | – |\n");
    }
    std::fflush(stdout);
}

// Linear in the number of agents from the two largest measured sizes.
void printExtrapolation(const std::vector<Row>& rows, FleetMode mode, int target) {
    const Row* a = nullptr;
    const Row* b = nullptr;
    for (const auto& row : rows) {
        if (row.mode != mode || row.r.reached != row.r.agents)
            continue;
        a = b;
        b = &row;
    }
    if (a == nullptr || b == nullptr || b->agents >= target)
        return;
    auto at = [&](double ya, double yb) {
        return ya + (yb - ya) * double(target - a->agents) / double(b->agents - a->agents);
    };
    double bytes_a = double(mode == FleetMode::Controller ? a->r.wire_bytes : a->r.admitted_bytes);
    double bytes_b = double(mode == FleetMode::Controller ? b->r.wire_bytes : b->r.admitted_bytes);
    std::printf(
        "- %s mode, %d agents (**extrapolated**, linear from %d and %d agents, not measured): "
        "time to all ≈ %.0f ms, bytes ≈ %.0f MiB, controller CPU ≈ %.1f s\n",
        modeName(mode), target, a->agents, b->agents, at(a->r.time_to_all_ms, b->r.time_to_all_ms),
        at(bytes_a, bytes_b) / (1024.0 * 1024.0),
        at(a->r.controller_after.cpu_s - a->r.controller_before.cpu_s,
           b->r.controller_after.cpu_s - b->r.controller_before.cpu_s));
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<int> sizes = {100, 1'000};
    std::vector<FleetMode> modes = {FleetMode::Controller, FleetMode::Etcd};
    int rules = 10'000;
    bool smoke = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--smoke") {
            smoke = true;
            sizes = {20};
            rules = 100;
        } else if (a == "--agents" && i + 1 < argc) {
            sizes.clear();
            for (const auto& s : splitList(argv[++i])) sizes.push_back(std::stoi(s));
        } else if (a == "--modes" && i + 1 < argc) {
            modes.clear();
            for (const auto& s : splitList(argv[++i])) {
                modes.push_back(s == "etcd" ? FleetMode::Etcd : FleetMode::Controller);
            }
        } else if (a == "--rules" && i + 1 < argc) {
            rules = std::stoi(argv[++i]);
        } else {
            std::cerr << "usage: ztseg_bench_fleet [--smoke] [--agents 100,1000] "
                         "[--modes controller,etcd] [--rules 10000]\n";
            return 2;
        }
    }
    spdlog::set_level(spdlog::level::warn);
    std::printf(
        "| mode | agents | rules | reached | Reload RPC ms | p50 ms | p99 ms | time to all ms | "
        "first full push ms | MiB to agents | KiB admitted per agent | controller CPU s | "
        "agents' CPU s | controller RSS / peak MiB | refused | etcd puts | etcd watch events | "
        "etcd sent MiB | etcd RSS MiB |\n");
    std::printf(
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        "---:|---:|---:|\n");
    std::vector<Row> rows;
    bool ok = true;
    for (FleetMode mode : modes) {
        for (int n : sizes) {
            try {
                FleetSimOptions o;
                o.agents = n;
                o.mode = mode;
                o.rules = rules;
                FleetSim sim(o);
                double cpu_before = procStats(::getpid()).cpu_s;
                PushResult r = sim.pushOneRuleChange();
                double sim_cpu = procStats(::getpid()).cpu_s - cpu_before;
                rows.push_back({mode, n, r, sim.initialConvergeMs(), sim_cpu});
                printRow(rows.back(), rules);
                bool bytes_counted =
                    (mode == FleetMode::Controller ? r.wire_bytes : r.admitted_bytes) > 0;
                if (r.reached != r.agents || r.refusals != 0 || !bytes_counted) {
                    ok = false;
                }
            } catch (const std::exception& e) {
                std::printf("| %s | %d | %d | failed: %s |\n", modeName(mode), n, rules, e.what());
                ok = false;
            }
        }
    }
    std::printf("\n");
    for (FleetMode mode : modes) printExtrapolation(rows, mode, 10'000);
    return smoke && !ok ? 1 : 0;
}
