// Throughput, connection rate, flood drop efficiency and latency under flood
// through a veth pair between namespaces, for no filter, ztseg, iptables,
// nftables and xdp-filter enforcing the same policy (bench_policy.hpp) at
// several sizes, all in one run. Prints Markdown tables and a plain statement
// per target of issue 7 (items 2 and 6); --csv FILE writes the numbers for the plot.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_policy.hpp"
#include "common/error.hpp"
#include "interrupt.hpp"
#include "net_lab.hpp"
#include "traffic.hpp"

using namespace ztseg;
using namespace ztseg::bench;
using namespace std::chrono_literals;

namespace {

struct Config {
    bool smoke = false;
    std::vector<uint32_t> sizes = {100, 10'000, 100'000};
    std::vector<Filter> filters = allFilters();
    int runs = 3;
    double bulk_s = 4, conn_s = 3, flood_s = 3;
    int concurrency = 32;
    uint32_t probes = 1000;
    uint32_t latency_size = 0;  // 0 = the largest size
    std::string csv;
};

void sleepFor(double seconds) {
    using Clock = std::chrono::steady_clock;
    auto end = Clock::now() +
               std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    for (auto now = Clock::now(); now < end; now = Clock::now()) {
        checkInterrupted();
        std::this_thread::sleep_for(std::min<Clock::duration>(50ms, end - now));
    }
}

struct Checks {
    bool allowed = false;     // measured source -> allowed port connects
    bool unlabeled = false;   // unlabeled source is blocked
    bool wrong_port = false;  // measured source -> port outside the rules is blocked
};

struct FloodResult {
    double sent_pps = 0, drop_pps = 0, softirq = 0, busy = 0, reached_stack_pps = 0;
    double dropsPerSoftirqS() const { return softirq > 0 ? drop_pps / softirq : 0; }
};

struct LatencyResult {
    double idle_connect_p50 = 0, idle_connect_p99 = 0, flood_connect_p50 = 0, flood_connect_p99 = 0;
    double idle_echo_p50 = 0, idle_echo_p99 = 0, flood_echo_p50 = 0, flood_echo_p99 = 0;
    uint32_t failed_idle = 0, failed_flood = 0;
    double flood_drop_pps = 0;
};

struct Cell {
    bool supported = true;
    std::string why;  // when not supported
    std::string detail;
    double install_s = 0;
    Checks checks;
    double bulk_bps = 0;
    double conn_ps = 0;
    uint64_t conn_failed = 0;
    FloodResult flood;
    std::optional<LatencyResult> latency;
    // Every sweep's measurement, in sweep order (the medians above are of
    // these): run-to-run spread, and per-sweep comparisons between filters.
    std::vector<double> bulk_runs, conn_runs, flood_runs;  // flood: dropped per CPU-s
};

// min / median / max of a sweep series.
struct Spread {
    double min = 0, med = 0, max = 0;
};
Spread spreadOf(std::vector<double> v) {
    if (v.empty()) {
        return {};
    }
    std::sort(v.begin(), v.end());
    return {v.front(), v[v.size() / 2], v.back()};
}

using Key = std::pair<Filter, uint32_t>;

int connectErr(NetLab& lab, const std::string& src, uint16_t port) {
    test::Child c(&lab.client(), nullptr, [&] {
        int err = test::tcpConnect(BenchPolicy::serverV4(), port, 400ms, src).err;
        return err > 255 ? 255 : err;
    });
    return c.wait(10s);
}

Checks runChecks(NetLab& lab) {
    Checks k;
    k.allowed = connectErr(lab, lab.sources().front(), kConnPort) == 0;
    k.unlabeled = connectErr(lab, NetLab::unlabeledSource(), kConnPort) != 0;
    k.wrong_port = connectErr(lab, lab.sources().front(), kDeniedPort) == ETIMEDOUT;
    return k;
}

FloodResult measureFlood(NetLab& lab, InstalledFilter& f, double seconds) {
    FloodTarget t{lab.clientIf(),          lab.clientMac(), lab.serverMac(),
                  BenchPolicy::serverV4(), kFloodPort,      256};
    int cpu = int(std::thread::hardware_concurrency()) - 1;
    uint64_t drop0 = f.dropped(), stack0 = lab.udpNoPorts();
    Flood flood(lab.client(), t, cpu);
    auto t0 = std::chrono::steady_clock::now();
    uint64_t sent0 = flood.sent();
    CpuSample c0 = CpuSample::now();
    sleepFor(seconds);
    CpuSample c1 = CpuSample::now();
    uint64_t sent1 = flood.sent();
    double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    flood.stop();
    uint64_t drop1 = f.dropped(), stack1 = lab.udpNoPorts();
    CpuSample d = c1 - c0;
    FloodResult r;
    r.sent_pps = double(sent1 - sent0) / el;
    r.drop_pps = double(drop1 - drop0) / el;
    r.softirq = d.softirq / el;
    r.busy = d.busy / el;
    r.reached_stack_pps = double(stack1 - stack0) / el;
    return r;
}

template <class T, class F>
T medianOf(int runs, F&& f) {
    std::vector<T> v;
    for (int i = 0; i < runs; ++i) {
        checkInterrupted();
        v.push_back(f());
    }
    std::sort(v.begin(), v.end(), [](const T& a, const T& b) { return a < b; });
    return v[v.size() / 2];
}

LatencyResult measureLatency(const Config& c, NetLab& lab, InstalledFilter& f) {
    const std::string& src = lab.sources().front();
    auto gap = 1ms;
    LatencySamples idle =
        runLatencyProbe(lab.client(), src, BenchPolicy::serverV4(), kEchoPort, c.probes, gap);
    FloodTarget t{lab.clientIf(),          lab.clientMac(), lab.serverMac(),
                  BenchPolicy::serverV4(), kFloodPort,      256};
    uint64_t drop0 = f.dropped();
    auto t0 = std::chrono::steady_clock::now();
    LatencySamples busy;
    {
        Flood flood(lab.client(), t, int(std::thread::hardware_concurrency()) - 1);
        std::this_thread::sleep_for(200ms);  // flood at full rate before the first probe
        busy =
            runLatencyProbe(lab.client(), src, BenchPolicy::serverV4(), kEchoPort, c.probes, gap);
    }
    double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    LatencyResult r;
    r.idle_connect_p50 = median(idle.connect_us);
    r.idle_connect_p99 = percentile(idle.connect_us, 99);
    r.idle_echo_p50 = median(idle.echo_us);
    r.idle_echo_p99 = percentile(idle.echo_us, 99);
    r.flood_connect_p50 = median(busy.connect_us);
    r.flood_connect_p99 = percentile(busy.connect_us, 99);
    r.flood_echo_p50 = median(busy.echo_us);
    r.flood_echo_p99 = percentile(busy.echo_us, 99);
    r.failed_idle = idle.failed;
    r.failed_flood = busy.failed;
    r.flood_drop_pps = double(f.dropped() - drop0) / el;
    return r;
}

Cell measureCell(const Config& c, Filter filter, uint32_t size, bool latency) {
    BenchPolicy policy{size, 0};
    std::vector<std::string> sources;
    for (uint32_t i : policy.measuredSources(8)) {
        sources.push_back(policy.sourceV4(i));
    }
    NetLab lab(sources);
    auto* cg = &lab.serverCgroup();
    auto iperf = startIperfServer(lab.server(), cg, BenchPolicy::serverV4(), kBulkPort);
    auto acceptor = startAcceptServer(lab.server(), cg, BenchPolicy::serverV4(), kConnPort);
    auto echo = startEchoServer(lab.server(), cg, BenchPolicy::serverV4(), kEchoPort);
    Cell cell;
    auto t0 = std::chrono::steady_clock::now();
    std::unique_ptr<InstalledFilter> f;
    try {
        f = installFilter(filter, lab, policy);
    } catch (const Unsupported& e) {
        cell.supported = false;
        cell.why = e.what();
        return cell;
    }
    cell.install_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    cell.detail = f->detail();
    cell.checks = runChecks(lab);
    if (!cell.checks.allowed) {
        throw Error(std::string(filterName(filter)) + " at " + std::to_string(size) +
                    " rules: the allowed flow does not connect; the policy rendering is wrong");
    }
    if (filter != Filter::None && !cell.checks.unlabeled) {
        throw Error(std::string(filterName(filter)) + " at " + std::to_string(size) +
                    " rules: an unlabeled source got through");
    }
    cell.bulk_bps = medianOf<double>(c.runs, [&] {
        return runIperf(lab.client(), lab.sources().front(), BenchPolicy::serverV4(), kBulkPort,
                        c.bulk_s);
    });
    std::vector<ConnRate> rates;
    for (int i = 0; i < c.runs; ++i) {
        checkInterrupted();
        rates.push_back(runConnRate(lab.client(), lab.sources(), BenchPolicy::serverV4(), kConnPort,
                                    c.conn_s, c.concurrency));
    }
    std::sort(rates.begin(), rates.end(),
              [](const ConnRate& a, const ConnRate& b) { return a.perSecond() < b.perSecond(); });
    cell.conn_ps = rates[rates.size() / 2].perSecond();
    for (const auto& r : rates) {
        cell.conn_failed += r.failed;
    }
    std::vector<FloodResult> floods;
    for (int i = 0; i < c.runs; ++i) {
        checkInterrupted();
        floods.push_back(measureFlood(lab, *f, c.flood_s));
    }
    std::sort(floods.begin(), floods.end(), [](const FloodResult& a, const FloodResult& b) {
        return a.dropsPerSoftirqS() < b.dropsPerSoftirqS();
    });
    cell.flood = floods[floods.size() / 2];
    if (latency) {
        checkInterrupted();
        cell.latency = measureLatency(c, lab, *f);
    }
    return cell;
}

std::string fmt(const char* f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), f, v);
    return buf;
}

