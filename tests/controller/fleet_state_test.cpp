// The controller's host registry: reports update generation and drop
// counters, refusals are kept, reconnects forget what was pushed.
#include <gtest/gtest.h>

#include <thread>

#include "controller/fleet.hpp"

namespace ztseg::controller {
namespace {

v1::Report reportWith(uint64_t generation, uint64_t default_deny, uint64_t unlabeled) {
    v1::Report r;
    r.mutable_status()->set_generation(generation);
    r.set_highest_generation(generation);
    auto add = [&](const char* hook, const char* reason, uint64_t packets) {
        v1::Counter* c = r.mutable_status()->add_counters();
        c->set_hook(hook);
        c->set_reason(reason);
        c->set_packets(packets);
    };
    add("sock-connect", "default-deny", default_deny);
    add("cgroup-ingress", "default-deny", 1);
    add("xdp", "unlabeled", unlabeled);
    add("cgroup-ingress", "allow-policy", 1000);
    return r;
}

TEST(FleetState, ReportsCarryGenerationAndDropCounters) {
    Fleet f;
    f.connected("a", "ipv4:10.0.0.2:5000", 3, 3);
    f.markPushed("a", 4);
    v1::Report r = reportWith(4, 10, 5);
    r.mutable_apply()->set_generation(4);
    r.mutable_apply()->set_applied(true);
    f.report("a", r);
    HostState h = f.snapshot().at("a");
    EXPECT_TRUE(h.connected);
    EXPECT_EQ(h.generation, 4u);
    EXPECT_EQ(h.default_deny, 11u) << "summed over hooks";
    EXPECT_EQ(h.drops, 16u) << "every drop reason, not allowed packets";
    EXPECT_EQ(h.pushed, 4u);
    EXPECT_TRUE(h.last_error.empty());
}

TEST(FleetState, RefusalIsKeptAndReconnectResetsPushes) {
    Fleet f;
    f.connected("a", "p", 3, 3);
    f.markPushed("a", 4);
    v1::Report r = reportWith(3, 0, 0);
    r.mutable_apply()->set_generation(4);
    r.mutable_apply()->set_error("bundle is signed by unknown key(s) ed25519:00");
    f.report("a", r);
    EXPECT_EQ(f.snapshot().at("a").last_error, "bundle is signed by unknown key(s) ed25519:00");
    f.disconnected("a");
    EXPECT_FALSE(f.snapshot().at("a").connected);
    f.connected("a", "p", 3, 3);
    EXPECT_EQ(f.snapshot().at("a").pushed, 0u) << "a reconnected host is pushed again";
}

TEST(FleetState, WaitUntilWakesOnReports) {
    Fleet f;
    f.connected("a", "p", 1, 1);
    std::thread t([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        f.report("a", reportWith(2, 0, 0));
    });
    bool ok = f.waitUntil([](const Fleet::Hosts& hs) { return hs.at("a").generation == 2; },
                          std::chrono::steady_clock::now() + std::chrono::seconds(10));
    t.join();
    EXPECT_TRUE(ok);
}

}  // namespace
}  // namespace ztseg::controller
