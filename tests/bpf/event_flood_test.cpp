// Flow evidence that survives a flood (issue 15): drop events are budgeted per
// (source, local workload, verdict), the rest summarized; a source's first
// event is never suppressed by another source's flood; what a flow evicted
// from the per-flow limiter had suppressed reaches a summary; and every drop
// is accounted for exactly once.
#include <arpa/inet.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include "bpf/scenario.hpp"

namespace ztseg::test {
namespace {

constexpr uint64_t kTenSeconds = 10'000'000'000;
constexpr uint32_t kBudget = 8;
constexpr char kAttacker[] = "10.231.1.3";  // unlabeled

bool isSummary(const ztseg_flow_event& e) {
    return e.kind == ZTSEG_EVENT_SUMMARY;
}

std::string srcOf(const ztseg_flow_event& e) {
    char buf[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &e.saddr[0], buf, sizeof(buf));
    return buf;
}

// What the events account for: each flow event its own drop and the drops
// it reports suppressed, each summary its count.
uint64_t accountedDrops(const std::vector<ztseg_flow_event>& ev) {
    uint64_t n = 0;
    for (const auto& e : ev) {
        n += isSummary(e) ? e.suppressed : 1 + uint64_t(e.suppressed);
    }
    return n;
}

class EventFlood : public DatapathTest {
  protected:
    void SetUp() override {
        DatapathTest::SetUp();
        addIdentity("10.1.0.10/32", kWeb);
        addIdentity("10.1.0.20/32", kDb);
        gen().modes[kDb] = WorkloadMode::Enforce;
        applyGen();
        base_ = dp().counters();
    }
    uint64_t evstat(uint32_t which) { return dp().counters().events[which] - base_.events[which]; }
    uint64_t xdpDrops() {
        return counted(ZTSEG_HOOK_XDP, ZTSEG_REASON_DROP_UNLABELED) +
               counted(ZTSEG_HOOK_XDP, ZTSEG_REASON_DROP_DEFAULT_DENY);
    }
    // web -> db:22, denied at XDP
    static std::vector<uint8_t> fromWeb(uint16_t sport) {
        return PacketBuilder::ipv4("10.1.0.10", "10.1.0.20").tcp(sport, 22).build();
    }
    static std::vector<uint8_t> fromAttacker(uint16_t sport, uint16_t dport) {
        return PacketBuilder::ipv4(kAttacker, "10.1.0.20").tcp(sport, dport).build();
    }
    // Ends every window: the next drop of each key reports its summary.
    void endWindows() {
        dp().setDropEventInterval(1);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // jiffy clock
    }

