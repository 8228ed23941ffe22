// Per-packet cost of the ztseg XDP program via BPF_PROG_TEST_RUN, next to an
// XDP program that only returns XDP_PASS and to xdp-filter's xdpfilt_dny_all
// (Debian xdp-tools, loaded by its own CLI with the same sources allowed), at
// several policy sizes and identity-prefix counts. Prints Markdown tables and
// a plain statement per target; --csv FILE also writes the numbers for the plot.
//
// Every number is a median of --runs kernel measurements of --repeat packets.
#include <bpf/bpf.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "bench_policy.hpp"
#include "common/cgroup.hpp"
#include "common/error.hpp"
#include "common/lab.hpp"
#include "common/packet_builder.hpp"
#include "datapath/datapath.hpp"
#include "interrupt.hpp"
#include "xdp_filter.hpp"
#include "xdp_pass.skel.h"

using namespace ztseg;
using namespace ztseg::bench;
using ztseg::test::PacketBuilder;

namespace {

struct Shape {
    uint32_t rules;
    uint32_t extra;     // identity prefixes beyond the rules' own sources
    uint32_t prefixes;  // identity prefixes in the generation, all told
    bool operator==(const Shape& o) const { return rules == o.rules && extra == o.extra; }
};

struct Config {
    uint32_t repeat = 10'000'000;
    int runs = 5;
    uint32_t distinct_flows = 100'000;  // new-flow row: this many different SYNs, once each
    std::vector<uint32_t> sizes = {10, 1000, 10'000, 100'000};
    std::vector<uint32_t> prefixes = {10'000, 1'000'000};  // at 10 rules
    bool xdp_filter = true;
    std::string csv;
};

const char* kSyn = "IPv4 TCP SYN, new flow allowed";
const char* kEst = "IPv4 TCP established (conntrack)";
const char* kSyn6 = "IPv6 TCP SYN, new flow allowed";
const char* kUnlabeled = "IPv4 unlabeled source dropped";
const char* kDeny = "IPv4 default deny";
const char* kDistinct = "IPv4 TCP SYN, distinct new flows (1 run each)";

// Median ns/packet of `runs` test runs of `repeat` packets each.
double measure(int prog_fd, const std::vector<uint8_t>& frame, const Config& c,
               uint32_t expect_retval) {
    std::vector<double> ns;
    for (int r = 0; r < c.runs; ++r) {
        checkInterrupted();
        LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame.data(),
                    .data_size_in = uint32_t(frame.size()), .repeat = int(c.repeat));
        if (bpf_prog_test_run_opts(prog_fd, &o) != 0) {
            throwErrno("BPF_PROG_TEST_RUN", errno);
        }
        if (o.retval != expect_retval) {
            throw Error("unexpected verdict " + std::to_string(o.retval) + " (want " +
                        std::to_string(expect_retval) + ")");
        }
        ns.push_back(double(o.duration));
    }
    std::sort(ns.begin(), ns.end());
    return ns[ns.size() / 2];
}

// Mean ns of one run each over distinct frames: every packet a flow the
// program has not seen (a repeated SYN may hit state its first run created).
// Includes the kernel's per-run timer reads, so it is compared with XDP_PASS
// measured the same way.
double measureDistinct(int prog_fd, const std::vector<std::vector<uint8_t>>& frames,
                       uint32_t expect_retval) {
    uint64_t total = 0;
    for (const auto& f : frames) {
        LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f.data(), .data_size_in = uint32_t(f.size()),
                    .repeat = 1);
        if (bpf_prog_test_run_opts(prog_fd, &o) != 0) {
            throwErrno("BPF_PROG_TEST_RUN", errno);
        }
        if (o.retval != expect_retval) {
            throw Error("unexpected verdict " + std::to_string(o.retval) + " for a new flow");
        }
        total += o.duration;
    }
    return double(total) / double(frames.size());
}

struct Frames {
    std::vector<uint8_t> syn, est, syn6, unlabeled, denied;
    std::vector<std::vector<uint8_t>> distinct;
};

