// Fleet simulation benchmark (issue 16): the real ztseg-controller against N
// simulated agents in this process (bench/sim_agent: real gRPC, mutual TLS,
// the agent's own signature and admission checks, policy applied in memory),
// directly and through a real local etcd. One one-rule change of a synthetic
// policy is pushed the way an operator does (edit source, Reload); reported:
// per-agent latency (p50/p99/max = time to all), bytes, controller CPU and
// RSS, etcd load. Markdown on stdout.
//
// Usage: ztseg_bench_fleet [--smoke] [--agents 100,1000] [--modes controller,etcd]
//                          [--rules 10000] [--concurrent-admissions N]
// --smoke: 20 agents, 100 rules, both modes; exits 1 unless every agent
// admitted the change, nothing was refused and bytes were counted.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <sstream>

#include "fleet_sim.hpp"
#include "interrupt.hpp"

using namespace ztseg::bench;

namespace {

std::vector<std::string> splitList(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    for (std::string item; std::getline(in, item, ',');) out.push_back(item);
    return out;
}

double metric(const std::map<std::string, double>& m, const char* name) {
    auto it = m.find(name);
    return it == m.end() ? -1 : it->second;
}
double metric(const PushResult& r, const char* name) {
    return metric(r.etcd_delta, name);
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
    std::map<std::string, double> initial_etcd;  // etcd's counters over the first full push
};

void printHeader() {
    std::printf(
        "| mode | agents | reached | rollout | Reload RPC ms | received p50 / p99 / all ms | "
        "admitted p50 / p99 / all ms | admission ms (median) | est. all on own CPUs ms | "
        "first full push ms | MiB to agents | KiB per agent | messages | reconnects | refused | "
        "controller CPU s | controller RSS / peak MiB | agents' CPU s | etcd puts | "
        "etcd watch events | etcd sent MiB | etcd received MiB | etcd DB MiB | etcd RSS MiB | "
        "first push: etcd puts / received MiB |\n");
    std::printf(
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        "---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
}

void printRow(const Row& row) {
    const PushResult& r = row.r;
    const double mib = 1024.0 * 1024.0;
    const bool direct = row.mode == FleetMode::Controller;
    double bytes = double(direct ? r.wire_bytes : r.admitted_bytes);
    std::string rollout =
        r.rollout_state + (r.rollout_reason.empty() ? "" : ": " + r.rollout_reason);
    std::printf(
        "| %s | %d | %d | %s | %.0f | %.0f / %.0f / %.0f | %.0f / %.0f / %.0f | %.0f | %.0f | %.0f "
        "| "
        "%.1f | %.0f | %s | %s | %llu | %.2f | %.0f / %.0f | %.2f |",
        modeName(row.mode), row.agents, r.reached, rollout.c_str(), r.reload_ms,
        percentile(r.received_ms, 50), percentile(r.received_ms, 99),
        percentile(r.received_ms, 100), percentile(r.admitted_ms, 50),
        percentile(r.admitted_ms, 99), r.timeToAllMs(), percentile(r.admission_ms, 50),
        percentile(r.own_cpu_ms, 100), row.initial_ms, bytes / mib,
        bytes / double(std::max(r.reached, 1)) / 1024,
        direct ? std::to_string(r.wire_messages).c_str() : "–",
        direct ? std::to_string(r.streams).c_str() : "–", (unsigned long long)r.refusals,
        r.controller_after.cpu_s - r.controller_before.cpu_s, r.controller_after.rss_mib,
        r.controller_after.peak_mib, row.sim_cpu_s);
    if (direct) {
        std::printf(" – | – | – | – | – | – | – |\n");
    } else {
        std::printf(
            " %s | %s | %.1f | %.1f | %.1f | %.0f | %s / %.1f |\n",
            count(metric(r, "etcd_mvcc_put_total")).c_str(),
            count(metric(r, "etcd_debugging_mvcc_events_total")).c_str(),
            metric(r, "etcd_network_client_grpc_sent_bytes_total") / mib,
            metric(r, "etcd_network_client_grpc_received_bytes_total") / mib, r.etcd_db_mib,
            r.etcd_after.rss_mib, count(metric(row.initial_etcd, "etcd_mvcc_put_total")).c_str(),
            metric(row.initial_etcd, "etcd_network_client_grpc_received_bytes_total") / mib);
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
    auto bytes = [&](const Row* x) {
        return double(mode == FleetMode::Controller ? x->r.wire_bytes : x->r.admitted_bytes);
    };
    auto cpu = [](const Row* x) {
        return x->r.controller_after.cpu_s - x->r.controller_before.cpu_s;
    };
    std::printf(
        "- %s mode, %d agents (**extrapolated** linearly from %d and %d agents, not measured): "
        "received by all ≈ %.0f ms, est. all on own CPUs ≈ %.0f ms, bytes ≈ %.0f MiB, "
        "controller CPU ≈ %.1f s\n",
        modeName(mode), target, a->agents, b->agents,
        at(percentile(a->r.received_ms, 100), percentile(b->r.received_ms, 100)),
        at(percentile(a->r.own_cpu_ms, 100), percentile(b->r.own_cpu_ms, 100)),
        at(bytes(a), bytes(b)) / (1024.0 * 1024.0), at(cpu(a), cpu(b)));
}

}  // namespace

int main(int argc, char** argv) {
    watchInterrupts();
    std::vector<int> sizes = {100, 1'000};
    std::vector<FleetMode> modes = {FleetMode::Controller, FleetMode::Etcd};
    int rules = 10'000;
    int admissions = 0;  // default: SimAgent's (cores - 1)
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
        } else if (a == "--concurrent-admissions" && i + 1 < argc) {
            admissions = std::stoi(argv[++i]);
        } else {
            std::cerr << "usage: ztseg_bench_fleet [--smoke] [--agents 100,1000] "
                         "[--modes controller,etcd] [--rules 10000] [--concurrent-admissions N]\n";
            return 2;
        }
    }
    // stdout is the Markdown that lands in RESULTS.md: the agents' logs go to stderr.
    spdlog::set_default_logger(spdlog::stderr_logger_mt("fleet"));
    spdlog::set_level(spdlog::level::warn);
    if (admissions > 0) {
        SimAgent::setConcurrentAdmissions(admissions);
    }
    std::printf("Policy: %d rules (bench/synthetic_policy), one rule changed per push.\n\n", rules);
    printHeader();
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
                rows.push_back(
                    {mode, n, r, sim.initialConvergeMs(), sim_cpu, sim.initialEtcdDelta()});
                printRow(rows.back());
                bool bytes_counted =
                    (mode == FleetMode::Controller ? r.wire_bytes : r.admitted_bytes) > 0;
                if (r.reached != r.agents || r.refusals != 0 || !bytes_counted ||
                    r.rollout_state != "done") {
                    ok = false;
                }
            } catch (const std::exception& e) {
                std::printf("| %s | %d | failed: %s |\n", modeName(mode), n, e.what());
                ok = false;
            }
        }
    }
    std::printf("\n");
    for (FleetMode mode : modes) printExtrapolation(rows, mode, 10'000);
    return smoke && !ok ? 1 : 0;
}
