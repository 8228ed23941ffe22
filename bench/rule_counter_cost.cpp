// What per-rule hit counters cost per packet: the same packets through two
// datapaths loaded side by side, one counting (datapath.rule_counters: true,
// the default) and one not, measured interleaved (on, off, off, on, ...) so
// drift hits both alike. BPF_PROG_TEST_RUN, the policy of bench_policy.hpp.
//
// Cases: cgroup ingress established ACK (a tracked connection: one counter
// update per packet, the common case); cgroup ingress new allowed SYN
// (distinct flows: the rule's slot is looked up and the admission counted).
// Every case checks its verdict, and on the counting side that the rule's
// counters moved by exactly the packets sent.
#include <bpf/bpf.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "bench_policy.hpp"
#include "common/cgroup.hpp"
#include "common/error.hpp"
#include "common/packet_builder.hpp"
#include "datapath/datapath.hpp"
#include "datapath/event_reader.hpp"
#include "interrupt.hpp"

using namespace ztseg;
using namespace ztseg::bench;
using ztseg::test::PacketBuilder;

namespace {

constexpr uint32_t kSkbPass = 1;

struct Config {
    uint32_t repeat = 1'000'000;
    int runs = 7;
    uint32_t rules = 1000;
    uint32_t distinct = 20'000;
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

uint32_t runOnce(int fd, const std::vector<uint8_t>& frame, uint32_t repeat, uint32_t* ns) {
    LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame.data(),
                .data_size_in = uint32_t(frame.size()), .repeat = int(repeat));
    if (bpf_prog_test_run_opts(fd, &o) != 0) {
        throwErrno("BPF_PROG_TEST_RUN", errno);
    }
    *ns = o.duration;
    return o.retval;
}

// One datapath with counters on or off, the bench policy applied.
class Side {
  public:
    Side(bool counters, const BenchPolicy& pol) {
        opts_.pin_dir = "/sys/fs/bpf/ztseg-bench-rulectr-" + std::to_string(getpid()) +
                        (counters ? "-on" : "-off");
        opts_.policy_capacity = 1 << 18;
        opts_.identity_capacity = 1 << 16;
        opts_.rule_counters = counters;
        Datapath::uninstall(opts_.pin_dir);
        dp_.emplace(Datapath::create(opts_));
        reader_ = std::make_unique<EventReader>(dp_->eventsFd(), [](const ztseg_flow_event&) {});
        dp_->apply(pol.toGeneration(1, cgroupIdOf(selfCgroupPath()), 0));
    }
    ~Side() {
        reader_.reset();
        dp_.reset();
        Datapath::uninstall(opts_.pin_dir);
    }
    Side(const Side&) = delete;
    Side& operator=(const Side&) = delete;

    int ingress() const { return dp_->programFd("ztseg_cg_ingress"); }
    Datapath& dp() { return *dp_; }
    void drain() { reader_->drain(); }
    uint64_t countedPackets() {
        uint64_t n = 0;
        for (const RuleHitCount& h : dp_->ruleHits()) {
            n += h.packets;
        }
        return n;
    }

