// EventReader tells when the ring buffer is drained, so the flow pipeline can
// flush its batch: after every poll()/drain() that delivered events, never
// after one that found nothing.
#include "datapath/event_reader.hpp"

#include "bpf/datapath_fixture.hpp"
#include "common/packet_builder.hpp"

namespace ztseg::test {
namespace {

TEST_F(DatapathTest, ReaderSignalsDrainedAfterDeliveringEvents) {
    applyGen();  // no identities: every source is unlabeled, every packet an event
    dp().setDropEventInterval(0);
    int events = 0, drained = 0, events_at_drain = -1;
    EventReader reader(
        dp().eventsFd(), [&](const ztseg_flow_event&) { ++events; },
        [&] {
            ++drained;
            events_at_drain = events;
        });
    EXPECT_EQ(reader.drain(), 0);
    EXPECT_EQ(reader.poll(std::chrono::milliseconds(10)), 0);
    EXPECT_EQ(drained, 0) << "nothing delivered, nothing to flush";

    auto f = PacketBuilder::ipv4("10.9.9.9", "10.1.0.20").udp(1000, 53).build();
    ASSERT_EQ(runXdp(f, 10).retval, kXdpDrop);
    EXPECT_EQ(reader.drain(), 10);
    EXPECT_EQ(drained, 1);
    EXPECT_EQ(events_at_drain, 10) << "called once, after the last event";

    ASSERT_EQ(runXdp(f, 3).retval, kXdpDrop);
    EXPECT_EQ(reader.poll(std::chrono::milliseconds(1000)), 3);
    EXPECT_EQ(drained, 2);
    EXPECT_EQ(events_at_drain, 13);
}

}  // namespace
}  // namespace ztseg::test
