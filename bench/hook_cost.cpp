// Per-packet cost of ztseg's XDP and cgroup_skb programs, path by path, via
// BPF_PROG_TEST_RUN, at one fixed policy (BenchPolicy, --rules allow rules;
// the server workload's endpoint is this process's own cgroup, as in
// xdp_cost). Written to compare revisions (bench/compare_revisions.sh builds
// this same file against an older tree), so it uses only what both sides of
// the enforcement-boundary change (0b8e6d7 -> ABI 3) have: Datapath::create,
// apply, programFd, counters, flushConntrack, uninstall, the DatapathOptions
// fields of 0b8e6d7, PacketBuilder without seqAck().
//
// Cases (every one checks its verdict, and that every packet it sent moved
// exactly the expected counter):
//   XDP: allowed SYN (policy alone), established TCP (a handshake made through
//   the cgroup programs: flow cache), ACK of a flow tracked but not assured
//   (what xdp_cost's "established" row sets up), unlabeled source.
//   cgroup_skb ingress: established ACK; new allowed SYN (distinct flows, one
//   run each: a repeated SYN would find its own conntrack entry).
//   cgroup_skb egress: established ACK, default deny.
//   cgroup_skb no-endpoint: the socket's cgroup is no workload (host traffic),
//   egress and ingress; the process moves into a scratch cgroup for these.
//   Floors: an XDP program returning XDP_PASS and a cgroup_skb program
//   returning 1, loaded here, measured the same ways.
//
// Repeated cases: median (min-max) over --runs kernel measurements of
// --repeat packets (the kernel reports whole ns per packet). Distinct-flow
// cases: mean over --distinct packets run once each, per run; these include
// the kernel's timer reads around every packet, so compare them with the
// floor measured the same way.
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "bench_policy.hpp"
#include "common/cgroup.hpp"
#include "common/error.hpp"
#include "common/packet_builder.hpp"
#include "common/unique_fd.hpp"
#include "datapath/datapath.hpp"
#include "datapath/event_reader.hpp"
#include "interrupt.hpp"

using namespace ztseg;
using namespace ztseg::bench;
using ztseg::test::PacketBuilder;

namespace {

constexpr uint32_t kXdpDrop = 1;  // XDP_DROP
constexpr uint32_t kXdpPass = 2;  // XDP_PASS
constexpr uint32_t kSkbDrop = 0;
constexpr uint32_t kSkbPass = 1;

struct Config {
    uint32_t repeat = 1'000'000;
    int runs = 5;
    uint32_t rules = 1000;
    uint32_t distinct = 20'000;
    std::string csv;
};

struct Result {
    std::string key;    // stable, for CSV and compare_revisions.sh
    std::string hook;   // "xdp", "cgroup ingress", "cgroup egress"
    std::string label;  // no commas (CSV)
    std::string method;
    std::vector<double> ns;  // one per run
    double median() const {
        std::vector<double> v = ns;
        std::sort(v.begin(), v.end());
        return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
    }
    double min() const { return *std::min_element(ns.begin(), ns.end()); }
    double max() const { return *std::max_element(ns.begin(), ns.end()); }
};

// A program returning `ret`: the floor of a hook (what BPF_PROG_TEST_RUN
// costs with nothing to do).
UniqueFd trivialProgram(bpf_prog_type type, int32_t ret, const char* name) {
    bpf_insn insns[2] = {};
    insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
    insns[0].dst_reg = BPF_REG_0;
    insns[0].imm = ret;
    insns[1].code = BPF_JMP | BPF_EXIT;
    int fd = bpf_prog_load(type, name, "GPL", insns, 2, nullptr);
    if (fd < 0) {
        throwErrno(std::string("load ") + name, errno);
    }
    return UniqueFd(fd);
}

uint32_t runOnce(int fd, const std::vector<uint8_t>& frame, uint32_t repeat, uint32_t* ns) {
    LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame.data(),
                .data_size_in = uint32_t(frame.size()), .repeat = int(repeat));
    if (bpf_prog_test_run_opts(fd, &o) != 0) {
        throwErrno("BPF_PROG_TEST_RUN", errno);
    }
    if (ns) {
        *ns = o.duration;
    }
    return o.retval;
}