  private:
    DatapathOptions opts_;
    std::optional<Datapath> dp_;
    std::unique_ptr<EventReader> reader_;
};

struct Case {
    std::string label;
    std::vector<double> on, off;  // ns per packet, one per run
};

// The same measurement on both sides, alternating which goes first.
template <typename Measure>
Case interleaved(const std::string& label, const Config& c, Side& on, Side& off, Measure measure) {
    Case r{label, {}, {}};
    for (int i = 0; i < c.runs; ++i) {
        checkInterrupted();
        Side* order[2] = {&on, &off};
        if (i % 2) {
            std::swap(order[0], order[1]);
        }
        for (Side* s : order) {
            (s == &on ? r.on : r.off).push_back(measure(*s));
            s->drain();
        }
    }
    return r;
}

std::string fmt(double v, const char* f = "%.1f") {
    char buf[32];
    std::snprintf(buf, sizeof(buf), f, v);
    return buf;
}

int run(const Config& c) {
    spdlog::set_level(spdlog::level::warn);
    BenchPolicy pol{c.rules, 0};
    const uint32_t src = pol.measuredSources(1).at(0);
    const std::string peer = pol.sourceV4(src), server = BenchPolicy::serverV4();
    using test::kTcpAck;
    using test::kTcpSyn;
    auto ack = PacketBuilder::ipv4(peer, server).tcp(40000, kBulkPort, kTcpAck).build();
    std::vector<std::vector<uint8_t>> syns;
    for (uint32_t i = 0; i < c.distinct; ++i) {
        syns.push_back(PacketBuilder::ipv4(peer, server)
                           .tcp(uint16_t(1024 + i % 60000), kBulkPort, kTcpSyn)
                           .build());
    }
    Side on(true, pol), off(false, pol);
    std::vector<Case> cases;

    // A tracked connection (its first packet an ACK: tracked by the same rule).
    for (Side* s : {&on, &off}) {
        uint32_t ns = 0;
        if (runOnce(s->ingress(), ack, 1, &ns) != kSkbPass) {
            throw Error("first ACK: not admitted");
        }
    }
    uint64_t before = on.countedPackets();
    cases.push_back(interleaved("cgroup ingress: established ACK", c, on, off, [&](Side& s) {
        uint32_t ns = 0;
        if (runOnce(s.ingress(), ack, c.repeat, &ns) != kSkbPass) {
            throw Error("established ACK: not admitted");
        }
        return double(ns);
    }));
    if (uint64_t moved = on.countedPackets() - before; moved != uint64_t(c.runs) * c.repeat) {
        throw Error("established ACK: the rule counted " + std::to_string(moved) + " packets, " +
                    std::to_string(uint64_t(c.runs) * c.repeat) + " sent");
    }
    before = on.countedPackets();
    cases.push_back(
        interleaved("cgroup ingress: new allowed SYN (distinct flows)", c, on, off, [&](Side& s) {
            s.dp().flushConntrack();
            uint64_t total = 0;
            for (const auto& f : syns) {
                uint32_t ns = 0;
                if (runOnce(s.ingress(), f, 1, &ns) != kSkbPass) {
                    throw Error("SYN: not admitted");
                }
                total += ns;
            }
            return double(total) / double(syns.size());
        }));
    if (uint64_t moved = on.countedPackets() - before; moved != uint64_t(c.runs) * syns.size()) {
        throw Error("SYN: the rule counted " + std::to_string(moved) + " packets");
    }
    if (!off.dp().ruleHits().empty()) {
        throw Error("the datapath without counters counted rules");
    }

    std::cout << "| case | counters on, ns (median) | off, ns (median) | on/off (median) | "
                 "on/off per run, min–max |\n|---|---:|---:|---:|---:|\n";
    for (const Case& k : cases) {
        std::vector<double> ratios;
        for (size_t i = 0; i < k.on.size(); ++i) {
            ratios.push_back(k.off[i] > 0 ? k.on[i] / k.off[i] : 0);
        }
        auto [lo, hi] = std::minmax_element(ratios.begin(), ratios.end());
        std::cout << "| " << k.label << " | " << fmt(median(k.on)) << " | " << fmt(median(k.off))
                  << " | " << fmt(median(ratios), "%.3f") << " | " << fmt(*lo, "%.3f") << "–"
                  << fmt(*hi, "%.3f") << " |\n";
    }
    std::cout << "\n"
              << c.rules << " allow rules; " << c.runs
              << " interleaved runs per side; established: " << c.repeat
              << " packets per kernel run (whole ns); new SYN: mean of " << c.distinct
              << " distinct flows per run (incl. the kernel's timer reads).\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Config c;
    bool smoke = false;
    CLI::App app{"Per-packet cost of per-rule hit counters: on vs off, interleaved; Markdown"};
    app.add_flag("--smoke", smoke, "tiny counts: proves the harness works");
    app.add_option("--repeat", c.repeat, "packets per kernel measurement")
        ->check(CLI::PositiveNumber);
    app.add_option("--runs", c.runs, "measurements per side")->check(CLI::PositiveNumber);
    app.add_option("--rules", c.rules, "allow rules in the policy")->check(CLI::PositiveNumber);
    app.add_option("--distinct", c.distinct, "new flows per distinct-flow run")
        ->check(CLI::Range(1u, 60000u));
    CLI11_PARSE(app, argc, argv);
    if (smoke) {
        c.repeat = 1000;
        c.runs = 2;
        c.distinct = 100;
    }
    try {
        watchInterrupts();
        return run(c);
    } catch (const std::exception& e) {
        std::cerr << "ztseg_bench_rule_counters: " << e.what() << "\n";
        return 1;
    }
}