std::string si(double v) {  // 1234567 -> 1.23M
    if (v >= 1e6) {
        return fmt("%.2fM", v / 1e6);
    }
    if (v >= 1e4) {
        return fmt("%.1fk", v / 1e3);
    }
    return fmt("%.0f", v);
}

class Printer {
  public:
    Printer(const Config& c, const std::map<Key, Cell>& cells) : c_(c), cells_(cells) {}

    const Cell* at(Filter f, uint32_t size) const {
        auto it = cells_.find({f, size});
        return it == cells_.end() ? nullptr : &it->second;
    }
    const Cell* baseline(uint32_t size) const { return at(Filter::None, size); }

    void header(const std::string& unit) const {
        std::cout << "| filter |";
        for (uint32_t s : c_.sizes) {
            std::cout << " " << s << " rules " << unit << " |";
        }
        std::cout << "\n|---|";
        for (size_t i = 0; i < c_.sizes.size(); ++i) {
            std::cout << "---:|";
        }
        std::cout << "\n";
    }

    template <class F>
    void ratioTable(const std::string& unit, F&& value, const char* format) const {
        header(unit);
        for (Filter f : c_.filters) {
            std::cout << "| " << filterName(f) << " |";
            for (uint32_t s : c_.sizes) {
                const Cell* cell = at(f, s);
                const Cell* base = baseline(s);
                if (!cell) {
                    std::cout << " not run |";
                } else if (!cell->supported) {
                    std::cout << " cannot load |";
                } else {
                    std::cout << " " << fmt(format, value(*cell));
                    if (base && f != Filter::None && value(*base) > 0) {
                        std::cout << " (" << fmt("%.0f%%", 100 * value(*cell) / value(*base))
                                  << ")";
                    }
                    std::cout << " |";
                }
            }
            std::cout << "\n";
        }
    }