// IPv4 TCP frames (Ethernet, no VLAN): set sequence and acknowledgement
// numbers and the checksum again (PacketBuilder of 0b8e6d7 has no seqAck()).
std::vector<uint8_t> withSeqAck(std::vector<uint8_t> f, uint32_t seq, uint32_t ack) {
    constexpr size_t l3 = 14;
    if (f.size() < l3 + 40 || (f[l3] >> 4) != 4 || f[l3 + 9] != 6) {
        throw Error("withSeqAck: an IPv4 TCP frame is needed");
    }
    size_t ihl = size_t(f[l3] & 0xf) * 4;
    size_t tcp = l3 + ihl;
    size_t tcp_len = ((size_t(f[l3 + 2]) << 8) | f[l3 + 3]) - ihl;
    auto put32 = [&](size_t at, uint32_t v) {
        for (int i = 0; i < 4; ++i) {
            f[at + i] = uint8_t(v >> (24 - 8 * i));
        }
    };
    put32(tcp + 4, seq);
    put32(tcp + 8, ack);
    f[tcp + 16] = f[tcp + 17] = 0;
    std::vector<uint8_t> sum(f.begin() + long(l3 + 12), f.begin() + long(l3 + 20));  // addresses
    sum.insert(sum.end(), {0, 6, uint8_t(tcp_len >> 8), uint8_t(tcp_len)});
    sum.insert(sum.end(), f.begin() + long(tcp), f.begin() + long(tcp + tcp_len));
    uint16_t c = test::internetChecksum(sum);
    f[tcp + 16] = uint8_t(c >> 8);
    f[tcp + 17] = uint8_t(c);
    return f;
}

const char* hookText(uint32_t hook) {
    return hook == ZTSEG_HOOK_XDP              ? "xdp"
           : hook == ZTSEG_HOOK_CGROUP_INGRESS ? "cgroup ingress"
                                               : "cgroup egress";
}

// Everything one datapath run needs: the datapath, its event reader (drop and
// flow events are consumed as ztsegd would, so the ring buffer never fills).
class Bench {
  public:
    Bench(const Config& c, const std::string& tag) : c_(c) {
        opts_.pin_dir = "/sys/fs/bpf/ztseg-bench-hooks-" + std::to_string(getpid()) + "-" + tag;
        // the test fixture's sizes: identical on both revisions, and small to load
        opts_.policy_capacity = 1 << 18;
        opts_.identity_capacity = 1 << 16;
        Datapath::uninstall(opts_.pin_dir);
        dp_.emplace(Datapath::create(opts_));
        reader_ = std::make_unique<EventReader>(dp_->eventsFd(),
                                                [this](const ztseg_flow_event&) { ++events_; });
    }
    ~Bench() {
        reader_.reset();
        dp_.reset();
        Datapath::uninstall(opts_.pin_dir);
    }
    Bench(const Bench&) = delete;
    Bench& operator=(const Bench&) = delete;

    Datapath& dp() { return *dp_; }
    int prog(uint32_t hook) const {
        return dp_->programFd(hook == ZTSEG_HOOK_XDP              ? "ztseg_xdp"
                              : hook == ZTSEG_HOOK_CGROUP_INGRESS ? "ztseg_cg_ingress"
                                                                  : "ztseg_cg_egress");
    }
    void drain() { reader_->drain(); }

    // One packet, checked: a setup step (handshake) or a verification.
    void send(uint32_t hook, const std::vector<uint8_t>& frame, uint32_t verdict, uint32_t reason,
              const char* what) {
        Counters before = dp_->counters();
        uint32_t got = runOnce(prog(hook), frame, 1, nullptr);
        uint64_t moved = dp_->counters().at(hook, reason).packets - before.at(hook, reason).packets;
        if (got != verdict || moved != 1) {
            throw Error(std::string(what) + ": verdict " + std::to_string(got) + " (want " +
                        std::to_string(verdict) + "), reason counter moved " +
                        std::to_string(moved) + " (want 1)");
        }
        drain();
    }

