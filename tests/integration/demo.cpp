// `make demo`: the ztseg datapath on a lab of network namespaces, narrated.
// Every step states what should happen and checks that it did; the exit code
// is non-zero if anything behaved differently, so CI runs the demo as a test.
// Ctrl-C tears everything down (namespaces, cgroup, BPF pins) before exiting.
#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "datapath/event_reader.hpp"
#include "datapath/names.hpp"
#include "integration/lab_topology.hpp"

using namespace std::chrono_literals;
using namespace ztseg;
using namespace ztseg::test;

namespace {

std::atomic<bool> g_interrupted{false};
struct Interrupted {};

void checkpoint() {
    if (g_interrupted) {
        throw Interrupted{};
    }
}

int g_failures = 0;

void step(const std::string& title) {
    checkpoint();
    std::cout << "\n== " << title << "\n";
}

void expect(bool ok, const std::string& what) {
    std::cout << (ok ? "  [ok]   " : "  [FAIL] ") << what << "\n";
    g_failures += !ok;
}

std::string errName(int err) {
    switch (err) {
        case 0:
            return "connected";
        case ETIMEDOUT:
            return "timed out (packets dropped)";
        case EPERM:
            return "EPERM (refused at connect)";
        default:
            return std::strerror(err);
    }
}

std::string idName(uint32_t id) {
    switch (id) {
        case kDbId:
            return "app=db";
        case kWebId:
            return "app=web";
        case ZTSEG_ID_UNLABELED:
            return "unlabeled";
        default:
            return std::to_string(id);
    }
}

void printEvents(EventReader& reader, std::vector<ztseg_flow_event>& events) {
    reader.drain();
    for (const auto& e : events) {
        std::printf(
            "  %-10s %-15s %-13s %s:%u (%s) -> %s:%u (%s)%s\n",
            std::string(verdictName(e.verdict)).c_str(), std::string(hookName(e.hook)).c_str(),
            std::string(reasonName(e.reason)).c_str(), addressToString(e.family, e.saddr).c_str(),
            e.sport, idName(e.src_identity).c_str(), addressToString(e.family, e.daddr).c_str(),
            e.dport, idName(e.dst_identity).c_str(),
            e.rule_id ? (" rule " + std::to_string(e.rule_id)).c_str() : "");
    }
    events.clear();
}

void printCounters(const Counters& c) {
    std::printf("  %-15s %-16s %10s\n", "hook", "reason", "packets");
    for (uint32_t h = 0; h < ZTSEG_HOOK_MAX; ++h) {
        for (uint32_t r = 0; r < ZTSEG_REASON_MAX; ++r) {
            if (c.at(h, r).packets) {
                std::printf("  %-15s %-16s %10llu\n", std::string(hookName(h)).c_str(),
                            std::string(reasonName(r)).c_str(),
                            (unsigned long long)c.at(h, r).packets);
            }
        }
    }
}

int run() {
    spdlog::set_level(spdlog::level::warn);
    step("Building the lab");
    DbLab lab;
    std::cout << "  namespace " << lab.host().name() << " plays the server running ztseg; its\n"
              << "  workload 'db' (" << lab.dbAddr(4) << ") is the cgroup " << lab.dbCgroup().path()
              << ".\n"
              << "  namespace " << lab.peer().name() << " holds 'web' (" << lab.webAddr(4)
              << ", labeled app=web)\n"
              << "  and an intruder (" << lab.intruderAddr(4)
              << ") whose address has no identity.\n";

    step("Loading the datapath (BPF programs + maps pinned in bpffs)");
    DatapathOptions opts;
    opts.pin_dir = "/sys/fs/bpf/ztseg-demo-" + std::to_string(getpid());
    opts.drop_event_interval_ns = 0;
    struct Unpin {
        std::string dir;
        ~Unpin() { Datapath::uninstall(dir); }
    } unpin{opts.pin_dir};
    Datapath dp = Datapath::create(opts);
    std::vector<ztseg_flow_event> events;
    EventReader reader(dp.eventsFd(), [&](const ztseg_flow_event& e) { events.push_back(e); });
    XdpMode mode = lab.attach(dp);
    std::cout << "  XDP attached to " << lab.veth().nameA() << " (" << xdpModeName(mode)
              << " mode); cgroup hooks attached to db.\n";

    auto db = lab.startDbServer(kDbPort);
    auto ssh = lab.startDbServer(kSshPort);
    std::string dst = lab.dbAddr(4), web = lab.webAddr(4), intruder = lab.intruderAddr(4);
    auto probe = [&](const std::string& src, uint16_t port) {
        return lab.inPeer([&] { return tcpEchoRoundTrip(dst, port, "hello", 1s, src); });
    };

    step("Phase 1: policy in AUDIT mode (observe, drop nothing)");
    std::cout << "  policy: web -> db tcp/5432-5433 allow; web -> db tcp/22 deny;\n"
              << "          db -> web tcp/8080 allow; everything else default deny.\n";
    dp.apply(lab.policy(1, WorkloadMode::Audit));
    int e = probe(web, kDbPort);
    expect(e == 0, "web -> db:5432 " + errName(e) + " (allowed)");
    e = probe(intruder, kDbPort);
    expect(e == 0, "intruder -> db:5432 " + errName(e) + " (would be dropped: unlabeled)");
    e = probe(web, kSshPort);
    expect(e == 0, "web -> db:22 " + errName(e) + " (would be dropped: policy deny)");
    std::cout << "  flow events:\n";
    printEvents(reader, events);

    step("Phase 2: switch db to ENFORCE (generation 2, one atomic map switch)");
    dp.apply(lab.policy(2, WorkloadMode::Enforce));
    e = probe(web, kDbPort);
    expect(e == 0, "web -> db:5432 " + errName(e));
    e = probe(intruder, kDbPort);
    expect(e == ETIMEDOUT, "intruder -> db:5432 " + errName(e) + ", dropped at XDP");
    e = probe(web, kSshPort);
    expect(e == ETIMEDOUT, "web -> db:22 " + errName(e) + ", explicit deny");
    e = lab.inDb([&] { return tcpConnect(lab.webAddr(4), kOtherPort, 1s).err; });
    expect(e == EPERM, "db -> web:9999 " + errName(e) + ", no egress rule");
    std::cout << "  flow events:\n";
    printEvents(reader, events);

    step("Counters (per hook and reason, summed over CPUs)");
    Counters c = dp.counters();
    printCounters(c);
    expect(c.at(ZTSEG_HOOK_XDP, ZTSEG_REASON_DROP_UNLABELED).packets > 0,
           "the intruder's packets were dropped at XDP, before the network stack");

    step("Tearing down");
    return 0;
}

}  // namespace

int main() {
    std::signal(SIGINT, [](int) { g_interrupted = true; });
    std::signal(SIGTERM, [](int) { g_interrupted = true; });
    try {
        run();
    } catch (const Interrupted&) {
        std::cout << "\ninterrupted: lab and BPF state removed\n";
        return 130;
    } catch (const std::exception& ex) {
        std::cerr << "demo failed: " << ex.what() << "\n";
        return 1;
    }
    std::cout << (g_failures ? "\ndemo: " + std::to_string(g_failures) + " step(s) FAILED\n"
                             : "\ndemo: everything behaved as expected; lab removed\n");
    return g_failures ? 1 : 0;
}