    void print() const {
        std::cout
            << "Client and server in two network namespaces joined by one veth pair; the "
               "filter runs in the server's namespace (ztseg: tc at tcx ingress on its veth "
               "end, its default there; ztseg-generic / ztseg-native: XDP in that mode; "
               "netfilter hooks; cgroup hooks on the servers' cgroup). A fresh pair of namespaces "
               "per filter and size. Percentages: against no filter at the same size, "
               "measured in the same run. Medians of "
            << c_.runs
            << " runs, taken in interleaved sweeps (each sweep measures every filter "
               "once, on fresh namespaces), so drift of the machine hits all filters "
               "alike.\n\n";
        std::cout << "### (a) Bulk TCP (iperf3, one stream, " << c_.bulk_s << " s)\n\n";
        ratioTable(
            "Gbit/s", [](const Cell& c) { return c.bulk_bps / 1e9; }, "%.2f");
        std::cout << "\n### (b) New connections per second (" << c_.concurrency
                  << " in flight, kernel-chosen source ports from 8 sources, closed with RST, "
                  << c_.conn_s << " s)\n\n";
        ratioTable(
            "conn/s", [](const Cell& c) { return c.conn_ps; }, "%.0f");
        std::cout << "\n### (c) Unlabeled UDP flood (60-byte frames, 256 unlabeled sources, "
                     "AF_PACKET sendmmsg from one pinned CPU, "
                  << c_.flood_s << " s)\n\n"
                  << "Dropped = the filter's own drop counter (no filter: UDP NoPorts, the "
                     "stack's drop); CPU = softirq time on all CPUs from /proc/stat (where XDP "
                     "on veth and netfilter both run; the generator's own send cost is system "
                     "time and not counted); efficiency = dropped per softirq CPU-second.\n\n"
                  << "| filter | rules | sent/s | dropped/s | reached stack/s | softirq CPU | "
                     "busy CPU | dropped per CPU-s | vs nftables |\n"
                  << "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
        for (uint32_t s : c_.sizes) {
            const Cell* nft = at(Filter::Nftables, s);
            for (Filter f : c_.filters) {
                const Cell* cell = at(f, s);
                if (!cell || !cell->supported) {
                    continue;
                }
                const FloodResult& r = cell->flood;
                std::cout << "| " << filterName(f) << " | " << s << " | " << si(r.sent_pps) << " | "
                          << si(r.drop_pps) << " | " << si(r.reached_stack_pps) << " | "
                          << fmt("%.2f", r.softirq) << " | " << fmt("%.2f", r.busy) << " | "
                          << si(r.dropsPerSoftirqS()) << " | "
                          << (nft && nft->supported && nft->flood.dropsPerSoftirqS() > 0
                                  ? fmt("%.2fx",
                                        r.dropsPerSoftirqS() / nft->flood.dropsPerSoftirqS())
                                  : "—")
                          << " |\n";
            }
        }
        printSpread();
        printLatency();
        printSetup();
        printTargets();
        printPairedTargets();
    }