Frames makeFrames(const BenchPolicy& p, uint32_t distinct) {
    uint32_t src = p.measuredSources(1).at(0);
    Frames f;
    f.syn = PacketBuilder::ipv4(p.sourceV4(src), p.serverV4()).tcp(40000, kBulkPort).build();
    f.est = PacketBuilder::ipv4(p.sourceV4(src), p.serverV4())
                .tcp(40001, kBulkPort, test::kTcpAck)
                .build();
    f.syn6 = PacketBuilder::ipv6(p.sourceV6(src), p.serverV6()).tcp(40000, kBulkPort).build();
    f.unlabeled = PacketBuilder::ipv4(p.unlabeledV4(0), p.serverV4()).tcp(40000, kBulkPort).build();
    f.denied = PacketBuilder::ipv4(p.sourceV4(src), p.serverV4()).tcp(40000, kDeniedPort).build();
    for (uint32_t i = 0; i < distinct; ++i) {
        // Distinct (source, source port) pairs among the measured sources.
        uint32_t s = p.measuredSources(8).at(i % 8);
        f.distinct.push_back(PacketBuilder::ipv4(p.sourceV4(s), p.serverV4())
                                 .tcp(uint16_t(1024 + (i / 8) % 64000), kBulkPort)
                                 .build());
    }
    return f;
}

struct Result {
    std::string filter;  // "ztseg", "xdp-filter", "XDP_PASS"
    Shape shape;
    std::string path;
    double ns;
    double base;  // XDP_PASS, same method, same run
};

class Report {
  public:
    void add(Result r) { results_.push_back(std::move(r)); }
    const std::vector<Result>& all() const { return results_; }
    std::optional<double> find(const std::string& filter, Shape s, const std::string& path) const {
        for (const auto& r : results_) {
            if (r.filter == filter && r.shape == s && r.path == path) {
                return r.ns;
            }
        }
        return std::nullopt;
    }

  private:
    std::vector<Result> results_;
};

// ztseg: a fresh datapath per shape, the policy applied, each path measured.
void measureZtseg(const Config& c, Shape s, int pass_fd, Report& rep,
                  std::vector<std::string>& timings) {
    BenchPolicy pol{s.rules, s.extra};
    Frames f = makeFrames(pol, c.distinct_flows);
    DatapathOptions o;
    o.pin_dir = "/sys/fs/bpf/ztseg-bench-" + std::to_string(getpid());
    o.identity_capacity = std::max<uint32_t>(o.identity_capacity, s.prefixes + 64);
    Datapath::uninstall(o.pin_dir);
    using Clock = std::chrono::steady_clock;
    auto ms = [](Clock::duration d) {
        return std::chrono::duration<double, std::milli>(d).count();
    };
    auto t0 = Clock::now();
    Datapath dp = Datapath::create(o);
    auto t1 = Clock::now();
    struct Cleanup {
        std::string dir;
        ~Cleanup() { Datapath::uninstall(dir); }
    } cleanup{o.pin_dir};
    Generation g = pol.toGeneration(1, cgroupIdOf(selfCgroupPath()), 0);
    auto t2 = Clock::now();
    dp.apply(g);
    auto t3 = Clock::now();
    char line[160];
    std::snprintf(line, sizeof(line), "| %u | %zu | %.0f | %.1f |", s.rules, g.identities.size(),
                  ms(t1 - t0), ms(t3 - t2));
    timings.push_back(line);

    // An established flow: admitted by the cgroup ingress hook, then seen at XDP.
    LIBBPF_OPTS(bpf_test_run_opts, o2, .data_in = f.est.data(),
                .data_size_in = uint32_t(f.est.size()), .repeat = 1);
    if (bpf_prog_test_run_opts(dp.programFd("ztseg_cg_ingress"), &o2) != 0 || o2.retval != 1) {
        throw Error("could not establish the conntrack entry");
    }
    int xdp = dp.programFd("ztseg_xdp");
    double base = measure(pass_fd, f.syn, c, XDP_PASS);
    rep.add({"XDP_PASS", s, kSyn, base, base});
    struct Row {
        const char* path;
        const std::vector<uint8_t>* frame;
        uint32_t verdict;
    } rows[] = {{kSyn, &f.syn, XDP_PASS},
                {kEst, &f.est, XDP_PASS},
                {kSyn6, &f.syn6, XDP_PASS},
                {kUnlabeled, &f.unlabeled, XDP_DROP},
                {kDeny, &f.denied, XDP_DROP}};
    for (const Row& r : rows) {
        rep.add({"ztseg", s, r.path, measure(xdp, *r.frame, c, r.verdict), base});
    }
    if (!f.distinct.empty()) {
        double pass = measureDistinct(pass_fd, f.distinct, XDP_PASS);
        dp.flushConntrack();
        rep.add({"ztseg", s, kDistinct, measureDistinct(xdp, f.distinct, XDP_PASS), pass});
    }
}