    // --runs measurements of --repeat packets; every packet must have moved
    // exactly `reason` at `hook`.
    Result repeated(const char* key, uint32_t hook, const char* label,
                    const std::vector<uint8_t>& frame, uint32_t verdict, uint32_t reason) {
        Result r{key, hookText(hook), label, "repeat", {}};
        Counters before = dp_->counters();
        for (int i = 0; i < c_.runs; ++i) {
            checkInterrupted();
            uint32_t ns = 0;
            uint32_t got = runOnce(prog(hook), frame, c_.repeat, &ns);
            if (got != verdict) {
                throw Error(std::string(key) + ": verdict " + std::to_string(got) + " (want " +
                            std::to_string(verdict) + ")");
            }
            r.ns.push_back(ns);
            drain();
        }
        expectMoved(key, before, hook, reason, uint64_t(c_.runs) * c_.repeat);
        return r;
    }

    // Distinct frames, one run each, --runs times (conntrack flushed before
    // each run, so every packet is a flow the datapath has not seen).
    Result distinct(const char* key, uint32_t hook, const char* label,
                    const std::vector<std::vector<uint8_t>>& frames, uint32_t verdict,
                    uint32_t reason) {
        Result r{key, hookText(hook), label, "distinct", {}};
        Counters before = dp_->counters();
        for (int i = 0; i < c_.runs; ++i) {
            checkInterrupted();
            dp_->flushConntrack();
            uint64_t total = 0;
            for (const auto& f : frames) {
                uint32_t ns = 0;
                if (runOnce(prog(hook), f, 1, &ns) != verdict) {
                    throw Error(std::string(key) + ": unexpected verdict for a new flow");
                }
                total += ns;
            }
            r.ns.push_back(double(total) / double(frames.size()));
            drain();
        }
        expectMoved(key, before, hook, reason, uint64_t(c_.runs) * frames.size());
        return r;
    }

  private:
    void expectMoved(const char* key, const Counters& before, uint32_t hook, uint32_t reason,
                     uint64_t want) {
        Counters now = dp_->counters();
        uint64_t all = 0;
        for (uint32_t i = 0; i < ZTSEG_REASON_MAX; ++i) {
            all += now.at(hook, i).packets - before.at(hook, i).packets;
        }
        uint64_t moved = now.at(hook, reason).packets - before.at(hook, reason).packets;
        if (moved != want || all != want) {
            throw Error(std::string(key) + ": " + std::to_string(moved) + " of " +
                        std::to_string(all) + " packets counted under the expected reason, " +
                        std::to_string(want) + " sent: not the path this case measures");
        }
    }

    const Config& c_;
    DatapathOptions opts_;
    std::optional<Datapath> dp_;
    std::unique_ptr<EventReader> reader_;
    uint64_t events_ = 0;
};

Result floorRepeated(const Config& c, int fd, const char* key, const char* hook, const char* label,
                     const std::vector<uint8_t>& frame, uint32_t verdict) {
    Result r{key, hook, label, "repeat", {}};
    for (int i = 0; i < c.runs; ++i) {
        checkInterrupted();
        uint32_t ns = 0;
        if (runOnce(fd, frame, c.repeat, &ns) != verdict) {
            throw Error(std::string(key) + ": unexpected verdict");
        }
        r.ns.push_back(ns);
    }
    return r;
}

Result floorDistinct(const Config& c, int fd, const char* key, const char* hook, const char* label,
                     const std::vector<std::vector<uint8_t>>& frames, uint32_t verdict) {
    Result r{key, hook, label, "distinct", {}};
    for (int i = 0; i < c.runs; ++i) {
        checkInterrupted();
        uint64_t total = 0;
        for (const auto& f : frames) {
            uint32_t ns = 0;
            if (runOnce(fd, f, 1, &ns) != verdict) {
                throw Error(std::string(key) + ": unexpected verdict");
            }
            total += ns;
        }
        r.ns.push_back(double(total) / double(frames.size()));
    }
    return r;
}

void writeFile(const std::string& path, const std::string& text) {
    std::ofstream f(path);
    f << text;
    f.close();
    if (!f) {
        throw Error("write " + path + ": failed");
    }
}