    // min / median / max over the sweeps: a ratio whose spread straddles 1 is
    // not a verdict.
    void printSpread() const {
        std::cout << "\n### Run-to-run spread (min / median / max over " << c_.runs
                  << " sweeps)\n\n"
                  << "| filter | rules | bulk Gbit/s | new conn/s | flood dropped per CPU-s |\n"
                  << "|---|---:|---:|---:|---:|\n";
        auto show = [](const Spread& v, double scale, const char* f) {
            return fmt(f, v.min / scale) + " / **" + fmt(f, v.med / scale) + "** / " +
                   fmt(f, v.max / scale);
        };
        for (uint32_t s : c_.sizes) {
            for (Filter f : c_.filters) {
                const Cell* cell = at(f, s);
                if (!cell || !cell->supported) {
                    continue;
                }
                std::cout << "| " << filterName(f) << " | " << s << " | "
                          << show(spreadOf(cell->bulk_runs), 1e9, "%.2f") << " | "
                          << show(spreadOf(cell->conn_runs), 1, "%.0f") << " | "
                          << show(spreadOf(cell->flood_runs), 1e3, "%.0fk") << " |\n";
            }
        }
    }

    // Issue 16's targets, judged per sweep: ztseg and its opponents at the
    // same size ran back to back in the same sweep, so each sweep is one
    // paired comparison. "met" in every sweep, "flips" in some, "missed" in none.
    void printPairedTargets() const {
        if (c_.sizes.empty()) {
            return;
        }
        std::cout << "\n### Targets per sweep (issue 16: ztseg via tcx on the veth)\n\n";
        auto verdict = [](int wins, int n) {
            return n == 0      ? std::string("not measured")
                   : wins == n ? std::string("**met**")
                   : wins == 0 ? std::string("**missed**")
                               : std::string("**flips**");
        };
        uint32_t big = *std::max_element(c_.sizes.begin(), c_.sizes.end());
        const Cell* z = at(Filter::Ztseg, big);
        if (!z || !z->supported) {
            return;
        }
        auto best = [&](auto field, size_t i) {
            double b = -1;
            for (Filter opp : {Filter::Nftables, Filter::IptablesCt}) {
                const Cell* o = at(opp, big);
                if (o && o->supported && i < (o->*field).size()) {
                    b = std::max(b, (o->*field)[i]);
                }
            }
            return b;
        };
        auto line = [&](const char* what, auto field, double scale, const char* f) {
            int wins = 0, n = 0;
            std::string per;
            for (size_t i = 0; i < (z->*field).size(); ++i) {
                double b = best(field, i);
                if (b < 0) {
                    continue;
                }
                ++n;
                double zv = (z->*field)[i];
                wins += zv >= b;
                per += (per.empty() ? "" : "; ") + fmt(f, zv / scale) + " vs " + fmt(f, b / scale);
            }
            std::cout << "- ztseg at " << big << " rules ≥ the best of nftables and iptables-ct on "
                      << what << ": " << verdict(wins, n) << " in " << wins << "/" << n
                      << " sweeps (" << per << ").\n";
        };
        line("bulk TCP (Gbit/s)", &Cell::bulk_runs, 1e9, "%.2f");
        line("new connections/s", &Cell::conn_runs, 1, "%.0f");
        for (uint32_t s : c_.sizes) {
            const Cell* zc = at(Filter::Ztseg, s);
            const Cell* nc = at(Filter::Nftables, s);
            if (!zc || !nc || !zc->supported || !nc->supported) {
                continue;
            }
            int wins = 0, n = 0;
            std::string per;
            for (size_t i = 0; i < zc->flood_runs.size() && i < nc->flood_runs.size(); ++i) {
                ++n;
                wins += zc->flood_runs[i] >= nc->flood_runs[i];
                per +=
                    (per.empty() ? "" : "; ") +
                    fmt("%.2fx", nc->flood_runs[i] > 0 ? zc->flood_runs[i] / nc->flood_runs[i] : 0);
            }
            std::cout << "- Flood on the veth at " << s
                      << " rules: ztseg drops ≥ nftables per CPU-second: " << verdict(wins, n)
                      << " in " << wins << "/" << n << " sweeps (" << per << ").\n";
        }
    }