// xdp-filter on a veth end in a namespace of its own, the rule sources allowed.
void measureXdpFilter(const Config& c, Shape s, int pass_fd, Report& rep, XdpFilter& xf) {
    BenchPolicy pol{s.rules, s.extra};
    Frames f = makeFrames(pol, 0);
    std::vector<std::string> v4 = pol.xdpFilterSourcesV4();
    std::vector<std::string> v6;
    for (uint32_t i : pol.measuredSources(8)) {
        v6.push_back(pol.sourceV6(i));
    }
    xf.allowSources(v4);
    xf.allowSources(v6);
    double base = measure(pass_fd, f.syn, c, XDP_PASS);
    // Stateless: a SYN and an established packet take the same path.
    rep.add({"xdp-filter", s, kSyn, measure(xf.programFd(), f.syn, c, XDP_PASS), base});
    rep.add({"xdp-filter", s, kEst, measure(xf.programFd(), f.est, c, XDP_PASS), base});
    rep.add({"xdp-filter", s, kSyn6, measure(xf.programFd(), f.syn6, c, XDP_PASS), base});
    rep.add({"xdp-filter", s, kUnlabeled, measure(xf.programFd(), f.unlabeled, c, XDP_DROP), base});
}

std::string fmt(const char* f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), f, v);
    return buf;
}

void printTables(const Config& c, const std::vector<Shape>& shapes, const Report& rep,
                 uint32_t xf_cap, const std::string& xf_prog) {
    std::cout << "| rules | identity prefixes | path | ztseg ns/pkt | xdp-filter ns/pkt | XDP_PASS "
                 "ns/pkt | ztseg / XDP_PASS | ztseg / xdp-filter |\n"
              << "|---:|---:|---|---:|---:|---:|---:|---:|\n";
    for (Shape s : shapes) {
        for (const auto& r : rep.all()) {
            if (r.filter != "ztseg" || !(r.shape == s)) {
                continue;
            }
            auto xf = rep.find("xdp-filter", s, r.path);
            // No xdp-filter row: paths it has no counterpart for, and identity prefixes.
            bool xf_applicable = r.path != kDeny && r.path != kDistinct && s.extra == 0;
            std::string xf_text = xf                 ? fmt("%.1f", *xf)
                                  : !xf_applicable   ? "—"
                                  : s.rules > xf_cap ? "cannot load"
                                                     : "not run";
            std::cout << "| " << s.rules << " | " << s.prefixes << " | " << r.path << " | "
                      << fmt("%.1f", r.ns) << " | " << xf_text << " | " << fmt("%.1f", r.base)
                      << " | " << fmt("%.2fx", r.ns / r.base) << " | "
                      << (xf ? fmt("%.2fx", r.ns / *xf) : "—") << " |\n";
        }
    }
    std::cout << "\nrepeat=" << c.repeat << " packets per kernel measurement, median of " << c.runs
              << " measurements; the distinct-flow row is the mean over " << c.distinct_flows
              << " different SYNs run once each (it includes the kernel's timer reads, so its "
                 "XDP_PASS column is measured the same way). Identity prefixes beyond the rules' "
                 "own sources are further /32 addresses of the same identities.\n";
    if (xf_cap) {
        std::cout << "\nxdp-filter: `xdp-filter load --policy deny` (program `" << xf_prog
                  << "` as attached and measured, default drop), the rule sources allowed with "
                     "`--mode src` (the first through "
                     "its CLI, the rest written to its map in the identical format). It matches "
                     "addresses exactly and ORs address and port rules, so it cannot pair a "
                     "source with a port: it admits the labeled sources on every port and "
                     "protocol, keeps no connection state (SYN and established cost the same) "
                     "and has no default-deny-for-labeled-sources row. Its maps hold at most "
                  << xf_cap << " addresses per family, so larger policies cannot be loaded.\n";
    }
}

