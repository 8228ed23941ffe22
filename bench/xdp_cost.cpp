// Per-packet cost of the ztseg XDP program via BPF_PROG_TEST_RUN, next to an
// XDP program that only returns XDP_PASS, at several policy sizes.
// Prints a Markdown table; numbers are medians of repeated runs.
#include <bpf/bpf.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "common/cgroup.hpp"
#include "common/error.hpp"
#include "common/packet_builder.hpp"
#include "datapath/datapath.hpp"
#include "xdp_pass.skel.h"

using namespace ztseg;
using ztseg::test::PacketBuilder;

namespace {

constexpr IdentityId kDb = 300, kWeb = 301;

struct Config {
    bool smoke = false;
    uint32_t repeat = 1'000'000;
    int runs = 5;
    std::vector<uint32_t> sizes = {10, 100'000};
};

// Median ns/packet of `runs` test runs of `repeat` packets each.
double measure(int prog_fd, const std::vector<uint8_t>& frame, const Config& c,
               uint32_t expect_retval) {
    std::vector<double> ns;
    for (int r = 0; r < c.runs; ++r) {
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

// `entries` allow rules for distinct peers, each peer with its own /32.
Generation makeGeneration(uint32_t entries, uint64_t cgroup_id) {
    Generation g;
    g.number = 1;
    g.modes[kDb] = WorkloadMode::Enforce;
    g.endpoints.push_back({cgroup_id, kDb});
    g.identities.push_back({IpPrefix::parse("10.1.0.10/32"), kWeb});
    g.identities.push_back({IpPrefix::parse("10.1.0.20/32"), kDb});
    g.rules.push_back(
        {kDb, kWeb, Direction::Ingress, ZTSEG_PROTO_TCP, {5432, 5432}, Action::Allow, 1});
    g.rules.push_back(
        {kDb, kWeb, Direction::Egress, ZTSEG_PROTO_TCP, {443, 443}, Action::Allow, 2});
    for (uint32_t i = 2; i < entries; ++i) {
        IdentityId peer = 1000 + i;
        uint32_t a = (10u << 24) | (128u << 16) | i;  // 10.128.0.0/9
        IpPrefix p;
        p.family = 4;
        p.length = 32;
        p.addr = {uint8_t(a >> 24), uint8_t(a >> 16), uint8_t(a >> 8), uint8_t(a)};
        g.identities.push_back({p, peer});
        g.rules.push_back(
            {kDb, peer, Direction::Ingress, ZTSEG_PROTO_TCP, {5432, 5432}, Action::Allow, i + 1});
    }
    return g;
}

int run(const Config& c) {
    spdlog::set_level(spdlog::level::warn);
    using PassSkel = std::unique_ptr<xdp_pass_bpf, decltype(&xdp_pass_bpf__destroy)>;
    PassSkel pass(xdp_pass_bpf__open_and_load(), &xdp_pass_bpf__destroy);
    if (!pass) {
        throwErrno("load xdp_pass", errno);
    }
    auto syn = PacketBuilder::ipv4("10.1.0.10", "10.1.0.20").tcp(40000, 5432).build();
    auto est = PacketBuilder::ipv4("10.1.0.10", "10.1.0.20").tcp(40001, 5432, 0x10).build();
    auto syn6 = PacketBuilder::ipv6("fd00::10", "fd00::20").tcp(40000, 5432).build();
    auto unlabeled = PacketBuilder::ipv4("192.0.2.1", "10.1.0.20").tcp(40000, 5432).build();
    auto denied = PacketBuilder::ipv4("10.1.0.10", "10.1.0.20").tcp(40000, 22).build();
    int pass_fd = bpf_program__fd(pass->progs.xdp_pass);

    double base = measure(pass_fd, syn, c, XDP_PASS);
    std::cout << "| policy entries | path | ztseg ns/pkt | XDP_PASS ns/pkt | ratio |\n"
              << "|---:|---|---:|---:|---:|\n";
    using Clock = std::chrono::steady_clock;
    auto ms = [](Clock::duration d) {
        return std::chrono::duration<double, std::milli>(d).count();
    };
    std::vector<std::string> timings;
    for (uint32_t size : c.sizes) {
        DatapathOptions o;
        o.pin_dir = "/sys/fs/bpf/ztseg-bench-" + std::to_string(getpid());
        Datapath::uninstall(o.pin_dir);
        auto t0 = Clock::now();
        Datapath dp = Datapath::create(o);
        auto t1 = Clock::now();
        struct Cleanup {
            std::string dir;
            ~Cleanup() { Datapath::uninstall(dir); }
        } cleanup{o.pin_dir};
        Generation g = makeGeneration(size, cgroupIdOf(selfCgroupPath()));
        g.identities.push_back({IpPrefix::parse("fd00::10/128"), kWeb});
        g.identities.push_back({IpPrefix::parse("fd00::20/128"), kDb});
        g.rules.push_back(
            {kDb, kWeb, Direction::Ingress, ZTSEG_PROTO_TCP, {5432, 5432}, Action::Allow, 1});
        auto t2 = Clock::now();
        dp.apply(g);
        auto t3 = Clock::now();
        char line[160];
        std::snprintf(line, sizeof(line), "| %u | %zu | %.0f | %.1f |", size, g.identities.size(),
                      ms(t1 - t0), ms(t3 - t2));
        timings.push_back(line);
        // An established flow: admitted by the cgroup ingress hook, then seen at XDP.
        {
            LIBBPF_OPTS(bpf_test_run_opts, o2, .data_in = est.data(),
                        .data_size_in = uint32_t(est.size()), .repeat = 1);
            if (bpf_prog_test_run_opts(dp.programFd("ztseg_cg_ingress"), &o2) != 0 ||
                o2.retval != 1) {
                throw Error("could not establish the conntrack entry");
            }
        }
        int xdp = dp.programFd("ztseg_xdp");
        struct Row {
            const char* path;
            const std::vector<uint8_t>* frame;
            uint32_t verdict;
        } rows[] = {{"IPv4 TCP SYN, new flow allowed", &syn, XDP_PASS},
                    {"IPv4 TCP established (conntrack)", &est, XDP_PASS},
                    {"IPv6 TCP SYN, new flow allowed", &syn6, XDP_PASS},
                    {"IPv4 unlabeled source dropped", &unlabeled, XDP_DROP},
                    {"IPv4 default deny", &denied, XDP_DROP}};
        for (const Row& r : rows) {
            double ns = measure(xdp, *r.frame, c, r.verdict);
            std::printf("| %u | %s | %.1f | %.1f | %.2fx |\n", size, r.path, ns, base, ns / base);
        }
    }
    std::cout << "\nrepeat=" << c.repeat << " per run, median of " << c.runs << " runs\n";
    std::cout << "\n## Load and apply latency\n\n"
              << "Load = open, verify, load and pin all programs and maps. Apply = build and\n"
              << "fill a whole generation's maps and switch to it (one atomic flip).\n\n"
              << "| policy entries | identity prefixes | load ms | apply ms |\n"
              << "|---:|---:|---:|---:|\n";
    for (const auto& t : timings) {
        std::cout << t << "\n";
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Config c;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--smoke") {
            c.smoke = true;
            c.repeat = 1000;
            c.runs = 1;
            c.sizes = {10, 1000};
        } else if (a == "--repeat" && i + 1 < argc) {
            c.repeat = uint32_t(std::stoul(argv[++i]));
        } else {
            std::cerr << "usage: ztseg_bench_xdp [--smoke] [--repeat N]\n";
            return 2;
        }
    }
    try {
        return run(c);
    } catch (const std::exception& e) {
        std::cerr << "ztseg_bench_xdp: " << e.what() << "\n";
        return 1;
    }
}