    void printLatency() const {
        bool any = false;
        for (const auto& [k, cell] : cells_) {
            any = any || cell.latency.has_value();
        }
        if (!any) {
            return;
        }
        std::cout
            << "\n### Latency of an allowed flow while an unlabeled source floods (item 6)\n\n"
            << c_.probes
            << " probes idle, then the same while the flood above runs: TCP connect time "
               "(SYN to established) and a 1-byte echo round trip on the new connection, "
               "in microseconds.\n\n"
            << "| filter | rules | connect p50 idle → flood | connect p99 idle → flood | "
               "echo p50 idle → flood | echo p99 idle → flood | failed probes | flood "
               "dropped/s |\n|---|---:|---:|---:|---:|---:|---:|---:|\n";
        for (const auto& [k, cell] : cells_) {
            if (!cell.latency) {
                continue;
            }
            const LatencyResult& l = *cell.latency;
            auto pair = [](double a, double b) {
                return fmt("%.0f", a) + " → " + fmt("%.0f", b) + " (" +
                       fmt("%.1fx", a > 0 ? b / a : 0) + ")";
            };
            std::cout << "| " << filterName(k.first) << " | " << k.second << " | "
                      << pair(l.idle_connect_p50, l.flood_connect_p50) << " | "
                      << pair(l.idle_connect_p99, l.flood_connect_p99) << " | "
                      << pair(l.idle_echo_p50, l.flood_echo_p50) << " | "
                      << pair(l.idle_echo_p99, l.flood_echo_p99) << " | " << l.failed_idle << " / "
                      << l.failed_flood << " | " << si(l.flood_drop_pps) << " |\n";
        }
    }

    void printSetup() const {
        std::cout << "\n### How each filter ran, and the policy checks\n\n"
                  << "Before measuring, each filter is checked from the client: the measured "
                     "source reaches the allowed port; an unlabeled source is blocked; the "
                     "measured source is blocked on a port no rule allows (a connect that times "
                     "out; \"no\" = it got through to the stack and was refused there).\n\n"
                  << "| filter | rules | install s | allowed flow | unlabeled blocked | other port "
                     "blocked | failed connects (b) | how it runs |\n"
                  << "|---|---:|---:|---|---|---|---:|---|\n";
        for (uint32_t s : c_.sizes) {
            for (Filter f : c_.filters) {
                const Cell* cell = at(f, s);
                if (!cell) {
                    continue;
                }
                if (!cell->supported) {
                    std::cout << "| " << filterName(f) << " | " << s
                              << " | — | — | — | — | — | cannot load: " << cell->why << " |\n";
                    continue;
                }
                auto yn = [](bool b) { return b ? "yes" : "no"; };
                std::cout << "| " << filterName(f) << " | " << s << " | "
                          << fmt("%.2f", cell->install_s) << " | " << yn(cell->checks.allowed)
                          << " | " << yn(cell->checks.unlabeled) << " | "
                          << yn(cell->checks.wrong_port) << " | " << cell->conn_failed << " | "
                          << cell->detail << " |\n";
            }
        }
    }