// A plain statement per target of issue 7, item 1.
void printTargets(const Config& c, const std::vector<Shape>& shapes, const Report& rep) {
    std::cout << "\n### Targets\n\n";
    if (shapes.empty()) {
        return;
    }
    // Established path <= 2.5x XDP_PASS, at every size.
    double worst = 0;
    Shape worst_s{};
    for (const auto& r : rep.all()) {
        if (r.filter == "ztseg" && r.path == kEst && r.ns / r.base > worst) {
            worst = r.ns / r.base;
            worst_s = r.shape;
        }
    }
    std::cout << "- Established path ≤ 2.5× XDP_PASS: " << (worst <= 2.5 ? "**met**" : "**missed**")
              << " — worst " << fmt("%.2f", worst) << "× (" << worst_s.rules << " rules, "
              << worst_s.prefixes << " prefixes)."
              << (worst <= 2.5 ? ""
                               : " (Established flows are served by XDP's per-CPU flow cache: "
                                 "parse, one array access, a tuple compare, one counter.) Next: "
                                 "skip zeroing the whole judgement on the cached path and the "
                                 "multi-buffer length helper for linear frames.")
              << "\n";
    // New flow <= xdp-filter, where xdp-filter could be loaded.
    bool any = false, all_met = true;
    std::string detail;
    for (Shape s : shapes) {
        auto z = rep.find("ztseg", s, kSyn);
        auto x = rep.find("xdp-filter", s, kSyn);
        if (!z || !x) {
            continue;
        }
        any = true;
        all_met = all_met && *z <= *x;
        detail += (detail.empty() ? "" : ", ") + std::to_string(s.rules) + " rules " +
                  fmt("%.1f", *z) + " vs " + fmt("%.1f", *x) + " ns";
    }
    if (any) {
        std::cout << "- New-flow path ≤ xdp-filter: " << (all_met ? "**met**" : "**missed**")
                  << " — " << detail << "."
                  << (all_met ? ""
                              : " (ztseg's new flow resolves two identities and probes the "
                                "policy; xdp-filter only looks up addresses and ports.) Next: a "
                                "compact IPv4 conntrack key (20 instead of 48 bytes to hash) for "
                                "non-SYN first packets, and one hash for both identities.")
                  << "\n";
    } else {
        std::cout << "- New-flow path ≤ xdp-filter: not measured (xdp-filter not run).\n";
    }
    // Flat: largest shape <= 1.2x the smallest, per path.
    Shape small = shapes.front();
    for (Shape big : shapes) {
        if (big == small) {
            continue;
        }
        double worst_ratio = 0;
        std::string worst_path;
        for (const char* path : {kSyn, kEst, kSyn6, kUnlabeled, kDeny}) {
            auto a = rep.find("ztseg", small, path);
            auto b = rep.find("ztseg", big, path);
            if (a && b && *b / *a > worst_ratio) {
                worst_ratio = *b / *a;
                worst_path = path;
            }
        }
        uint32_t max_rules = *std::max_element(c.sizes.begin(), c.sizes.end());
        if (!(big.extra == 0 && big.rules == max_rules) && !(big == shapes.back())) {
            continue;  // the largest policy and the most identity prefixes
        }
        std::cout << "- Flat (" << big.rules << " rules / " << big.prefixes
                  << " prefixes ≤ 1.2× the " << small.rules
                  << "-rule cost): " << (worst_ratio <= 1.2 ? "**met**" : "**missed**")
                  << " — worst " << fmt("%.2f", worst_ratio) << "× (" << worst_path << ")."
                  << (worst_ratio <= 1.2 ? ""
                                         : " Next: the working set outgrows the CPU cache "
                                           "(larger hash tables); a smaller conntrack key and "
                                           "value would keep more of it there.")
                  << "\n";
    }
}

// Short keys for the plot (the labels carry commas).
std::string pathKey(const std::string& path) {
    static const std::map<std::string, std::string> keys = {
        {kSyn, "syn"},   {kEst, "established"},  {kSyn6, "syn6"}, {kUnlabeled, "unlabeled"},
        {kDeny, "deny"}, {kDistinct, "distinct"}};
    return keys.at(path);
}

