// Nothing is lost silently: a full ring buffer is counted, and so is every
// drop event suppressed by per-flow rate limiting.
#include <chrono>
#include <thread>

#include "bpf/datapath_fixture.hpp"
#include "common/packet_builder.hpp"

namespace ztseg::test {
namespace {

class TinyRingBuffer : public DatapathTest {
  protected:
    void customize(DatapathOptions& o) override { o.ringbuf_bytes = 4096; }  // ~30 events
};

TEST_F(TinyRingBuffer, FullRingBufferIsCountedNotSilent) {
    applyGen();  // no identities: every source is unlabeled
    const int kPackets = 200;
    for (int i = 0; i < kPackets; ++i) {
        auto f = PacketBuilder::ipv4("10.9.9.9", "10.1.0.20").udp(uint16_t(1000 + i), 53).build();
        ASSERT_EQ(runXdp(f).retval, kXdpDrop);
    }
    Counters c = dp().counters();
    uint64_t emitted = c.events[ZTSEG_EVSTAT_EMITTED];
    uint64_t lost = c.events[ZTSEG_EVSTAT_LOST_RINGBUF];
    EXPECT_GT(lost, 0u);
    EXPECT_LT(emitted, uint64_t(kPackets));
    EXPECT_EQ(emitted + lost, uint64_t(kPackets)) << "every drop is either delivered or counted";
    EXPECT_EQ(takeEvents().size(), emitted);
}

TEST_F(DatapathTest, RepeatedDropsOfOneFlowAreRateLimitedAndCounted) {
    applyGen();
    dp().setDropEventInterval(60'000'000'000ull);
    auto f = PacketBuilder::ipv4("10.9.9.9", "10.1.0.20").tcp(4000, 22).build();
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(runXdp(f).retval, kXdpDrop);
    }
    EXPECT_EQ(counted(ZTSEG_HOOK_XDP, ZTSEG_REASON_DROP_UNLABELED), 5u);
    EXPECT_EQ(takeEvents().size(), 1u);
    EXPECT_EQ(dp().counters().events[ZTSEG_EVSTAT_RATE_LIMITED], 4u);
    // Once the interval has passed, the next event reports what was suppressed.
    // (The rate limiter's clock ticks in jiffies: let one pass.)
    dp().setDropEventInterval(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(runXdp(f).retval, kXdpDrop);
    auto ev = takeEvents();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].suppressed, 4u);
}

}  // namespace
}  // namespace ztseg::test