    void printTargets() const {
        std::cout << "\n### Targets\n\n";
        if (c_.sizes.empty()) {
            return;
        }
        uint32_t big = *std::max_element(c_.sizes.begin(), c_.sizes.end());
        const Cell* z = at(Filter::Ztseg, big);
        const Cell* base = baseline(big);
        if (z && base && z->supported) {
            double a = z->bulk_bps / base->bulk_bps, b = z->conn_ps / base->conn_ps;
            std::cout << "- ztseg at " << big << " rules ≥ 95% of no filter on bulk TCP: "
                      << (a >= 0.95 ? "**met**" : "**missed**") << " — " << fmt("%.0f%%", 100 * a)
                      << " (" << fmt("%.2f", z->bulk_bps / 1e9) << " vs "
                      << fmt("%.2f", base->bulk_bps / 1e9) << " Gbit/s)."
                      << (a >= 0.95 ? ""
                                    : " Next: the tcx program reads headers with "
                                      "bpf_skb_load_bytes; direct packet access after one "
                                      "bpf_skb_pull_data of the headers would be cheaper.")
                      << "\n";
            std::cout << "- ztseg at " << big << " rules ≥ 90% of no filter on new connections: "
                      << (b >= 0.90 ? "**met**" : "**missed**") << " — " << fmt("%.0f%%", 100 * b)
                      << " (" << fmt("%.0f", z->conn_ps) << " vs " << fmt("%.0f", base->conn_ps)
                      << " conn/s)."
                      << (b >= 0.90 ? ""
                                    : " Next: cheaper new-flow path (one conntrack insert per "
                                      "flow, at XDP or at cgroup ingress but not both; no event "
                                      "for allowed flows unless asked).")
                      << "\n";
        }
        // Ahead of iptables everywhere; at least nftables on (a) and (b).
        for (Filter opp : {Filter::Iptables, Filter::IptablesCt, Filter::Nftables}) {
            bool any = false, met = true;
            std::string detail;
            for (uint32_t s : c_.sizes) {
                const Cell* zc = at(Filter::Ztseg, s);
                const Cell* oc = at(opp, s);
                if (!zc || !oc || !zc->supported || !oc->supported) {
                    continue;
                }
                any = true;
                bool ok = opp == Filter::Nftables
                              ? zc->bulk_bps >= oc->bulk_bps && zc->conn_ps >= oc->conn_ps
                              : zc->bulk_bps > oc->bulk_bps && zc->conn_ps > oc->conn_ps;
                met = met && ok;
                detail += (detail.empty() ? "" : "; ") + std::to_string(s) + " rules " +
                          fmt("%.2f", zc->bulk_bps / 1e9) + " vs " +
                          fmt("%.2f", oc->bulk_bps / 1e9) + " Gbit/s, " + fmt("%.0f", zc->conn_ps) +
                          " vs " + fmt("%.0f", oc->conn_ps) + " conn/s";
            }
            if (!any) {
                continue;
            }
            std::cout << "- ztseg "
                      << (opp == Filter::Nftables ? "at least equal to " : "ahead of ")
                      << filterName(opp)
                      << " on (a) and (b) at every size: " << (met ? "**met**" : "**missed**")
                      << " — " << detail << "."
                      << (met ? ""
                              : " Next: see the bulk TCP note above and the new-flow path "
                                "cost.")
                      << "\n";
        }
        bool any = false, met = true;
        std::string detail;
        for (uint32_t s : c_.sizes) {
            const Cell* zc = at(Filter::Ztseg, s);
            const Cell* nc = at(Filter::Nftables, s);
            if (!zc || !nc || !zc->supported || !nc->supported ||
                nc->flood.dropsPerSoftirqS() <= 0) {
                continue;
            }
            any = true;
            double ratio = zc->flood.dropsPerSoftirqS() / nc->flood.dropsPerSoftirqS();
            met = met && ratio >= 3;
            detail +=
                (detail.empty() ? "" : "; ") + std::to_string(s) + " rules " + fmt("%.2fx", ratio);
        }
        if (any) {
            std::cout << "- Flood: ztseg drops ≥ 3× the packets per CPU-second of nftables: "
                      << (met ? "**met**" : "**missed**") << " — " << detail << "."
                      << (met ? ""
                              : " Next: on veth the ingress program runs after the sender built "
                                "the skb, so most of the cost of a dropped packet is the skb "
                                "itself, the same for every filter; the XDP advantage shows on "
                                "a physical NIC (drop before any allocation), which this "
                                "machine does not have.")
                      << "\n";
        }
        for (const auto& [k, cell] : cells_) {
            if (k.first != Filter::Ztseg || !cell.latency) {
                continue;
            }
            const LatencyResult& l = *cell.latency;
            double r1 = l.idle_connect_p50 > 0 ? l.flood_connect_p50 / l.idle_connect_p50 : 0;
            double r2 = l.idle_echo_p50 > 0 ? l.flood_echo_p50 / l.idle_echo_p50 : 0;
            double worst = std::max(r1, r2);
            double p1 = l.idle_connect_p99 > 0 ? l.flood_connect_p99 / l.idle_connect_p99 : 0;
            double p2 = l.idle_echo_p99 > 0 ? l.flood_echo_p99 / l.idle_echo_p99 : 0;
            double worst99 = std::max(p1, p2);
            std::cout << "- Allowed flow's latency under an unlabeled flood within 2× of idle, "
                         "median: "
                      << (worst <= 2 ? "**met**" : "**missed**") << " — connect "
                      << fmt("%.1fx", r1) << ", echo " << fmt("%.1fx", r2)
                      << "; p99: " << (worst99 <= 2 ? "**met**" : "**missed**") << " — connect "
                      << fmt("%.1fx", p1) << ", echo " << fmt("%.1fx", p2) << " (" << k.second
                      << " rules)."
                      << (worst <= 2 && worst99 <= 2
                              ? ""
                              : " Next: the flood and the probe share this 2-core machine's "
                                "CPUs and the veth's single queue; drop earlier and cheaper "
                                "(see flood efficiency) and re-measure on a quiet machine with "
                                "the flood pinned away from the probe.")
                      << "\n";
        }
    }

