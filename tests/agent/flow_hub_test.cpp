// FlowHub: bounded per-stream queues that drop the oldest and count it, the
// recent-history ring, and close() waking streams.
#include <gtest/gtest.h>

#include "agent/api_server.hpp"

using namespace std::chrono_literals;

namespace ztseg::agent {
namespace {

flows::FlowRecord flow(uint64_t n) {
    flows::FlowRecord r;
    r.packets = n;
    r.verdict = "allowed";
    return r;
}

TEST(FlowHub, FullQueueDropsOldestAndCountsLost) {
    FlowHub hub(/*queue_capacity=*/3, /*history=*/2);
    auto sub = hub.subscribe(/*with_history=*/false);
    for (uint64_t i = 1; i <= 5; ++i) hub.publish(flow(i));
    EXPECT_EQ(hub.lost(), 2u);
    for (uint64_t want : {3, 4, 5}) {
        auto r = hub.next(*sub, 10ms);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->packets, want);
    }
    EXPECT_FALSE(hub.next(*sub, 10ms));

    auto recent = hub.recent();
    ASSERT_EQ(recent.size(), 2u);
    EXPECT_EQ(recent[0].packets, 4u);
    EXPECT_EQ(recent[1].packets, 5u);
    auto late = hub.subscribe(/*with_history=*/true);
    EXPECT_EQ(hub.next(*late, 10ms)->packets, 4u);

    hub.unsubscribe(sub);
    hub.publish(flow(6));
    EXPECT_EQ(hub.lost(), 2u) << "an unsubscribed stream loses nothing";
    hub.close();
    EXPECT_TRUE(hub.closed());
    EXPECT_FALSE(hub.next(*late, 1s)) << "closed: no more events, no waiting";
}

TEST(FlowHub, EventConvertsWithOcsfLine) {
    flows::FlowRecord r = flow(7);
    r.src.ip = "10.0.0.1";
    r.src.labels = {{"app", "web"}};
    r.dst.port = 5432;
    v1::FlowEvent e = toFlowEvent(r);
    EXPECT_EQ(e.packets(), 7u);
    EXPECT_EQ(e.src().ip(), "10.0.0.1");
    EXPECT_EQ(e.src().labels().at("app"), "web");
    EXPECT_EQ(e.dst().port(), 5432u);
    EXPECT_NE(e.ocsf_json().find("\"class_uid\":4001"), std::string::npos);
}

}  // namespace
}  // namespace ztseg::agent