// A scratch cgroup tree beside (never inside) the workloads: host/ for the
// no-endpoint cases (the process moves in for them and back out after),
// workload/ for the server there. Removed on destruction.
class ScratchCgroups {
  public:
    ScratchCgroups()
        : home_(selfCgroupPath()),
          root_(cgroup2MountPoint() + "/ztseg-bench-hooks-" + std::to_string(getpid())) {
        for (const std::string& d : {root_, host(), workload()}) {
            if (::mkdir(d.c_str(), 0755) != 0 && errno != EEXIST) {
                throwErrno("mkdir " + d, errno);
            }
        }
    }
    ~ScratchCgroups() {
        try {
            leave();
        } catch (const std::exception& e) {
            std::cerr << "ztseg_bench_hooks: " << e.what() << "\n";
        }
        for (const std::string& d : {host(), workload(), root_}) {
            ::rmdir(d.c_str());
        }
    }
    ScratchCgroups(const ScratchCgroups&) = delete;
    ScratchCgroups& operator=(const ScratchCgroups&) = delete;

    std::string host() const { return root_ + "/host"; }
    std::string workload() const { return root_ + "/workload"; }
    const std::string& home() const { return home_; }
    void enter(const std::string& dir) {
        writeFile(dir + "/cgroup.procs", std::to_string(getpid()) + "\n");
        moved_ = true;
    }
    void leave() {
        if (moved_) {
            writeFile(home_ + "/cgroup.procs", std::to_string(getpid()) + "\n");
            moved_ = false;
        }
    }

  private:
    std::string home_, root_;
    bool moved_ = false;
};

std::string fmt(double v) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.1f", v);
    return buf;
}