    void csv(const std::string& path) const {
        std::ofstream out(path);
        out << "filter,rules,supported,bulk_gbps,conn_per_s,flood_drop_pps,flood_softirq,"
               "flood_drops_per_cpu_s\n";
        for (const auto& [k, c] : cells_) {
            out << filterName(k.first) << ',' << k.second << ',' << (c.supported ? 1 : 0) << ','
                << c.bulk_bps / 1e9 << ',' << c.conn_ps << ',' << c.flood.drop_pps << ','
                << c.flood.softirq << ',' << c.flood.dropsPerSoftirqS() << '\n';
        }
        if (!out) {
            throw Error("write " + path + ": failed");
        }
    }

  private:
    const Config& c_;
    const std::map<Key, Cell>& cells_;
};

// Smoke mode: every number the harness produced is real and sane.
int verifySmoke(const Config& c, const std::map<Key, Cell>& cells) {
    int bad = 0;
    auto fail = [&](Filter f, uint32_t s, const std::string& what) {
        std::cerr << "smoke: " << filterName(f) << " at " << s << " rules: " << what << "\n";
        ++bad;
    };
    for (const auto& [k, cell] : cells) {
        auto [f, s] = k;
        if (!cell.supported) {
            fail(f, s, "could not be loaded: " + cell.why);
            continue;
        }
        if (cell.bulk_bps <= 0)
            fail(f, s, "no bulk TCP throughput");
        if (cell.conn_ps <= 0)
            fail(f, s, "no connections");
        if (cell.flood.sent_pps <= 0)
            fail(f, s, "the flood sent nothing");
        if (cell.flood.drop_pps <= 0)
            fail(f, s, "nothing dropped during the flood");
        if (cell.flood.drop_pps > cell.flood.sent_pps * 1.05)
            fail(f, s, "dropped more than was sent");
        bool xdp_filter = f == Filter::XdpFilter;
        if (f != Filter::None) {
            if (cell.flood.reached_stack_pps > cell.flood.drop_pps * 0.01)
                fail(f, s, "flood packets reached the stack");
            if (!xdp_filter && !cell.checks.wrong_port)
                fail(f, s, "a port outside the rules was reachable");
        }
        if (cell.latency && cell.latency->idle_connect_p50 <= 0)
            fail(f, s, "no latency samples");
    }
    (void)c;
    return bad == 0 ? 0 : 1;
}

// Raw measurements of one filter at one size, gathered over the sweeps.
struct Samples {
    Cell first;  // install, checks, detail; support
    std::vector<double> bulk;
    std::vector<double> conn;
    uint64_t conn_failed = 0;
    std::vector<FloodResult> flood;
    std::optional<LatencyResult> latency;