void writeCsv(const std::string& path, const Report& rep) {
    std::ofstream out(path);
    out << "filter,rules,extra_prefixes,prefixes,path,ns_per_packet,xdp_pass_ns\n";
    for (const auto& r : rep.all()) {
        out << r.filter << ',' << r.shape.rules << ',' << r.shape.extra << ',' << r.shape.prefixes
            << ',' << pathKey(r.path) << ',' << r.ns << ',' << r.base << '\n';
    }
    if (!out) {
        throw Error("write " + path + ": failed");
    }
}

int run(const Config& c) {
    spdlog::set_level(spdlog::level::warn);
    using PassSkel = std::unique_ptr<xdp_pass_bpf, decltype(&xdp_pass_bpf__destroy)>;
    PassSkel pass(xdp_pass_bpf__open_and_load(), &xdp_pass_bpf__destroy);
    if (!pass) {
        throwErrno("load xdp_pass", errno);
    }
    int pass_fd = bpf_program__fd(pass->progs.xdp_pass);

    std::vector<Shape> shapes;
    for (uint32_t n : c.sizes) {
        shapes.push_back({n, 0, 0});
    }
    for (uint32_t p : c.prefixes) {
        shapes.push_back({10, p > 10 ? p - 10 : 0, 0});
    }
    for (Shape& s : shapes) {  // as many as the generation really holds
        s.prefixes = uint32_t(BenchPolicy{s.rules, s.extra}.toGeneration(1, 0).identities.size());
    }
    Report rep;
    std::vector<std::string> timings;
    for (Shape s : shapes) {
        measureZtseg(c, s, pass_fd, rep, timings);
    }
    uint32_t xf_cap = 0;
    std::string xf_prog;
    if (c.xdp_filter) {
        test::NetNs ns(test::uniqueName("zbxf"));
        test::VethPair veth(test::uniqueName("zbxa"), &ns, test::uniqueName("zbxb"), &ns);
        for (Shape s : shapes) {
            if (s.extra > 0) {
                continue;  // the identity-prefix rows: xdp-filter has no identities
            }
            XdpFilter xf(ns, veth.nameA(), true);
            xf_cap = xf.capacity(4);
            xf_prog = xf.programName();
            if (s.rules > xf_cap) {
                continue;
            }
            measureXdpFilter(c, s, pass_fd, rep, xf);
        }
    }
    printTables(c, shapes, rep, xf_cap, xf_prog);
    printTargets(c, shapes, rep);
    std::cout << "\n## Load and apply latency\n\n"
              << "Load = open, verify, load and pin all programs and maps. Apply = build and\n"
              << "fill a whole generation's maps and switch to it (one atomic flip).\n\n"
              << "| policy entries | identity prefixes | load ms | apply ms |\n"
              << "|---:|---:|---:|---:|\n";
    for (const auto& t : timings) {
        std::cout << t << "\n";
    }
    if (!c.csv.empty()) {
        writeCsv(c.csv, rep);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Config c;
    bool smoke = false, no_xdp_filter = false;
    CLI::App app{
        "Per-packet cost of ztseg's XDP program next to XDP_PASS and xdp-filter "
        "(BPF_PROG_TEST_RUN); prints Markdown"};
    app.add_flag("--smoke", smoke, "tiny sizes and counts: proves the harness works");
    app.add_option("--repeat", c.repeat, "packets per kernel measurement");
    app.add_option("--runs", c.runs, "measurements per median")->check(CLI::PositiveNumber);
    app.add_option("--sizes", c.sizes, "policy sizes in rules")->delimiter(',');
    app.add_option("--prefixes", c.prefixes, "identity prefixes, at 10 rules")->delimiter(',');
    app.add_option("--distinct", c.distinct_flows, "different SYNs for the distinct-flow row");
    app.add_flag("--no-xdp-filter", no_xdp_filter, "leave xdp-filter out");
    app.add_option("--csv", c.csv, "also write the numbers to this CSV file (for the plot)");
    CLI11_PARSE(app, argc, argv);
    if (smoke) {
        c.repeat = 1000;
        c.runs = 1;
        c.sizes = {10, 1000};
        c.prefixes = {5000};
        c.distinct_flows = 1000;
    }
    c.xdp_filter = !no_xdp_filter;
    try {
        watchInterrupts();
        return run(c);
    } catch (const std::exception& e) {
        std::cerr << "ztseg_bench_xdp: " << e.what() << "\n";
        return 1;
    }
}
