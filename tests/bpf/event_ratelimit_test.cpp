// Drop events are rate limited per flow, hook and reason; every suppressed
// event is counted (evstat rate-limited) and reported with the next one. Every
// drop is still counted as a verdict.
#include <array>
#include <chrono>
#include <thread>
#include <vector>

#include "bpf/scenario.hpp"

namespace ztseg::test {
namespace {

constexpr uint64_t kTenSeconds = 10'000'000'000;

class EventRateLimit : public DatapathTest {
  protected:
    void SetUp() override {
        DatapathTest::SetUp();
        addIdentity("10.1.0.10/32", kWeb);
        addIdentity("10.1.0.20/32", kDb);
        addWorkload(kWeb, WorkloadMode::Enforce);
        gen().modes[kDb] = WorkloadMode::Enforce;
        addRule({kWeb, kDb, Direction::Egress, ZTSEG_PROTO_TCP, {5432, 5432}, Action::Allow, 5});
        applyGen();
    }
    uint64_t evstat(uint32_t which) { return dp().counters().events[which] - base_events_[which]; }
    void snapshotEvstats() { base_events_ = dp().counters().events; }

    // web -> db on a port db does not admit: default deny at XDP
    static std::vector<uint8_t> denied(uint16_t sport = 40000) {
        return PacketBuilder::ipv4("10.1.0.10", "10.1.0.20").tcp(sport, 22).build();
    }

    std::array<uint64_t, ZTSEG_EVSTAT_MAX> base_events_{};
};

TEST_F(EventRateLimit, RepeatedDropsOfOneFlowEmitOneEvent) {
    dp().setDropEventInterval(kTenSeconds);
    snapshotEvstats();
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(runXdp(denied()).retval, kXdpDrop);
    }
    EXPECT_EQ(counted(ZTSEG_HOOK_XDP, ZTSEG_REASON_DROP_DEFAULT_DENY), 5u);
    auto ev = takeEvents();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].reason, ZTSEG_REASON_DROP_DEFAULT_DENY);
    EXPECT_EQ(ev[0].suppressed, 0u);
    EXPECT_EQ(evstat(ZTSEG_EVSTAT_RATE_LIMITED), 4u);
    EXPECT_EQ(evstat(ZTSEG_EVSTAT_EMITTED), 1u);
}

TEST_F(EventRateLimit, WithoutIntervalEveryDropIsReported) {
    snapshotEvstats();  // the fixture starts with interval 0
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(runXdp(denied()).retval, kXdpDrop);
    }
    EXPECT_EQ(takeEvents().size(), 5u);
    EXPECT_EQ(evstat(ZTSEG_EVSTAT_RATE_LIMITED), 0u);
    EXPECT_EQ(evstat(ZTSEG_EVSTAT_EMITTED), 5u);
}

TEST_F(EventRateLimit, DistinctFlowsLimitedSeparately) {
    dp().setDropEventInterval(kTenSeconds);
    snapshotEvstats();
    for (int i = 0; i < 3; ++i) {
        runXdp(denied(40000));
        runXdp(denied(40001));
    }
    auto ev = takeEvents();
    ASSERT_EQ(ev.size(), 2u);
    EXPECT_NE(ev[0].sport, ev[1].sport);
    EXPECT_EQ(evstat(ZTSEG_EVSTAT_RATE_LIMITED), 4u);
}

TEST_F(EventRateLimit, HooksLimitedSeparately) {
    dp().setDropEventInterval(kTenSeconds);
    snapshotEvstats();
    auto f = denied();
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(runXdp(f).retval, kXdpDrop);
        EXPECT_EQ(runCgroupEgress(f).retval, kSkbDrop);
    }
    auto ev = takeEvents();
    ASSERT_EQ(ev.size(), 2u);
    EXPECT_EQ(ev[0].hook, ZTSEG_HOOK_XDP);
    EXPECT_EQ(ev[1].hook, ZTSEG_HOOK_CGROUP_EGRESS);
    EXPECT_EQ(evstat(ZTSEG_EVSTAT_RATE_LIMITED), 4u);
}

TEST_F(EventRateLimit, SuppressedCountReportedWithNextEvent) {
    dp().setDropEventInterval(200'000'000);  // 200 ms
    for (int i = 0; i < 5; ++i) {
        runXdp(denied());
    }
    ASSERT_EQ(takeEvents().size(), 1u);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_EQ(runXdp(denied()).retval, kXdpDrop);
    auto ev = takeEvents();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].suppressed, 4u);
}

TEST_F(EventRateLimit, AllowedEventsNeverLimited) {
    dp().setDropEventInterval(kTenSeconds);
    snapshotEvstats();
    auto syn = PacketBuilder::ipv4("10.1.0.10", "10.1.0.20").tcp(40000, 5432).build();
    for (int i = 0; i < 3; ++i) {
        dp().flushConntrack();  // each packet is a new admission
        EXPECT_EQ(runCgroupEgress(syn).retval, kSkbPass);
    }
    auto ev = takeEvents();
    ASSERT_EQ(ev.size(), 3u);
    for (const auto& e : ev) {
        EXPECT_EQ(e.verdict, ZTSEG_VERDICT_ALLOWED);
        EXPECT_EQ(e.rule_id, 5u);
    }
    EXPECT_EQ(evstat(ZTSEG_EVSTAT_RATE_LIMITED), 0u);
}

}  // namespace
}  // namespace ztseg::test