    void add(Cell&& cell) {  // one run's cell
        bulk.push_back(cell.bulk_bps);
        conn.push_back(cell.conn_ps);
        conn_failed += cell.conn_failed;
        flood.push_back(cell.flood);
        if (cell.latency) {
            latency = cell.latency;
        }
        if (bulk.size() == 1) {
            first = std::move(cell);
        }
    }
    Cell median() const {
        Cell out = first;
        if (!out.supported) {
            return out;
        }
        std::vector<double> b = bulk;
        std::sort(b.begin(), b.end());
        out.bulk_bps = b[b.size() / 2];
        std::vector<double> r = conn;
        std::sort(r.begin(), r.end());
        out.conn_ps = r[r.size() / 2];
        out.conn_failed = conn_failed;
        std::vector<FloodResult> f = flood;
        std::sort(f.begin(), f.end(), [](const FloodResult& x, const FloodResult& y) {
            return x.dropsPerSoftirqS() < y.dropsPerSoftirqS();
        });
        out.flood = f[f.size() / 2];
        out.latency = latency;
        out.bulk_runs = bulk;
        out.conn_runs = conn;
        for (const FloodResult& x : flood) {
            out.flood_runs.push_back(x.dropsPerSoftirqS());
        }
        return out;
    }
};

int run(const Config& c) {
    spdlog::set_level(spdlog::level::warn);
    uint32_t lat_size =
        c.latency_size ? c.latency_size : *std::max_element(c.sizes.begin(), c.sizes.end());
    // Runs are interleaved: each sweep measures every filter once (fresh
    // namespaces each time), so a slow drift of a shared machine moves all
    // filters alike instead of whichever filter was measured during it.
    Config once = c;
    once.runs = 1;
    std::map<Key, Samples> samples;
    for (int sweep = 0; sweep < c.runs; ++sweep) {
        for (uint32_t size : c.sizes) {
            for (Filter f : c.filters) {
                checkInterrupted();
                auto it = samples.find({f, size});
                if (it != samples.end() && !it->second.first.supported) {
                    continue;
                }
                std::cerr << "net bench: sweep " << sweep + 1 << "/" << c.runs << ": "
                          << filterName(f) << " at " << size << " rules\n";
                bool latency = size == lat_size && c.probes > 0 && sweep == c.runs - 1;
                samples[{f, size}].add(measureCell(once, f, size, latency));
            }
        }
    }
    std::map<Key, Cell> cells;
    for (const auto& [k, v] : samples) {
        cells[k] = v.median();
    }
    Printer p(c, cells);
    p.print();
    if (!c.csv.empty()) {
        p.csv(c.csv);
    }
    return c.smoke ? verifySmoke(c, cells) : 0;
}

}  // namespace

int main(int argc, char** argv) {
    Config c;
    bool smoke = false;
    std::vector<std::string> filters;
    CLI::App app{
        "Bulk TCP, connection rate, unlabeled flood and latency under flood through a "
        "veth pair: no filter, ztseg (tcx; generic and native XDP), iptables, nftables, "
        "xdp-filter; prints Markdown with run-to-run spread"};
    app.add_flag("--smoke", smoke, "10 rules, one short run each: proves the harness works");
    app.add_option("--sizes", c.sizes, "policy sizes in rules")->delimiter(',');
    app.add_option("--filters", filters,
                   "none,ztseg,ztseg-generic,ztseg-native,iptables,iptables-ct,nftables,xdp-filter")
        ->delimiter(',');
    app.add_option("--runs", c.runs, "measurements per median")->check(CLI::PositiveNumber);
    app.add_option("--bulk-seconds", c.bulk_s, "iperf3 duration");
    app.add_option("--conn-seconds", c.conn_s, "connection-rate duration");
    app.add_option("--flood-seconds", c.flood_s, "flood duration");
    app.add_option("--concurrency", c.concurrency, "connections in flight")
        ->check(CLI::PositiveNumber);
    app.add_option("--probes", c.probes, "latency probes idle and under flood (0: none)");
    app.add_option("--latency-size", c.latency_size, "rules for the latency table (default: most)");
    app.add_option("--csv", c.csv, "also write the numbers to this CSV file (for the plot)");
    CLI11_PARSE(app, argc, argv);
    if (smoke) {
        c.smoke = true;
        c.sizes = {10};
        c.runs = 1;
        c.bulk_s = 1;
        c.conn_s = 0.5;
        c.flood_s = 0.5;
        c.probes = 20;
    }
    try {
        if (!filters.empty()) {
            c.filters.clear();
            for (const auto& f : filters) {
                c.filters.push_back(parseFilter(f));
            }
        }
        if (c.sizes.empty()) {
            throw Error("nothing to measure: empty --sizes");
        }
        // The no-filter baseline first: every ratio needs it.
        if (std::find(c.filters.begin(), c.filters.end(), Filter::None) == c.filters.end()) {
            c.filters.insert(c.filters.begin(), Filter::None);
        }
        watchInterrupts();
        return run(c);
    } catch (const std::exception& e) {
        std::cerr << "ztseg_bench_net: " << e.what() << "\n";
        return 1;
    }
}