    Counters base_{};
};

TEST_F(EventFlood, FloodFromOneSourceKeepsOthersFirstEventAndAddsUp) {
    dp().setDropEventInterval(kTenSeconds);
    dp().setDropEventSourceBudget(kBudget);
    snapshotCounters();
    ASSERT_EQ(runXdp(fromWeb(40000)).retval, kXdpDrop);  // the earlier denied attempt
    const int kSyns = 5000, kPorts = 312;
    for (int i = 0; i < kSyns; ++i) {
        ASSERT_EQ(runXdp(fromAttacker(uint16_t(10000 + i), uint16_t(1000 + i % kPorts))).retval,
                  kXdpDrop);
    }
    ASSERT_EQ(runXdp(fromWeb(40001)).retval, kXdpDrop);  // web's key still has its budget
    endWindows();
    ASSERT_EQ(runXdp(fromAttacker(9000, 80)).retval, kXdpDrop);  // reports the summary
    auto ev = takeEvents();

    std::vector<ztseg_flow_event> attacker, summaries, web;
    for (const auto& e : ev) {
        (isSummary(e) ? summaries : srcOf(e) == kAttacker ? attacker : web).push_back(e);
    }
    ASSERT_EQ(web.size(), 2u) << "the other source's events are not suppressed";
    EXPECT_EQ(web[0].sport, 40000);
    EXPECT_EQ(web[1].sport, 40001);
    EXPECT_EQ(attacker.size(), kBudget + 1) << "budget, then the first of the next window";
    ASSERT_EQ(summaries.size(), 1u);
    const ztseg_flow_event& s = summaries[0];
    EXPECT_EQ(srcOf(s), kAttacker);
    EXPECT_EQ(s.suppressed, uint32_t(kSyns) - kBudget);
    EXPECT_EQ(s.verdict, ZTSEG_VERDICT_DROPPED);
    EXPECT_EQ(s.reason, ZTSEG_REASON_DROP_UNLABELED);
    EXPECT_GT(s.ts_ns, s.window_start_ns);
    // linear counting over 256 bits: 312 ports set about 180 bits
    const double est = -256.0 * std::log1p(-double(s.port_bits) / 256.0);
    EXPECT_NEAR(est, kPorts, kPorts * 0.2) << s.port_bits << " bits set";

    EXPECT_EQ(xdpDrops(), uint64_t(kSyns) + 3);
    EXPECT_EQ(evstat(ZTSEG_EVSTAT_LOST_DROPS), 0u);
    EXPECT_EQ(accountedDrops(ev) + evstat(ZTSEG_EVSTAT_LOST_DROPS), xdpDrops())
        << "every drop is an event, in a suppressed or summary count, or lost and counted";
    EXPECT_EQ(evstat(ZTSEG_EVSTAT_SOURCE_LIMITED), uint64_t(kSyns) - kBudget);
    EXPECT_EQ(evstat(ZTSEG_EVSTAT_SUMMARIES), 1u);
    EXPECT_EQ(evstat(ZTSEG_EVSTAT_EMITTED), ev.size());
    RecordProperty("syns", kSyns);
    RecordProperty("events", int(ev.size()));
    RecordProperty("attacker_events", int(attacker.size()));
    RecordProperty("summarized", int(s.suppressed));
    RecordProperty("port_bits", int(s.port_bits));
}

// Mirrors bpf/include/tuple.h: the per-flow limiter's slot of an IPv4 TCP
// drop at XDP (hook 0) of `local_id`.
uint32_t ratelimitSlot(const char* src, const char* dst, uint16_t sport, uint16_t dport,
                       uint32_t local_id, uint8_t reason) {
    uint32_t s = 0, d = 0;
    inet_pton(AF_INET, src, &s);
    inet_pton(AF_INET, dst, &d);
    const uint32_t salt = local_id ^ (uint32_t(ZTSEG_HOOK_XDP) << 24) ^ (uint32_t(reason) << 16);
    const uint32_t h = s ^ d ^ ((uint32_t(sport) << 16) | dport) ^ ZTSEG_PROTO_TCP ^ salt;
    return (h * 0x9e3779b1u) >> (32 - ZTSEG_RATELIMIT_BITS);
}

TEST_F(EventFlood, SlotTakeoverKeepsTheEvictedFlowsSuppressedCount) {
    dp().setDropEventInterval(kTenSeconds);
    snapshotCounters();
    ASSERT_EQ(runXdp(fromWeb(40000)).retval, kXdpDrop);
    const ztseg_flow_event first = onlyEvent(ZTSEG_REASON_DROP_DEFAULT_DENY, kWeb, kDb);
    const uint32_t local = first.dst_identity;  // ingress: the local side
    const uint32_t slot = ratelimitSlot("10.1.0.10", "10.1.0.20", 40000, 22, local, first.reason);
    uint16_t other = 40001;
    while (ratelimitSlot("10.1.0.10", "10.1.0.20", other, 22, local, first.reason) != slot) {
        ASSERT_LT(other, 65535) << "no colliding source port";
        ++other;
    }
    for (int i = 0; i < 3; ++i) {
        runXdp(fromWeb(40000));  // suppressed by the per-flow limiter
    }
    EXPECT_TRUE(takeEvents().empty());
    ASSERT_EQ(runXdp(fromWeb(other)).retval, kXdpDrop);  // takes the slot over
    auto ev = takeEvents();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].sport, other);
    EXPECT_EQ(ev[0].suppressed, 0u);
    endWindows();
    ASSERT_EQ(runXdp(fromWeb(41000)).retval, kXdpDrop);
    ev = takeEvents();
    ASSERT_EQ(ev.size(), 2u);
    ASSERT_TRUE(isSummary(ev[0]));
    EXPECT_EQ(ev[0].suppressed, 3u) << "the evicted flow's suppressed drops";
    EXPECT_EQ(ev[0].src_identity, uint32_t(kWeb));
    EXPECT_EQ(srcOf(ev[0]), "10.1.0.10");
    EXPECT_EQ(ev[1].sport, 41000);
    EXPECT_EQ(1 + 1 + accountedDrops(ev), xdpDrops());
}

TEST_F(EventFlood, WithoutBudgetEveryFlowReports) {
    dp().setDropEventInterval(kTenSeconds);  // budget 0: per-source limiting off
    for (int i = 0; i < 100; ++i) {
        runXdp(fromAttacker(uint16_t(10000 + i), 80));
    }
    EXPECT_EQ(takeEvents().size(), 100u);
    EXPECT_EQ(evstat(ZTSEG_EVSTAT_SOURCE_LIMITED), 0u);
}

}  // namespace
}  // namespace ztseg::test