int run(const Config& c) {
    spdlog::set_level(spdlog::level::warn);
    BenchPolicy pol{c.rules, 0};
    uint32_t src = pol.measuredSources(1).at(0);
    const std::string peer = pol.sourceV4(src), server = pol.serverV4();
    const uint16_t ephemeral = 40000;
    auto tcp = [](const std::string& s, const std::string& d, uint16_t sp, uint16_t dp,
                  uint8_t flags) { return PacketBuilder::ipv4(s, d).tcp(sp, dp, flags).build(); };
    using test::kTcpAck;
    using test::kTcpSyn;

    // The handshaked flow: peer:40000 -> server:5201. ISNs 1000 (peer), 5000 (server).
    auto syn = withSeqAck(tcp(peer, server, ephemeral, kBulkPort, kTcpSyn), 1000, 0);
    auto synack =
        withSeqAck(tcp(server, peer, kBulkPort, ephemeral, kTcpSyn | kTcpAck), 5000, 1001);
    auto ack_in = withSeqAck(tcp(peer, server, ephemeral, kBulkPort, kTcpAck), 1001, 5001);
    auto ack_out = withSeqAck(tcp(server, peer, kBulkPort, ephemeral, kTcpAck), 5001, 1001);
    // A flow whose first packet was an ACK (xdp_cost's "established" setup):
    // tracked, never assured.
    auto ack_only = tcp(peer, server, ephemeral + 1, kBulkPort, kTcpAck);
    auto new_syn = tcp(peer, server, ephemeral + 2, kBulkPort, kTcpSyn);
    auto unlabeled = tcp(BenchPolicy::unlabeledV4(0), server, ephemeral, kBulkPort, kTcpSyn);
    auto denied_out = tcp(server, peer, ephemeral + 3, kDeniedPort, kTcpSyn);
    // Host traffic: addresses of no workload, from a socket in no workload's cgroup.
    const std::string host_a = BenchPolicy::unlabeledV4(7), host_b = BenchPolicy::unlabeledV4(8);
    auto host_out = tcp(host_a, host_b, ephemeral, 443, kTcpSyn);
    auto host_in = tcp(host_b, host_a, 443, ephemeral, kTcpAck);
    std::vector<std::vector<uint8_t>> distinct_syns;
    std::vector<uint32_t> sources = pol.measuredSources(8);
    for (uint32_t i = 0; i < c.distinct; ++i) {
        distinct_syns.push_back(tcp(pol.sourceV4(sources.at(i % sources.size())), server,
                                    uint16_t(1024 + (i / sources.size()) % 60000), kBulkPort,
                                    kTcpSyn));
    }

    std::vector<Result> out;
    UniqueFd xdp_floor = trivialProgram(BPF_PROG_TYPE_XDP, XDP_PASS, "bench_xdp_pass");
    UniqueFd skb_floor = trivialProgram(BPF_PROG_TYPE_CGROUP_SKB, 1, "bench_skb_pass");
    out.push_back(floorRepeated(c, xdp_floor.get(), "xdp_floor", "xdp",
                                "floor: XDP program returning XDP_PASS", syn, kXdpPass));
    out.push_back(floorRepeated(c, skb_floor.get(), "cg_floor", "cgroup",
                                "floor: cgroup_skb program returning 1", syn, kSkbPass));

    ScratchCgroups cg;  // made before any datapath: no mkdir while one is loaded
    {
        Bench b(c, "a");
        b.dp().apply(pol.toGeneration(1, cgroupIdOf(selfCgroupPath()), 0));

        out.push_back(b.repeated("xdp_syn", ZTSEG_HOOK_XDP, "XDP: allowed SYN (policy)", syn,
                                 kXdpPass, ZTSEG_REASON_ALLOW_POLICY));
        out.push_back(b.repeated("xdp_unlabeled", ZTSEG_HOOK_XDP, "XDP: unlabeled source dropped",
                                 unlabeled, kXdpDrop, ZTSEG_REASON_DROP_UNLABELED));
        out.push_back(b.repeated("cg_out_deny", ZTSEG_HOOK_CGROUP_EGRESS,
                                 "cgroup egress: default deny (labeled peer)", denied_out, kSkbDrop,
                                 ZTSEG_REASON_DROP_DEFAULT_DENY));
        out.push_back(b.distinct("cg_in_syn", ZTSEG_HOOK_CGROUP_INGRESS,
                                 "cgroup ingress: new allowed SYN (distinct flows)", distinct_syns,
                                 kSkbPass, ZTSEG_REASON_ALLOW_POLICY));
        out.push_back(floorDistinct(c, skb_floor.get(), "cg_floor_distinct", "cgroup",
                                    "floor: cgroup_skb returning 1 (distinct flows)", distinct_syns,
                                    kSkbPass));

        // A real handshake through the cgroup programs, then the established cases.
        b.dp().flushConntrack();
        b.send(ZTSEG_HOOK_CGROUP_INGRESS, syn, kSkbPass, ZTSEG_REASON_ALLOW_POLICY, "SYN in");
        b.send(ZTSEG_HOOK_CGROUP_EGRESS, synack, kSkbPass, ZTSEG_REASON_ALLOW_CONNTRACK,
               "SYN-ACK out");
        b.send(ZTSEG_HOOK_CGROUP_INGRESS, ack_in, kSkbPass, ZTSEG_REASON_ALLOW_CONNTRACK, "ACK in");
        b.send(ZTSEG_HOOK_CGROUP_INGRESS, ack_only, kSkbPass, ZTSEG_REASON_ALLOW_POLICY,
               "first-packet ACK in");
        out.push_back(b.repeated("xdp_est", ZTSEG_HOOK_XDP,
                                 "XDP: established TCP (after a handshake)", ack_in, kXdpPass,
                                 ZTSEG_REASON_ALLOW_CONNTRACK));
        out.push_back(b.repeated("xdp_ack_unassured", ZTSEG_HOOK_XDP,
                                 "XDP: ACK of a flow tracked without handshake", ack_only, kXdpPass,
                                 ZTSEG_REASON_ALLOW_CONNTRACK));
        out.push_back(b.repeated("cg_in_est", ZTSEG_HOOK_CGROUP_INGRESS,
                                 "cgroup ingress: established ACK", ack_in, kSkbPass,
                                 ZTSEG_REASON_ALLOW_CONNTRACK));
        out.push_back(b.repeated("cg_out_est", ZTSEG_HOOK_CGROUP_EGRESS,
                                 "cgroup egress: established ACK", ack_out, kSkbPass,
                                 ZTSEG_REASON_ALLOW_CONNTRACK));
        // A retransmitted SYN: tracked by its first copy, not answered yet.
        b.send(ZTSEG_HOOK_CGROUP_INGRESS, new_syn, kSkbPass, ZTSEG_REASON_ALLOW_POLICY,
               "first SYN in");
        out.push_back(b.repeated("cg_in_syn_again", ZTSEG_HOOK_CGROUP_INGRESS,
                                 "cgroup ingress: SYN retransmit (tracked and unanswered)", new_syn,
                                 kSkbPass, ZTSEG_REASON_ALLOW_CONNTRACK));
    }
    {
        // No endpoint: the server is a workload in cgroup workload/, the
        // process sends from its sibling host/ (same depth).
        Bench b(c, "b");
        Generation g = pol.toGeneration(1, cgroupIdOf(cg.host()), 0);
        b.dp().apply(g);
        cg.enter(cg.host());
        // host/ as the workload first: proves test runs now carry host/'s cgroup
        b.send(ZTSEG_HOOK_CGROUP_EGRESS, denied_out, kSkbDrop, ZTSEG_REASON_DROP_DEFAULT_DENY,
               "socket in the scratch cgroup");
        g = pol.toGeneration(2, cgroupIdOf(cg.workload()), 0);
        b.dp().apply(g);
        out.push_back(b.repeated("cg_out_noep", ZTSEG_HOOK_CGROUP_EGRESS,
                                 "cgroup egress: no endpoint (host traffic)", host_out, kSkbPass,
                                 ZTSEG_REASON_PASS_NO_ENDPOINT));
        out.push_back(b.repeated("cg_in_noep", ZTSEG_HOOK_CGROUP_INGRESS,
                                 "cgroup ingress: no endpoint (host traffic)", host_in, kSkbPass,
                                 ZTSEG_REASON_PASS_NO_ENDPOINT));
        cg.leave();
    }

    // Measured in the order state allows; shown hook by hook.
    const std::vector<std::string> shown = {
        "xdp_floor",         "cg_floor",    "xdp_syn",     "xdp_unlabeled",     "xdp_est",
        "xdp_ack_unassured", "cg_in_est",   "cg_in_syn",   "cg_floor_distinct", "cg_in_syn_again",
        "cg_out_est",        "cg_out_deny", "cg_out_noep", "cg_in_noep"};
    auto rank = [&](const Result& r) {
        return std::find(shown.begin(), shown.end(), r.key) - shown.begin();
    };
    std::stable_sort(out.begin(), out.end(),
                     [&](const Result& a, const Result& b) { return rank(a) < rank(b); });
    std::cout << "| case | ns/packet (median) | min–max |\n|---|---:|---:|\n";
    for (const Result& r : out) {
        std::cout << "| " << r.label << " | " << fmt(r.median()) << " | " << fmt(r.min()) << "–"
                  << fmt(r.max()) << " |\n";
    }
    std::cout << "\n"
              << c.rules << " allow rules; server endpoint = this process's cgroup (" << cg.home()
              << "); repeated cases: median of " << c.runs << " kernel runs of " << c.repeat
              << " packets (whole ns); distinct-flow cases: mean of " << c.distinct
              << " packets run once each (incl. the kernel's timer reads), median of " << c.runs
              << " runs.\n";
    if (!c.csv.empty()) {
        std::string text = "key,hook,method,label,median_ns,min_ns,max_ns,runs,repeat\n";
        for (const Result& r : out) {
            text += r.key + "," + r.hook + "," + r.method + "," + r.label + "," +
                    std::to_string(r.median()) + "," + std::to_string(r.min()) + "," +
                    std::to_string(r.max()) + "," + std::to_string(c.runs) + "," +
                    std::to_string(r.method == "repeat" ? c.repeat : c.distinct) + "\n";
        }
        writeFile(c.csv, text);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Config c;
    bool smoke = false;
    CLI::App app{
        "Per-packet cost of ztseg's XDP and cgroup_skb programs, path by path "
        "(BPF_PROG_TEST_RUN); prints Markdown"};
    app.add_flag("--smoke", smoke, "tiny counts: proves the harness works");
    app.add_option("--repeat", c.repeat, "packets per kernel measurement")
        ->check(CLI::PositiveNumber);
    app.add_option("--runs", c.runs, "measurements per median")->check(CLI::PositiveNumber);
    app.add_option("--rules", c.rules, "allow rules in the policy")->check(CLI::PositiveNumber);
    app.add_option("--distinct", c.distinct, "new flows per distinct-flow run")
        ->check(CLI::Range(1u, 60000u));
    app.add_option("--csv", c.csv, "also write the numbers to this CSV file");
    CLI11_PARSE(app, argc, argv);
    if (smoke) {
        c.repeat = 1000;
        c.runs = 1;
        c.distinct = 100;
    }
    try {
        watchInterrupts();
        return run(c);
    } catch (const std::exception& e) {
        std::cerr << "ztseg_bench_hooks: " << e.what() << "\n";
        return 1;
    }
}
